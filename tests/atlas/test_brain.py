"""The composite brain atlas (atlases/brain.yaml -> regiontag.atlas.brain)."""

from __future__ import annotations


import nibabel as nib
import numpy as np
import pytest

from regiontag.atlas import brain as brain_module
from regiontag.atlas.brain import (
    brain_region_paths,
    brain_yaml_path,
    build_brain_atlas,
    build_key,
    cached_atlas_path,
    load_brain_atlas,
    region_volumes_ml,
)
from regiontag.atlas.brain_schema import iter_regions, load_brain_spec
from regiontag.atlas.tree import PATH_SEPARATOR
from regiontag.config import ConfigError

#: The seed's region paths (issue 2) and whether each is paired.
REQUIRED_PATHS = {
    "Cerebrum": True,
    "Cerebrum > Cerebral white matter": True,
    "Cerebrum > Cerebral white matter > Periventricular white matter": True,
    "Cerebrum > Cerebral white matter > Deep white matter": True,
    "Cerebrum > Cerebral white matter > Juxtacortical white matter": True,
    "Cerebrum > Cerebral white matter > Frontal white matter": True,
    "Cerebrum > Cerebral white matter > Parietal white matter": True,
    "Cerebrum > Cerebral white matter > Occipital white matter": True,
    "Cerebrum > Cerebral white matter > Temporal white matter": True,
    "Cerebrum > Cerebral cortex": True,
    "Corpus callosum": False,
    "Corpus callosum > Genu": False,
    "Corpus callosum > Body": False,
    "Corpus callosum > Splenium": False,
    "Internal capsule": True,
    "Internal capsule > Anterior limb": True,
    "Internal capsule > Genu": True,
    "Internal capsule > Posterior limb": True,
    "Caudate nucleus": True,
    "Putamen": True,
    "Globus pallidus": True,
    "Thalamus": True,
    "Thalamus > Medial thalamus": True,
    "Brainstem": False,
    "Brainstem > Midbrain": False,
    "Brainstem > Midbrain > Periaqueductal region": False,
    "Brainstem > Pons": False,
    "Brainstem > Pons > Central pons": False,
    "Brainstem > Medulla": False,
    "Cerebellum": True,
    "Cerebellum > Cerebellar white matter": True,
    "Cerebellum > Cerebellar cortex": True,
    "Cerebellum > Dentate region": True,
    "Middle cerebellar peduncle": True,
    "Ventricles": False,
    "Ventricles > Lateral ventricle": True,
    "Ventricles > Third ventricle": False,
    "Ventricles > Fourth ventricle": False,
}

#: Regions the lesion patterns name: each must carry a published volume range.
MUST_HAVE_RANGES = [
    "Cerebrum > Cerebral white matter", "Corpus callosum", "Internal capsule", "Caudate nucleus",
    "Putamen", "Globus pallidus", "Thalamus", "Brainstem", "Cerebellum > Cerebellar white matter",
    "Middle cerebellar peduncle", "Ventricles > Lateral ventricle",
]


@pytest.fixture(scope="module")
def atlas():
    """The atlas as others get it (default cache; built on first use)."""
    return load_brain_atlas()


@pytest.fixture(scope="module")
def volumes(atlas):
    return region_volumes_ml(atlas)


@pytest.fixture(scope="module")
def spec():
    return load_brain_spec(brain_yaml_path())


def _voxels(atlas, path: str, side: str = "both") -> np.ndarray:
    data = np.asarray(atlas.labels_img.dataobj)
    return np.isin(data, atlas.region(path).label_values(side))


def _world(atlas, mask: np.ndarray) -> np.ndarray:
    return nib.affines.apply_affine(atlas.labels_img.affine, np.argwhere(mask))


def test_region_paths_from_yaml_match_seed_and_built_atlas(atlas):
    paths = brain_region_paths()
    assert set(REQUIRED_PATHS) <= set(paths)
    assert paths == atlas.paths
    for path, paired in REQUIRED_PATHS.items():
        assert atlas.region(path).paired is paired, path


