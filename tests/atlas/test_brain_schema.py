"""Schema of atlases/brain.yaml: one condition per term, mask references, region tree, error messages."""

from __future__ import annotations


import pytest
from pydantic import ValidationError

from regiontag.atlas.brain import brain_region_paths, brain_yaml_path
from regiontag.atlas.brain_schema import MaskSpec, RegionSpec, SourceSpec, Term, iter_regions, load_brain_spec
from regiontag.config import ConfigError


def test_yaml_errors_name_file_and_field(tmp_path, broken_brain_yaml):
    def bad_term(content):
        content["masks"]["cc_genu"]["all"][0]["axis_fraction"]["axis"] = "w"

    path = broken_brain_yaml(bad_term)
    with pytest.raises(ConfigError) as error:
        load_brain_spec(path)
    assert str(path) in str(error.value) and "masks.cc_genu.all.0.axis_fraction.axis" in str(error.value)

    def unknown_mask(content):
        content["masks"]["internal_capsule"]["all"][0]["mask"] = "cerebral_wn"

    path = broken_brain_yaml(unknown_mask)
    with pytest.raises(ConfigError, match=r"masks\.internal_capsule: unknown mask 'cerebral_wn'"):
        brain_region_paths(path)

    def orphan_pattern(content):
        content["regions"][0]["leaves"] = ["cerebrum_othr"]

    path = broken_brain_yaml(orphan_pattern)
    with pytest.raises(ConfigError, match="matches no leaf") as error:
        load_brain_spec(path)
    assert str(path) in str(error.value)

    def extra_key(content):
        content["regions"][1]["paird"] = True

    path = broken_brain_yaml(extra_key)
    with pytest.raises(ConfigError, match=r"regions\.1\.paird: Extra inputs are not permitted"):
        load_brain_spec(path)


def test_term_needs_exactly_one_condition_and_names_its_references():
    term = Term.model_validate({"nearest": {"target": "a", "competitors": ["b", "c"]}})
    assert term.kind == "nearest" and term.mask_refs() == ["a", "b", "c"]
    assert Term.model_validate({"mask": "m"}).mask_refs() == ["m"]
    assert Term.model_validate({"between": {"a": "x", "b": "y", "max_gap_mm": 3, "max_cos": -0.5}}).mask_refs() == ["x", "y"]
    assert Term.model_validate({"within_mm": {"mask": "w", "max": 2}}).mask_refs() == ["w"]
    assert Term.model_validate({"box": {"x": [0, 1]}}).mask_refs() == []
    with pytest.raises(ValidationError, match="exactly one condition, got none"):
        Term.model_validate({})
    with pytest.raises(ValidationError, match=r"exactly one condition, got \['mask', 'dominant'\]"):
        Term.model_validate({"mask": "m", "dominant": "gm"})
    with pytest.raises(ValidationError, match="radii_mm must be > 0"):
        Term.model_validate({"ellipsoid": {"centre": [0, 0, 0], "radii_mm": [1, 0, 1]}})


def test_mask_region_and_source_rules():
    mask = MaskSpec.model_validate({"any": [{"mask": "a"}], "not": [{"mask": "b"}]})
    assert [t.kind for t in mask.terms()] == ["mask", "mask"] and mask.not_[0].value == "b"
    with pytest.raises(ValidationError, match="needs 'any' or 'all'"):
        MaskSpec.model_validate({"not": [{"mask": "b"}]})
    with pytest.raises(ValidationError, match="neither leaves nor children"):
        RegionSpec.model_validate({"name": "Empty", "paired": False})
    with pytest.raises(ValidationError, match="must not contain '>'"):
        RegionSpec.model_validate({"name": "A > B", "paired": False, "leaves": ["x"]})
    with pytest.raises(ValidationError, match="needs a 'labels' CSV"):
        SourceSpec.model_validate({"package": "nilearn", "image": "x.nii.gz", "kind": "labels"})


def test_iter_regions_pre_order_paths():
    tree = RegionSpec.model_validate({
        "name": "Root", "paired": True, "children": [
            {"name": "A", "paired": True, "leaves": ["a"], "children": [{"name": "A1", "paired": True, "leaves": ["a1"]}]},
            {"name": "B", "paired": False, "leaves": ["b"]},
        ],
    })
    assert [path for path, _ in iter_regions((tree,))] == ["Root", "Root > A", "Root > A > A1", "Root > B"]


def test_shipped_yaml_loads():
    spec = load_brain_spec(brain_yaml_path())
    paths = [path for path, _ in iter_regions(spec.regions)]
    assert paths == brain_region_paths()
    assert set(spec.tissue.model_dump().values()) <= set(spec.sources)
