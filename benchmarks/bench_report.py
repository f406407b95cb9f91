"""Benchmark: time HTML report generation against a session's run time (target: under 15%).

By default the reference is measured in the same run: one brain phantom
(``ms-brain``) and one cord phantom (``b12-subacute-combined-degeneration``)
are generated with ``regiontag phantom`` (fixed seeds), each is processed by
the real session runner (``pipeline.session.run_session``) with the report
switched off, and that wall time is the session reference.  Then
``write_session_report`` is timed on the session's outputs (one warm-up, then
the median of ``--repeats``).  The cord session is run once untimed first so
that neither time includes import or atlas-loading costs a batch worker pays
only once; the brain session (about a minute) is timed on its first run.

With ``--session-dir`` an existing session output folder is timed instead and,
unless ``--session-seconds`` is given, its run time is the sum of the
``timings`` in its ``provenance.json`` (without the ``report`` stage).

Usage::

    python benchmarks/bench_report.py [--repeats 5] [--cord-session-repeats 3] [--body-parts cord brain]
                                      [--work-dir DIR]
    python benchmarks/bench_report.py --session-dir OUTPUT_DIR/sub-01 [--session-seconds S]

Prints, per body part, report seconds, session seconds and their ratio with
PASS/FAIL against 15%; exit status 1 when a ratio exceeds the target.
Native thread pools (ITK, BLAS) are left as the environment sets them; set
``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=1`` to mimic one batch worker per core.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 0.15
#: (body part, phantom pattern, seed) of the sessions the benchmark generates.
PHANTOMS = (
    ("cord", "b12-subacute-combined-degeneration", 3),
    ("brain", "ms-brain", 3),
)


def time_report(session_dir: Path, repeats: int) -> float:
    """Median wall time (s) of ``write_session_report`` over ``repeats`` runs (after one warm-up)."""
    from pipeline.report import write_session_report

    write_session_report(session_dir)  # warm-up: imports, font cache
    durations = []
    for _ in range(max(repeats, 1)):
        started = time.perf_counter()
        write_session_report(session_dir)
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def provenance_seconds(session_dir: Path) -> tuple[float | None, float | None]:
    """(session run time without the report, report time) from ``provenance.json`` timings.

    The session runner records the report as the ``report`` stage; every
    other stage counts as session run time.  None where absent.
    """
    try:
        timings = json.loads((session_dir / "provenance.json").read_text(encoding="utf-8")).get("timings") or {}
    except (OSError, ValueError):
        return None, None
    stages = {stage: float(v) for stage, v in timings.items() if isinstance(v, (int, float))}
    report = stages.pop("report", None)
    return (sum(stages.values()) if stages else None), report


def report_line(name: str, report_seconds: float, session_seconds: float, source: str) -> bool:
    """Print one result line; True when within the target."""
    ratio = report_seconds / session_seconds
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    print(
        f"{name:<6} report {report_seconds:6.3f} s | session {session_seconds:7.2f} s ({source}) | "
        f"ratio {ratio:6.1%} (target <= {TARGET_RATIO:.0%}) {verdict}",
        flush=True,
    )
    return ratio <= TARGET_RATIO


def generate_phantom(work_dir: Path, body_part: str, pattern: str, seed: int) -> Path:
    """Write one phantom with ``regiontag phantom`` and return its input folder (``inputs/<session>``)."""
    from pipeline.cli import main as regiontag

    phantom_dir = work_dir / f"phantom-{body_part}"
    with contextlib.redirect_stdout(io.StringIO()):
        status = regiontag(["phantom", str(phantom_dir), "--pattern", pattern, "--seed", str(seed)])
    if status != 0:
        raise RuntimeError(f"regiontag phantom --pattern {pattern} --seed {seed} failed (exit {status})")
    return phantom_dir / "inputs"


def time_session(input_dir: Path, output_dir: Path, repeats: int, warm_up: bool) -> tuple[Path, float]:
    """Run the session runner on the one session of ``input_dir`` without report; (its folder, median seconds)."""
    from pipeline.config import load_config
    from pipeline.discovery import discover_sessions
    from pipeline.session import run_session

    config = load_config(None)
    sessions = discover_sessions(input_dir, config)
    if len(sessions) != 1:
        raise RuntimeError(f"{input_dir}: expected one session, found {len(sessions)}")
    session = sessions[0]
    (output_dir / session.session_id / "report.html").unlink(missing_ok=True)  # from an earlier benchmark
    durations = []
    for attempt in range(max(repeats, 1) + int(warm_up)):
        started = time.perf_counter()
        result = run_session(session, output_dir, config, force=True, report=False)
        elapsed = time.perf_counter() - started
        if result.status not in ("ok", "warning"):
            raise RuntimeError(f"session {session.session_id} {result.status}: {result.error}")
        if attempt >= int(warm_up):
            durations.append(elapsed)
    session_dir = output_dir / session.session_id
    if (session_dir / "report.html").exists():
        raise RuntimeError(f"{session_dir}: report.html written although the report was switched off")
    return session_dir, statistics.median(durations)


def measure_phantoms(work_dir: Path, repeats: int, cord_session_repeats: int, body_parts: list[str]) -> bool:
    """Generate, run and report the benchmark phantoms of ``body_parts``; print one line per body part."""
    ok = True
    for body_part, pattern, seed in PHANTOMS:
        if body_part not in body_parts:
            continue
        started = time.perf_counter()
        input_dir = generate_phantom(work_dir, body_part, pattern, seed)
        print(f"{body_part}: phantom {pattern} seed {seed} generated in {time.perf_counter() - started:.1f} s",
              flush=True)
        cord = body_part == "cord"
        session_dir, session_seconds = time_session(
            input_dir, work_dir / f"results-{body_part}", cord_session_repeats if cord else 1, warm_up=cord
        )
        source = "run_session, no report" + (f", median of {cord_session_repeats} after warm-up" if cord else "")
        ok &= report_line(body_part, time_report(session_dir, repeats), session_seconds, source)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--session-dir", type=Path, help="time this existing session output folder")
    parser.add_argument("--session-seconds", type=float, help="with --session-dir: its run time, seconds")
    parser.add_argument("--repeats", type=int, default=5, help="timed report runs (median), after a warm-up")
    parser.add_argument("--cord-session-repeats", type=int, default=3, help="timed cord session runs (median)")
    parser.add_argument("--body-parts", nargs="+", choices=[p[0] for p in PHANTOMS], default=[p[0] for p in PHANTOMS],
                        help="phantoms to measure (default: cord and brain)")
    parser.add_argument("--work-dir", type=Path, help="keep the phantoms and outputs here (default: temporary)")
    args = parser.parse_args(argv)

    if args.session_dir:
        recorded_session, recorded_report = provenance_seconds(args.session_dir)
        seconds = args.session_seconds or recorded_session
        if not seconds:
            parser.error("no timings in provenance.json: pass --session-seconds")
        source = "given" if args.session_seconds else "provenance timings"
        if recorded_report is not None:
            print(f"report stage recorded by the session runner: {recorded_report:.2f} s")
        within = report_line(args.session_dir.name, time_report(args.session_dir, args.repeats), seconds, source)
        return 0 if within else 1

    threads = os.environ.get("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "default")
    print(f"ITK threads: {threads}; cores: {os.cpu_count()}", flush=True)
    if args.work_dir:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        ok = measure_phantoms(args.work_dir, args.repeats, args.cord_session_repeats, args.body_parts)
    else:
        with tempfile.TemporaryDirectory(prefix="bench_report_") as temporary:
            ok = measure_phantoms(Path(temporary), args.repeats, args.cord_session_repeats, args.body_parts)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
