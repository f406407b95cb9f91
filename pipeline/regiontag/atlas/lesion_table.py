"""One row per lesion: ``lesions.csv`` (brain and cord), and the summary scoring reads.

A lesion is a 26-connected component of the lesion mask.  For each one the table holds its
volume (ml, on the mask's own grid), centroid (subject mm and template mm), location class
(:mod:`regiontag.atlas.lesion_location`: LST-AI / MAGNIMS classes), the regions it touches
with the share of the lesion in each, its shape (elongation; orientation of the long axis to
the nearest ventricle wall, ``perpendicular`` for Dawson-finger-like lesions), mean / max z,
and for cord lesions their length, vertebral levels and the axial share of each column (as
SCT's ``sct_analyze_lesion`` reports).  :func:`summarise_lesions` turns the table into the
numbers pattern files can use (``findings.json`` ``lesions``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from regiontag.atlas.lesion_location import DIS_AREAS, LocationMaps, classify, location_maps, shape_and_orientation
from regiontag.atlas.tree import Atlas
from regiontag.config import InvolvementConfig
from regiontag.niimg import check_niimg, voxel_volume_ml
from regiontag.outputs.contract import LESION_COLUMNS

#: Cord columns whose axial share is reported (atlas path -> column).
CORD_SHARES = {
    "Spinal cord > Spinal white matter > Posterior column": "share_posterior_column",
    "Spinal cord > Spinal white matter > Lateral column": "share_lateral_column",
    "Spinal cord > Spinal white matter > Anterior column": "share_anterior_column",
    "Spinal cord > Spinal grey matter": "share_grey_matter",
}
#: A lesion below this volume counts as "small" in the summary (MAGNIMS: lesions >= 3 mm; a 6 mm
#: sphere is ~0.11 ml, so small = the punctate foci of MS and small vessel disease).
SMALL_LESION_ML = 0.1

#: ``to_template(points_mm) -> points_mm``: subject mm (N, 3) to template mm.
PointMapper = Callable[[np.ndarray], np.ndarray]


def _leaf_regions(atlas: Atlas) -> dict[int, list[tuple[str, str]]]:
    """Leaf label -> the deepest regions (no children) holding it, with their side."""
    parents = {region.parent for region in atlas.regions if region.parent}
    found: dict[int, list[tuple[str, str]]] = {}
    for region in atlas.regions:
        if region.path in parents:
            continue
        for side, values in region.labels.items():
            for value in values:
                found.setdefault(int(value), []).append((region.path, side))
    return found


def _region_shares(labels: np.ndarray, leaf_regions: dict[int, list[tuple[str, str]]]) -> tuple[str, str]:
    """``"path:side=0.62; ..."`` (largest first) and the main region of one lesion's labels."""
    values, counts = np.unique(labels, return_counts=True)
    shares: dict[tuple[str, str], float] = {}
    for value, count in zip(values, counts):
        for key in leaf_regions.get(int(value), [("outside atlas", "")]) if value > 0 else [("outside atlas", "")]:
            shares[key] = shares.get(key, 0.0) + count / labels.size
    ordered = sorted(shares.items(), key=lambda item: (-item[1], item[0]))
    text = "; ".join(f"{path}:{side}={share:.2f}" if side else f"{path}={share:.2f}" for (path, side), share in ordered)
    return text, ordered[0][0][0] if ordered else ""


def _cord_shares(labels: np.ndarray, atlas: Atlas) -> dict[str, float]:
    shares = {}
    for path, column in CORD_SHARES.items():
        try:
            values = atlas.region(path).label_values()
        except KeyError:
            continue
        shares[column] = float(np.isin(labels, values).mean()) if labels.size else 0.0
    return shares


#: A lesion is on one side when at least this share of its lateralised voxels is there, else ``both``.
ONE_SIDE_SHARE = 0.8


def _leaf_sides(atlas: Atlas, n_labels: int) -> np.ndarray:
    """Leaf label -> +1 left, -1 right, 0 midline / unknown (from the atlas' per-side label values)."""
    sides = np.zeros(n_labels, dtype=np.int8)
    for region in atlas.regions:
        for side, sign in (("left", 1), ("right", -1)):
            values = [v for v in region.labels.get(side, ()) if 0 < v < n_labels]
            sides[values] = sign
    return sides


def _share_left(lesion_labels: np.ndarray, leaf_sides: np.ndarray) -> float:
    signs = leaf_sides[np.clip(lesion_labels, 0, len(leaf_sides) - 1)]
    lateral = int(np.count_nonzero(signs))
    return float((signs > 0).sum() / lateral) if lateral else np.nan


def _side(share_left: float) -> str:
    if not np.isfinite(share_left):
        return "midline"
    if share_left >= ONE_SIDE_SHARE:
        return "left"
    if share_left <= 1 - ONE_SIDE_SHARE:
        return "right"
    return "both"


