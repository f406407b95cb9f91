"""Reading PAM50 (tract names, cropped arrays) and its per-voxel class and tract labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from regiontag.atlas.pam50.files import (
    COMBINED_CLASSES,
    N_TRACTS,
    Pam50,
    class_probabilities,
    combined_labels,
    read_pam50,
    read_tract_names,
    tract_labels,
)


def _info_label(folder: Path, n_tracts: int = N_TRACTS) -> Path:
    (folder / "atlas").mkdir(parents=True, exist_ok=True)
    lines = ["# White matter atlas", "# Keyword=IndivLabels (Please DO NOT change this line)", "# ID, name, file"]
    lines += [f"{i}, tract number {i}, PAM50_atlas_{i:02d}.nii.gz" for i in range(n_tracts)]
    lines += ["", "# Keyword=CombinedLabels", "50, spinal cord, 0:35"]
    (folder / "atlas" / "info_label.txt").write_text("\n".join(lines) + "\n")
    return folder


def _pam(tracts: np.ndarray, cord: np.ndarray, levels: np.ndarray | None = None) -> Pam50:
    return Pam50(
        folder=Path("."), affine=np.eye(4), cord=cord,
        levels=np.zeros(cord.shape, np.int16) if levels is None else levels,
        tracts=tracts, tract_names={}, source_commit="",
    )


def test_read_tract_names_from_the_indivlabels_section(tmp_path) -> None:
    names = read_tract_names(_info_label(tmp_path))
    assert sorted(names) == list(range(N_TRACTS))
    assert names[7] == "tract number 7"
    assert 50 not in names  # CombinedLabels entries are not tracts


def test_read_tract_names_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="expected atlas/info_label.txt"):
        read_tract_names(tmp_path)
    _info_label(tmp_path, n_tracts=34)
    with pytest.raises(ValueError, match=r"tracts \[34, 35\] missing"):
        read_tract_names(tmp_path)


def test_class_tract_and_combined_labels_on_a_tiny_cord() -> None:
    shape = (3, 1, 1)
    cord = np.array([True, True, True]).reshape(shape)
    tracts = np.zeros((N_TRACTS,) + shape, np.uint8)
    tracts[1, 0] = 200  # right gracilis -> dorsal columns
    tracts[33, 1] = 255  # grey matter
    tracts[5, 1] = 100
    # voxel 2 has no probability: it takes its in-plane nearest labelled neighbour's (voxel 1)
    probabilities = class_probabilities(_pam(tracts, cord))
    assert probabilities.shape == (4,) + shape
    np.testing.assert_allclose(probabilities[:, 0, 0, 0], [200 / 255, 0, 0, 0])
    np.testing.assert_allclose(probabilities[:, 1, 0, 0], [0, 100 / 255, 0, 1.0])
    assert list(COMBINED_CLASSES) == ["dorsal columns", "lateral funiculi", "ventral funiculi", "grey matter"]
    assert combined_labels(_pam(tracts, cord)).ravel().tolist() == [1, 4, 4]
    assert tract_labels(_pam(tracts, cord)).ravel().tolist() == [2, 34, 34]
    outside = cord.copy()
    outside[0] = False
    assert combined_labels(_pam(tracts, outside)).ravel().tolist() == [0, 4, 4]


def test_level_slices_and_present_levels() -> None:
    cord = np.ones((2, 1, 4), bool)
    levels = np.zeros(cord.shape, np.int16)
    levels[:, :, 0] = 3
    levels[0, :, 1], levels[1, :, 1] = 3, 4  # half and half: not mostly level 3 or 4
    levels[:, :, 2:] = 4
    pam = _pam(np.zeros((N_TRACTS,) + cord.shape, np.uint8), cord, levels)
    assert pam.level_slices(3).tolist() == [0]
    assert pam.level_slices(4).tolist() == [2, 3]
    assert pam.present_levels() == [3, 4]


@pytest.mark.slow
def test_read_pam50_crops_the_real_template(pam50_dir) -> None:
    pam = read_pam50(pam50_dir)
    assert pam.tracts.shape == (N_TRACTS,) + pam.cord.shape and pam.tracts.dtype == np.uint8
    assert pam.cord.any() and pam.levels.shape == pam.cord.shape
    # cropped with a margin: no cord voxel on the x/y border
    assert not pam.cord[[0, -1]].any() and not pam.cord[:, [0, -1]].any()
    assert set(range(N_TRACTS)) <= set(pam.tract_names) and "gracilis" in pam.tract_names[0]
    assert set(pam.present_levels()) >= {2, 3, 4, 5, 6, 7}
    assert set(np.unique(combined_labels(pam)[pam.cord])) == {1, 2, 3, 4}
