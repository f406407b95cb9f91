"""Spinal-cord figures: sagittal view along the cord with lesion extent, axial cuts with the column atlas.

Inputs are canonical RAS+ arrays on the cord reference scan's grid; the cord
is assumed to run roughly along the scanner's superior-inferior axis (true
for cervical and thoracic spine protocols).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from pipeline.report.figures import (
    BACKGROUND,
    LESION_COLOR,
    MASK_COLOR,
    display_window,
    figure_to_data_uri,
    palette,
)

#: Colours of cord atlas regions, chosen by a keyword of the region name (first match wins).
CORD_REGION_COLORS = (
    (("gracilis",), (0.35, 0.55, 0.95)),
    (("cuneatus",), (0.2, 0.78, 0.95)),
    (("posterior col", "dorsal col", "posterior funic", "dorsal funic"), (0.3, 0.6, 1.0)),
    (("lateral",), (1.0, 0.6, 0.15)),
    (("anterior col", "ventral col", "anterior funic", "ventral funic"), (0.3, 0.8, 0.35)),
    (("dorsal horn", "posterior horn"), (0.75, 0.5, 0.9)),
    (("ventral horn", "anterior horn"), (0.6, 0.35, 0.8)),
    (("grey", "gray"), (0.68, 0.45, 0.85)),
    (("central", "canal"), (0.95, 0.9, 0.3)),
)


def cord_label_colors(names: dict[int, str], values: list[int]) -> dict[int, tuple[float, float, float]]:
    """Colour per cord label value: by region name keyword when names are known, else a palette."""
    colors = palette(values)
    for value in values:
        name = names.get(value, "").lower()
        for keywords, color in CORD_REGION_COLORS:
            if any(keyword in name for keyword in keywords):
                shade = 0.82 if "right" in name else 1.0
                colors[value] = tuple(channel * shade for channel in color)  # type: ignore[assignment]
                break
    return colors


def cord_centre_x(cord_mask: np.ndarray) -> np.ndarray:
    """Left-right centre (voxel index) of the cord on every axial slice, interpolated where absent."""
    counts = cord_mask.sum(axis=(0, 1)).astype(float)
    x_index = np.arange(cord_mask.shape[0], dtype=float)[:, None, None]
    sums = (cord_mask * x_index).sum(axis=(0, 1))
    present = counts > 0
    if not np.any(present):
        return np.full(cord_mask.shape[2], cord_mask.shape[0] / 2.0)
    slices = np.arange(cord_mask.shape[2])
    return np.interp(slices, slices[present], sums[present] / counts[present])


def lesion_extent(lesion: np.ndarray | None, zooms: tuple[float, ...]) -> tuple[int, int, float] | None:
    """(first, last) axial slice holding lesion and the length in mm, None without lesion."""
    if lesion is None or not np.any(lesion > 0):
        return None
    slices = np.flatnonzero((lesion > 0).any(axis=(0, 1)))
    return int(slices[0]), int(slices[-1]), float((slices[-1] - slices[0] + 1) * zooms[2])


def _sagittal_reformat(volume: np.ndarray, centre_x: np.ndarray) -> np.ndarray:
    """Curved sagittal plane following the cord's left-right centre; array (y, z)."""
    columns = np.clip(np.rint(centre_x).astype(int), 0, volume.shape[0] - 1)
    return volume[columns, :, np.arange(volume.shape[2])].T


def _to_display(plane_yz: np.ndarray) -> np.ndarray:
    """(y, z) plane -> rows superior-to-inferior, columns anterior-to-posterior."""
    return np.rot90(plane_yz[::-1, :])


