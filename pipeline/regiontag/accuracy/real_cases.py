"""Build a real-data validation folder (the ``--profile real`` layout) from ``../shared/data/real``.

This module is the one place that knows the layout of the development data
(``../shared/data/real/README.md``); :mod:`regiontag.accuracy.real` only reads
the documented case layout::

    DIR/<case>/scan_FLAIR.nii.gz ...    images (neutral names: the sequence only, never the body part)
    DIR/<case>/truth_lesions.nii.gz     lesion truth (optional)
    DIR/<case>/truth_cord.nii.gz        cord truth (optional)
    DIR/<case>/truth.json               {"body_part", "diagnosis", "pattern", "space", "source", ...}

Files are symbolic links (nothing is copied). Cases built:

* ``mni-<patient>``: MS FLAIR + T2w + T1w in MNI152 (skull-stripped), consensus lesion mask;
* ``thick-<patient>``: the MNI case's FLAIR + T2w + T1w as 8 mm axial slices on a 0.5 mm
  in-plane grid (``thick=True`` only; written files, truth on the 1 mm grid);
* ``raw-<patient>-<study>``: clinical MS studies with skull (FLAIR + T2w + T1w), no lesion truth
  (the ``gt`` of ``brain/raw`` is lesion *change* between studies, not a lesion map);
* ``mask-<patient>``: MS consensus masks in MNI152 alone (tagged and scored, no images);
* ``cord-<scan>``: real cords (T2w, T1w, T2*w, lumbar), with the manual cord mask when it is
  on the scan's own grid.

Run as ``python -m regiontag.accuracy.real_cases SHARED_REAL_DIR OUT_DIR [--thick]``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from scipy import ndimage

from regiontag.niimg import check_niimg, to_canonical
from regiontag.outputs.contract import write_json

TRUTH_JSON = "truth.json"
TRUTH_LESIONS = "truth_lesions.nii.gz"
TRUTH_CORD = "truth_cord.nii.gz"
MS = {"diagnosis": "multiple sclerosis", "pattern": "multiple-sclerosis"}
#: Sequence names of the development files -> the neutral names used in a case.
_SEQUENCE_NAMES = {"FLAIR": "scan_FLAIR.nii.gz", "T2": "scan_T2w.nii.gz", "T2W": "scan_T2w.nii.gz",
                   "T1": "scan_T1w.nii.gz", "T1W": "scan_T1w.nii.gz"}
#: Real cords: file stem -> (neutral image name, truth mask stem or None, facts for truth.json).
_CORDS: dict[str, tuple[str, str | None, dict[str, Any]]] = {
    "t2": ("scan_T2w.nii.gz", "t2_seg-manual", {"contrast": "T2w", "plane": "sagittal"}),
    "t1w": ("scan_T1w.nii.gz", "t1w_seg-manual", {"contrast": "T1w"}),
    "t2s": ("scan_T2w.nii.gz", "t2s_seg", {"contrast": "T2starw", "plane": "axial", "note": "cropped"}),
    "t2s_uncropped": ("scan_T2w.nii.gz", None, {"contrast": "T2starw", "plane": "axial"}),
    "sub-test001_T2star": ("scan_T2w.nii.gz", "sub-test001_T2star_seg-manual", {"contrast": "T2starw",
                                                                                "plane": "axial"}),
    "t2_ms_axial": ("scan_T2w.nii.gz", None, {"contrast": "T2w", "plane": "axial", **MS}),
    "t2_lumbar": ("scan_T2w.nii.gz", None, {"contrast": "T2w", "plane": "sagittal", "region": "lumbar"}),
}


def thick_slices(image: nib.Nifti1Image | str | Path, *, slice_mm: float = 8.0,
                 in_plane_mm: float = 0.5) -> nib.Nifti1Image:
    """A clinical-style axial version of a scan: ``slice_mm`` slices (averaged), ``in_plane_mm`` pixels.

    Parameters
    ----------
    image : Nifti1Image or path
        A scan with thin axial (canonical z) slices.
    slice_mm : float
        New slice thickness: consecutive slices are averaged (partial volume, as a thick
        acquisition), the remainder at the top is dropped.
    in_plane_mm : float
        New in-plane spacing (linear interpolation).

    Returns
    -------
    nibabel.Nifti1Image
        Canonical (RAS+) float32 image covering the same field of view.

    Examples
    --------
    >>> image = nib.Nifti1Image(np.ones((20, 20, 16), np.float32), np.eye(4))
    >>> thick = thick_slices(image, slice_mm=8.0, in_plane_mm=0.5)
    >>> thick.shape, tuple(float(zoom) for zoom in thick.header.get_zooms())
    ((40, 40, 2), (0.5, 0.5, 8.0))
    """
    canonical = to_canonical(check_niimg(image))
    data = np.asarray(canonical.dataobj, dtype=np.float32).reshape(canonical.shape[:3])
    zooms = np.sqrt((canonical.affine[:3, :3] ** 2).sum(axis=0))
    per_slice = max(1, int(np.rint(slice_mm / zooms[2])))
    n_thick = data.shape[2] // per_slice
    if n_thick == 0:
        raise ValueError(f"{slice_mm} mm slices do not fit in {data.shape[2] * zooms[2]:.0f} mm")
    data = data[:, :, : n_thick * per_slice].reshape(*data.shape[:2], n_thick, per_slice).mean(axis=3)
    factors = zooms[:2] / in_plane_mm
    data = ndimage.zoom(data, (*factors, 1.0), order=1, grid_mode=True, mode="nearest")
    affine = canonical.affine.copy()
    scale = np.array([in_plane_mm / zooms[0], in_plane_mm / zooms[1], per_slice])
    # keep the field of view: the first new voxel centre sits half a new voxel inside the old edge
    old_edge = canonical.affine[:3, :3] @ np.array([-0.5, -0.5, -0.5]) + canonical.affine[:3, 3]
    affine[:3, :3] = canonical.affine[:3, :3] * scale[None, :]
    affine[:3, 3] = old_edge + affine[:3, :3] @ np.array([0.5, 0.5, 0.5])
    return nib.Nifti1Image(data.astype(np.float32), affine)


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(Path(target).resolve(), link)


def _case(out_dir: Path, name: str, images: dict[str, Path], truth: dict[str, Any], *,
          lesions: Path | None = None, cord: Path | None = None) -> Path:
    case = out_dir / name
    case.mkdir(parents=True, exist_ok=True)
    for link_name, target in images.items():
        _link(target, case / link_name)
    if lesions is not None:
        _link(lesions, case / TRUTH_LESIONS)
    if cord is not None:
        _link(cord, case / TRUTH_CORD)
    write_json(truth, case / TRUTH_JSON)
    return case


def _sequence_images(files: list[Path], pattern: str) -> dict[str, Path]:
    """Neutral name -> file for the FLAIR / T2 / T1 files matched by ``pattern`` (group 1: the sequence)."""
    found = {}
    for path in files:
        match = re.fullmatch(pattern, path.name)
        if match and match.group(1).upper() in _SEQUENCE_NAMES:
            found[_SEQUENCE_NAMES[match.group(1).upper()]] = path
    return found


def _mni_cases(brain: Path, out_dir: Path, thick: bool) -> list[Path]:
    cases = []
    for folder in sorted((brain / "mni").glob("patient*")):
        images = _sequence_images(sorted(folder.glob("*.nii.gz")), rf"{folder.name}_([A-Za-z0-9]+)\.nii\.gz")
        masks = sorted(folder.glob("*lesions*.nii.gz"))
        if not images or not masks:
            continue
        truth = {**MS, "body_part": "brain", "space": "MNI152", "source": str(folder)}
        cases.append(_case(out_dir, f"mni-{folder.name}", images, truth, lesions=masks[0]))
        if thick:
            case = out_dir / f"thick-{folder.name}"
            case.mkdir(parents=True, exist_ok=True)
            for name, path in images.items():
                if not (case / name).is_file():
                    nib.save(thick_slices(path), str(case / name))
            cases.append(_case(out_dir, case.name, {}, {**truth, "space": "subject",
                                                        "acquisition": "8 mm axial, 0.5 mm in-plane"},
                               lesions=masks[0]))
    return cases


def build_real_cases(real_dir: str | Path, out_dir: str | Path, *, thick: bool = False) -> list[Path]:
    """Symlink the development scans of ``real_dir`` into the ``--profile real`` case layout.

    Parameters
    ----------
    real_dir : str or Path
        ``../shared/data/real`` (with ``brain/`` and ``cord/``).
    out_dir : str or Path
        The case folder DIR to build (created; existing cases are refreshed).
    thick : bool
        Also write 8 mm thick-slice versions of the MNI cases (images written, not linked).

    Returns
    -------
    list of Path
        The case folders, sorted.

    Examples
    --------
    >>> cases = build_real_cases("../shared/data/real", "real_cases")  # doctest: +SKIP
    >>> sorted(path.name for path in cases)[:2]  # doctest: +SKIP
    ['cord-sub-test001_T2star', 'cord-t1w']
    """
    real_dir, out_dir = Path(real_dir), Path(out_dir)
    if not real_dir.is_dir():
        raise FileNotFoundError(f"{real_dir}: no such folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    brain, cord = real_dir / "brain", real_dir / "cord"
    cases: list[Path] = []
    if brain.is_dir():
        cases += _mni_cases(brain, out_dir, thick)
        for path in sorted(brain.glob("patient*_study*_FLAIR.nii.gz")):
            prefix = path.name.removesuffix("_FLAIR.nii.gz")
            images = _sequence_images(sorted(brain.glob(f"{prefix}_*.nii.gz")), rf"{prefix}_([A-Za-z0-9]+)\.nii\.gz")
            cases.append(_case(out_dir, f"raw-{prefix.replace('_', '-')}", images,
                               {**MS, "body_part": "brain", "space": "subject", "source": str(path.parent)}))
        for folder in sorted((brain / "raw").glob("patient*")):
            for study in sorted({p.name.split("_")[0] for p in folder.glob("study*_FLAIR.nii.gz")}):
                images = _sequence_images(sorted(folder.glob(f"{study}_*.nii.gz")), rf"{study}_([A-Za-z0-9]+)\.nii\.gz")
                cases.append(_case(out_dir, f"raw-{folder.name}-{study}", images,
                                   {**MS, "body_part": "brain", "space": "subject", "source": str(folder)}))
        for path in sorted((brain / "ms_masks_mni").glob("*_space-MNI152.nii.gz")):
            patient = path.name.split("_")[0]
            cases.append(_case(out_dir, f"mask-{patient}", {}, {**MS, "body_part": "brain", "space": "MNI152",
                                                                "source": str(path.parent)}, lesions=path))
    if cord.is_dir():
        for stem, (image_name, mask_stem, facts) in _CORDS.items():
            image = cord / f"{stem}.nii.gz"
            if not image.is_file():
                continue
            mask = cord / f"{mask_stem}.nii.gz" if mask_stem else None
            mask = mask if mask is not None and mask.is_file() else None
            truth = {"body_part": "cord", "space": "subject", "source": str(cord), **facts}
            cases.append(_case(out_dir, f"cord-{stem}", {image_name: image}, truth, cord=mask))
    return sorted(cases)


def main(argv: list[str] | None = None) -> int:
    """``python -m regiontag.accuracy.real_cases REAL_DIR OUT_DIR [--thick]``."""
    parser = argparse.ArgumentParser(prog="python -m regiontag.accuracy.real_cases", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("real_dir", type=Path, help="../shared/data/real")
    parser.add_argument("out_dir", type=Path, help="case folder to build")
    parser.add_argument("--thick", action="store_true", help="add 8 mm thick-slice versions of the MNI cases")
    args = parser.parse_args(argv)
    try:
        cases = build_real_cases(args.real_dir, args.out_dir, thick=args.thick)
    except FileNotFoundError as error:
        print(f"real_cases: {error}", file=sys.stderr)
        return 2
    print(f"{len(cases)} cases in {args.out_dir}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
