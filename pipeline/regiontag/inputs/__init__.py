"""regiontag.inputs."""
