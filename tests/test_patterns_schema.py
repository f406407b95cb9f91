"""Pattern files: schema validation, error messages, the shipped library and the seed patterns."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.config import ScoringConfig
from pipeline.patterns import PatternError, known_region_paths, load_disease_file, load_library
from pipeline.patterns.regions import closest_region, short_region_names
from pipeline.patterns.scoring import region_background
from pipeline.resources import patterns_dir

POSTERIOR = "Spinal cord > Spinal white matter > Posterior column"
LATERAL = "Spinal cord > Spinal white matter > Lateral column"


def minimal_disease(**pattern_changes) -> dict:
    pattern = {
        "id": "test-pattern",
        "name": "Test pattern",
        "body_part": "cord",
        "sequences": ["T2w"],
        "regions": [{"region": POSTERIOR, "role": "core", "laterality": "bilateral", "p_involved": 0.9}],
    }
    pattern.update(pattern_changes)
    return {"id": "test-disease", "disease": "Test disease", "references": ["Doe J (2020). A study."],
            "patterns": [pattern]}


def write(tmp_path: Path, content: dict, name: str = "test-disease.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return path


def test_minimal_file_loads_with_disease_back_reference(tmp_path):
    disease = load_disease_file(write(tmp_path, minimal_disease()))
    pattern = disease.patterns[0]
    assert (pattern.id, pattern.body_part, pattern.disease_name) == ("test-pattern", "cord", "Test disease")
    assert (pattern.regions[0].region, pattern.regions[0].role, pattern.regions[0].laterality) == (
        POSTERIOR, "core", "bilateral")


def test_region_typo_names_file_pattern_and_closest_region(tmp_path):
    content = minimal_disease(regions=[
        {"region": POSTERIOR, "role": "core", "p_involved": 0.9},
        {"region": "Spinal cord > Spinal white matter > Lateral colum", "role": "supportive", "p_involved": 0.4},
    ])
    path = write(tmp_path, content)
    with pytest.raises(PatternError) as error:
        load_disease_file(path)
    message = str(error.value)
    assert str(path) in message
    assert "pattern 'test-pattern'" in message
    assert "regions[1].region" in message
    assert f"closest valid region: {LATERAL!r}" in message


def test_shorthand_region_suggests_full_path():
    assert closest_region("Posterior column", known_region_paths()) == POSTERIOR
    assert closest_region("corpus calosum", known_region_paths()) == "Corpus callosum"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"body_part": "brain"}, "is a cord region but the pattern's body_part is 'brain'"),
        ({"features": {"enhancment": 0.2}}, "closest: 'enhancement'"),
        ({"extent": {"longitudinally_extensiv": 0.5}}, "closest: 'longitudinally_extensive'"),
        ({"sequences": ["T2"]}, "sequences.0"),
        ({"regions": [{"region": POSTERIOR, "role": "core", "p_involved": 1.0}]}, "p_involved"),
        ({"regions": [{"region": POSTERIOR, "role": "supportive", "p_involved": 0.5}]}, "role 'core'"),
        ({"regions": [{"region": POSTERIOR, "role": "core", "p_involved": 0.5, "weight": 3}]}, "weight"),
        ({"symmetry": "mirror"}, "symmetry.expected"),
        ({"id": "../etc/passwd"}, "pattern '../etc/passwd': id"),
        ({"mimics": ["test-pattern"]}, "cannot list itself"),
    ],
)
def test_invalid_fields_are_named(tmp_path, changes, expected):
    path = write(tmp_path, minimal_disease(**changes))
    with pytest.raises(PatternError) as error:
        load_disease_file(path)
    assert str(path) in str(error.value)
    assert expected in str(error.value)


def test_missing_references_and_unknown_top_level_key(tmp_path):
    content = minimal_disease()
    del content["references"]
    content["refs"] = []
    with pytest.raises(PatternError) as error:
        load_disease_file(write(tmp_path, content))
    assert "references: Field required" in str(error.value)
    assert "refs: Extra inputs are not permitted" in str(error.value)


def test_duplicate_pattern_id_across_files_names_both(tmp_path):
    write(tmp_path, minimal_disease(), "a.yaml")
    other = minimal_disease()
    other["id"] = "other-disease"
    write(tmp_path, other, "b.yaml")
    with pytest.raises(PatternError) as error:
        load_library(tmp_path)
    assert "b.yaml" in str(error.value) and "a.yaml" in str(error.value)


def test_shipped_library_is_valid_and_complete():
    library = load_library(patterns_dir())
    ids = {pattern.id for pattern in library.patterns}
    assert {
        "b12-subacute-combined-degeneration", "b12-leukoencephalopathy", "ms-brain", "ms-cord",
        "nmosd-myelitis", "copper-deficiency-myelopathy", "small-vessel-disease",
        "toxic-leukoencephalopathy", "x-ald-parieto-occipital", "osmotic-demyelination",
        "wernicke-encephalopathy",
    } <= ids
    assert library.warnings() == []
    for disease in library.diseases:
        assert disease.references, disease.id
        assert library.files[disease.id].stem == disease.id
    config = ScoringConfig()
    for pattern in library.patterns:
        for item in pattern.regions:
            # atypical regions speak against the pattern, core regions for it
            if item.role == "atypical":
                assert item.p_involved < region_background(item, config), (pattern.id, item.region)
            if item.role == "core":
                assert item.p_involved > 2 * region_background(item, config), (pattern.id, item.region)
    assert library.mimics_of("b12-subacute-combined-degeneration") == {"copper-deficiency-myelopathy"}
    assert library.mimics_of("copper-deficiency-myelopathy") == {"b12-subacute-combined-degeneration"}


def test_seed_patterns_are_encoded_faithfully():
    """The two patterns of ../shared/seeds/vitamin-b12-deficiency.txt: regions, sequences, distribution, extras."""
    library = load_library(patterns_dir())
    scd = library.get("Subacute combined degeneration of spinal cord")
    assert scd.disease_name == "Vitamin B12 deficiency" and scd.body_part == "cord"
    regions = {item.region: item for item in scd.regions}
    # the seed's region list, and the lateral columns of its description
    assert regions[POSTERIOR].role == "core" and regions[POSTERIOR].laterality == "bilateral"
    assert regions["Spinal cord > Spinal white matter"].role == "core"
    assert regions[LATERAL].role == "supportive" and regions[LATERAL].laterality == "bilateral"
    assert "T2w" in scd.sequences
    assert scd.symmetry.expected == "symmetric"
    assert scd.extent["longitudinally_extensive"].p_present > 0.5
    # swelling in the acute phase and occasional enhancement: present but not the rule
    assert 0.0 < scd.features["cord_swelling"].p_present < 0.5
    assert 0.0 < scd.features["enhancement"].p_present < 0.5

    leuko = library.get("Leukoencephalopathy associated with cobalamin deficiency")
    assert leuko.body_part == "brain"
    assert set(leuko.sequences) == {"T2w", "FLAIR", "DWI"}
    seed_regions = [
        "Cerebrum > Cerebral white matter", "Cerebellum > Cerebellar white matter", "Corpus callosum",
        "Internal capsule", "Middle cerebellar peduncle", "Caudate nucleus", "Putamen", "Globus pallidus",
    ]
    assert [item.region for item in leuko.regions] == seed_regions
    by_region = {item.region: item for item in leuko.regions}
    assert by_region["Cerebrum > Cerebral white matter"].role == "core"
    assert all(item.laterality == "bilateral" for item in leuko.regions)
    basal_ganglia = [by_region[name].p_involved for name in ("Caudate nucleus", "Putamen", "Globus pallidus")]
    frequent = [by_region[name].p_involved for name in seed_regions[1:5]]
    assert max(basal_ganglia) < min(frequent)  # basal ganglia only with involuntary movements
    assert leuko.symmetry.expected == "symmetric"
    assert leuko.extent["confluent"].p_present > 0.5  # diffuse


def test_every_library_region_is_an_atlas_region():
    known = known_region_paths()
    for pattern in load_library(patterns_dir()).patterns:
        for item in pattern.regions:
            assert known[item.region] == pattern.body_part


def test_short_region_names_disambiguate():
    names = short_region_names(["Corpus callosum > Genu", "Internal capsule > Posterior limb", POSTERIOR])
    assert names == {
        "Corpus callosum > Genu": "Corpus callosum > Genu",
        "Internal capsule > Posterior limb": "Posterior limb",
        POSTERIOR: "Posterior column",
    }
