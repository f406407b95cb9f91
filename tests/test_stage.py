"""StageOutput: what a body-part stage hands back."""

from __future__ import annotations

import pandas as pd

from regiontag.stage import StageOutput


def test_stage_output_defaults_are_independent() -> None:
    first = StageOutput(region_table=pd.DataFrame({"region": ["Spinal cord"]}))
    second = StageOutput(region_table=pd.DataFrame())
    first.warnings.append("low registration metric")
    first.qc["seconds"] = 1.5
    assert second.warnings == [] and second.qc == {}
    assert second.images == {} and second.files == {} and second.findings == {} and second.tables == {}
    assert first.region_table["region"].tolist() == ["Spinal cord"]
