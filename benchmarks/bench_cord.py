"""Benchmark one spinal cord session end to end (target: under 20 s on 2 cores).

Times ``regiontag.workflows.session.run_session`` on a 1 mm isotropic sagittal cervical
cord phantom (dorsal-column "inverted V" lesion, 160 mm of cord) and, when
``../shared`` is present, on the real cord scan; with and without the HTML
report, so the report's share of the session time is printed too.

Usage::

    python benchmarks/bench_cord.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

REAL_CORD = Path(__file__).resolve().parents[2] / "shared/data/real/cord/t2.nii.gz"


def time_session(scan: Path, report: bool) -> float:
    """Seconds for one cord session (fresh output folder)."""
    from regiontag.config import Config
    from regiontag.workflows.session import run_session
    from regiontag.types import ScanInput, Session

    session = Session("bench", (ScanInput(scan, "T2w", "benchmark", "cord", "benchmark"),))
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = run_session(session, Path(out), Config(), report=report)
        seconds = time.perf_counter() - start
    if result.status == "failed":
        raise RuntimeError(result.error)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import nibabel as nib

    from regiontag.atlas.cord import load_cord_atlas
    from regiontag.phantoms.cord import make_cord_phantom

    load_cord_atlas()  # build/cache outside the timed region
    with tempfile.TemporaryDirectory() as folder:
        phantom = make_cord_phantom("dorsal", 1, orientation="sagittal", voxel_size=(1.0, 1.0, 1.0), length_mm=160.0)
        scan = Path(folder) / "cspine_T2w.nii.gz"
        nib.save(phantom.images["T2w"], str(scan))
        cases = [("phantom 1 mm sagittal", scan, phantom.images["T2w"].shape)]
        if REAL_CORD.is_file():
            cases.append(("real t2.nii.gz", REAL_CORD, nib.load(str(REAL_CORD)).shape))
        time_session(scan, report=False)  # warm-up: imports, atlas and template caches
        for name, path, shape in cases:
            without = min(time_session(path, report=False) for _ in range(args.repeats))
            with_report = min(time_session(path, report=True) for _ in range(args.repeats))
            print(f"{name:24s} {str(shape):18s} session {without:6.2f} s (target < 20 s: "
                  f"{'met' if without < 20 else 'MISSED'}), with report {with_report:6.2f} s "
                  f"(report adds {100 * (with_report - without) / without:5.1f}%)")


if __name__ == "__main__":
    main()
