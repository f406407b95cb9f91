"""PAM50 tracts -> our cord leaves on the cord-coordinate grid, and the cache of that atlas."""

from __future__ import annotations

import numpy as np
import pytest

from regiontag.atlas.cord_geometry import (
    ANTERIOR,
    CENTRAL_CANAL,
    CUNEATUS,
    DORSAL_HORN,
    GRACILIS,
    LATERAL,
    VENTRAL_HORN,
)
from regiontag.atlas.cord_spec import load_cord_spec
from regiontag.atlas.pam50 import atlas as pam50_atlas
from regiontag.atlas.pam50.atlas import TRACT_KIND, tract_kinds_on_grid
from regiontag.atlas.pam50.files import COMBINED_CLASSES, N_TRACTS

GEOMETRY = {"body_v": 0.1, "canal_r": 0.1, "horn_split_v": 0.0}


def test_tract_kind_follows_the_combined_classes():
    assert TRACT_KIND.shape == (N_TRACTS,)
    assert set(TRACT_KIND[list(COMBINED_CLASSES["dorsal columns"])]) == {GRACILIS, CUNEATUS}
    assert set(TRACT_KIND[list(COMBINED_CLASSES["lateral funiculi"])]) == {LATERAL}
    assert set(TRACT_KIND[list(COMBINED_CLASSES["ventral funiculi"])]) == {ANTERIOR}
    assert TRACT_KIND[30:36].tolist() == [VENTRAL_HORN, VENTRAL_HORN, -1, -1, DORSAL_HORN, DORSAL_HORN]


def test_intermediate_zone_is_split_by_position():
    tract_ids = np.array([32, 32, 33, 0, 20])
    u = np.array([0.0, 0.3, 0.3, 0.0, 0.0])
    v = np.array([0.12, -0.3, 0.3, 0.12, 0.12])
    kinds = tract_kinds_on_grid(tract_ids, u, v, GEOMETRY)
    assert kinds.tolist() == [CENTRAL_CANAL, DORSAL_HORN, VENTRAL_HORN, GRACILIS, ANTERIOR]
    assert kinds.dtype == np.int8


def test_pam50_atlas_labels_are_cached(tmp_path, monkeypatch):
    folder = tmp_path / "pam50"
    (folder / "template").mkdir(parents=True)
    (folder / "atlas").mkdir()
    (folder / "template" / "PAM50_cord.nii.gz").write_bytes(b"x")
    (folder / "atlas" / "info_label.txt").write_text("x")
    monkeypatch.setenv("REGIONTAG_CACHE", str(tmp_path / "cache"))
    spec = load_cord_spec()
    calls = []

    def fake_build(path, spec_):
        calls.append(path)
        return np.full((2, 2, 2), len(calls), np.int16)

    monkeypatch.setattr(pam50_atlas, "build_pam50_labels", fake_build)
    first = pam50_atlas.pam50_atlas_labels(folder, spec)
    second = pam50_atlas.pam50_atlas_labels(folder, spec)
    assert len(calls) == 1 and np.array_equal(first, second) and first.dtype == np.int16
    assert len(list((tmp_path / "cache").glob("cord_pam50_*.npy"))) == 1
    (folder / "atlas" / "info_label.txt").write_text("changed content")  # size changes: new key
    assert pam50_atlas.pam50_atlas_labels(folder, spec)[0, 0, 0] == 2 and len(calls) == 2


@pytest.mark.slow
def test_build_pam50_labels_draws_every_leaf(pam50_dir):
    spec = load_cord_spec()
    labels = pam50_atlas.build_pam50_labels(pam50_dir, spec)
    assert labels.shape == (spec.grid_size, spec.grid_size, len(spec.levels))
    assert set(np.unique(labels)) - {0} == {leaf.label for leaf in spec.leaves}
