"""Where brain-phantom lesions go (``regiontag.phantoms.targets``): region lists and a pattern's core regions."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from regiontag.atlas.brain import load_brain_atlas
from regiontag.patterns.library import build_library, parse_disease
from regiontag.phantoms.lesion_shapes import LesionTarget
from regiontag.phantoms.targets import expand_sides, parse_region_list, pattern_requests, probable

WHITE_MATTER = "Cerebrum > Cerebral white matter"
PERIVENTRICULAR = "Cerebrum > Cerebral white matter > Periventricular white matter"
JUXTACORTICAL = "Cerebrum > Cerebral white matter > Juxtacortical white matter"


@pytest.fixture(scope="module")
def anatomy():
    """``expand_sides`` only needs the anatomy's atlas (this overrides the full phantom anatomy)."""
    return SimpleNamespace(atlas=load_brain_atlas())


def toy_library():
    def region(path, role="core", laterality="bilateral", p=0.8):
        return {"region": path, "role": role, "laterality": laterality, "p_involved": p}

    brain = {"id": "toy-brain", "name": "Toy brain", "body_part": "brain", "sequences": ["FLAIR"], "regions": [
        region(WHITE_MATTER), region(PERIVENTRICULAR), region(JUXTACORTICAL, laterality="any"),
        region("Putamen", laterality="unilateral"), region("Corpus callosum"),
        region("Thalamus", role="supportive", p=0.4),
    ]}
    cord = {"id": "toy-cord", "name": "Toy cord", "body_part": "cord", "sequences": ["T2w"], "regions": [
        region("Spinal cord > Spinal white matter > Posterior column")]}
    content = {"id": "toy", "disease": "Toy", "references": ["x"], "patterns": [brain, cord]}
    return build_library({"toy.yaml": parse_disease(content, "toy.yaml")})


def test_region_list_parsing_and_errors():
    assert parse_region_list("Putamen:left, Caudate nucleus") == [("Putamen", "left"), ("Caudate nucleus", "bilateral")]
    with pytest.raises(ValueError, match="side"):
        parse_region_list("Putamen:up")


def test_region_list_forms():
    assert parse_region_list(["Putamen:RIGHT", "Thalamus: both", "Genu:"]) == [
        ("Putamen", "right"), ("Thalamus", "both"), ("Genu", "bilateral")]
    assert parse_region_list(" , Putamen ,") == [("Putamen", "bilateral")]
    assert parse_region_list("") == []
    with pytest.raises(ValueError) as error:
        parse_region_list("Putamen:up")
    assert str(error.value) == "region 'Putamen:up': side must be left, right, both or bilateral, not 'up'"


def test_pattern_core_regions_become_requests():
    pattern, requests = pattern_requests("toy-brain", toy_library())
    assert pattern.id == "toy-brain"
    # the cerebral white matter is left to its core sub-regions; supportive regions get no lesions
    assert requests == [(PERIVENTRICULAR, "bilateral"), (JUXTACORTICAL, "bilateral"), ("Putamen", "unilateral"),
                        ("Corpus callosum", "bilateral")]
    with pytest.raises(ValueError, match="'toy-cord' is a cord pattern; use the cord phantom"):
        pattern_requests("toy-cord", toy_library())
    with pytest.raises(KeyError, match="no lesion pattern 'nothing'"):
        pattern_requests("nothing", toy_library())


def test_requests_resolve_to_region_sides(anatomy):
    _, requests = pattern_requests("toy-brain", toy_library())
    targets, skipped = expand_sides(anatomy, requests, np.random.default_rng(0))
    assert skipped == []
    assert targets[:2] == [LesionTarget(PERIVENTRICULAR, "left"), LesionTarget(PERIVENTRICULAR, "right")]
    assert targets[2:4] == [LesionTarget(JUXTACORTICAL, "left"), LesionTarget(JUXTACORTICAL, "right")]
    assert targets[4].region == "Putamen" and targets[4].side in ("left", "right")
    assert targets[5:] == [LesionTarget("Corpus callosum", "both")]  # unpaired: the whole region
    sides = {expand_sides(anatomy, [("Putamen", "unilateral")], np.random.default_rng(seed))[0][0].side
             for seed in range(20)}
    assert sides == {"left", "right"}