def lesion_table(
    lesion_mask: nib.Nifti1Image | str,
    labels: nib.Nifti1Image | str,
    atlas: Atlas,
    *,
    zmap: nib.Nifti1Image | str | None = None,
    to_template: PointMapper | None = None,
    template_space: bool = False,
    cord_extent: pd.DataFrame | None = None,
    config: InvolvementConfig | None = None,
) -> pd.DataFrame:
    """One row per connected lesion of ``lesion_mask`` (columns ``outputs.LESION_COLUMNS`` without ``session``).

    Parameters
    ----------
    lesion_mask : Nifti1Image or path
        Binary lesion mask (non-zero = lesion).
    labels : Nifti1Image or path
        Atlas leaf labels on the mask's grid.
    atlas : Atlas
        The brain or cord atlas the labels belong to (``atlas.name == "cord"``: cord lesions).
    zmap : Nifti1Image or path, optional
        Hyperintensity z-map on the same grid (``mean_z``, ``max_z``).
    to_template : callable, optional
        Subject mm -> template mm of the centroids (e.g. the registration's point transform).
    template_space : bool
        The mask is in template space: template mm = subject mm.
    cord_extent : pandas.DataFrame, optional
        :func:`regiontag.cord.levels.lesion_table` of the same mask and grid (``lesion`` = the
        component label of ``scipy.ndimage.label`` with a 3x3x3 structure): ``length_mm`` and
        ``vertebral_levels`` of cord lesions.  Without it the length is the extent along the
        superior-inferior axis and the levels are unknown.
    config : InvolvementConfig, optional
        ``periventricular_max_mm``, ``juxtacortical_max_mm``.

    Returns
    -------
    pandas.DataFrame
        Lesions by decreasing volume, ``lesion_id`` 1, 2, ...

    Examples
    --------
    >>> table = lesion_table("lesions_space-MNI152.nii.gz", labels, brain_atlas(), template_space=True)  # doctest: +SKIP
    >>> table["location"].value_counts()  # doctest: +SKIP
    """
    config = config or InvolvementConfig()
    mask_img, labels_img = check_niimg(lesion_mask), check_niimg(labels)
    if mask_img.shape[:3] != labels_img.shape[:3]:
        raise ValueError(f"lesion mask {mask_img.shape[:3]} and labels {labels_img.shape[:3]} are not on the same grid")
    mask = np.asarray(mask_img.dataobj).reshape(mask_img.shape[:3]) > 0
    label_data = np.asarray(labels_img.dataobj).reshape(mask.shape).astype(np.int64)
    z_data = None if zmap is None else np.asarray(check_niimg(zmap).dataobj, dtype=np.float32).reshape(mask.shape)
    columns = [column for column in LESION_COLUMNS if column != "session"]
    components, count = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return pd.DataFrame(columns=columns)
    affine, voxel_ml = mask_img.affine, voxel_volume_ml(mask_img)
    is_cord = atlas.name == "cord" or all(path.startswith("Spinal cord") for path in atlas.paths)
    maps: LocationMaps | None = None if is_cord else location_maps(label_data, atlas, affine)
    leaf_regions = _leaf_regions(atlas)
    leaf_sides = _leaf_sides(atlas, int(max(label_data.max(), max(max(r.label_values(), default=0)
                                                                   for r in atlas.regions))) + 1)
    extent = {}
    if cord_extent is not None and len(cord_extent):
        extent = {int(row["lesion"]): row for _, row in cord_extent.iterrows()}
    rows = []
    for component, box in enumerate(ndimage.find_objects(components), start=1):
        local = components[box] == component
        voxels = tuple(axis + part.start for axis, part in zip(np.nonzero(local), box))
        index = np.stack(voxels, axis=1).astype(np.float64)
        centroid = index.mean(axis=0) @ affine[:3, :3].T + affine[:3, 3]
        template = centroid if template_space else (
            np.asarray(to_template(centroid[None, :]), dtype=float)[0] if to_template else np.full(3, np.nan))
        lesion_labels = label_data[voxels]
        share_left = _share_left(lesion_labels, leaf_sides)
        regions_text, main_region = _region_shares(lesion_labels, leaf_regions)
        row: dict[str, Any] = {
            "body_part": "cord" if is_cord else "brain", "component": component,
            "volume_ml": voxels[0].size * voxel_ml, "n_voxels": int(voxels[0].size),
            "centroid_x_mm": centroid[0], "centroid_y_mm": centroid[1], "centroid_z_mm": centroid[2],
            "template_x_mm": template[0], "template_y_mm": template[1], "template_z_mm": template[2],
            "side": _side(share_left), "share_left": share_left,
            "regions": regions_text, "main_region": main_region,
            "mean_z": float(z_data[voxels].mean()) if z_data is not None else np.nan,
            "max_z": float(z_data[voxels].max()) if z_data is not None else np.nan,
        }
        if is_cord:
            row.update({"location": "cord", **_cord_shares(lesion_labels, atlas)})
            row.update(shape_and_orientation(voxels, affine, None))
            if component in extent:
                row["length_mm"] = float(extent[component]["length_mm"])
                row["vertebral_levels"] = str(extent[component]["vertebral_levels"] or "")
            else:
                z_mm = (index @ affine[:3, :3].T + affine[:3, 3])[:, 2]
                row["length_mm"] = float(z_mm.max() - z_mm.min() + abs(affine[2, 2]))
        else:
            row.update(classify(voxels, maps, periventricular_max_mm=config.periventricular_max_mm,
                                juxtacortical_max_mm=config.juxtacortical_max_mm))
            row.update(shape_and_orientation(voxels, affine, maps))
        rows.append(row)
    table = pd.DataFrame(rows)
    table = table.sort_values(["volume_ml", "component"], ascending=[False, True], ignore_index=True)
    table["lesion_id"] = np.arange(1, len(table) + 1)
    return table.reindex(columns=columns)


