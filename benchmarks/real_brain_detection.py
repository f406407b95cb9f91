"""Brain lesion detection on the real labelled MS scans, against the experts' consensus masks.

For every case folder ``DIR/<case>/`` holding ``*_FLAIR.nii.gz`` (and optionally
``*_T2.nii.gz``, ``*_T1.nii.gz``) and ``*_lesions-consensus.nii.gz`` (the layout of
``shared/data/real/brain/mni``), it runs the brain stage (``register_session`` +
``detect_in_space``) and prints per case: lesion Dice, lesion-wise recall /
precision / F1 (MICCAI WMH definitions, ``regiontag.accuracy.metrics``), volumes,
status warnings and times; the same for

* the five-line baseline (FLAIR > brain mean + 2 SD, components >= 10 voxels);
* thick-slice versions (``--thick``): 1 mm slices averaged into 8 mm axial slices,
  resampled in-plane to 0.47 mm (:func:`thick_slice_version`), scored on the 1 mm
  grid of the truth.

The registered sessions (``BrainSpace``) are cached in ``--cache`` so that only
detection reruns when the detection code or parameters change.

Usage::

    python benchmarks/real_brain_detection.py [DIR] [--sequences FLAIR T2w T1w] [--thick] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

DEFAULT_DIR = Path(os.environ.get("REGIONTAG_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data/real/brain/mni"
#: file-name suffix of each sequence in the case folders
SEQUENCE_FILES = {"FLAIR": "FLAIR", "T2w": "T2", "T1w": "T1"}


def thick_slice_version(image: nib.Nifti1Image, *, slice_mm: float = 8.0, in_plane_mm: float = 0.47) -> nib.Nifti1Image:
    """A clinical-style axial acquisition of a 1 mm volume: slices averaged into ``slice_mm`` ones, fine in-plane grid.

    The volume is taken to RAS+; groups of ``round(slice_mm / dz)`` consecutive
    axial slices are averaged (a thick slice integrates its slab), then each
    thick slice is resampled in-plane (linear) to ``in_plane_mm``.  The affine
    describes the new grid exactly (slab centres), so the result overlays the
    original in world space.
    """
    from nilearn.image import resample_img

    canonical = nib.as_closest_canonical(image)
    data = np.asarray(canonical.dataobj, dtype=np.float32)
    zooms = np.asarray(canonical.header.get_zooms()[:3], dtype=float)
    group = max(1, int(round(slice_mm / zooms[2])))
    n_slabs = data.shape[2] // group
    slabs = data[:, :, : n_slabs * group].reshape(data.shape[0], data.shape[1], n_slabs, group).mean(axis=3)
    to_slab = np.eye(4)  # slab voxel k covers original voxels k*group .. k*group + group - 1
    to_slab[2, 2], to_slab[2, 3] = group, (group - 1) / 2.0
    slab_affine = canonical.affine @ to_slab
    in_plane = np.array([in_plane_mm / zooms[0], in_plane_mm / zooms[1]])  # new voxel size in old voxels
    to_fine = np.eye(4)
    to_fine[0, 0], to_fine[1, 1] = in_plane
    to_fine[:2, 3] = -0.5 + in_plane / 2.0  # same field of view: outer edges coincide
    fine_affine = slab_affine @ to_fine
    shape = (int(data.shape[0] / in_plane[0]), int(data.shape[1] / in_plane[1]), n_slabs)
    fine = resample_img(nib.Nifti1Image(slabs, slab_affine), target_affine=fine_affine, target_shape=shape,
                        interpolation="continuous", force_resample=True, copy_header=True)
    return nib.Nifti1Image(np.asarray(fine.dataobj, dtype=np.float32), fine_affine)


def baseline_mask(flair: np.ndarray, *, min_voxels: int = 10) -> np.ndarray:
    """The five-line baseline: FLAIR > brain mean + 2 SD (brain = non-zero), 26-connected components >= min_voxels."""
    brain = flair > 0
    threshold = flair[brain].mean() + 2 * flair[brain].std()
    labelled, _ = ndimage.label(flair > threshold, structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(labelled.ravel())
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[labelled]


def score(truth: np.ndarray, found: np.ndarray) -> dict:
    from regiontag.accuracy.metrics import dice, lesion_detection

    recall, f1, n_truth, n_found = lesion_detection(truth, found)
    precision = (f1 * recall / (2 * recall - f1)) if recall and f1 and 2 * recall != f1 else (0.0 if f1 == 0 else 1.0)
    return {"dice": round(dice(truth, found), 3), "lesion_f1": round(f1, 3), "recall": round(recall, 3),
            "precision": round(precision, 3), "n_truth": n_truth, "n_found": n_found,
            "truth_ml": round(truth.sum() / 1000.0, 2), "found_ml": round(found.sum() / 1000.0, 2)}


def _cases(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and list(p.glob("*_lesions-consensus.nii.gz")))


def load_case(case: Path, sequences: list[str]) -> tuple[dict[str, nib.Nifti1Image], nib.Nifti1Image]:
    images = {}
    for sequence in sequences:
        found = sorted(case.glob(f"*_{SEQUENCE_FILES[sequence]}.nii.gz"))
        if found:
            images[sequence] = nib.load(str(found[0]))
    truth = nib.load(str(sorted(case.glob("*_lesions-consensus.nii.gz"))[0]))
    return images, truth


def _reuse_transforms(folder: Path):
    """A ``stage._register`` that reuses the transforms already in ``folder/transforms`` (an interrupted run)."""
    from regiontag import outputs
    from regiontag.brain import stage
    from regiontag.brain.registration import Registration, similarity, warp_to_template
    from regiontag.brain.preprocess import to_ants

    original = stage._register
    transforms = folder / outputs.TRANSFORMS_DIR
    names = ["sub-to-template_1Warp.nii.gz", "sub-to-template_0GenericAffine.mat",
             "sub-to-template_1InverseWarp.nii.gz"]
    if not all((transforms / name).is_file() for name in names):
        return original

    def reuse(reference, sequence, config, transforms_dir):
        template = stage.load_template(sequence, config.registration.resolution_mm)
        forward = [str(transforms / names[0]), str(transforms / names[1])]
        inverse = [str(transforms / names[1]), str(transforms / names[2])]
        registration = Registration(forward, inverse, float("nan"), {n: transforms / n for n in names})
        warped = warp_to_template(reference, template, registration, "linear")
        mask = nib.Nifti1Image((np.asarray(template.dataobj) > 0).astype(np.float32), template.affine)
        registration.quality = similarity(to_ants(warped), to_ants(template), to_ants(mask))
        return registration

    return reuse


def registered(key: str, images: dict, config, cache: Path):
    """``register_session`` of the images, cached as a pickle (with its transforms) under ``cache/key``."""
    from regiontag.brain import stage
    from regiontag.brain.stage import register_session

    folder = cache / key
    pickle_path = folder / "space.pkl"
    if pickle_path.is_file():
        with open(pickle_path, "rb") as handle:
            return pickle.load(handle), 0.0
    folder.mkdir(parents=True, exist_ok=True)
    clock = time.perf_counter()
    stage._register = _reuse_transforms(folder)
    space = register_session(images, config, folder)
    elapsed = time.perf_counter() - clock
    with open(pickle_path, "wb") as handle:
        pickle.dump(space, handle)
    return space, elapsed


def run_case(key: str, images: dict, truth_img: nib.Nifti1Image, config, cache: Path) -> dict:
    from regiontag import outputs
    from regiontag.brain.stage import detect_in_space

    space, t_register = registered(key, images, config, cache)
    clock = time.perf_counter()
    result = detect_in_space(space, config)
    t_detect = time.perf_counter() - clock
    found_img = result.images[outputs.LESIONS_NII]
    truth = np.asarray(truth_img.dataobj) > 0
    found = np.asarray(found_img.dataobj) > 0
    if found.shape != truth.shape or not np.allclose(found_img.affine, truth_img.affine, atol=1e-3):
        from nilearn.image import resample_to_img

        found = np.asarray(resample_to_img(nib.Nifti1Image(found.astype(np.float32), found_img.affine), truth_img,
                                           interpolation="linear", force_resample=True,
                                           copy_header=True).dataobj) > 0.5
    row = {"case": key, **score(truth, found), "warnings": result.warnings,
           "register_s": round(t_register, 1), "detect_s": round(t_detect, 1),
           "stats": {s: {k: round(v, 3) for k, v in st.items()} for s, st in result.qc["intensity_stats"].items()},
           "tail_ml": result.qc.get("bright_white_matter_tail_ml")}
    return row


def main(argv: list[str] | None = None) -> int:
    from regiontag.config import load_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--sequences", nargs="+", default=["FLAIR", "T2w"])
    parser.add_argument("--thick", action="store_true", help="also the 8 mm thick-slice versions (FLAIR only)")
    parser.add_argument("--only-thick", action="store_true")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "regiontag-real-brain")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    config = config.model_copy(update={"registration": config.registration.model_copy(update={"flip_check": False})})
    rows = []
    for case in _cases(args.root):
        images, truth_img = load_case(case, args.sequences)
        if not args.only_thick:
            flair = np.asarray(nib.as_closest_canonical(images["FLAIR"]).dataobj, dtype=np.float32)
            truth_c = np.asarray(nib.as_closest_canonical(truth_img).dataobj) > 0
            rows.append({"case": f"{case.name} baseline", **score(truth_c, baseline_mask(flair))})
            print(json.dumps(rows[-1]), flush=True)
            rows.append(run_case(f"{case.name}_{'+'.join(sorted(images))}", images, truth_img, config, args.cache))
            print(json.dumps(rows[-1]), flush=True)
        if args.thick or args.only_thick:
            thick = {"FLAIR": thick_slice_version(images["FLAIR"])}
            rows.append(run_case(f"{case.name}_thick8mm_FLAIR", thick, truth_img, config, args.cache))
            print(json.dumps(rows[-1]), flush=True)
    scored = [r for r in rows if "baseline" not in r["case"]]
    for label, group in (("1 mm", [r for r in scored if "thick" not in r["case"]]),
                         ("thick", [r for r in scored if "thick" in r["case"]])):
        if group:
            print(f"mean {label}: dice {np.mean([r['dice'] for r in group]):.3f} "
                  f"lesion F1 {np.mean([r['lesion_f1'] for r in group]):.3f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
