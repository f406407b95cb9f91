"""The spinal cord stage: segmentation, cord atlas labels, hyperintensities, region table, findings."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np
import pandas as pd

from regiontag import outputs
from regiontag.atlas.tree import Atlas
from regiontag.config import Config
from regiontag.atlas.cord import cord_labels_in_subject
from regiontag.atlas.cord_frames import cord_coordinates
from regiontag.cord.hyperintensity import cord_zmap, detect_cord_lesions
from regiontag.cord.levels import (
    csa_ratio,
    lesion_table,
    level_at,
    level_method,
    level_range,
    slice_distances,
    slice_step_mm,
    span_length,
)
from regiontag.cord.qc import conus_end, cord_qc_warnings, cord_top_gap
from regiontag.cord.segmentation import centerline_table, segment_cord_canonical, voxel_sizes
from regiontag.cord.vertebrae import segment_height
from regiontag.atlas.involvement import region_table
from regiontag.niimg import check_niimg, new_image_like, to_canonical, to_input_space
from regiontag.stage import StageOutput, stage_reached

LOGGER = logging.getLogger(__name__)

#: Preferred sequence for the cord (T2: cord dark in bright CSF).
SEQUENCE_ORDER = ("T2w", "FLAIR", "DWI", "T1w", "T1w_ce")
#: Sequences with CSF darker than the cord.
T1_LIKE = ("T1w", "T1w_ce")
CORD_COLUMNS = ["lesion_length_mm", "longitudinally_extensive", "vertebral_levels", "csa_ratio"]
#: Axial shares: atlas regions (last path component) forming the dorsal / lateral / anterior parts.
AXIAL_PARTS = {
    "dorsal": ("Posterior column",),
    "lateral": ("Lateral column",),
    "anterior": ("Anterior column",),
}
#: The central part: normalised cord radius below this (a quarter of the cross-section's area).
CENTRAL_RADIUS = 0.5


def polarity_of(sequence: str) -> int:
    """+1 for sequences with the cord dark in bright CSF (T2w, T2*w, STIR...), -1 for T1w (bright cord, dark CSF)."""
    return -1 if sequence in T1_LIKE else 1


def _reference(images: dict[str, nib.Nifti1Image]) -> tuple[str, nib.Nifti1Image]:
    for sequence in SEQUENCE_ORDER:
        if sequence in images:
            return sequence, check_niimg(images[sequence])
    if not images:
        raise ValueError("process_cord needs at least one image")
    sequence = sorted(images)[0]
    return sequence, check_niimg(images[sequence])


def _leaves_named(atlas: Atlas, names: tuple[str, ...]) -> np.ndarray:
    """Leaf label values of every region whose last path component is one of ``names``."""
    values: set[int] = set()
    for region in atlas.regions:
        if region.name in names or region.name.lower() in {name.lower() for name in names}:
            values.update(region.label_values("both"))
    return np.asarray(sorted(values), dtype=np.int64)


def _axial_shares(lesions: np.ndarray, labels: np.ndarray, radius: np.ndarray, atlas: Atlas) -> dict[str, float]:
    """Share of lesion voxels in the dorsal / lateral / anterior columns and in the central cord.

    Column shares use the atlas labels; the central share is the share with
    normalised cord radius ``sqrt(u^2 + v^2) < CENTRAL_RADIUS`` (grey-matter core,
    NMOSD-like central lesions), so shares need not sum to one.
    """
    lesion_labels = labels[lesions]
    shares = {}
    for part, names in AXIAL_PARTS.items():
        leaves = _leaves_named(atlas, names)
        if lesion_labels.size == 0 or leaves.size == 0:
            shares[part] = np.nan
        else:
            shares[part] = float(np.isin(lesion_labels, leaves).mean())
    lesion_radius = radius[lesions]
    lesion_radius = lesion_radius[np.isfinite(lesion_radius)]
    shares["central"] = float(np.mean(lesion_radius < CENTRAL_RADIUS)) if lesion_radius.size else np.nan
    return shares


def _side_leaves(atlas: Atlas, side: str) -> np.ndarray:
    values: set[int] = set()
    for region in atlas.regions:
        values.update(region.labels.get(side, ()))
    return np.asarray(sorted(values), dtype=np.int64)


def _symmetry_index(lesions: np.ndarray, labels: np.ndarray, atlas: Atlas) -> float:
    """(left - right) / (left + right) lesion voxels; 0 symmetric, +1 left only; NaN without lesion."""
    left = np.isin(labels[lesions], _side_leaves(atlas, "left")).sum()
    right = np.isin(labels[lesions], _side_leaves(atlas, "right")).sum()
    return float((left - right) / (left + right)) if left + right else np.nan


def fill_cord_columns(
    table: pd.DataFrame,
    lesions: np.ndarray,
    labels: np.ndarray,
    atlas: Atlas,
    centerline: pd.DataFrame,
    config: Config,
    span_levels: Callable[[float, float, float], tuple[str, bool]] | None = None,
) -> pd.DataFrame:
    """Per region row: length, longitudinally extensive, vertebral levels and CSA ratio of its lesion voxels.

    Parameters
    ----------
    table : pandas.DataFrame
        Region table from :func:`regiontag.atlas.involvement.region_table`.
    lesions, labels : numpy.ndarray
        Canonical lesion mask and cord leaf labels (z = slice index of ``centerline``).
    atlas : Atlas
        The cord atlas the labels belong to.
    centerline : pandas.DataFrame
        ``slice``, ``distance_mm`` (from the top) and ``csa_mm2`` per cord slice.
    config : Config
        ``cord.segment_length_mm`` and ``cord.top_vertebral_level``.
    span_levels : callable, optional
        ``span_levels(top_mm, bottom_mm, length_mm) -> (vertebral_levels, longitudinally_extensive)``
        for a span along the cord; default: levels counted from ``cord.top_vertebral_level``
        (:func:`regiontag.cord.levels.level_range`), extensive from three segments of
        ``cord.segment_length_mm`` (the template-space tagger passes PAM50's own levels).

    Returns
    -------
    pandas.DataFrame
        ``table`` with ``CORD_COLUMNS`` filled.
    """
    cord = config.cord
    if span_levels is None:
        def span_levels(top: float, bottom: float, length: float) -> tuple[str, bool]:
            return level_range(top, bottom, cord), bool(length >= 3 * cord.segment_length_mm)
    distances = slice_distances(centerline, lesions.shape[2])
    step = slice_step_mm(centerline)
    table = table.copy()
    table["lesion_length_mm"] = np.nan
    table["longitudinally_extensive"] = False
    table["vertebral_levels"] = ""
    table["csa_ratio"] = np.nan
    lesion_voxels = np.nonzero(lesions)
    lesion_labels, lesion_slices = labels[lesion_voxels], lesion_voxels[2]
    for index, row in table.iterrows():
        if row["lesion_voxels"] <= 0:
            continue
        region = atlas.region(row["region"])
        leaves = np.asarray(region.label_values(row["side"]), dtype=np.int64)
        slices = np.unique(lesion_slices[np.isin(lesion_labels, leaves[leaves > 0])])
        top, bottom, length = span_length(slices, distances, step)
        table.at[index, "lesion_length_mm"] = length
        levels_text, extensive = span_levels(top, bottom, length)
        table.at[index, "longitudinally_extensive"] = extensive
        table.at[index, "vertebral_levels"] = levels_text
        table.at[index, "csa_ratio"] = csa_ratio(centerline, top, bottom, cord)
    table["longitudinally_extensive"] = table["longitudinally_extensive"].astype(bool)
    return table


def cord_findings(lesions, labels, radius, atlas, lesions_by_extent, centerline, voxel_ml, config, cord_found) -> dict:
    """Cord findings (``features``, ``lesion_volume_ml``, ``n_lesions``) of canonical lesion and label arrays.

    ``radius`` is the normalised cord radius per voxel, ``lesions_by_extent`` the
    :func:`regiontag.cord.levels.lesion_table` (longest first); features are None
    when no cord was found.
    """
    cord = config.cord
    shares = (
        _axial_shares(lesions, labels, radius, atlas)
        if cord_found
        else {part: np.nan for part in (*AXIAL_PARTS, "central")}
    )
    n_lesions = len(lesions_by_extent)
    if not cord_found:
        features = {"cord_swelling": None, "longitudinally_extensive": None, "cord_central": None, "cord_dorsal": None}
    elif n_lesions == 0:
        features = {"cord_swelling": False, "longitudinally_extensive": False, "cord_central": False, "cord_dorsal": False}
    else:
        ratios = [
            csa_ratio(centerline, lesion.top_mm, lesion.bottom_mm, cord) for lesion in lesions_by_extent.itertuples()
        ]
        finite = [ratio for ratio in ratios if np.isfinite(ratio)]
        features = {
            "cord_swelling": bool(max(finite) >= cord.swelling_ratio) if finite else None,
            "longitudinally_extensive": bool(lesions_by_extent["longitudinally_extensive"].any()),
            "cord_central": bool(shares["central"] >= cord.axial_share_threshold),
            "cord_dorsal": bool(shares["dorsal"] >= cord.axial_share_threshold),
        }
    features.update({f"axial_{part}_share": value for part, value in shares.items()})
    features["cord_symmetry_index"] = _symmetry_index(lesions, labels, atlas) if cord_found else np.nan
    return {
        "features": features,
        "lesion_volume_ml": float(lesions.sum() * voxel_ml) if cord_found else np.nan,
        "n_lesions": n_lesions,
    }


def _with_segment_length(config: Config, volume, zooms, segmentation, centerline) -> tuple[Config, str]:
    """Config whose ``cord.segment_length_mm`` is measured from the image when possible, and its source."""
    source = f"config ({config.cord.segment_length_mm:g} mm)"
    if not config.cord.estimate_segment_length or centerline.empty:
        return config, source
    height, peak = segment_height(
        volume, zooms, segmentation.centres, segmentation.valid, slice_step_mm(centerline)
    )
    if height is None:
        return config, source + "; body/disc periodicity unclear"
    cord = config.cord.model_copy(update={"segment_length_mm": height})
    source = f"image ({height:.1f} mm: vertebral body/disc periodicity, autocorrelation {peak:.2f})"
    return config.model_copy(update={"cord": cord}), source


def process_cord(
    images: dict[str, nib.Nifti1Image], config: Config, atlas: Atlas, workdir: Path | None = None
) -> StageOutput:
    """Run the spinal cord stage on one session's cord scans.

    Parameters
    ----------
    images : dict of str to Nifti1Image
        Cord scans keyed by sequence (``{"T2w": img}``); T2w is the reference when present.
    config : Config
        Run configuration (``cord`` and ``involvement`` sections).
    atlas : Atlas
        Cord atlas (``regiontag.atlas.cord.load_cord_atlas``).
    workdir : Path, optional
        Session folder (nothing is written here; the session runner writes the outputs).

    Returns
    -------
    StageOutput
        ``region_table`` (cord columns filled), images ``cord_mask.nii.gz``, ``cord_labels.nii.gz``,
        ``lesions.nii.gz``, ``hyperintensity_z.nii.gz`` (input space of the reference scan),
        ``tables["centerline.csv"]``, findings, warnings and qc (timings, method notes).
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    sequence, source = _reference(images)
    canonical = to_canonical(source)
    zooms = voxel_sizes(canonical.affine)
    volume = np.nan_to_num(np.asarray(canonical.dataobj, dtype=np.float32).reshape(canonical.shape[:3]))
    stage_reached("register")  # segmentation and cord coordinates: the cord's registration to its atlas
    segmentation = segment_cord_canonical(canonical, config, polarity=polarity_of(sequence))
    mask, valid = segmentation.mask, segmentation.valid
    centerline = centerline_table(segmentation.centres, segmentation.area_mm2, valid, canonical.affine, mask=mask)
    config, segment_source = _with_segment_length(config, volume, zooms, segmentation, centerline)
    centerline["vertebral_level"] = level_at(centerline["distance_mm"].to_numpy(float), config.cord)
    timings["segmentation"] = time.perf_counter() - clock
    warnings: list[str] = []
    cord_found = bool(mask.any())
    mask_img = new_image_like(mask.astype(np.uint8), canonical)
    clock = time.perf_counter()
    if cord_found:
        levels = None
        if config.cord.top_vertebral_level is not None:
            distances = slice_distances(centerline, mask.shape[2])
            levels = np.where(np.isfinite(distances), level_at(np.nan_to_num(distances), config.cord), "")
        coordinates = cord_coordinates(mask_img)  # the columns follow the cord's own axes
        labels = np.asarray(cord_labels_in_subject(mask_img, atlas, levels=levels,
                                                   frames=coordinates["frames"]).dataobj).astype(np.int64)
    else:
        labels = np.zeros(mask.shape, dtype=np.int64)
        warnings.append(f"cord not found in the {sequence} scan (no CSF column with a dark cord inside)")
    timings["labels"] = time.perf_counter() - clock
    clock = time.perf_counter()
    stage_reached("detect")
    if cord_found:
        radius = np.hypot(coordinates["u"], coordinates["v"])
        # the z-map compares like positions of the cross-section along the cord; a per-slice turn estimated from
        # the outline moves them (the real healthy T1w then showed 2 false posterior-column lesions), so the
        # detection keeps the frames on the scanner's left-right axis
        unturned = cord_coordinates(mask_img, follow_roll=False)
        zmap, domain = cord_zmap(volume, mask, unturned["u"], unturned["v"], zooms, config.cord)
        lesions = detect_cord_lesions(zmap, domain, zooms, config.cord, cord_mask=mask)
    else:
        zmap, lesions = np.zeros(mask.shape, np.float32), np.zeros(mask.shape, bool)
        radius = np.full(mask.shape, np.nan, dtype=np.float32)
    timings["detection"] = time.perf_counter() - clock
    clock = time.perf_counter()
    to_input = lambda array: to_input_space(new_image_like(array, canonical), source, order=0)
    images_out = {
        outputs.CORD_MASK_NII: to_input(mask.astype(np.uint8)),
        outputs.CORD_LABELS_NII: to_input(labels.astype(np.int16)),
        outputs.LESIONS_NII: to_input(lesions.astype(np.uint8)),
        outputs.ZMAP_NII: to_input(zmap.astype(np.float32)),
    }
    stage_reached("tag")
    table = region_table(
        images_out[outputs.LESIONS_NII], images_out[outputs.CORD_LABELS_NII], atlas,
        images_out[outputs.ZMAP_NII], config.involvement,
    )
    table = fill_cord_columns(table, lesions, labels, atlas, centerline, config)
    by_extent = lesion_table(lesions, centerline, config.cord)
    voxel_ml = float(np.prod(zooms)) / 1000.0
    findings = cord_findings(lesions, labels, radius, atlas, by_extent, centerline, voxel_ml, config, cord_found)
    timings["table"] = time.perf_counter() - clock
    if cord_found:
        median_csa = float(np.median(centerline["csa_mm2"]))
        if not config.cord.min_csa_mm2 <= median_csa <= config.cord.max_csa_mm2:
            warnings.append(
                f"median cord area {median_csa:.0f} mm2 outside [{config.cord.min_csa_mm2:g}, "
                f"{config.cord.max_csa_mm2:g}]: check cord_mask.nii.gz"
            )
        if mask.sum() and lesions.sum() / mask.sum() > 0.5:
            warnings.append(f"hyperintensity covers {lesions.sum() / mask.sum():.0%} of the cord: check the scan")
    self_checks, checks_qc = cord_qc_warnings(
        centerline, mask, segmentation.slice_scores, segmentation.contrast, config.cord
    )
    warnings.extend(self_checks)
    conus = (
        conus_end(centerline, volume, segmentation.centres, zooms, polarity=segmentation.polarity)
        if cord_found else None
    )
    if conus is not None and not conus["ends_in_csf"]:
        warnings.append(
            f"cord ends at slice {conus['slice']} (z {conus['z_mm']:.1f} mm, {conus['distance_mm']:.0f} mm below "
            "the top of the cord) inside the field of view without clear CSF below it: the conus medullaris "
            "among the roots of the cauda equina, or a lost cord; check cord_mask.nii.gz"
        )
    elif conus is not None:
        LOGGER.info("conus medullaris ends at slice %d (z %.1f mm)", conus["slice"], conus["z_mm"])
    top_gap = (cord_top_gap(centerline, segmentation.slice_scores, segmentation.ring_score, zooms)
               if cord_found else None)
    if top_gap is not None:
        warnings.append(
            f"cord stops at slice {top_gap['slice']}, {top_gap['gap_mm']:.0f} mm below the top of the field of view, "
            f"while the centreline above still looks like cord in a CSF ring ({top_gap['cord_like_share']:.0%} of "
            "its slices): lost above (a lesion as bright as CSF, no contrast); check cord_mask.nii.gz"
        )
    qc = {
        "cord_sequence": sequence,
        "cord_slices": int(valid.sum()),
        "cord_length_mm": float(centerline["distance_mm"].max()) if cord_found else 0.0,
        "cord_median_csa_mm2": float(np.median(centerline["csa_mm2"])) if cord_found else np.nan,
        "csf_ring_score": segmentation.ring_score,
        "cord_polarity": "T2-like (dark cord, bright CSF)" if segmentation.polarity > 0 else "T1-like (bright cord)",
        "self_checks": checks_qc,
        "conus_end": conus,
        "cord_top_gap": top_gap,
        "vertebral_level_method": level_method(config.cord),
        "segment_length_mm": config.cord.segment_length_mm,
        "segment_length_source": segment_source,
        "lesions": by_extent.to_dict(orient="records"),
        "timings_s": timings,
    }
    LOGGER.info("cord stage: %d cord slices, %d lesions, %s", qc["cord_slices"], len(by_extent), timings)
    return StageOutput(
        region_table=table,
        images=images_out,
        findings=findings,
        warnings=warnings,
        qc=qc,
        tables={outputs.CENTERLINE_CSV: centerline},
    )
