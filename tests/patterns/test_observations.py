"""What scoring reads from a session (``regiontag.patterns.observations``)."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

from regiontag.patterns.observations import Observations, RegionObservation, as_number, observe
from regiontag.patterns.scoring import score_session
from tests.patterns.helpers import BOTH_PARTS, LATERAL, POSTERIOR, row, typical_session

CSV = f"""atlas,region,name,side,involved,fraction_involved,laterality_index,lesion_volume_ml,longitudinally_extensive
cord,{POSTERIOR},Posterior column,left,True,0.3,,,
cord,{POSTERIOR},Posterior column,right,False,0.1,,,
cord,{POSTERIOR},Posterior column,both,False,0.2,,0.4,True
cord,{LATERAL},,both,false,0.0,,,
brain,Corpus callosum > Genu,Genu,both,1,0.5,0.25,1.5,
"""


@pytest.fixture()
def csv_observations():
    return observe(pd.read_csv(io.StringIO(CSV)), None)


def test_as_number():
    assert as_number("1.5") == 1.5 and as_number(2) == 2.0
    assert as_number(None) is None and as_number("") is None and as_number("abc") is None
    assert as_number(float("nan")) is None and as_number(math.inf) is None


def test_csv_strings_and_empty_cells(csv_observations):
    posterior = csv_observations.regions[POSTERIOR]
    # one side over threshold is involvement of the region, whatever the both row says
    assert (posterior.involved, posterior.left, posterior.right) == (True, True, False)
    assert posterior.paired and posterior.sides_text() == "left only"
    assert posterior.laterality_index == pytest.approx((0.3 - 0.1) / (0.3 + 0.1))  # from the side rows
    assert posterior.lesion_volume_ml == 0.4 and posterior.longitudinally_extensive is True
    lateral = csv_observations.regions[LATERAL]
    assert lateral.involved is False and lateral.name == "Lateral column"  # empty name: last path part
    assert not lateral.paired and lateral.sides_text() == ""
    genu = csv_observations.regions["Corpus callosum > Genu"]
    assert genu.involved is True and genu.laterality_index == 0.25 and genu.lesion_volume_ml == 1.5
    assert genu.name == "Corpus callosum > Genu"  # a bare "Genu" would be ambiguous
    assert genu.longitudinally_extensive is None


def test_body_parts_from_the_table_when_findings_do_not_say(csv_observations):
    assert csv_observations.body_parts_imaged == {"brain", "cord"}
    assert csv_observations.region_body_parts[POSTERIOR] == "cord"
    only_brain = observe(pd.read_csv(io.StringIO(CSV)), {"body_parts_imaged": ["brain"], "sequences": {"brain": None}})
    assert only_brain.body_parts_imaged == {"brain"} and only_brain.sequences == {"brain": []}
    assert only_brain.body_part_has_rows("cord") and not observe(None, None).body_part_has_rows("cord")


def test_side_rows_only():
    table = pd.DataFrame([
        {"region": POSTERIOR, "side": "left", "involved": False, "fraction_involved": 0.0},
        {"region": POSTERIOR, "side": "right", "involved": True, "fraction_involved": 0.2},
    ])
    posterior = observe(table, {}).regions[POSTERIOR]
    assert (posterior.involved, posterior.sides_text(), posterior.laterality_index) == (True, "right only", -1.0)
    neither = observe(table.assign(involved=False, fraction_involved=0.0), {}).regions[POSTERIOR]
    assert neither.involved is False and neither.laterality_index is None and neither.sides_text() == ""


def test_features_flat_nested_and_unknown():
    observations = Observations(features={
        "enhancement": "true", "cord_swelling": False, "cord": {"cord_swelling": True}, "confluent": 0.7,
        "cord_central": None,
    })
    assert observations.feature("enhancement", "brain") is True
    assert observations.feature("cord_swelling", "brain") is False
    assert observations.feature("cord_swelling", "cord") is True  # the body part's own entry wins
    assert observations.feature("confluent", "brain") is None  # numbers are not flags
    assert observations.feature("cord_central", "cord") is None
    assert observations.feature("absent", "cord") is None


def test_longitudinally_extensive_falls_back_to_the_cord_rows():
    def observations(rows, imaged=("cord",)):
        return observe(pd.DataFrame(rows, columns=["region", "side", "involved", "longitudinally_extensive"]),
                       {"body_parts_imaged": list(imaged)})

    extensive = observations([[POSTERIOR, "both", True, True], [LATERAL, "both", True, False]])
    assert extensive.feature("longitudinally_extensive", "cord") is True
    short = observations([[POSTERIOR, "both", True, False]])
    assert short.feature("longitudinally_extensive", "cord") is False
    nothing_involved = observations([[POSTERIOR, "both", False, np.nan]])
    assert nothing_involved.feature("longitudinally_extensive", "cord") is False
    unknown_length = observations([[POSTERIOR, "both", True, np.nan]])
    assert unknown_length.feature("longitudinally_extensive", "cord") is None
    assert observations([], imaged=("cord",)).feature("longitudinally_extensive", "cord") is None
    assert extensive.feature("longitudinally_extensive", "brain") is None
    explicit = Observations(features={"longitudinally_extensive": False}, regions=extensive.regions,
                            region_body_parts=extensive.region_body_parts)
    assert explicit.feature("longitudinally_extensive", "cord") is False


def test_sides_text_of_a_paired_region():
    assert RegionObservation("r", "r", True, left=True, right=True).sides_text() == "both sides"
    assert RegionObservation("r", "r", False, left=False, right=False).sides_text() == ""


def test_body_parts_inferred_from_table_without_findings(library):
    table, _ = typical_session(library.get("wernicke-encephalopathy"), ("brain",))
    scores = score_session(table, None, library)
    assert not row(scores, "nmosd-myelitis")["assessable"]
    assert row(scores, "wernicke-encephalopathy")["rank"] == 1


def test_scores_identical_from_csv_round_trip(library, tmp_path):
    table, findings = typical_session(library.get("toxic-leukoencephalopathy"), BOTH_PARTS)
    table.to_csv(tmp_path / "regions.csv", index=False)
    reread = pd.read_csv(tmp_path / "regions.csv")
    direct = score_session(table, findings, library)
    from_csv = score_session(reread, findings, library)
    pd.testing.assert_frame_equal(direct, from_csv)