def test_grid_is_nilearn_icbm152_2009a_1mm(atlas):
    from nilearn.datasets import load_mni152_template

    template = load_mni152_template(resolution=1)
    assert atlas.name == "brain" and atlas.space == "MNI152NLin2009aSym"
    assert atlas.labels_img.shape == template.shape == (197, 233, 189)
    assert np.allclose(atlas.labels_img.affine, template.affine)
    assert nib.aff2axcodes(atlas.labels_img.affine) == ("R", "A", "S")
    assert np.issubdtype(atlas.labels_img.get_data_dtype(), np.integer)


def test_every_region_non_empty_on_each_of_its_sides(volumes, atlas):
    for region in atlas.regions:
        sides = ("left", "right") if region.paired else ("both",)
        for side in sides:
            assert volumes[region.path].get(side, 0.0) > 0.05, f"{region.path} [{side}] is empty"


def test_region_volumes_within_published_adult_ranges(volumes, spec):
    scale = spec.template_scale
    checked = []
    for path, region in iter_regions(spec.regions):
        if region.volume is None:
            continue
        low, high = region.volume.ml
        if region.volume.space == "native":
            low, high = low * scale.min, high * scale.max
        sides = ("left", "right") if region.volume.per == "side" else ("both",)
        for side in sides:
            measured = volumes[path][side]
            assert low <= measured <= high, (
                f"{path} [{side}] {measured:.2f} ml outside {low:.2f}-{high:.2f} ({region.volume.reference})"
            )
        checked.append(path)
    assert set(MUST_HAVE_RANGES) <= set(checked)


def test_left_and_right_volumes_agree_within_20_percent(volumes, atlas):
    for region in atlas.regions:
        if region.paired:
            left, right = volumes[region.path]["left"], volumes[region.path]["right"]
            assert abs(left - right) / ((left + right) / 2) <= 0.20, f"{region.path}: {left:.2f} vs {right:.2f}"


def test_parents_contain_children_and_roots_do_not_overlap(atlas):
    by_path = {region.path: region for region in atlas.regions}
    for region in atlas.regions:
        if region.parent is not None:
            parent = by_path[region.parent]
            for side, values in region.labels.items():
                assert set(values) <= set(parent.labels.get(side, ())), f"{region.path} [{side}]"
    roots = [region for region in atlas.regions if region.parent is None]
    seen: set[int] = set()
    for root in roots:
        values = set(root.label_values("both"))
        assert not values & seen, f"{root.path} shares leaf labels with another root region"
        seen |= values
    present = set(np.unique(np.asarray(atlas.labels_img.dataobj))) - {0}
    assert present == seen == set(atlas.leaf_names)


def test_sides_follow_the_sign_of_x(atlas):
    for path in ("Cerebrum", "Thalamus", "Cerebellum", "Internal capsule"):
        assert (_world(atlas, _voxels(atlas, path, "left"))[:, 0] < 0).all(), path
        assert (_world(atlas, _voxels(atlas, path, "right"))[:, 0] > 0).all(), path


def test_derived_regions_follow_their_anatomical_rules(atlas):
    def centroid(path, side="both"):
        return _world(atlas, _voxels(atlas, path, side)).mean(axis=0)

    callosum = _world(atlas, _voxels(atlas, "Corpus callosum"))
    assert np.abs(callosum[:, 0]).max() <= 10
    assert centroid("Corpus callosum > Genu")[1] > centroid("Corpus callosum > Body")[1] \
        > centroid("Corpus callosum > Splenium")[1]
    # the callosum lies above the lateral ventricles
    assert centroid("Corpus callosum > Body")[2] > centroid("Ventricles > Lateral ventricle")[2]
    for side in ("left", "right"):
        capsule = centroid("Internal capsule", side)
        assert abs(centroid("Caudate nucleus", side)[0]) < abs(capsule[0]) < abs(centroid("Putamen", side)[0])
        assert centroid("Internal capsule > Anterior limb", side)[1] > centroid("Internal capsule > Genu", side)[1] \
            > centroid("Internal capsule > Posterior limb", side)[1]
        assert abs(centroid("Middle cerebellar peduncle", side)[0]) > 12
        medial = np.abs(_world(atlas, _voxels(atlas, "Thalamus > Medial thalamus", side))[:, 0]).max()
        assert medial <= 9
    z = {part: centroid(f"Brainstem > {part}")[2] for part in ("Midbrain", "Pons", "Medulla")}
    assert z["Midbrain"] > z["Pons"] > z["Medulla"]
    assert abs(centroid("Brainstem > Midbrain > Periaqueductal region")[0]) < 1


