"""The standard validation suite: seeded phantoms covering every pattern and acquisition condition.

A suite is a list of sessions, each a (body part, pattern, seed, condition)
with the phantom settings of that condition.  The baseline is SNR 20,
0.9 x 0.9 x 3 mm axial, rotation up to 15 degrees, FLAIR + T2w (+ DWI when
the pattern lists DWI), the pattern's own lesion size.  Each condition changes one factor (one-factor-
at-a-time), so accuracy can be plotted against SNR, slice thickness,
rotation, lesion size, bias field, motion, atrophy, skull and acquisition.

Profiles: ``quick`` (CI: every pattern at baseline, healthy controls and a few
hard conditions, about 20 sessions), ``full`` (every pattern at every
condition level plus repeats, at least 20 phantoms per pattern; 280 sessions)
and ``patterns`` (20 phantoms of every pattern and 20 healthy controls per
body part at a good acquisition: how well the scoring tells the patterns
apart, the measurement issue 4 asks for; brain phantoms are FLAIR-only
baseline acquisitions, ``acquisition=flair``, which halves their run time).
Generation and ``suite.csv``: :func:`regiontag.accuracy.validate.prepare_suite`.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from regiontag.outputs.contract import write_json
from regiontag.patterns.library import load_library
from regiontag.phantoms.brain import make_brain_phantom, write_phantom
from regiontag.phantoms.cord import CORD_LESION_TYPES, make_cord_phantom, write_cord_phantom
from regiontag.phantoms.diffuse import DIFFUSE_PATTERN, make_diffuse_phantom

#: Suite profiles.
PROFILES = ("quick", "full", "patterns")
#: The profile on real scans with expert truth (no phantom plan: :mod:`regiontag.accuracy.real`).
REAL_PROFILE = "real"
SUITE_CSV = "suite.csv"
SUITE_COLUMNS = ["session", "body_part", "pattern", "seed", "condition", "factor", "level", "settings"]

#: Settings of the baseline brain condition (keywords of ``make_brain_phantom``).
BRAIN_BASELINE: dict[str, Any] = {
    "sequences": ("FLAIR", "T2w"), "voxel_size": (0.9, 0.9, 3.0), "plane": "axial", "snr": 20.0,
    "max_rotation_deg": 15.0, "bias_strength": 0.2, "atrophy": 0.0, "motion": 0.0, "skull": False,
}
#: factor -> {level name: settings changed from the baseline}.
BRAIN_FACTORS: dict[str, dict[str, dict[str, Any]]] = {
    "snr": {str(v): {"snr": float(v)} for v in (5, 10, 40)},
    "slice_thickness_mm": {
        "1": {"voxel_size": (1.0, 1.0, 1.0), "plane": "sagittal"},
        "5": {"voxel_size": (1.0, 1.0, 5.0)},
        "7": {"voxel_size": (1.0, 1.0, 7.0)},
    },
    "rotation_deg": {"0": {"max_rotation_deg": 0.0}, "25": {"max_rotation_deg": 25.0}},
    "lesion_size": {v: {"lesion_size": v} for v in ("small", "medium", "confluent")},
    "bias_strength": {"0.5": {"bias_strength": 0.5}},
    "motion": {"0.5": {"motion": 0.5}},
    "atrophy": {"0.5": {"atrophy": 0.5}, "1": {"atrophy": 1.0}},
    "skull": {"yes": {"skull": True}},
    "acquisition": {"oblique": {"plane": "oblique"}, "coronal": {"plane": "coronal"},
                    "dwi": {"sequences": ("FLAIR", "T2w", "DWI")}},
}
#: Hard conditions the quick profile adds (factor, level) for one lesion pattern and one healthy control.
QUICK_CONDITIONS = (("snr", "10"), ("slice_thickness_mm", "5"), ("lesion_size", "small"))
#: Full profile: diffuse leukoencephalopathy (``phantoms.diffuse``) of these fractions of the cerebral
#: white matter, for the pattern that describes it (when the library has it).
DIFFUSE_FRACTIONS = (0.3, 0.55, 0.8)
#: Cord factors (keywords of ``make_cord_phantom``); the baseline is its default sagittal acquisition.
CORD_FACTORS: dict[str, dict[str, dict[str, Any]]] = {
    "snr": {str(v): {"snr": float(v)} for v in (6, 20)},
    "rotation_deg": {"0": {"max_rotation_deg": 0.0}, "20": {"max_rotation_deg": 20.0}},
    "acquisition": {"axial": {"orientation": "axial"}},
}
#: Full profile: baseline repeats per pattern and repeats per condition level, so that every
#: pattern has at least 20 phantoms (issue 4 measures own-pattern ranking over them).
FULL_REPEATS = {"brain": 3, "brain_healthy": 10, "cord": 10, "cord_condition": 2}
#: Patterns profile: phantoms per pattern and per healthy body part, and the brain acquisition (the
#: baseline with FLAIR only: one bias correction and no co-registration per session).
PATTERN_REPEATS = 20
PATTERN_BRAIN_CONDITION = ("acquisition", "flair", {"sequences": ("FLAIR",)})


@dataclass(frozen=True)
class SuiteSession:
    """One planned phantom of a suite."""

    session: str
    body_part: str
    pattern: str
    seed: int
    condition: str
    factor: str
    level: str
    settings: dict[str, Any] = field(default_factory=dict)


def _library_patterns() -> list[tuple[str, str]]:
    return [(pattern.id, pattern.body_part) for pattern in load_library().patterns]


def _cord_available() -> bool:
    try:
        import regiontag.phantoms.cord  # noqa: F401
    except ImportError:
        return False
    return True


def suite_plan(
    profile: str = "quick", seed: int = 0, patterns: list[tuple[str, str]] | None = None
) -> list[SuiteSession]:
    """The sessions of a suite profile (nothing is generated).

    Parameters
    ----------
    profile : {"quick", "full", "patterns"}
    seed : int
        Base seed; each session's seed follows from it and the session name (so the
        phantoms the profiles share, e.g. ``cord-ms-cord-baseline-r0``, are the same).
    patterns : list of (pattern id, body part), optional
        Default: every pattern of the library (cord ones only when the cord phantom exists).
    """
    if profile == REAL_PROFILE:
        raise ValueError("the real profile runs real scans, not a phantom suite: "
                         "use regiontag.accuracy.real.run_real_validation (regiontag validate --profile real DIR)")
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}; got {profile!r}")
    patterns = list(patterns) if patterns is not None else _library_patterns()
    if not _cord_available():
        patterns = [(pid, part) for pid, part in patterns if part != "cord"]
    brain = [pid for pid, part in patterns if part == "brain"] + ["healthy"]
    cord = [pid for pid, part in patterns if part == "cord"]
    cord = cord + ["healthy"] if cord else []
    if profile == "patterns":
        planned = [("brain", pattern, *PATTERN_BRAIN_CONDITION) for pattern in brain for _ in range(PATTERN_REPEATS)]
        planned += [("cord", pattern, "baseline", "", {}) for pattern in cord for _ in range(PATTERN_REPEATS)]
        return _named_sessions(planned, seed)
    planned: list[tuple[str, str, str, str, dict[str, Any]]] = []  # body part, pattern, factor, level, settings
    repeats = 1 if profile == "quick" else FULL_REPEATS["brain"]
    healthy_repeats = 2 if profile == "quick" else FULL_REPEATS["brain_healthy"]
    for pattern in brain:
        for _ in range(healthy_repeats if pattern == "healthy" else repeats):
            planned.append(("brain", pattern, "baseline", "", {}))
        for factor, levels in BRAIN_FACTORS.items():
            for level, change in levels.items():
                if profile == "quick" and not (
                    (factor, level) in QUICK_CONDITIONS and pattern in (brain[0], "healthy")
                ):
                    continue
                if pattern == "healthy" and factor == "lesion_size":
                    continue
                planned.append(("brain", pattern, factor, level, change))
    if profile == "full" and DIFFUSE_PATTERN in brain:
        planned += [("brain", DIFFUSE_PATTERN, "lesion_size", f"diffuse{fraction:g}", {"diffuse_fraction": fraction})
                    for fraction in DIFFUSE_FRACTIONS]
    for pattern in cord:
        for _ in range(1 if profile == "quick" else FULL_REPEATS["cord"]):
            planned.append(("cord", pattern, "baseline", "", {}))
        if profile == "full":
            for factor, levels in CORD_FACTORS.items():
                for level, change in levels.items():
                    planned += [("cord", pattern, factor, level, change)] * FULL_REPEATS["cord_condition"]
    return _named_sessions(planned, seed)


def _named_sessions(planned: list[tuple[str, str, str, str, dict[str, Any]]], seed: int) -> list[SuiteSession]:
    """Name and seed planned (body part, pattern, factor, level, settings) sessions."""
    sessions = []
    repeat_of: dict[str, int] = {}
    for body_part, pattern, factor, level, change in planned:
        condition = "baseline" if factor == "baseline" else f"{factor}={level}"
        stem = f"{body_part}-{pattern}-{condition.replace('=', '-')}"
        repeat_of[stem] = repeat_of.get(stem, -1) + 1
        name = f"{stem}-r{repeat_of[stem]}"
        # the seed depends on the session's name, not its position: adding a pattern moves nothing
        session_seed = (seed * 1_000_003 + zlib.crc32(name.encode())) % 2**31
        sessions.append(SuiteSession(name, body_part, pattern, session_seed, condition, factor, level, change))
    return sessions


def make_session(session: SuiteSession, out_dir: str | Path) -> str:
    """Generate and write one suite phantom (skipped when its truth.json exists); returns the session id."""
    out_dir = Path(out_dir)
    if (out_dir / "truth" / session.session / "truth.json").is_file():
        return session.session
    extra = {"condition": session.condition, "factor": session.factor, "level": session.level}
    if session.body_part == "brain":
        settings = {**BRAIN_BASELINE, **session.settings}
        if "sequences" not in session.settings and _pattern_wants_dwi(session.pattern):
            settings["sequences"] = (*BRAIN_BASELINE["sequences"], "DWI")
        if "diffuse_fraction" in settings:
            fraction = settings.pop("diffuse_fraction")
            phantom = make_diffuse_phantom(session.seed, fraction=fraction, pattern=session.pattern, **settings)
        else:
            phantom = make_brain_phantom(session.pattern, session.seed, **settings)
        write_phantom(phantom, out_dir, session.session, extra=extra)
    else:
        lesion_type = CORD_LESION_TYPES.get(session.pattern, session.pattern)
        phantom = make_cord_phantom(lesion_type, session.seed, **session.settings)
        write_cord_phantom(phantom, out_dir, session.session)
        update_truth_json(out_dir / "truth" / session.session / "truth.json", {"pattern": session.pattern, **extra})
    return session.session


def _pattern_wants_dwi(pattern_id: str) -> bool:
    """True when the library pattern lists DWI among its sequences."""
    if pattern_id == "healthy":
        return False
    try:
        from regiontag.patterns.library import load_library

        return "DWI" in load_library().get(pattern_id).sequences
    except (ImportError, KeyError):
        return False


def update_truth_json(path: Path, content: dict[str, Any]) -> None:
    """Add keys to a session's ``truth.json`` (e.g. the pattern id and condition of a cord phantom)."""
    if path.is_file():
        truth = json.loads(path.read_text())
        truth.update(content)
        write_json(truth, path)
