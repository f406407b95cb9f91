"""Location classes and orientation of single lesions on the toy brain."""

from __future__ import annotations

import numpy as np
import pytest

from regiontag.atlas.lesion_location import DIS_AREAS, LOCATION_CLASSES, classify, location_maps, shape_and_orientation

from tests.atlas.conftest import TOY_LESIONS


def _voxels(box) -> tuple[np.ndarray, ...]:
    mask = np.zeros((60, 40, 40), dtype=bool)
    mask[box] = True
    return np.nonzero(mask)


@pytest.fixture(scope="module")
def maps(toy_brain):
    return location_maps(np.asarray(toy_brain.labels_img.dataobj), toy_brain, toy_brain.labels_img.affine)


@pytest.mark.parametrize("name", list(TOY_LESIONS))
def test_classify_each_toy_lesion(maps, name: str) -> None:
    box, location, _ = TOY_LESIONS[name]
    assert classify(_voxels(box), maps)["location"] == location


def test_periventricular_gap_and_priority(maps) -> None:
    # 4 mm from the left ventricle wall (i = 20): deep white matter at 3 mm, periventricular at 5 mm
    box = np.s_[14:16, 18:21, 18:21]
    assert classify(_voxels(box), maps)["ventricle_distance_mm"] == pytest.approx(5.0)
    assert classify(_voxels(box), maps)["location"] == "deep white matter"
    assert classify(_voxels(box), maps, periventricular_max_mm=5.0)["location"] == "periventricular"
    assert set(c for classes in DIS_AREAS.values() for c in classes) <= set(LOCATION_CLASSES)


def test_small_lesions_have_no_shape(maps, toy_brain) -> None:
    result = shape_and_orientation(_voxels(np.s_[10:12, 5:7, 35:36]), toy_brain.labels_img.affine, maps)
    assert np.isnan(result["elongation"]) and result["orientation"] == ""
