"""What a user waits for: the whole ``regiontag run`` command against the plain ANTs route, same run, same threads.

Timed, each in its own process, from process start to exit (``subprocess``,
wall clock; peak memory is the child's maximum resident set, ``wait4``):

* ``regiontag run IN OUT`` (``python -m regiontag``) on one real FLAIR, and on
  a real FLAIR + T2w + T1w session (files linked into a fresh input folder
  with a ``bp-brain`` entity, so body-part detection plays no part);
* the plain ANTs route: a Python process that imports ANTs, reads the FLAIR,
  runs ``ants.n4_bias_field_correction`` (defaults, full resolution) and
  ``ants.registration(type_of_transform="SyN")`` (defaults, full resolution)
  to the 1 mm FLAIR-contrast MNI152 template regiontag uses.

Both sides get the same thread count: ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS``
(and OMP/BLAS) set explicitly in each child's environment, and regiontag's
``registration.threads`` set to it in a config file (regiontag applies that
value itself, whatever the environment says).

``--profile`` adds where regiontag's time goes: the command is run again
in one process with timing wrappers around the stages (start-up and imports,
cluster, atlas and template loading, N4, masks, each registration stage,
warps, co-registration, detection, tables, scoring, report).

Registration accuracy: the registration QC of each regiontag run (correlation
with the template, from ``provenance.json``); ``--phantom-seeds`` adds the
warped-atlas Dice against the truth of brain phantoms.

Usage::

    python benchmarks/bench_brain.py [--threads 2] [--flair F --t2w T --t1w T] [--profile]
                                     [--phantom-seeds 3 4] [--skip-plain] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REAL = Path(os.environ.get("REGIONTAG_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data/real/brain"
#: Regions compared for registration accuracy on phantoms.
DICE_REGIONS = ("Cerebrum > Cerebral white matter", "Thalamus", "Caudate nucleus", "Putamen",
                "Ventricles > Lateral ventricle", "Cerebellum", "Brainstem")

PLAIN_ANTS = """
import sys
import ants
image = ants.image_read(sys.argv[1])
template = ants.image_read(sys.argv[2])
corrected = ants.n4_bias_field_correction(image)
registration = ants.registration(fixed=template, moving=corrected, type_of_transform="SyN",
                                 outprefix=sys.argv[3])
"""


def thread_environment(threads: int) -> dict[str, str]:
    """This environment with every native thread pool set to ``threads``."""
    names = ("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    return {**os.environ, **{name: str(threads) for name in names}}


def timed_process(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run ``command``; wall seconds from start to exit, CPU seconds and peak resident memory (MB)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.read().decode(errors="replace") if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0,):
        print(output[-3000:], file=sys.stderr)
        raise RuntimeError(f"{command[:4]} exited with {process.returncode}")
    return {"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}


def make_session(folder: Path, scans: dict[str, Path]) -> Path:
    """An input folder holding one session whose files link to ``scans`` (sequence -> path), named with bp-brain."""
    session = folder / "sub-bench"
    session.mkdir(parents=True)
    for sequence, path in scans.items():
        (session / f"sub-bench_bp-brain_{sequence}.nii.gz").symlink_to(Path(path).resolve())
    return folder


def regiontag_command(input_dir: Path, output_dir: Path, config: Path) -> list[str]:
    """``python -m regiontag run`` with the benchmark's config."""
    return [sys.executable, "-m", "regiontag", "run", str(input_dir), str(output_dir), "--config", str(config),
            "-q", "--force"]


def session_record(output_dir: Path) -> dict:
    """Timings and registration QC of the benchmark session's provenance."""
    provenance = json.loads((output_dir / "sub-bench" / "provenance.json").read_text())
    brain = provenance.get("qc", {}).get("brain", {})
    return {"timings": provenance.get("timings", {}), "brain_timings": brain.get("timings", {}),
            "quality": brain.get("registration_quality"), "status": provenance.get("status")}