def cord_sagittal_figure(
    background: np.ndarray,
    cord_mask: np.ndarray,
    lesion: np.ndarray | None,
    zooms: tuple[float, ...],
    extent_label: str = "",
    dpi: int = 90,
) -> str:
    """Sagittal view along the cord: anatomy, lesion projection with extent bracket, cord area profile.

    Parameters
    ----------
    background : numpy.ndarray
        Canonical cord image (T2).
    cord_mask : numpy.ndarray
        Cord segmentation on the same grid.
    lesion : numpy.ndarray or None
        Lesion mask on the same grid.
    zooms : tuple of float
        Voxel size (mm).
    extent_label : str
        Text beside the bracket (e.g. ``"42 mm, C2-C5"``); the measured length when empty.

    Returns
    -------
    str
        PNG data URI.
    """
    cord = cord_mask > 0
    centre = cord_centre_x(cord)
    anatomy = _to_display(_sagittal_reformat(background, centre))
    cord_outline = _to_display(cord.any(axis=0))
    lesion_projection = None if lesion is None else _to_display((lesion > 0).any(axis=0))
    y_cord = np.flatnonzero(cord.any(axis=(0, 2)))
    margin = int(round(14.0 / zooms[1]))
    if y_cord.size:
        # display columns run anterior -> posterior, i.e. reversed y
        ny = background.shape[1]
        first, last = ny - 1 - min(y_cord[-1] + margin, ny - 1), ny - 1 - max(y_cord[0] - margin, 0)
        columns = slice(first, last + 1)
    else:
        columns = slice(0, anatomy.shape[1])
    anatomy, cord_outline = anatomy[:, columns], cord_outline[:, columns]
    if lesion_projection is not None:
        lesion_projection = lesion_projection[:, columns]
    row_mm, col_mm = float(zooms[2]), float(zooms[1])
    height_mm, width_mm = anatomy.shape[0] * row_mm, anatomy.shape[1] * col_mm
    extent = (0.0, width_mm, 0.0, height_mm)
    window = display_window(anatomy, None)
    # panels at true aspect: 4 in tall for a long cord, narrower than 2 in each for a short field of view
    axes_height = 4.0
    panel_width = axes_height * width_mm / max(height_mm, 1.0)
    if panel_width > 2.0:
        panel_width, axes_height = 2.0, 2.0 * height_mm / max(width_mm, 1.0)
    figure_height, figure_width = axes_height + 0.75, max(3.6 * panel_width / 0.95, 3.0)
    figure = Figure(figsize=(figure_width, figure_height), facecolor=BACKGROUND)
    grid = figure.add_gridspec(
        1,
        3,
        width_ratios=[width_mm, width_mm, width_mm * 1.3],
        left=0.02,
        right=0.97,
        top=1 - 0.3 / figure_height,
        bottom=0.45 / figure_height,
        wspace=0.12,
    )
    titles = ("sagittal (along the cord)", "lesion extent (projection)")
    for panel in range(2):
        axes = figure.add_subplot(grid[0, panel])
        axes.imshow(anatomy, cmap="gray", vmin=window[0], vmax=window[1], extent=extent, interpolation="bilinear")
        axes.contour(
            np.flipud(cord_outline.astype(float)),
            levels=[0.5],
            colors=[MASK_COLOR],
            linewidths=0.7,
            extent=extent,
            alpha=0.8 if panel == 0 else 0.4,
        )
        if panel == 1 and lesion_projection is not None and lesion_projection.any():
            rgba = np.zeros(lesion_projection.shape + (4,))
            rgba[lesion_projection] = (*LESION_COLOR, 0.55)
            axes.imshow(rgba, extent=extent, interpolation="nearest")
            rows = np.flatnonzero(lesion_projection.any(axis=1))
            top_mm, bottom_mm = height_mm - rows[0] * row_mm, height_mm - (rows[-1] + 1) * row_mm
            x_mm = width_mm * 0.9
            axes.plot([x_mm, x_mm], [bottom_mm, top_mm], color="#ffffff", linewidth=1.4)
            for y_mm in (bottom_mm, top_mm):
                axes.plot([x_mm - 2.5, x_mm], [y_mm, y_mm], color="#ffffff", linewidth=1.4)
            label = extent_label or f"{top_mm - bottom_mm:.0f} mm"
            axes.text(
                x_mm - 3.5,
                (top_mm + bottom_mm) / 2,
                label,
                color="#ffffff",
                fontsize=7,
                ha="right",
                va="center",
                rotation=90,
                bbox=dict(facecolor="#000000", alpha=0.55, edgecolor="none", pad=1.5),
            )
        axes.set_title(titles[panel], color="#d8dee9", fontsize=8, pad=3)
        axes.text(0.03, 0.99, "A", color="#e5e9f0", fontsize=7, fontweight="bold", va="top", transform=axes.transAxes)
        axes.text(
            0.97,
            0.99,
            "P",
            color="#e5e9f0",
            fontsize=7,
            fontweight="bold",
            va="top",
            ha="right",
            transform=axes.transAxes,
        )
        axes.set_axis_off()
    profile_axes = figure.add_subplot(grid[0, 2])
    area_mm2 = cord.sum(axis=(0, 1))[::-1] * float(zooms[0]) * float(zooms[1])
    depth_mm = (np.arange(area_mm2.size) + 0.5) * row_mm
    profile_axes.set_facecolor("#1b2128")
    present = area_mm2 > 0
    profile_axes.plot(area_mm2[present], height_mm - depth_mm[present], color=MASK_COLOR, linewidth=1.1)
    if lesion is not None and np.any(lesion > 0):
        lesion_rows = np.flatnonzero((lesion > 0).any(axis=(0, 1))[::-1])
        profile_axes.axhspan(
            height_mm - (lesion_rows[-1] + 1) * row_mm,
            height_mm - lesion_rows[0] * row_mm,
            color=LESION_COLOR,
            alpha=0.25,
            linewidth=0,
        )
    profile_axes.set_ylim(0, height_mm)
    profile_axes.set_title("cord area (mm²)", color="#d8dee9", fontsize=8, pad=3)
    profile_axes.tick_params(colors="#aab4c0", labelsize=6, length=2)
    profile_axes.set_yticks([])
    for spine in profile_axes.spines.values():
        spine.set_color("#3b4450")
    if present.any():
        profile_axes.set_xlim(0, max(float(area_mm2.max()) * 1.15, 1.0))
    return figure_to_data_uri(figure, dpi=dpi)


