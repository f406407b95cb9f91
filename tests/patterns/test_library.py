"""Loading the pattern library (``regiontag.patterns.library``): files, errors naming file and field."""

from __future__ import annotations

import pytest

from regiontag.config import ScoringConfig
from regiontag.patterns.library import PatternError, load_disease_file, load_library
from regiontag.patterns.scoring import region_background
from regiontag.resources import patterns_dir
from tests.patterns.helpers import POSTERIOR, minimal_disease, write


def test_minimal_file_loads_with_disease_back_reference(tmp_path):
    disease = load_disease_file(write(tmp_path, minimal_disease()))
    pattern = disease.patterns[0]
    assert (pattern.id, pattern.body_part, pattern.disease_name) == ("test-pattern", "cord", "Test disease")
    assert (pattern.regions[0].region, pattern.regions[0].role, pattern.regions[0].laterality) == (
        POSTERIOR, "core", "bilateral")


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
