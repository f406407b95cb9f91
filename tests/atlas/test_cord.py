"""Cord atlas in cord coordinates: YAML validation, generated atlas properties and the PAM50 atlas."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml

from regiontag.atlas.cord import cord_labels_at, cord_labels_in_subject, load_cord_atlas
from regiontag.atlas.cord_spec import cord_region_paths, default_cord_yaml, level_number, load_cord_spec
from regiontag.config import ConfigError

EXPECTED_PATHS = [
    "Spinal cord",
    "Spinal cord > Spinal white matter",
    "Spinal cord > Spinal white matter > Posterior column",
    "Spinal cord > Spinal white matter > Posterior column > Fasciculus gracilis",
    "Spinal cord > Spinal white matter > Posterior column > Fasciculus cuneatus",
    "Spinal cord > Spinal white matter > Lateral column",
    "Spinal cord > Spinal white matter > Anterior column",
    "Spinal cord > Spinal grey matter",
    "Spinal cord > Spinal grey matter > Dorsal horn",
    "Spinal cord > Spinal grey matter > Ventral horn",
    "Spinal cord > Spinal grey matter > Central canal region",
]
UNPAIRED = {"Spinal cord > Spinal grey matter > Central canal region"}
CLASSES = ["dorsal columns", "lateral funiculi", "ventral funiculi", "grey matter"]
#: Our leaf region (last path component) -> PAM50 combined class (1-based, CLASSES order).
LEAF_TO_CLASS = {
    "Fasciculus gracilis": 1,
    "Fasciculus cuneatus": 1,
    "Lateral column": 2,
    "Anterior column": 3,
    "Dorsal horn": 4,
    "Ventral horn": 4,
    "Central canal region": 4,
}


@pytest.fixture(scope="module")
def atlas():
    return load_cord_atlas()


def _mirror_table(atlas) -> dict[int, int]:
    """Label value -> label value of the same region on the other side (midline -> itself)."""
    table = {}
    for region in atlas.regions:
        left, right = region.label_values("left"), region.label_values("right")
        if len(left) == 1 and len(right) == 1:
            table[left[0]], table[right[0]] = right[0], left[0]
        for value in region.label_values("midline"):
            table[value] = value
    return table


# --- YAML and region tree -----------------------------------------------------------------------


def test_region_paths_and_pairing_from_yaml(atlas):
    assert cord_region_paths() == EXPECTED_PATHS
    assert atlas.paths == EXPECTED_PATHS
    assert atlas.name == "cord" and atlas.space == "cord"
    for region in atlas.regions:
        assert region.paired == (region.path not in UNPAIRED), region.path


def test_parents_hold_union_of_children(atlas):
    for region in atlas.regions:
        children = [r for r in atlas.regions if r.parent == region.path]
        if children:
            union = sorted({v for child in children for v in child.label_values()})
            assert list(region.label_values()) == union, region.path


def test_every_region_and_side_non_empty(atlas):
    data = np.asarray(atlas.labels_img.dataobj)
    present = set(np.unique(data)) - {0}
    assert present == set(atlas.leaf_names), "every leaf label is drawn somewhere"
    for region in atlas.regions:
        for side in ("left", "right", "midline"):
            for value in region.label_values(side):
                assert (data == value).sum() > 20, f"{region.path} [{side}] label {value} nearly empty"


def test_left_right_mirror_symmetry(atlas):
    data = np.asarray(atlas.labels_img.dataobj)
    mirror = _mirror_table(atlas)
    swapped = np.vectorize(lambda value: mirror.get(int(value), int(value)))(data[::-1])
    assert np.array_equal(swapped, data)
    # subject right (u > 0) carries only right (and midline) labels
    cord = atlas.region("Spinal cord")
    u_axis = atlas.labels_img.affine[0, 0] * np.arange(data.shape[0]) + atlas.labels_img.affine[0, 3]
    on_right = set(np.unique(data[u_axis > 0])) - {0}
    assert on_right <= set(cord.label_values("right")) | set(cord.label_values("midline"))
    assert set(cord.label_values("right")) <= on_right


def test_generated_atlas_is_deterministic(atlas):
    again = load_cord_atlas()
    assert again.sha256 == atlas.sha256
    assert np.array_equal(np.asarray(again.labels_img.dataobj), np.asarray(atlas.labels_img.dataobj))
    assert np.allclose(again.labels_img.affine, atlas.labels_img.affine)


def test_geometry_change_changes_hash(tmp_path, atlas):
    raw = yaml.safe_load(default_cord_yaml().read_text())
    raw["fixed"]["canal_r"] = round(raw["fixed"]["canal_r"] * 1.5, 4)
    changed = tmp_path / "cord.yaml"
    changed.write_text(yaml.safe_dump(raw))
    assert load_cord_atlas(changed).sha256 != atlas.sha256


def test_grid_affine_maps_index_to_u_v_level(atlas):
    spec = load_cord_spec()
    affine = atlas.labels_img.affine
    n = spec.grid_size
    corner = affine @ np.array([0, 0, 0, 1.0])
    far = affine @ np.array([n - 1, n - 1, len(spec.levels) - 1, 1.0])
    assert np.allclose(corner[:3], [-1, -1, level_number(spec.levels[0])])
    assert np.allclose(far[:3], [1, 1, level_number(spec.levels[-1])])


def test_cuneatus_only_at_and_above_lowest_level(atlas):
    spec = load_cord_spec()
    data = np.asarray(atlas.labels_img.dataobj)
    cuneatus = atlas.region("Spinal cord > Spinal white matter > Posterior column > Fasciculus cuneatus")
    lowest = level_number(spec.cuneatus_lowest_level)
    for k, name in enumerate(spec.levels):
        has = np.isin(data[:, :, k], cuneatus.label_values()).any()
        assert has == (level_number(name) <= lowest), name


def test_cervical_enlargement_has_larger_horns(atlas):
    spec = load_cord_spec()
    data = np.asarray(atlas.labels_img.dataobj)
    grey = atlas.region("Spinal cord > Spinal grey matter").label_values()
    area = {name: np.isin(data[:, :, k], grey).sum() for k, name in enumerate(spec.levels)}
    assert area["C6"] > area["T6"]


def test_labels_at_uses_default_level_and_clips_to_disk(atlas):
    spec = load_cord_spec()
    u = np.array([0.0, 0.3, -0.3, 1.7])
    v = np.array([-0.9, 0.0, 0.0, 0.0])
    default = cord_labels_at(atlas, u, v, np.nan)
    explicit = cord_labels_at(atlas, u, v, level_number(spec.default_level))
    assert np.array_equal(default, explicit)
    assert np.all(default > 0), "points outside the disk take the label at its edge"
    lateral = atlas.region("Spinal cord > Spinal white matter > Lateral column")
    assert default[3] in lateral.label_values("right")


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda raw: raw["geometry"][raw["default_level"]].update(body_ru=7.0), "geometry"),
        (lambda raw: raw["geometry"][raw["default_level"]].update(bogus=0.1), "geometry"),
        (lambda raw: raw.pop("levels"), "levels"),
        (lambda raw: raw["leaves"][0].update(side="up"), "leaves.0.side"),
        (lambda raw: raw.update(grid_size=3), "grid_size"),
        (lambda raw: raw.update(default_level="X9"), "default_level"),
        (lambda raw: raw["fixed"].update(canal_r=-1.0), "fixed"),
    ],
)
def test_bad_yaml_names_file_and_field(tmp_path, edit, field):
    raw = yaml.safe_load(default_cord_yaml().read_text())
    edit(raw)
    bad = tmp_path / "bad_cord.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as info:
        load_cord_atlas(bad)
    message = str(info.value)
    assert str(bad.resolve()) in message and f"field {field}" in message, message


# --- PAM50 ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pam50(pam50_dir):
    from regiontag.atlas.pam50.files import read_pam50

    return read_pam50(pam50_dir)


def _slice_levels(pam50_dir: Path) -> np.ndarray:
    """Vertebral level per canonical z slice of PAM50 (most frequent non-zero value; NaN if none)."""
    levels = np.asarray(nib.as_closest_canonical(nib.load(pam50_dir / "template" / "PAM50_levels.nii.gz")).dataobj)
    out = np.full(levels.shape[2], np.nan)
    for k in range(levels.shape[2]):
        values = levels[:, :, k][levels[:, :, k] > 0]
        if values.size:
            out[k] = np.bincount(values).argmax()
    return out


def _dice_table(pam50_dir: Path, pam, atlas, level_names: list[str]) -> dict[str, dict[str, float]]:
    """Dice per level and combined class between our labels (applied to PAM50's cord mask) and PAM50's."""
    from regiontag.atlas.pam50.files import combined_labels

    cord_img = nib.load(pam50_dir / "template" / "PAM50_cord.nii.gz")
    ours_img = cord_labels_in_subject(cord_img, atlas, levels=_slice_levels(pam50_dir))
    assert ours_img.shape == cord_img.shape and np.allclose(ours_img.affine, cord_img.affine)
    leaf_class = np.zeros(max(atlas.leaf_names) + 1, dtype=np.int16)
    for value, name in atlas.leaf_names.items():
        leaf_class[value] = LEAF_TO_CLASS[name.split(" [")[0].split(" > ")[-1]]
    # our labels at PAM50's (cropped, canonical) cord voxels via world coordinates
    ii, jj, kk = np.nonzero(pam.cord)
    world = pam.affine @ np.vstack([ii, jj, kk, np.ones_like(ii)])
    index = np.rint((np.linalg.inv(ours_img.affine) @ world)[:3]).astype(int)
    ours = leaf_class[np.asarray(ours_img.dataobj)[index[0], index[1], index[2]]]
    reference = combined_labels(pam)[ii, jj, kk]
    voxel_levels = pam.levels[ii, jj, kk]
    table = {}
    for name in level_names:
        in_level = np.isin(kk, pam.level_slices(level_number(name)))
        assert in_level.sum() > 1000, name
        assert (ours[in_level] > 0).all(), "every cord voxel gets a label"
        table[name] = {}
        for c, class_name in enumerate(CLASSES, start=1):
            a, b = ours[in_level] == c, reference[in_level] == c
            table[name][class_name] = 2 * (a & b).sum() / (a.sum() + b.sum())
        assert np.all(voxel_levels[in_level] > 0)
    return table


def _print_table(title: str, table: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    print("level  " + "  ".join(f"{c:>16}" for c in CLASSES))
    for name, row in table.items():
        print(f"{name:<6} " + "  ".join(f"{row[c]:16.3f}" for c in CLASSES))


@pytest.mark.slow
def test_dice_against_pam50_at_cervical_levels(pam50_dir, pam50, atlas):
    levels = ["C2", "C3", "C4", "C5", "C6", "C7", "T2"]
    table = _dice_table(pam50_dir, pam50, atlas, levels)
    _print_table("Dice: regiontag cord atlas vs PAM50 combined labels", table)
    for name, row in table.items():
        for class_name, dice in row.items():
            assert dice >= 0.7, f"{name} {class_name}: Dice {dice:.3f} < 0.7"


@pytest.mark.slow
def test_pam50_folder_atlas_loads_and_matches_ours(pam50_dir, pam50, atlas, tmp_path, monkeypatch):
    monkeypatch.setenv("REGIONTAG_CACHE", str(tmp_path))
    pam_atlas = load_cord_atlas(pam50_dir)
    assert pam_atlas.paths == atlas.paths and pam_atlas.name == "cord"
    assert pam_atlas.labels_img.shape == atlas.labels_img.shape
    assert list(tmp_path.glob("cord_pam50_*.npy")), "the PAM50 atlas is cached"
    assert load_cord_atlas(pam50_dir).sha256 == pam_atlas.sha256
    data = np.asarray(pam_atlas.labels_img.dataobj)
    ours = np.asarray(atlas.labels_img.dataobj)
    spec = load_cord_spec()
    k = spec.levels.index("C4")
    # PAM50's left gracilis (tract 0) lands at u < 0 with our left label
    gracilis = atlas.region("Spinal cord > Spinal white matter > Posterior column > Fasciculus gracilis")
    u_axis = np.linspace(-1, 1, spec.grid_size)
    left_columns = np.nonzero(np.isin(data[:, :, k], gracilis.label_values("left")).any(axis=1))[0]
    assert left_columns.size and u_axis[left_columns].max() < 0.05
    leaf_class = {
        value: LEAF_TO_CLASS[name.split(" [")[0].split(" > ")[-1]] for value, name in atlas.leaf_names.items()
    }
    to_class = np.vectorize(lambda value: leaf_class.get(int(value), 0))
    ours_class, pam_class = to_class(ours[:, :, k]), to_class(data[:, :, k])
    for c in range(1, 5):
        a, b = ours_class == c, pam_class == c
        assert 2 * (a & b).sum() / (a.sum() + b.sum()) >= 0.7, CLASSES[c - 1]
    # applying the PAM50 atlas to the PAM50 cord reproduces PAM50's combined labels
    table = _dice_table(pam50_dir, pam50, pam_atlas, ["C4"])
    _print_table("Dice: PAM50-folder atlas (resampled to cord coordinates) vs PAM50", table)
    assert min(table["C4"].values()) >= 0.8


# --- PAM50 folder errors -------------------------------------------------------------------------


def test_bad_pam50_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="info_label.txt"):
        load_cord_atlas(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_cord_atlas(tmp_path / "missing")
