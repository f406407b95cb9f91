"""regiontag.accuracy."""
