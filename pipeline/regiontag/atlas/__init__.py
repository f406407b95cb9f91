"""Region atlases: the hierarchical region tree and its label images (brain: MNI152, cord: cord coordinates)."""

from regiontag.atlas.tree import SIDES, Atlas, Region

__all__ = ["Atlas", "Region", "SIDES"]
