"""Benchmark one brain session against the plain ANTs route, in the same run.

Route A (regiontag): ``regiontag.brain.stage.process_brain`` on a single FLAIR
(N4 on a 2 mm copy, rigid+affine+SyN at 2 mm against a FLAIR-contrast
template, detection, region table).
Route B (plain ANTs): ``ants.n4_bias_field_correction`` at full resolution
with defaults, then ``ants.registration(type_of_transform="SyN")`` at full
resolution with defaults, against the 1 mm FLAIR-contrast template.

Each route runs in its own process; wall time and peak RSS are measured.
Registration accuracy on a phantom: Dice of the warped atlas regions against
the phantom's true atlas labels, for both routes.

Usage::

    python benchmarks/bench_brain.py [--scan PATH] [--phantom-seeds 3 4 5] [--skip-timing]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_SCAN = Path(__file__).resolve().parents[2] / "shared/data/real/brain/patient12_study1_FLAIR.nii.gz"
#: Regions compared for registration accuracy (both sides).
DICE_REGIONS = ("Cerebrum > Cerebral white matter", "Thalamus", "Caudate nucleus", "Putamen",
                "Ventricles > Lateral ventricle", "Cerebellum", "Brainstem")


def _regiontag_route(scan_path: str, queue: mp.Queue) -> None:
    import nibabel as nib

    from regiontag.brain.stage import process_brain
    from regiontag.config import Config

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        output = process_brain({"FLAIR": nib.load(scan_path)}, Config(), Path(workdir))
        labels = np.asarray(output.images["atlas_labels.nii.gz"].dataobj)
    queue.put({"seconds": time.perf_counter() - start, "labels": labels,
               "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def _plain_ants_route(scan_path: str, queue: mp.Queue) -> None:
    import ants
    import nibabel as nib

    from regiontag.brain.stage import brain_atlas
    from regiontag.brain.preprocess import from_ants, to_ants
    from regiontag.brain.templates import load_template

    template = to_ants(load_template("FLAIR", 1.0))
    atlas = to_ants(brain_atlas().labels_img)
    start = time.perf_counter()
    image = ants.image_read(scan_path)
    corrected = ants.n4_bias_field_correction(image)
    registration = ants.registration(fixed=template, moving=corrected, type_of_transform="SyN")
    seconds = time.perf_counter() - start
    labels = ants.apply_transforms(fixed=image, moving=atlas, transformlist=registration["invtransforms"],
                                   whichtoinvert=[True, False], interpolator="genericLabel")
    labels_img = from_ants(labels, np.int16)
    canonical_check = nib.load(scan_path)
    assert labels_img.shape == canonical_check.shape[:3]
    queue.put({"seconds": seconds, "labels": np.asarray(labels_img.dataobj),
               "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def run_route(target, scan_path: Path) -> dict:
    """Run one route in a fresh process; return its seconds, peak memory and labels."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(str(scan_path), queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def region_dice(labels: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Dice per benchmark region between two leaf-label volumes on the same grid."""
    from regiontag.brain.stage import brain_atlas

    atlas = brain_atlas()
    scores = {}
    for path in DICE_REGIONS:
        values = atlas.region(path).label_values()
        a, b = np.isin(labels, values), np.isin(truth, values)
        scores[path] = 2 * (a & b).sum() / max(a.sum() + b.sum(), 1)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scan", type=Path, default=DEFAULT_SCAN)
    parser.add_argument("--phantom-seeds", type=int, nargs="+", default=[3])
    parser.add_argument("--skip-timing", action="store_true", help="only the registration accuracy part")
    args = parser.parse_args()

    if not args.skip_timing:
        print(f"timing on {args.scan}")
        ours = run_route(_regiontag_route, args.scan)
        plain = run_route(_plain_ants_route, args.scan)
        print(f"regiontag session : {ours['seconds']:7.1f} s  peak {ours['peak_mb']:7.0f} MB")
        print(f"plain ANTs route  : {plain['seconds']:7.1f} s  peak {plain['peak_mb']:7.0f} MB")
        print(f"speed-up          : {plain['seconds'] / ours['seconds']:.1f}x (target >= 5x); "
              f"peak memory {ours['peak_mb'] / 1024:.2f} GB (target < 3 GB)")
    means = {"regiontag": [], "plain ANTs": []}
    for seed in args.phantom_seeds:
        ours_dice, plain_dice, timing = phantom_accuracy(seed)
        means["regiontag"].append(np.mean(list(ours_dice.values())))
        means["plain ANTs"].append(np.mean(list(plain_dice.values())))
        print(f"\nregistration accuracy on phantom seed {seed} (Dice of warped atlas regions vs truth)")
        print(f"{'region':40s} {'regiontag':>10s} {'plain ANTs':>10s}")
        for path in DICE_REGIONS:
            print(f"{path:40s} {ours_dice[path]:10.3f} {plain_dice[path]:10.3f}")
        print(f"{'mean':40s} {means['regiontag'][-1]:10.3f} {means['plain ANTs'][-1]:10.3f}")
        print(timing)
    print(f"\nmean over {len(args.phantom_seeds)} phantom(s): regiontag {np.mean(means['regiontag']):.3f}, "
          f"plain ANTs {np.mean(means['plain ANTs']):.3f}")


def phantom_accuracy(seed: int) -> tuple[dict, dict, str]:
    """Registration Dice of both routes on one healthy brain phantom."""
    import nibabel as nib

    from regiontag.phantoms.brain import make_brain_phantom, write_phantom

    with tempfile.TemporaryDirectory() as folder:
        phantom = make_brain_phantom("healthy", seed)
        write_phantom(phantom, Path(folder), "bench")
        scan = next((Path(folder) / "inputs" / "bench").glob("*FLAIR*"))
        truth = np.asarray(nib.load(str(Path(folder) / "truth" / "bench" / "atlas_labels.nii.gz")).dataobj)
        ours = run_route(_regiontag_route, scan)
        plain = run_route(_plain_ants_route, scan)
    timing = (f"phantom timing: regiontag {ours['seconds']:.1f} s, plain ANTs {plain['seconds']:.1f} s "
              f"({plain['seconds'] / ours['seconds']:.1f}x)")
    return region_dice(ours["labels"], truth), region_dice(plain["labels"], truth), timing


if __name__ == "__main__":
    main()