def test_ventricles_lie_on_template_csf_and_white_matter_on_template_wm(atlas):
    from nilearn.datasets import load_mni152_gm_template, load_mni152_wm_template

    gm = load_mni152_gm_template(resolution=1).get_fdata()
    wm = load_mni152_wm_template(resolution=1).get_fdata()
    gm, wm = gm / gm.max(), wm / wm.max()
    csf = np.clip(1 - gm - wm, 0, 1)
    assert csf[_voxels(atlas, "Ventricles > Lateral ventricle")].mean() > 0.6
    assert wm[_voxels(atlas, "Cerebrum > Cerebral white matter")].mean() > 0.7
    assert wm[_voxels(atlas, "Corpus callosum")].mean() > 0.7
    assert gm[_voxels(atlas, "Cerebrum > Cerebral cortex")].mean() > 0.6


def test_cached_atlas_loads_identical(atlas):
    again = load_brain_atlas()
    assert again.sha256 == atlas.sha256
    assert np.array_equal(np.asarray(again.labels_img.dataobj), np.asarray(atlas.labels_img.dataobj))
    assert again.leaf_names == atlas.leaf_names


def test_corrupt_cache_is_rebuilt(atlas, tmp_path, monkeypatch):
    monkeypatch.setenv("REGIONTAG_CACHE", str(tmp_path))
    builds = []
    monkeypatch.setattr(brain_module, "build_brain_atlas", lambda path: builds.append(path) or atlas)
    path = cached_atlas_path()
    assert path.parent == tmp_path
    path.write_bytes(b"not an npz file")
    assert load_brain_atlas().sha256 == atlas.sha256
    assert len(builds) == 1
    assert load_brain_atlas().sha256 == atlas.sha256  # now read from the rewritten cache
    assert len(builds) == 1
    assert not list(tmp_path.glob("*.tmp"))


def test_cache_key_covers_the_yaml(tmp_path):
    text = brain_yaml_path().read_text()
    copy = tmp_path / "brain.yaml"
    copy.write_text(text)
    assert build_key(copy) == build_key(brain_yaml_path())
    copy.write_text(text.replace("radius_mm: 5", "radius_mm: 4"))
    assert build_key(copy) != build_key(brain_yaml_path())


@pytest.mark.slow
def test_two_builds_are_identical(atlas):
    rebuilt = build_brain_atlas()
    assert rebuilt.sha256 == atlas.sha256


def test_build_error_for_unknown_label_names_the_file(tmp_path, broken_brain_yaml):
    def bad_label(content):
        content["masks"]["caudate"]["any"][0]["labels"]["names"] = ["*_Caudat"]

    path = broken_brain_yaml(bad_label)
    with pytest.raises(ConfigError) as error:
        build_brain_atlas(path)
    assert str(path) in str(error.value) and "masks.caudate" in str(error.value) and "*_Caudat" in str(error.value)


def test_cli_atlas_list_prints_tree_with_volumes(atlas, capsys):
    from regiontag.cli.main import main

    assert main(["atlas", "list"]) == 0
    out = capsys.readouterr().out
    volumes = region_volumes_ml(atlas)
    line = next(line for line in out.splitlines() if line.strip().startswith("Putamen"))
    assert f"{volumes['Putamen']['left']:.2f}" in line and f"{volumes['Putamen']['right']:.2f}" in line
    indented = next(line for line in out.splitlines() if "Periventricular white matter" in line)
    assert indented.startswith("    Periventricular")
    assert PATH_SEPARATOR not in out
