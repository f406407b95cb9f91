"""Benchmark the batch machinery: 8 real-sized brain sessions with 1 and with 2 Dask workers, same run.

Prints, for each worker count, the wall time, the sessions' own time (from
``sessions.csv``), the throughput ratio (wall time with 1 worker / with 2) and
the per-session overhead of the batch machinery relative to session time:

* ``cluster`` -- starting and stopping the local Dask cluster (measured apart);
* ``per-session overhead`` -- worker time not spent inside ``run_session``
  (task transfer, imports on each worker, result collection, status files,
  CSV rebuilds, progress), per session:
  ``(wall - cluster - ideal) * workers / n_sessions``, where ``ideal`` is the
  makespan of the sessions' own times dealt to the workers in submission
  order (so unequal session times at the end of the batch are not counted).

Modes: ``real`` (default when the brain stage is importable) runs
``regiontag.workflows.session.run_session`` on copies of one real-sized brain FLAIR
(``--scan``, default the real clinical FLAIR of the development data, 320 x 320 x 48;
a brain phantom when it is absent), named with a ``bp-brain`` entity, so every
session does the same work; ``synthetic`` runs a CPU-bound stand-in of
fixed work (``--work`` matrix products) to measure the machinery alone.

The throughput ratio needs as many idle cores as workers: on a machine whose
cores are shared with other jobs it measures the contention, not regiontag.

Usage::

    python benchmarks/bench_batch.py [--mode real|synthetic] [--sessions 8] [--work 400]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from regiontag import outputs
from regiontag.types import Session, SessionResult


def synthetic_session(session, output_dir, config, *, force=False, cord_atlas_path=None, patterns_dir=None):
    """Fixed CPU work (single-threaded matrix products), then the status/result files a session writes."""
    started = time.perf_counter()
    work = int(os.environ.get("REGIONTAG_BENCH_WORK", "400"))
    rng = np.random.default_rng(0)
    matrix = rng.random((300, 300))
    for _ in range(work):
        matrix = np.tanh(matrix @ matrix / 300.0)
    session_dir = Path(output_dir) / session.session_id
    session_dir.mkdir(parents=True, exist_ok=True)
    row = {"session": session.session_id, "atlas": "synthetic", "region": "Synthetic", "name": "Synthetic",
           "side": "both", "mean_z": float(matrix.mean())}
    outputs.write_csv(pd.DataFrame([row]), session_dir / outputs.REGIONS_CSV, outputs.REGION_COLUMNS)
    outputs.write_json({"status": "ok"}, session_dir / outputs.PROVENANCE_JSON)
    seconds = time.perf_counter() - started
    outputs.write_json({"status": "ok", "error": "", "seconds": seconds, "body_parts": ["brain"]},
                       session_dir / outputs.STATUS_JSON)
    return SessionResult(session.session_id, "ok", "", seconds, ("brain",))


#: The real clinical FLAIR of the development data (320 x 320 x 48, with skull), when present.
REAL_FLAIR = (Path(os.environ.get("REGIONTAG_SHARED", Path(__file__).resolve().parents[2] / "shared"))
              / "data/real/brain/patient12_study1_FLAIR.nii.gz")


def make_inputs(root: Path, n_sessions: int, mode: str, scan: Path | None = None) -> list[Session]:
    """``n_sessions`` session folders holding links to one real-sized FLAIR (a phantom without one, or tiny volumes)."""
    from regiontag.inputs.discovery import discover_sessions

    inputs = root / "inputs"
    if mode == "real" and scan is not None and scan.is_file():
        source = scan.resolve()
    elif mode == "real":
        from regiontag.phantoms.brain import make_brain_phantom, write_phantom

        phantom = make_brain_phantom("healthy", 0, sequences=("FLAIR",))
        write_phantom(phantom, root / "phantom", "phantom")
        source = root / "phantom" / "inputs" / "phantom" / "phantom_FLAIR.nii.gz"
    else:
        import nibabel as nib

        source = root / "tiny_FLAIR.nii.gz"
        nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), str(source))
    for index in range(1, n_sessions + 1):
        folder = inputs / f"bench-{index:02d}"
        folder.mkdir(parents=True)
        target = folder / f"bench-{index:02d}_bp-brain_FLAIR.nii.gz"
        if mode == "real":
            target.symlink_to(source)
        else:
            shutil.copy(source, target)
    return discover_sessions(inputs)


def cluster_seconds(workers: int, n_sessions: int) -> float:
    """Time to start and stop the local Dask cluster with ``workers`` workers."""
    from regiontag.workflows.cluster import open_client

    start = time.perf_counter()
    with open_client(workers=workers, n_sessions=n_sessions) as (client, _):
        client.submit(sum, [1, 2], pure=False).result()
    return time.perf_counter() - start


def ideal_makespan(session_seconds: list[float], workers: int) -> float:
    """Wall time of the sessions alone, each given to the first free worker in submission order."""
    free_at = [0.0] * workers
    for seconds in session_seconds:
        earliest = free_at.index(min(free_at))
        free_at[earliest] += seconds
    return max(free_at)


def run_once(root: Path, sessions: list[Session], workers: int, mode: str) -> dict[str, float]:
    """One batch with ``workers`` workers; wall time and the sessions' own times."""
    from regiontag.workflows.batch import run_batch
    from regiontag.config import Config

    output_dir = root / f"out-{workers}"
    runner = synthetic_session if mode == "synthetic" else None
    start = time.perf_counter()
    summary = run_batch(root / "inputs", output_dir, Config(), workers=workers, quiet=True, report=False,
                        sessions=sessions, session_runner=runner, force=True)
    wall = time.perf_counter() - start
    table = pd.read_csv(output_dir / outputs.SESSIONS_CSV)
    if summary.counts["failed"]:
        print(table[table.status == "failed"][["session", "error"]].to_string(index=False), file=sys.stderr)
    return {"wall": wall, "session_total": float(table["seconds"].sum()),
            "ideal": ideal_makespan(list(table.sort_values("session")["seconds"]), workers),
            "peak_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "session_mean": float(table["seconds"].mean()), "ok": summary.counts["ok"] + summary.counts["warning"]}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["real", "synthetic"], default=None)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--work", type=int, default=400, help="synthetic mode: matrix products per session")
    parser.add_argument("--keep", type=Path, help="keep inputs and outputs in this folder")
    parser.add_argument("--scan", type=Path, default=REAL_FLAIR, help="real mode: the FLAIR every session holds")
    args = parser.parse_args(argv)
    mode = args.mode
    if mode is None:
        try:
            import regiontag.brain.stage  # noqa: F401
            import regiontag.workflows.session  # noqa: F401

            mode = "real"
        except ImportError:
            mode = "synthetic"
    os.environ["REGIONTAG_BENCH_WORK"] = str(args.work)
    # One native thread per session in both runs (the default config's registration.threads),
    # so the ratio measures the batch's scaling, whatever the environment says.
    from regiontag.workflows.cluster import THREAD_VARIABLES

    os.environ.update({name: "1" for name in THREAD_VARIABLES})
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_batch_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        sessions = make_inputs(root, args.sessions, mode, args.scan)
        print(f"mode {mode}, {len(sessions)} sessions, {os.cpu_count()} cores visible, "
              f"load average {os.getloadavg()[0]:.1f}")
        rows = {}
        for workers in (1, 2):
            cluster = cluster_seconds(workers, len(sessions))
            result = run_once(root, sessions, workers, mode)
            overhead = (result["wall"] - cluster - result["ideal"]) * workers / len(sessions)
            rows[workers] = {**result, "cluster": cluster, "overhead": overhead}
            print(f"{workers} worker(s): wall {result['wall']:.1f}s (cluster start/stop {cluster:.1f}s, "
                  f"sessions alone {result['ideal']:.1f}s), "
                  f"{result['ok']}/{len(sessions)} finished, mean session {result['session_mean']:.2f}s, "
                  f"per-session overhead {overhead:.2f}s = {100 * overhead / result['session_mean']:.1f}% "
                  "of session time")
        ratio = rows[1]["wall"] / rows[2]["wall"]
        print(f"throughput ratio 2 workers / 1 worker: {ratio:.2f}x (target >= 1.9x with 2 idle cores)")
        from regiontag.workflows.task import estimate_session_memory

        estimate, _ = estimate_session_memory(sessions[0])
        peak = max(row["peak_worker_mb"] for row in rows.values())
        print(f"peak worker memory {peak:.0f} MB (target < 2048 MB); pre-flight estimate per session "
              f"{estimate / 2**20:.0f} MB; load average now {os.getloadavg()[0]:.1f}")
        worst = max(row["overhead"] / row["session_mean"] for row in rows.values())
        print(f"worst per-session overhead: {100 * worst:.1f}% of session time (target < 5%)")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