def axial_levels(cord_mask: np.ndarray, lesion: np.ndarray | None, count: int = 3) -> list[int]:
    """Axial slices to show: spread over the lesion (with its largest slice), else over the cord."""
    reference = lesion if lesion is not None and np.any(lesion > 0) else None
    mask_slices = np.flatnonzero(cord_mask.any(axis=(0, 1)))
    if reference is not None:
        area = (reference > 0).sum(axis=(0, 1))
        slices = np.flatnonzero(area)
        picks = {int(slices[int(round(q * (slices.size - 1)))]) for q in np.linspace(0.1, 0.9, count)}
        picks.add(int(np.argmax(area)))
        picks = sorted(picks)
        while len(picks) > count:
            picks.pop(1 if picks[1] != int(np.argmax(area)) else len(picks) - 2)
        return picks
    if mask_slices.size == 0:
        return [cord_mask.shape[2] // 2]
    return sorted({int(mask_slices[int(round(q * (mask_slices.size - 1)))]) for q in np.linspace(0.25, 0.75, count)})


def cord_axial_figure(
    background: np.ndarray,
    cord_mask: np.ndarray,
    cord_labels: np.ndarray | None,
    lesion: np.ndarray | None,
    zooms: tuple[float, ...],
    affine: np.ndarray,
    label_names: dict[int, str],
    levels: list[int],
    dpi: int = 90,
) -> str:
    """Axial cross-sections of the cord: anatomy (top) and column atlas with lesion outline (bottom).

    Returns
    -------
    str
        PNG data URI; the legend names atlas labels from ``label_names`` (``label N`` when unknown).
    """
    cord = cord_mask > 0
    values = sorted(int(v) for v in np.unique(cord_labels) if v > 0) if cord_labels is not None else []
    colors = cord_label_colors(label_names, values)
    half_width_mm = 10.0
    figure = Figure(figsize=(1.75 * len(levels) + 0.2, 4.3), facecolor=BACKGROUND)
    grid = figure.add_gridspec(2, len(levels), left=0.01, right=0.99, top=0.93, bottom=0.2, wspace=0.05, hspace=0.12)
    for column, level in enumerate(levels):
        plane_mask = cord[:, :, level]
        if plane_mask.any():
            centre = np.argwhere(plane_mask).mean(axis=0)
        else:
            centre = np.array(cord.shape[:2]) / 2.0
        half = np.ceil(half_width_mm / np.asarray(zooms[:2])).astype(int)
        low = np.maximum(np.rint(centre).astype(int) - half, 0)
        high = np.minimum(np.rint(centre).astype(int) + half + 1, cord.shape[:2])
        box = (slice(low[0], high[0]), slice(low[1], high[1]), level)
        anatomy = np.rot90(background[box])
        extent = (0.0, anatomy.shape[1] * float(zooms[0]), 0.0, anatomy.shape[0] * float(zooms[1]))
        window = display_window(background[:, :, level], None)
        position = float((affine @ np.array([0.0, 0.0, level, 1.0]))[2])
        for row in range(2):
            axes = figure.add_subplot(grid[row, column])
            axes.imshow(anatomy, cmap="gray", vmin=window[0], vmax=window[1], extent=extent, interpolation="bilinear")
            if row == 1 and cord_labels is not None:
                labels = np.rint(np.rot90(cord_labels[box])).astype(int)
                rgba = np.zeros(labels.shape + (4,))
                for value in values:
                    rgba[labels == value] = (*colors[value], 0.6)
                axes.imshow(rgba, extent=extent, interpolation="nearest")
            if row == 1 and lesion is not None and np.any(lesion[box] > 0):
                lesion_plane = np.flipud(np.rot90(lesion[box] > 0).astype(float))
                axes.contour(lesion_plane, levels=[0.5], colors=[LESION_COLOR], linewidths=1.3, extent=extent)
            if row == 0:
                cord_plane = np.flipud(np.rot90(plane_mask[box[:2]]).astype(float))
                if cord_plane.any():
                    axes.contour(
                        cord_plane, levels=[0.5], colors=[MASK_COLOR], linewidths=0.6, extent=extent, alpha=0.7
                    )
                axes.set_title(f"z = {position:.0f} mm", color="#d8dee9", fontsize=7, pad=2)
            if column == 0:
                style = dict(color="#e5e9f0", fontsize=6, fontweight="bold", va="top", transform=axes.transAxes)
                axes.text(0.03, 0.97, "L", **style)
                axes.text(0.97, 0.97, "R", ha="right", **style)
                axes.text(0.5, 0.97, "A", ha="center", **style)
            axes.set_axis_off()
    handles = [Patch(facecolor=colors[v], edgecolor="none", label=label_names.get(v, f"label {v}")) for v in values]
    handles.append(Patch(facecolor="none", edgecolor=LESION_COLOR, linewidth=1.3, label="lesion"))
    legend = figure.legend(
        handles=handles,
        loc="lower center",
        ncol=min(3, len(handles)),
        fontsize=6,
        frameon=False,
        labelcolor="#d8dee9",
        handlelength=1.2,
        columnspacing=0.8,
    )
    legend.set_in_layout(False)
    return figure_to_data_uri(figure, dpi=dpi)
