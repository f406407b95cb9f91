"""Benchmark one spinal cord session end to end (target: under 20 s on 2 cores).

Times ``regiontag.workflows.session.run_session`` on a 1 mm isotropic sagittal cervical
cord phantom (dorsal-column "inverted V" lesion, 160 mm of cord) and, when
``../shared`` (or ``$REGIONTAG_SHARED``) is present, on real cord scans (sagittal
cervical T2w, axial T2*w, lumbar T2w); with and without the HTML
report, so the report's share of the session time is printed too.

Usage::

    python benchmarks/bench_cord.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

SHARED = Path(os.environ.get("REGIONTAG_SHARED", Path(__file__).resolve().parents[2] / "shared"))
#: Real cords timed when ../shared is present: (name, file, sequence).
REAL_CORDS = (
    ("real t2.nii.gz", "t2.nii.gz", "T2w"),
    ("real axial T2*w", "sub-test001_T2star.nii.gz", "T2w"),
    ("real lumbar T2w", "t2_lumbar.nii.gz", "T2w"),
)


def time_session(scan: Path, report: bool, sequence: str = "T2w") -> float:
    """Seconds for one cord session (fresh output folder)."""
    from regiontag.config import Config
    from regiontag.workflows.session import run_session
    from regiontag.types import ScanInput, Session

    session = Session("bench", (ScanInput(scan, sequence, "benchmark", "cord", "benchmark"),))
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
        cases = [("phantom 1 mm sagittal", scan, phantom.images["T2w"].shape, "T2w")]
        for name, file_name, sequence in REAL_CORDS:
            path = SHARED / "data/real/cord" / file_name
            if path.is_file():
                cases.append((name, path, nib.load(str(path)).shape, sequence))
        time_session(scan, report=False)  # warm-up: imports, atlas and template caches
        for name, path, shape, sequence in cases:
            without = min(time_session(path, report=False, sequence=sequence) for _ in range(args.repeats))
            with_report = min(time_session(path, report=True, sequence=sequence) for _ in range(args.repeats))
            print(f"{name:24s} {str(shape):18s} session {without:6.2f} s (target < 20 s: "
                  f"{'met' if without < 20 else 'MISSED'}), with report {with_report:6.2f} s "
                  f"(report adds {100 * (with_report - without) / without:5.1f}%)")


if __name__ == "__main__":
    main()