def test_explicit_sides_and_missing_regions(anatomy):
    rng = np.random.default_rng(0)
    targets, skipped = expand_sides(anatomy, [("Putamen", "right"), ("Thalamus", "both"), ("Putamn", "left")], rng)
    assert targets == [LesionTarget("Putamen", "right"), LesionTarget("Thalamus", "both")]
    assert skipped == ["Putamn"]
    with pytest.raises(ValueError, match="no region 'Putamn' in atlas 'brain'; closest: \\['Putamen'"):
        expand_sides(anatomy, [("Putamn", "left")], rng, strict=True)


def test_probable():
    evidence = {"confluent": SimpleNamespace(p_present=0.5), "enhancement": SimpleNamespace(p_present=0.49)}
    assert probable(evidence, "confluent") is True
    assert probable(evidence, "enhancement") is False
    assert probable(evidence, "absent") is False
    assert probable({"odd": object()}, "odd") is False


def test_disseminated_targets_follow_the_ms_distribution(anatomy):
    from collections import Counter

    from regiontag.phantoms.targets import HEAVY_MS_SHARE, MS_LESION_SHARES, disseminated_targets

    draws = [disseminated_targets(anatomy, np.random.default_rng(seed)) for seed in range(200)]
    discrete = [t for targets, _ in draws for t in targets if t.mode == "disseminated"]
    counts = [sum(t.mode == "disseminated" for t in targets) for targets, _ in draws]
    assert 8 <= min(counts) and max(counts) <= 60 and 15 <= float(np.median(counts)) <= 25
    shares = Counter(t.region for t in discrete)
    for region, share in MS_LESION_SHARES.items():
        assert shares[region] / len(discrete) == pytest.approx(share, abs=0.03)
    heavy = [targets for targets, is_heavy in draws if is_heavy]
    assert len(heavy) / len(draws) == pytest.approx(HEAVY_MS_SHARE, abs=0.08)
    assert all([t.mode for t in targets[:2]] == ["confluent", "confluent"] for targets in heavy)
    # asymmetric: the left share of paired lesions varies between phantoms
    left_shares = [np.mean([t.side == "left" for t in targets if t.side != "both"]) for targets, _ in draws]
    assert np.std(left_shares) > 0.1
    first, again = disseminated_targets(anatomy, np.random.default_rng(7)), disseminated_targets(anatomy, np.random.default_rng(7))
    assert first == again


def test_wants_dissemination_reads_the_pattern_lesion_evidence():
    from regiontag.patterns.library import load_library
    from regiontag.phantoms.targets import wants_dissemination

    library = load_library()
    assert wants_dissemination(library.get("ms-brain"))
    assert not wants_dissemination(library.get("small-vessel-disease"))
    assert not wants_dissemination(None)


def test_u_fibre_sparing_follows_the_pattern_lesion_evidence():
    from regiontag.patterns.library import load_library
    from regiontag.phantoms.targets import spares_u_fibres

    library = load_library()
    for pattern_id in ("small-vessel-disease", "toxic-leukoencephalopathy", "b12-leukoencephalopathy",
                       "x-ald-parieto-occipital"):
        assert spares_u_fibres(library.get(pattern_id)), pattern_id
    assert not spares_u_fibres(library.get("ms-brain"))  # juxtacortical lesions count for MS
    assert not spares_u_fibres(None)


def test_u_fibre_band_is_the_cortex_and_the_tissue_under_it():
    from regiontag.phantoms.targets import u_fibre_band

    atlas = load_brain_atlas()
    cortex_value = atlas.region("Cerebrum > Cerebral cortex").label_values("both")[0]
    labels = np.zeros((20, 5, 5), dtype=np.int64)
    labels[:2] = cortex_value
    band = u_fibre_band(SimpleNamespace(atlas=atlas, affine=np.diag([2.0, 2.0, 2.0, 1.0])), labels, width_mm=4.0)
    assert band[:4].all() and not band[4:].any()  # cortex, then 2 voxels = 4 mm of white matter
