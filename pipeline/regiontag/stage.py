"""What a body-part stage (brain, cord) hands back to the session runner."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import nibabel as nib
import numpy as np
import pandas as pd


@dataclass
class StageOutput:
    """Results of one body-part stage for one session.

    Attributes
    ----------
    region_table : pandas.DataFrame
        Rows per region and side, columns ``outputs.REGION_COLUMNS`` without ``session``.
    images : dict of str to Nifti1Image
        Output file name (e.g. ``"lesions.nii.gz"``) -> image in the input's own space.
    files : dict of str to Path
        Extra files the stage wrote itself (transforms), relative name -> path.
    findings : dict
        Session-level findings of this body part (see ARCHITECTURE.md, *Findings*).
    warnings : list of str
        One-line sanity-check warnings (set the session status to ``warning``).
    qc : dict
        Numbers for provenance and the report (registration metric, timings, ...).
    tables : dict of str to DataFrame
        Extra CSV tables (e.g. ``"centerline.csv"``).
    to_template : callable, optional
        Subject mm (N, 3) -> template mm of points (the brain's registration); the template
        centroids of ``lesions.csv``. None when the stage has no template registration.
    """

    region_table: pd.DataFrame
    images: dict[str, nib.Nifti1Image] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    findings: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    qc: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    to_template: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False, compare=False)


#: Called with a stage name (``register``, ``detect``, ``tag``...) as a session reaches it; set per session.
_STAGE_CALLBACK: ContextVar[Callable[[str], None] | None] = ContextVar("regiontag_stage_callback", default=None)


def stage_reached(name: str) -> None:
    """Report that the running session reached stage ``name`` (for the progress bar; a no-op by default)."""
    callback = _STAGE_CALLBACK.get()
    if callback is not None:
        try:
            callback(name)
        except Exception:  # noqa: BLE001 - progress reporting never fails a session
            pass


@contextmanager
def stage_callback(callback: Callable[[str], None]) -> Iterator[None]:
    """Send the ``stage_reached`` reports of the code run inside to ``callback``."""
    token = _STAGE_CALLBACK.set(callback)
    try:
        yield
    finally:
        _STAGE_CALLBACK.reset(token)