def load_line() -> str:
    """The load averages (1, 5, 15 min) and the cores visible."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} cores"


# --------------------------------------------------------------------------- profile (in one process)


def profile_child(input_dir: str, output_dir: str, config: str) -> None:
    """Run the command in this process with timing wrappers; print the stage table as JSON (last line)."""
    started = time.perf_counter()
    totals: dict[str, float] = {}

    def add(name: str, seconds: float) -> None:
        totals[name] = totals.get(name, 0.0) + seconds

    from regiontag.cli import main as cli_main  # noqa: F401 - the command's own first import
    from regiontag.brain import stage
    from regiontag.workflows import session

    add("start-up and imports", time.perf_counter() - started)

    def wrap(module, name: str, label: str) -> None:
        original = getattr(module, name)

        def timed(*args, **kwargs):
            clock = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                add(label, time.perf_counter() - clock)

        setattr(module, name, timed)

    def register(*args, **kwargs):
        clock = time.perf_counter()
        result = original_register(*args, **kwargs)
        total = time.perf_counter() - clock
        for part, seconds in result.seconds.items():
            add(f"registration: {part}", seconds)
        add("registration: quality, file moves", total - sum(result.seconds.values()))
        return result

    original_register = stage.register_to_template
    stage.register_to_template = register
    for module, name, label in (
        (stage, "brain_atlas", "atlas loading"), (stage, "load_template", "template loading"),
        (stage, "tissue_maps", "template loading"), (stage, "initial_brain_mask", "initial brain mask"),
        (stage, "bias_correct", "N4 bias correction"), (stage, "coregister", "co-registration of other sequences"),
        (stage, "warp_to_subject", "warps template -> subject"), (stage, "warp_to_template", "warp lesions -> MNI"),
        (stage, "robust_zmap", "detection: z-maps"), (stage, "detect_lesions", "detection: clusters"),
        (stage, "left_right_evidence", "left/right checks"), (stage, "region_table", "region table"),
        (session, "load_scan", "loading and checking scans"), (session, "_write_stage_files", "writing images"),
        (session, "_score", "pattern scoring"), (session, "write_session_report", "session report"),
    ):
        wrap(module, name, label)
    from regiontag.workflows import cluster

    wrap(cluster, "open_client", "Dask cluster start")
    clock = time.perf_counter()
    from regiontag.cli.main import main

    code = main(["run", input_dir, output_dir, "--config", config, "-q", "--force"])
    totals["command (after imports)"] = time.perf_counter() - clock
    totals["whole process"] = time.perf_counter() - started
    print(json.dumps({"code": code, "totals": totals}))


def profile(input_dir: Path, output_dir: Path, config: Path, env: dict[str, str]) -> dict[str, float]:
    """Stage seconds of one profiled run (a separate process)."""
    result = subprocess.run([sys.executable, __file__, "--profile-child", str(input_dir), str(output_dir),
                             str(config)], env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["totals"]


def print_profile(title: str, totals: dict[str, float]) -> None:
    """The profile as a table, largest first, with the unattributed rest."""
    whole = totals.pop("whole process")
    command = totals.pop("command (after imports)")
    attributed = sum(totals.values())
    rows = sorted(totals.items(), key=lambda item: -item[1]) + [
        ("other (discovery, provenance, tables, lock, outputs)", whole - attributed)]
    print(f"\nprofile: {title} (whole process {whole:.1f} s, command after imports {command:.1f} s)")
    print(f"| {'stage':54s} | {'seconds':>7s} | {'share':>5s} |")
    print(f"| {'-' * 54} | {'-' * 7}:| {'-' * 5}:|")
    for name, seconds in rows:
        print(f"| {name:54s} | {seconds:7.1f} | {100 * seconds / whole:4.0f}% |")


# --------------------------------------------------------------------------- phantoms


def phantom_dice(seed: int, work: Path, config: Path, env: dict[str, str]) -> dict[str, float]:
    """Warped-atlas Dice per region against a healthy brain phantom's true labels (whole command)."""
    import nibabel as nib

    from regiontag.brain.stage import brain_atlas
    from regiontag.phantoms.brain import make_brain_phantom, write_phantom

    folder = work / f"phantom-{seed}"
    write_phantom(make_brain_phantom("healthy", seed, sequences=("FLAIR",)), folder, "bench")
    scan = next((folder / "inputs" / "bench").glob("*FLAIR*"))
    inputs = make_session(work / f"phantom-{seed}-in", {"FLAIR": scan})
    output = work / f"phantom-{seed}-out"
    timed_process(regiontag_command(inputs, output, config), env)
    labels = np.asarray(nib.load(str(output / "sub-bench" / "atlas_labels.nii.gz")).dataobj)
    truth = np.asarray(nib.load(str(folder / "truth" / "bench" / "atlas_labels.nii.gz")).dataobj)
    atlas = brain_atlas()
    scores = {}
    for path in DICE_REGIONS:
        values = atlas.region(path).label_values()
        a, b = np.isin(labels, values), np.isin(truth, values)
        scores[path] = float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))
    scores["quality"] = session_record(output)["quality"]
    return scores


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flair", type=Path, default=REAL / "patient12_study1_FLAIR.nii.gz")
    parser.add_argument("--t2w", type=Path, default=REAL / "patient12_study1_T2W.nii.gz")
    parser.add_argument("--t1w", type=Path, default=REAL / "patient12_study1_T1W.nii.gz")
    parser.add_argument("--threads", type=int, default=2, help="native threads of both sides (default 2)")
    parser.add_argument("--config", type=Path, help="extra regiontag YAML (threads are set on top of it)")
    parser.add_argument("--profile", action="store_true", help="also profile where regiontag's time goes")
    parser.add_argument("--phantom-seeds", type=int, nargs="*", default=[], help="registration Dice on phantoms")
    parser.add_argument("--skip-plain", action="store_true", help="leave out the plain ANTs route")
    parser.add_argument("--skip-session", action="store_true", help="leave out the three-sequence session")
    parser.add_argument("--work", type=Path, help="keep inputs and outputs here (default: a temporary folder)")
    parser.add_argument("--profile-child", nargs=3, metavar=("IN", "OUT", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profile_child:
        profile_child(*args.profile_child)
        return 0

    import yaml

    from regiontag.brain.templates import load_template
    from regiontag.outputs.contract import write_nifti

    work = args.work or Path(tempfile.mkdtemp(prefix="bench_brain_"))
    if work.exists() and args.work:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    settings = yaml.safe_load(args.config.read_text()) if args.config else {}
    settings.setdefault("registration", {})["threads"] = args.threads
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump(settings))
    env = thread_environment(args.threads)
    template = write_nifti(load_template("FLAIR", 1.0), work / "template_FLAIR_1mm.nii.gz")

    print(f"threads: {args.threads} on both sides (ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS, OMP, BLAS = "
          f"{args.threads}; regiontag registration.threads = {args.threads}); {load_line()}")
    cases = {"single FLAIR": {"FLAIR": args.flair}}
    if not args.skip_session:
        cases["FLAIR + T2w + T1w"] = {"FLAIR": args.flair, "T2w": args.t2w, "T1w": args.t1w}
    results = {}
    for name, scans in cases.items():
        inputs = make_session(work / f"in-{len(scans)}", scans)
        output = work / f"out-{len(scans)}"
        results[name] = {**timed_process(regiontag_command(inputs, output, config), env), **session_record(output),
                         "inputs": inputs, "output": output, "load": load_line()}
        row = results[name]
        print(f"regiontag run, {name:18s}: {row['seconds']:6.1f} s wall ({row['cpu']:6.1f} s CPU), "
              f"peak {row['peak_mb']:5.0f} MB, status {row['status']}, registration QC {row['quality']:.4f}; "
              f"{row['load']}", flush=True)
        stages = {**row["timings"], **{f"brain/{k}": v for k, v in row["brain_timings"].items()}}
        print("    provenance timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()))
    if not args.skip_plain:
        plain = timed_process([sys.executable, "-c", PLAIN_ANTS, str(args.flair), str(template),
                               str(work / "plain_")], env)
        print(f"plain ANTs route (N4 + SyN, full resolution, defaults): {plain['seconds']:6.1f} s wall "
              f"({plain['cpu']:6.1f} s CPU), peak {plain['peak_mb']:5.0f} MB; {load_line()}")
        single = results["single FLAIR"]
        print(f"speed-up, whole command, single FLAIR: {plain['seconds'] / single['seconds']:.1f}x wall "
              f"({plain['cpu'] / single['cpu']:.1f}x CPU) at {args.threads} thread(s) each "
              "(target >= 5x, goal 10x)")
    if "FLAIR + T2w + T1w" in results:
        print(f"three-sequence session: {results['FLAIR + T2w + T1w']['seconds']:.1f} s wall "
              "(target < 45 s on an idle 2-core machine)")
    if args.profile:
        for name, row in results.items():
            print_profile(f"{name}, {args.threads} thread(s); {load_line()}",
                          profile(row["inputs"], work / f"profile-{len(name)}", config, env))
    for seed in args.phantom_seeds:
        scores = phantom_dice(seed, work, config, env)
        quality = scores.pop("quality")
        print(f"\nphantom seed {seed}: warped-atlas Dice mean {np.mean(list(scores.values())):.4f}, "
              f"registration QC {quality:.4f}; " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
