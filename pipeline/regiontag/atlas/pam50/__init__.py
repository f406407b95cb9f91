"""regiontag.atlas.pam50."""
