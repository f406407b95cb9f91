"""Per-region lesion involvement: a region table from a lesion mask and atlas labels.

Statistics are computed once per atlas leaf label and summed up the region
tree, so parents aggregate their children exactly (each voxel has one leaf).
Volumes use the true voxel size of the grid the mask lives on (subject space).

Two kinds of involvement are told apart (``configs/default.yaml`` ``involvement:``):

* ``involved_diffuse``: a large abnormal fraction, at least ``min_fraction`` of the region
  and ``min_volume_ml`` of lesion (leukodystrophies, toxic and metabolic leukoencephalopathies);
* ``involved_focal``: at least one lesion (26-connected component) of ``focal_min_lesion_ml``
  or more has at least ``focal_min_share`` of its volume in the region (the discrete lesions of
  multiple sclerosis or small vessel disease, invisible to region fractions);

``involved`` is either.  Each flag is propagated from a region to its parents.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from regiontag.atlas.tree import Atlas, Region
from regiontag.config import InvolvementConfig
from regiontag.niimg import check_niimg, voxel_volume_ml
from regiontag.outputs.contract import REGION_COLUMNS

#: Columns produced here: REGION_COLUMNS up to ``laterality_index`` without ``session``
#: (the cord stage fills the cord-only columns after it).
TABLE_COLUMNS = REGION_COLUMNS[1 : REGION_COLUMNS.index("laterality_index") + 1]


def _leaf_statistics(
    lesion: np.ndarray, labels: np.ndarray, zmap: np.ndarray | None, n_labels: int
) -> dict[str, object]:
    """Per-leaf voxel counts, lesion counts, z sums/maxima and touching clusters."""
    flat_labels = labels.ravel()
    region_voxels = np.bincount(flat_labels, minlength=n_labels)
    lesion_labels = flat_labels[lesion.ravel()]
    lesion_voxels = np.bincount(lesion_labels, minlength=n_labels)
    z_sum = np.zeros(n_labels)
    z_max = np.full(n_labels, -np.inf)
    if zmap is not None and lesion_labels.size:
        lesion_z = zmap.ravel()[lesion.ravel()].astype(np.float64)
        z_sum = np.bincount(lesion_labels, weights=lesion_z, minlength=n_labels)
        np.maximum.at(z_max, lesion_labels, lesion_z)
    clusters, n_clusters = ndimage.label(lesion, structure=np.ones((3, 3, 3), dtype=bool))
    cluster_ids = clusters.ravel()[lesion.ravel()]
    clusters_by_leaf: dict[int, set[int]] = {}
    # voxels of each cluster (row) in each leaf (column): the focal-involvement test
    cluster_leaf = np.zeros((n_clusters + 1, n_labels), dtype=np.int64)
    if cluster_ids.size:
        pairs, counts = np.unique(np.stack([lesion_labels, cluster_ids]), axis=1, return_counts=True)
        for leaf, cluster in pairs.T:
            clusters_by_leaf.setdefault(int(leaf), set()).add(int(cluster))
        cluster_leaf[pairs[1], pairs[0]] = counts
    return {
        "cluster_leaf": cluster_leaf,
        "region_voxels": region_voxels,
        "lesion_voxels": lesion_voxels,
        "z_sum": z_sum,
        "z_max": z_max,
        "clusters": clusters_by_leaf,
    }


def _focal(leaves_array: np.ndarray, stats: dict, voxel_ml: float, config: InvolvementConfig) -> bool:
    """A lesion of ``focal_min_lesion_ml`` or more lies mostly (``focal_min_share``) in these leaves."""
    cluster_leaf = stats["cluster_leaf"]
    if not leaves_array.size or cluster_leaf.shape[0] <= 1:
        return False
    sizes = cluster_leaf[1:].sum(axis=1)
    inside = cluster_leaf[1:, leaves_array].sum(axis=1)
    big = sizes * voxel_ml >= max(config.focal_min_lesion_ml, 1e-12)
    return bool(np.any(big & (inside >= config.focal_min_share * np.maximum(sizes, 1)) & (inside > 0)))


def _row(region: Region, side: str, leaves: tuple[int, ...], stats: dict, voxel_ml: float,
         config: InvolvementConfig) -> dict:
    leaves_array = np.asarray([leaf for leaf in leaves if leaf > 0], dtype=int)
    region_voxels = int(stats["region_voxels"][leaves_array].sum()) if leaves_array.size else 0
    lesion_voxels = int(stats["lesion_voxels"][leaves_array].sum()) if leaves_array.size else 0
    clusters: set[int] = set()
    for leaf in leaves_array:
        clusters |= stats["clusters"].get(int(leaf), set())
    has_z = lesion_voxels > 0 and bool(np.any(np.isfinite(stats["z_max"][leaves_array])))
    mean_z = float(stats["z_sum"][leaves_array].sum() / lesion_voxels) if has_z else np.nan
    max_z = float(stats["z_max"][leaves_array].max()) if has_z else np.nan
    return {
        "region": region.path,
        "name": region.name,
        "parent": region.parent or "",
        "depth": region.depth,
        "side": side,
        "region_volume_ml": region_voxels * voxel_ml,
        "lesion_voxels": lesion_voxels,
        "lesion_volume_ml": lesion_voxels * voxel_ml,
        "fraction_involved": lesion_voxels / region_voxels if region_voxels else 0.0,
        "n_clusters": len(clusters),
        "mean_z": mean_z,
        "max_z": max_z,
        "involved_focal": _focal(leaves_array, stats, voxel_ml, config),
    }


def _diffuse(table: pd.DataFrame, config: InvolvementConfig) -> pd.Series:
    """Own diffuse criteria: lesion volume and fraction of the region."""
    involved = (table["lesion_volume_ml"] >= config.min_volume_ml) & (
        table["fraction_involved"] >= config.min_fraction
    )
    return involved & (table["lesion_voxels"] > 0)


def _propagate(table: pd.DataFrame, involved: pd.Series) -> pd.Series:
    """Propagate any flagged child to its parent (same side)."""
    flags = dict(zip(zip(table["region"], table["side"]), involved))
    parents = dict(zip(table["region"], table["parent"]))
    for (path, side), _ in sorted(flags.items(), key=lambda item: -item[0][0].count(" > ")):
        parent = parents[path]
        if parent and flags[(path, side)] and (parent, side) in flags:
            flags[(parent, side)] = True
    return pd.Series([flags[key] for key in zip(table["region"], table["side"])], index=table.index)


def laterality_index(left_fraction: float, right_fraction: float) -> float:
    """(L - R) / (L + R) of involved fractions: +1 left only, -1 right only, 0 symmetric; NaN if neither."""
    total = left_fraction + right_fraction
    return (left_fraction - right_fraction) / total if total > 0 else np.nan


def region_table(
    lesion_mask: nib.Nifti1Image | str,
    labels: nib.Nifti1Image | str,
    atlas: Atlas,
    zmap: nib.Nifti1Image | str | None = None,
    config: InvolvementConfig | None = None,
) -> pd.DataFrame:
    """Involvement of every region and side of ``atlas`` by a lesion mask.

    Parameters
    ----------
    lesion_mask : Nifti1Image or path
        Binary lesion mask (non-zero = lesion).
    labels : Nifti1Image or path
        Atlas leaf labels on the same grid as ``lesion_mask`` (e.g. warped to subject space).
    atlas : Atlas
        The region tree the leaf labels belong to.
    zmap : Nifti1Image or path, optional
        Continuous hyperintensity map on the same grid (for ``mean_z``/``max_z``).
    config : InvolvementConfig, optional
        Thresholds of the ``involved_diffuse`` / ``involved_focal`` flags (``involved`` = either).

    Returns
    -------
    pandas.DataFrame
        One row per region and side (``left``/``right`` for paired regions,
        ``both`` for all), columns ``TABLE_COLUMNS``.
    """
    config = config or InvolvementConfig()
    lesion_img = check_niimg(lesion_mask)
    labels_img = check_niimg(labels)
    if lesion_img.shape[:3] != labels_img.shape[:3]:
        raise ValueError(
            f"lesion mask {lesion_img.shape[:3]} and labels {labels_img.shape[:3]} are not on the same grid"
        )
    lesion = np.asarray(lesion_img.dataobj).reshape(lesion_img.shape[:3]) > 0
    label_data = np.asarray(labels_img.dataobj).reshape(labels_img.shape[:3]).astype(np.int64)
    label_data[label_data < 0] = 0
    z_data = None
    if zmap is not None:
        z_data = np.asarray(check_niimg(zmap).dataobj, dtype=np.float32).reshape(lesion.shape)
    n_labels = int(max(label_data.max(), max((max(r.label_values(), default=0) for r in atlas.regions)))) + 1
    stats = _leaf_statistics(lesion, label_data, z_data, n_labels)
    voxel_ml = voxel_volume_ml(lesion_img)
    rows = []
    for region in atlas.regions:
        sides = ("left", "right", "both") if region.paired else ("both",)
        for side in sides:
            rows.append(_row(region, side, region.label_values(side), stats, voxel_ml, config))
    table = pd.DataFrame(rows)
    table.insert(0, "atlas", atlas.name)
    table["involved_diffuse"] = _propagate(table, _diffuse(table, config))
    table["involved_focal"] = _propagate(table, table["involved_focal"].astype(bool))
    table["involved"] = table["involved_diffuse"] | table["involved_focal"]
    table["laterality_index"] = np.nan
    for region in atlas.regions:
        if not region.paired:
            continue
        by_side = table[table["region"] == region.path].set_index("side")
        index = table.index[(table["region"] == region.path) & (table["side"] == "both")]
        table.loc[index, "laterality_index"] = laterality_index(
            by_side.at["left", "fraction_involved"], by_side.at["right", "fraction_involved"]
        )
    return table[TABLE_COLUMNS]
