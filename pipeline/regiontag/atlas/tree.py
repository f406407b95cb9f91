"""The region tree shared by the brain and cord atlases.

An atlas is a label image whose voxel values are *leaf labels*, plus a tree of
named regions.  Every region (leaf or parent) owns a set of leaf label values
per side; a parent's voxels are the union of its descendants' voxels, so
parents aggregate children by construction.

Region paths use the seed's notation, components joined by ``" > "``, e.g.
``"Spinal cord > Spinal white matter > Posterior column"``.  Pattern files
refer to regions by these paths.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import nibabel as nib
import numpy as np

#: Sides a region table row can have. ``both`` is the whole region (all sides).
SIDES = ("left", "right", "both")

PATH_SEPARATOR = " > "


@dataclass(frozen=True)
class Region:
    """One node of the region tree.

    Attributes
    ----------
    path : str
        Full path from the root, e.g. ``"Cerebrum > Cerebral white matter"``.
    labels : dict of str to tuple of int
        Leaf label values in the atlas label image, by side (``"left"``,
        ``"right"``, ``"midline"``).  Parents hold the union of their children.
    paired : bool
        True where anatomy has a left and a right part (the region table then
        has ``left`` and ``right`` rows besides ``both``).
    description : str
        Free text from the atlas YAML (source atlas, derivation rule).
    """

    path: str
    labels: dict[str, tuple[int, ...]]
    paired: bool
    description: str = ""

    @property
    def name(self) -> str:
        """Last component of the path."""
        return self.path.split(PATH_SEPARATOR)[-1]

    @property
    def parent(self) -> str | None:
        """Path of the parent region, None for a root."""
        parts = self.path.split(PATH_SEPARATOR)
        return PATH_SEPARATOR.join(parts[:-1]) if len(parts) > 1 else None

    @property
    def depth(self) -> int:
        """0 for a root region."""
        return self.path.count(PATH_SEPARATOR)

    def label_values(self, side: str = "both") -> tuple[int, ...]:
        """Leaf label values of this region on one side (``both``: all sides)."""
        if side == "both":
            return tuple(sorted({v for values in self.labels.values() for v in values}))
        return tuple(self.labels.get(side, ()))


@dataclass
class Atlas:
    """A label image in template space with its region tree.

    Attributes
    ----------
    name : str
        ``"brain"`` or ``"cord"`` (or a user atlas name).
    space : str
        Template space of ``labels_img`` (e.g. ``"MNI152NLin2009aSym"``, ``"cord"``).
    labels_img : nibabel.Nifti1Image
        Integer leaf-label image; 0 is background.
    regions : tuple of Region
        All regions in pre-order (parents before children).
    leaf_names : dict of int to str
        Label value -> ``"<region path> [<side>]"`` for documentation and QC.
    sha256 : str
        Content hash of the label image and the region definitions.
    """

    name: str
    space: str
    labels_img: nib.Nifti1Image
    regions: tuple[Region, ...]
    leaf_names: dict[int, str] = field(default_factory=dict)
    sha256: str = ""

    def __post_init__(self) -> None:
        if not self.sha256:
            self.sha256 = atlas_hash(self.labels_img, self.regions)

    def region(self, path: str) -> Region:
        """Return the region with this path (``KeyError`` naming close matches)."""
        for region in self.regions:
            if region.path == path:
                return region
        import difflib

        close = difflib.get_close_matches(path, [r.path for r in self.regions], n=3)
        raise KeyError(f"no region {path!r} in atlas {self.name!r}; closest: {close}")

    @property
    def paths(self) -> list[str]:
        """All region paths, pre-order."""
        return [region.path for region in self.regions]


def atlas_hash(labels_img: nib.Nifti1Image, regions: tuple[Region, ...]) -> str:
    """SHA-256 over label data, affine and region definitions (deterministic)."""
    digest = hashlib.sha256()
    data = np.asarray(labels_img.dataobj)
    digest.update(np.ascontiguousarray(data.astype(np.int32)).tobytes())
    digest.update(np.asarray(labels_img.affine, dtype=np.float64).round(6).tobytes())
    for region in regions:
        digest.update(region.path.encode())
        for side in sorted(region.labels):
            digest.update(f"{side}:{region.labels[side]}".encode())
    return digest.hexdigest()
