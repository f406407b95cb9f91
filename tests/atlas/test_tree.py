"""Region tree nodes, atlas lookup and the atlas content hash."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from regiontag.atlas.tree import PATH_SEPARATOR, Atlas, Region, atlas_hash

ROOT = Region("Cord", {"left": (1, 3), "right": (2,), "midline": (5,)}, paired=True)
CHILD = Region("Cord > Grey", {"left": (3,), "right": (2,)}, paired=True)


def _atlas(data=None) -> Atlas:
    data = np.arange(8, dtype=np.int16).reshape(2, 2, 2) if data is None else data
    return Atlas("cord", "cord", nib.Nifti1Image(data, np.eye(4)), (ROOT, CHILD))


def test_region_path_properties_and_sides():
    assert PATH_SEPARATOR == " > "
    assert (ROOT.name, ROOT.parent, ROOT.depth) == ("Cord", None, 0)
    assert (CHILD.name, CHILD.parent, CHILD.depth) == ("Grey", "Cord", 1)
    assert ROOT.label_values() == (1, 2, 3, 5)
    assert ROOT.label_values("left") == (1, 3) and ROOT.label_values("midline") == (5,)
    assert CHILD.label_values("midline") == ()


def test_atlas_lookup_names_close_matches():
    atlas = _atlas()
    assert atlas.paths == ["Cord", "Cord > Grey"]
    assert atlas.region("Cord > Grey") is CHILD
    with pytest.raises(KeyError, match=r"no region 'Cord > Gray' in atlas 'cord'; closest: \['Cord > Grey'"):
        atlas.region("Cord > Gray")


def test_hash_is_deterministic_and_covers_data_affine_and_regions():
    atlas = _atlas()
    assert atlas.sha256 == atlas_hash(atlas.labels_img, atlas.regions) == _atlas().sha256
    assert len(atlas.sha256) == 64
    changed = np.arange(8, dtype=np.int16).reshape(2, 2, 2)
    changed[0, 0, 0] = 9
    assert _atlas(changed).sha256 != atlas.sha256
    shifted = nib.Nifti1Image(np.asarray(atlas.labels_img.dataobj), np.diag([1, 1, 2, 1.0]))
    assert atlas_hash(shifted, atlas.regions) != atlas.sha256
    relabelled = (ROOT, Region("Cord > Grey", {"left": (2,), "right": (3,)}, paired=True))
    assert atlas_hash(atlas.labels_img, relabelled) != atlas.sha256
    # the same labels stored with another integer dtype hash the same
    as_int32 = nib.Nifti1Image(np.asarray(atlas.labels_img.dataobj).astype(np.int32), np.eye(4))
    assert atlas_hash(as_int32, atlas.regions) == atlas.sha256
