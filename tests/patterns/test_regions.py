"""Region paths of the library (``regiontag.patterns.regions``): suggestions, short names, atlas coverage."""

from __future__ import annotations

from regiontag.patterns import load_library
from regiontag.patterns.regions import closest_region, known_region_paths, short_region_names
from regiontag.resources import patterns_dir
from tests.patterns.helpers import POSTERIOR


def test_shorthand_region_suggests_full_path():
    assert closest_region("Posterior column", known_region_paths()) == POSTERIOR
    assert closest_region("corpus calosum", known_region_paths()) == "Corpus callosum"


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
