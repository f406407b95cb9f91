"""Vertebral segment height from the body/disc periodicity in front of the cord."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from regiontag.config import CordConfig
from regiontag.cord.levels import slice_step_mm
from regiontag.cord.segmentation import centerline_table, segment_cord_canonical
from regiontag.cord.vertebrae import segment_height
from regiontag.phantoms.cord import make_cord_phantom


def _height(image: nib.Nifti1Image):
    canonical = nib.as_closest_canonical(image)
    volume = np.asarray(canonical.dataobj, dtype=np.float32)
    zooms = np.sqrt((canonical.affine[:3, :3] ** 2).sum(axis=0))
    segmentation = segment_cord_canonical(canonical, CordConfig())
    table = centerline_table(segmentation.centres, segmentation.area_mm2, segmentation.valid, canonical.affine)
    return segment_height(volume, zooms, segmentation.centres, segmentation.valid, slice_step_mm(table))


@pytest.mark.parametrize(("segment_mm", "orientation"), [(15.0, "axial"), (21.0, "sagittal")])
def test_segment_height_matches_the_phantom(segment_mm, orientation):
    phantom = make_cord_phantom(
        "healthy", 51, orientation, voxel_size=(1.0, 1.0, 2.0), length_mm=100, segment_length_mm=segment_mm,
        supersample_mm=1.0,
    )
    height, peak = _height(phantom.images["T2w"])
    assert height == pytest.approx(segment_mm, rel=0.08)
    assert peak > 0.5


def test_no_periodicity_gives_no_estimate():
    phantom = make_cord_phantom("healthy", 52, "axial", voxel_size=(1.0, 1.0, 2.0), length_mm=100, supersample_mm=1.0)
    canonical = nib.as_closest_canonical(phantom.images["T2w"])
    volume = np.asarray(canonical.dataobj, dtype=np.float32)
    segmentation = segment_cord_canonical(canonical, CordConfig())
    flat = np.broadcast_to(volume.mean(axis=2, keepdims=True), volume.shape).copy()  # no discs along z
    zooms = np.sqrt((canonical.affine[:3, :3] ** 2).sum(axis=0))
    height, _ = segment_height(flat, zooms, segmentation.centres, segmentation.valid, 2.0)
    assert height is None
    short = segmentation.valid.copy()
    short[10:] = False  # 20 mm of cord: too short to see a period
    assert segment_height(volume, zooms, segmentation.centres, short, 2.0)[0] is None