def _count(table: pd.DataFrame, *locations: str) -> int:
    return int(table["location"].isin(locations).sum()) if len(table) else 0


def summarise_lesions(table: pd.DataFrame, *, min_lesion_ml: float = 0.0) -> dict[str, Any]:
    """The lesion-level numbers of one body part that pattern files can name (``findings.json`` ``lesions``).

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`lesion_table` output (one body part).
    min_lesion_ml : float
        Lesions under this volume are left out (specks of a voxel or two are not lesions a reader
        counts; the pipeline passes ``involvement.focal_min_lesion_ml``). ``n_specks`` says how many.

    Returns
    -------
    dict
        ``n_lesions``, ``total_ml``, ``by_location`` (count per class), ``dis_areas`` (the
        McDonald 2017 areas with at least one lesion), ``median_lesion_ml``, ``largest_lesion_ml``,
        ``largest_lesion_share`` (largest / total volume: confluence), ``fraction_small``
        (share of lesions under :data:`SMALL_LESION_ML`), ``n_elongated_periventricular`` and
        ``n_perpendicular`` / ``fraction_perpendicular`` (periventricular or deep lesions whose long
        axis is perpendicular to the ventricle wall), ``n_callosal``, ``volume_asymmetry``
        (|L - R| / (L + R) of lesion volume, each lesion split by the atlas side of its voxels),
        ``count_asymmetry`` (the same of the counts of one-sided lesions).

    Examples
    --------
    >>> summarise_lesions(pd.DataFrame(columns=LESION_COLUMNS))["n_lesions"]
    0
    """
    n_specks = 0
    if table is not None and len(table):
        small = table["volume_ml"].astype(float) < min_lesion_ml
        n_specks = int(small.sum())
        table = table[~small]
    if table is None or not len(table):
        return {"n_lesions": 0, "n_specks": n_specks, "total_ml": 0.0, "by_location": {}, "dis_areas": [], "median_lesion_ml": None,
                "largest_lesion_ml": 0.0, "largest_lesion_share": None, "fraction_small": None,
                "n_elongated_periventricular": 0, "n_perpendicular": 0, "fraction_perpendicular": None,
                "n_callosal": 0, "volume_asymmetry": None, "count_asymmetry": None}
    volumes = table["volume_ml"].astype(float)
    total = float(volumes.sum())
    by_location = {str(k): int(v) for k, v in table["location"].value_counts().items()}
    areas = [area for area, classes in DIS_AREAS.items() if _count(table, *classes) > 0]
    oriented = table[table["orientation"].fillna("").astype(str) != ""]
    near_ventricle = oriented[oriented["location"].isin(["periventricular", "deep white matter"])]
    perpendicular = int((near_ventricle["orientation"] == "perpendicular").sum())
    side = table["side"].fillna("").astype(str)
    share_left = pd.to_numeric(table["share_left"], errors="coerce")
    known = share_left.notna()
    left = float((volumes[known] * share_left[known]).sum())
    right = float((volumes[known] * (1 - share_left[known])).sum())
    n_left, n_right = int((side == "left").sum()), int((side == "right").sum())
    callosal = table["main_region"].fillna("").astype(str).str.startswith("Corpus callosum")
    return {
        "n_lesions": int(len(table)),
        "n_specks": n_specks,
        "total_ml": total,
        "by_location": by_location,
        "dis_areas": areas,
        "median_lesion_ml": float(volumes.median()),
        "largest_lesion_ml": float(volumes.max()),
        "largest_lesion_share": float(volumes.max() / total) if total > 0 else None,
        "fraction_small": float((volumes < SMALL_LESION_ML).mean()),
        "n_elongated_periventricular": int(len(near_ventricle)),
        "n_perpendicular": perpendicular,
        "fraction_perpendicular": perpendicular / len(near_ventricle) if len(near_ventricle) else None,
        "n_callosal": int(callosal.sum()),
        "volume_asymmetry": abs(left - right) / (left + right) if left + right > 0 else None,
        "count_asymmetry": abs(n_left - n_right) / (n_left + n_right) if n_left + n_right > 0 else None,
    }
