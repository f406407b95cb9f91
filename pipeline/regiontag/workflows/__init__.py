"""regiontag.workflows."""
