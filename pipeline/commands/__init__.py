"""Command-line command groups, one module each (see pipeline.cli)."""
