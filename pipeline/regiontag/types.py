"""Data that flows between stages: scan inputs, sessions and per-session results."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas

Sequence = Literal["FLAIR", "T2w", "DWI", "T1w", "T1w_ce"]
BodyPart = Literal["brain", "cord"]


@dataclass(frozen=True)
class ScanInput:
    """One NIfTI volume of a session.

    Attributes
    ----------
    path : Path
        The file as found (may be a relative or unusual name; never rewritten).
    sequence : str
        One of ``FLAIR``, ``T2w``, ``DWI``, ``T1w``, ``T1w_ce``.
    sequence_source : str
        How the sequence was decided (``"filename: _FLAIR"``, ``"config override"``...).
    body_part : str or None
        ``brain`` / ``cord`` when the file name or config says so, else None
        (then decided from the image by the cord stage).
    body_part_source : str
        How ``body_part`` was decided.
    """

    path: Path
    sequence: str
    sequence_source: str = ""
    body_part: str | None = None
    body_part_source: str = ""


@dataclass(frozen=True)
class Session:
    """A set of scans of one subject at one time point, processed together.

    Attributes
    ----------
    session_id : str
        Output folder name under OUTPUT_DIR; unique in a batch, filesystem-safe.
    scans : tuple of ScanInput
        All scans; at most one per (sequence, body part).
    bids : dict
        BIDS entities (``subject``, ``session``) when the input was a BIDS dataset.
    """

    session_id: str
    scans: tuple[ScanInput, ...]
    bids: dict[str, str] = field(default_factory=dict)

    def scans_of(self, body_part: str) -> tuple[ScanInput, ...]:
        """Scans whose body part is ``body_part`` (undecided scans excluded)."""
        return tuple(scan for scan in self.scans if scan.body_part == body_part)


@dataclass
class SessionResult:
    """What ``run_session`` reports back to the batch layer (picklable: Dask sends it between processes).

    ``status`` is ``ok``, ``warning`` (finished, but a sanity check flagged it),
    ``failed`` or ``skipped`` (already complete, resumed).

    ``region_table`` and ``scores`` are the session's ``regions.csv`` and
    ``scores.csv`` in memory (columns of the output contract): as computed, or
    read back from the session folder for a skipped session; None for a failed
    one.  They take no part in ``==`` and ``repr``.
    """

    session_id: str
    status: Literal["ok", "warning", "failed", "skipped"]
    error: str = ""
    seconds: float = 0.0
    body_parts: tuple[str, ...] = ()
    lesion_volume_ml: float = float("nan")
    top_pattern: str = ""
    warnings: tuple[str, ...] = ()
    region_table: pandas.DataFrame | None = field(default=None, compare=False, repr=False)
    scores: pandas.DataFrame | None = field(default=None, compare=False, repr=False)
