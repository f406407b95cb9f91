"""Pattern files (``regiontag.patterns.schema``): validation, error messages, the seed patterns."""

from __future__ import annotations

import pytest

from regiontag.patterns import (
    PatternError,
    load_disease_file,
    load_library,
)
from regiontag.patterns.schema import (
    Disease,
    FeatureEvidence,
    Reference,
    Symmetry,
    feature_label,
)
from regiontag.resources import patterns_dir
from tests.patterns.helpers import LATERAL, POSTERIOR, minimal_disease, write


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


def test_shorthand_forms_and_citation():
    assert FeatureEvidence.model_validate(0.3) == FeatureEvidence(p_present=0.3)
    assert Symmetry.model_validate("symmetric") == Symmetry(expected="symmetric")
    reference = Reference(authors="Doe J", year=2020, title="A study", journal="J Test", volume="5", pages="1-9",
                          doi="10.1000/xyz")
    assert reference.citation() == "Doe J (2020). A study. J Test 5:1-9. doi:10.1000/xyz"
    assert Reference(authors="A", year=1999, title="T", journal="J").citation() == "A (1999). T. J"
    assert feature_label("cord_swelling", True) == "cord swelling"
    assert feature_label("cord_swelling", False) == "no cord swelling"
    assert feature_label("new_thing", False) == "no new thing"  # unlisted names are worded from the key


def test_disease_sets_back_references_and_rejects_duplicates():
    content = minimal_disease()
    second = dict(content["patterns"][0], regions=[
        {"region": POSTERIOR, "role": "core", "p_involved": 0.9},
        {"region": LATERAL, "role": "atypical", "p_involved": 0.01},
    ])
    content["patterns"].append(dict(second, id="other"))
    disease = Disease.model_validate(content)
    assert [(p.disease_id, p.disease_name) for p in disease.patterns] == [("test-disease", "Test disease")] * 2
    assert [item.region for item in disease.patterns[1].regions_with_role("atypical")] == [LATERAL]
    content["patterns"].append(dict(second, id="other"))
    with pytest.raises(ValueError, match=r"patterns: duplicate pattern id\(s\) \['other'\]"):
        Disease.model_validate(content)
    twice = minimal_disease(regions=[{"region": POSTERIOR, "role": "core", "p_involved": 0.9}] * 2)
    with pytest.raises(ValueError, match="regions\\[1\\].region: region '.*Posterior column' listed twice"):
        Disease.model_validate(twice)

