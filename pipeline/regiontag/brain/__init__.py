"""regiontag.brain."""
