"""Scan inputs, sessions and session results."""

from __future__ import annotations

import dataclasses
import math
import pickle
from pathlib import Path

import pytest

from regiontag.types import ScanInput, Session, SessionResult


def test_session_scans_of_filters_by_body_part() -> None:
    flair = ScanInput(Path("a_FLAIR.nii.gz"), "FLAIR", body_part="brain")
    cord = ScanInput(Path("b_T2w.nii.gz"), "T2w", body_part="cord")
    unknown = ScanInput(Path("c_T2w.nii.gz"), "T2w")
    session = Session("s1", (flair, cord, unknown))
    assert session.scans_of("brain") == (flair,)
    assert session.scans_of("cord") == (cord,)
    assert session.bids == {}


def test_scan_input_and_session_are_frozen_and_hashable() -> None:
    scan = ScanInput(Path("x.nii"), "T1w")
    with pytest.raises(dataclasses.FrozenInstanceError):
        scan.sequence = "FLAIR"  # type: ignore[misc]
    assert {scan, ScanInput(Path("x.nii"), "T1w")} == {scan}


def test_session_result_defaults_and_pickles() -> None:
    result = SessionResult("s1", "ok")
    assert math.isnan(result.lesion_volume_ml) and result.warnings == () and result.error == ""
    again = pickle.loads(pickle.dumps(SessionResult("s2", "warning", warnings=("w",), seconds=2.0)))
    assert again.status == "warning" and again.warnings == ("w",) and again.seconds == 2.0
