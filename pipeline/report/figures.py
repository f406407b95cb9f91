"""Slice montages for the session report (matplotlib, Agg canvas, no pyplot state).

All volumes are canonical RAS+ arrays on one grid (the reference scan's).
Display conventions: axial and coronal views show the subject's left on the
left of the panel (neurological, as nilearn does), sagittal views show
anterior on the left; pixel aspect follows the voxel size, so anisotropic
scans are not distorted.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import ndimage

#: Axis index in a canonical array -> view name.
VIEW_NAMES = {2: "axial", 1: "coronal", 0: "sagittal"}
#: Corner letters (left, right) of each view.
VIEW_SIDES = {2: ("L", "R"), 1: ("L", "R"), 0: ("A", "P")}
#: View axis -> (array axis shown vertically, array axis shown horizontally).
DISPLAY_AXES = {2: (1, 0), 1: (2, 0), 0: (2, 1)}
BACKGROUND = "#101418"
LESION_COLOR = (1.0, 0.23, 0.19)
MASK_COLOR = (1.0, 0.84, 0.0)


@dataclass
class Overlay:
    """Something drawn over the background of a montage.

    Attributes
    ----------
    data : numpy.ndarray
        3-D array on the background grid (mask or integer labels).
    kind : str
        ``"outline"`` (boundary of ``data > 0``), ``"fill"`` (semi-transparent
        mask), ``"label-outline"`` (boundaries between label values, coloured
        by label) or ``"label-fill"``.
    color : tuple of float
        RGB for masks.
    alpha : float
        Opacity.
    colors : dict of int to tuple, optional
        RGB per label value for label overlays (default: a qualitative palette).
    """

    data: np.ndarray
    kind: str = "outline"
    color: tuple[float, float, float] = LESION_COLOR
    alpha: float = 1.0
    colors: dict[int, tuple[float, float, float]] | None = None


def figure_to_data_uri(figure: Figure, dpi: int = 90) -> str:
    """Render a figure to a ``data:image/png;base64`` URI (Agg canvas, nothing written to disk)."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, facecolor=figure.get_facecolor())
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def orient_slice(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """A 2-D display slice of a canonical volume (rows top -> bottom, see module doc)."""
    if axis == 2:
        plane = volume[:, :, index]
    elif axis == 1:
        plane = volume[:, index, :]
    else:
        plane = volume[index, ::-1, :]
    return np.rot90(plane)


def pixel_size(zooms: tuple[float, ...], axis: int) -> tuple[float, float]:
    """(row, column) size in mm of the pixels of ``orient_slice(..., axis, ...)``."""
    if axis == 2:
        return float(zooms[1]), float(zooms[0])
    if axis == 1:
        return float(zooms[2]), float(zooms[0])
    return float(zooms[2]), float(zooms[1])


def display_window(volume: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """Robust grey-level window (0.5th-99.5th percentile inside ``mask`` or the non-zero voxels)."""
    values = volume[mask > 0] if mask is not None and np.any(mask > 0) else volume[volume != 0]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    if values.size > 400_000:
        values = values[:: values.size // 400_000 + 1]
    low, high = np.percentile(values, [0.5, 99.5])
    return float(low), float(high if high > low else low + 1.0)


def bounding_box(mask: np.ndarray, margin: int = 3) -> tuple[slice, slice, slice]:
    """Slices of the bounding box of ``mask > 0`` grown by ``margin`` voxels (whole volume if empty)."""
    coordinates = np.argwhere(mask > 0)
    if coordinates.size == 0:
        return tuple(slice(0, size) for size in mask.shape)  # type: ignore[return-value]
    low = np.maximum(coordinates.min(axis=0) - margin, 0)
    high = np.minimum(coordinates.max(axis=0) + margin + 1, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high))  # type: ignore[return-value]


def choose_cuts(focus: np.ndarray | None, extent: np.ndarray, axis: int, count: int) -> list[int]:
    """Slice indices along ``axis``: where ``focus`` (lesions) is, else spread over ``extent``.

    With lesions, cuts sit at evenly spaced quantiles of the lesion voxels'
    positions plus the slice with the most lesion, so every cut shows lesion;
    without, they are spread over the middle 80% of ``extent``.
    """
    other_axes = tuple(a for a in range(3) if a != axis)
    if focus is not None and np.any(focus > 0):
        profile = (focus > 0).sum(axis=other_axes).astype(float)
        positions = np.repeat(np.arange(profile.size), profile.astype(int))
        quantiles = np.linspace(0.08, 0.92, count) if count > 1 else np.array([0.5])
        cuts = {int(np.argmax(profile))} | {int(round(q)) for q in np.quantile(positions, quantiles)}
        cuts = sorted(cut for cut in cuts if profile[cut] > 0)
        while len(cuts) > count:  # drop the cut closest to a neighbour, keep the maximum
            gaps = np.diff(cuts)
            drop = int(np.argmin(gaps)) + 1
            if cuts[drop] == int(np.argmax(profile)):
                drop -= 1
            cuts.pop(drop)
        return cuts
    profile = (extent > 0).sum(axis=other_axes)
    filled = np.flatnonzero(profile)
    low, high = (filled[0], filled[-1]) if filled.size else (0, profile.size - 1)
    span = high - low
    return sorted({int(round(low + span * q)) for q in np.linspace(0.1, 0.9, count)})


def palette(values: list[int]) -> dict[int, tuple[float, float, float]]:
    """A qualitative colour per label value (stable: colour depends on the value only)."""
    base = [
        (0.12, 0.47, 0.71), (1.0, 0.5, 0.05), (0.17, 0.63, 0.17), (0.84, 0.15, 0.16),
        (0.58, 0.4, 0.74), (0.55, 0.34, 0.29), (0.89, 0.47, 0.76), (0.74, 0.74, 0.13),
        (0.09, 0.75, 0.81), (0.68, 0.78, 0.91), (1.0, 0.73, 0.47), (0.6, 0.87, 0.54),
    ]
    return {int(value): base[(int(value) * 7) % len(base)] for value in values}


def boundary(labels: np.ndarray) -> np.ndarray:
    """2-D boolean map of pixels whose 4-neighbour has another label (outlines of masks and parcels)."""
    edges = np.zeros(labels.shape, dtype=bool)
    edges[:-1, :] |= labels[:-1, :] != labels[1:, :]
    edges[1:, :] |= labels[1:, :] != labels[:-1, :]
    edges[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edges[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    return edges & (labels > 0)


def resample_plane(plane: np.ndarray, shape: tuple[int, int], order: int) -> np.ndarray:
    """Resize a 2-D slice to ``shape`` pixels (pixel centres aligned; order 0 nearest, 1 bilinear)."""
    rows = (np.arange(shape[0]) + 0.5) * plane.shape[0] / shape[0] - 0.5
    columns = (np.arange(shape[1]) + 0.5) * plane.shape[1] / shape[1] - 0.5
    if order == 0:
        row_index = np.clip(np.rint(rows).astype(int), 0, plane.shape[0] - 1)
        column_index = np.clip(np.rint(columns).astype(int), 0, plane.shape[1] - 1)
        return plane[np.ix_(row_index, column_index)]
    grid = np.meshgrid(rows, columns, indexing="ij")
    return ndimage.map_coordinates(plane.astype(np.float32), grid, order=order, mode="nearest")


def _outline(mask: np.ndarray, width: int) -> np.ndarray:
    """Inner outline of a 2-D mask, ``width`` pixels thick."""
    return mask & ~ndimage.binary_erosion(mask, iterations=width, border_value=1)


def render_panel(planes: tuple[np.ndarray, list[np.ndarray]], overlays: list[Overlay], pixel_mm: tuple[float, float],
                 cell: tuple[int, int], window: tuple[float, float]) -> np.ndarray:
    """One slice with its overlays as an RGB float image fitted into ``cell`` (rows, cols) at true aspect.

    The anatomy is interpolated bilinearly; masks and labels are upsampled
    with nearest neighbour and outlined at display resolution, so outlines are
    thin and crisp whatever the voxel size.
    """
    background, overlay_planes = planes
    height_mm, width_mm = background.shape[0] * pixel_mm[0], background.shape[1] * pixel_mm[1]
    scale = min(cell[0] / max(height_mm, 1e-6), cell[1] / max(width_mm, 1e-6))
    shape = (max(1, int(round(height_mm * scale))), max(1, int(round(width_mm * scale))))
    grey = (resample_plane(background, shape, 1) - window[0]) / (window[1] - window[0])
    rgb = np.repeat(np.clip(grey, 0, 1)[..., None], 3, axis=2)
    line = 2 if max(shape) > 120 else 1
    for overlay, plane in zip(overlays, overlay_planes):
        values = resample_plane(np.rint(plane).astype(np.int32), shape, 0)
        if overlay.kind in ("outline", "fill"):
            mask = values > 0
            drawn = _outline(mask, line) if overlay.kind == "outline" else mask
            rgb[drawn] = rgb[drawn] * (1 - overlay.alpha) + np.asarray(overlay.color) * overlay.alpha
            continue
        labels_present = [int(v) for v in np.unique(values) if v > 0]
        colors = overlay.colors or palette(labels_present)
        if overlay.kind == "label-outline":
            edges = boundary(values)
            drawn = ndimage.binary_dilation(edges) & (values > 0) if line > 1 else edges
        else:
            drawn = values > 0
        for value in labels_present:
            selected = drawn & (values == value)
            color = np.asarray(colors.get(value, (0.8, 0.8, 0.8)))
            rgb[selected] = rgb[selected] * (1 - overlay.alpha) + color * overlay.alpha
    return rgb


def _world_position(affine: np.ndarray, axis: int, index: int, offset: tuple[int, ...]) -> float:
    voxel = np.zeros(4)
    voxel[3] = 1.0
    voxel[axis] = index + offset[axis]
    return float((affine @ voxel)[axis])


def _hex_rgb(color: str) -> np.ndarray:
    return np.array([int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)])


def montage(background: np.ndarray, zooms: tuple[float, ...], affine: np.ndarray,
            overlays: list[Overlay], cuts: dict[int, list[int]], crop: np.ndarray | None = None,
            window_mask: np.ndarray | None = None, panel_px: int = 208, dpi: int = 100) -> str:
    """Rows of slices (one row per view in ``cuts``) as a PNG data URI.

    The mosaic is composed as one pixel array and drawn with a single
    matplotlib figure (labels as text), which is several times faster than
    one axes per slice.

    Parameters
    ----------
    background : numpy.ndarray
        Canonical 3-D image shown in grey.
    zooms : tuple of float
        Voxel size in mm.
    affine : numpy.ndarray
        Canonical affine (for the mm position printed on each cut).
    overlays : list of Overlay
        Drawn in order over the background.
    cuts : dict of int to list of int
        View axis (2 axial, 1 coronal, 0 sagittal) -> slice indices (full-volume indices).
    crop : numpy.ndarray, optional
        Mask whose bounding box (plus a margin) is shown; whole volume if None.
    window_mask : numpy.ndarray, optional
        Voxels that set the grey-level window.
    panel_px : int
        Width of one slice cell in pixels.
    """
    box = bounding_box(crop if crop is not None else np.ones(background.shape, bool), margin=4)
    offset = tuple(part.start for part in box)
    cropped = background[box]
    cropped_overlays = [o.data[box] for o in overlays]
    window = display_window(cropped, None if window_mask is None else window_mask[box])
    rows = [axis for axis in (2, 1, 0) if cuts.get(axis)]
    columns = max(len(cuts[axis]) for axis in rows)
    title_px, gap_px = 18, 4
    row_heights = []
    for axis in rows:
        height_axis, width_axis = DISPLAY_AXES[axis]
        aspect = cropped.shape[height_axis] * zooms[height_axis] / max(cropped.shape[width_axis] * zooms[width_axis], 1e-6)
        row_heights.append(int(round(panel_px * float(np.clip(aspect, 0.55, 2.0)))))
    width = columns * panel_px + (columns + 1) * gap_px
    height = sum(row_heights) + len(rows) * title_px + gap_px
    mosaic = np.tile(_hex_rgb(BACKGROUND), (height, width, 1))
    labels: list[tuple[float, float, str, str, bool]] = []  # x px, y px, text, ha, bold
    top = 0
    for axis, row_height in zip(rows, row_heights):
        top += title_px
        for column, cut in enumerate(cuts[axis]):
            index = cut - offset[axis]
            if not 0 <= index < cropped.shape[axis]:
                continue
            planes = (orient_slice(cropped, axis, index), [orient_slice(o, axis, index) for o in cropped_overlays])
            panel = render_panel(planes, overlays, pixel_size(zooms, axis), (row_height, panel_px), window)
            left = gap_px + column * (panel_px + gap_px)
            y0 = top + (row_height - panel.shape[0]) // 2
            x0 = left + (panel_px - panel.shape[1]) // 2
            mosaic[y0:y0 + panel.shape[0], x0:x0 + panel.shape[1]] = panel
            position = _world_position(affine, axis, index, offset)
            labels.append((left + panel_px / 2, top - 4, f"{VIEW_NAMES[axis]}  {'xyz'[axis]} = {position:.0f} mm",
                           "center", False))
            if column == 0:
                side_left, side_right = VIEW_SIDES[axis]
                labels.append((x0 + 4, y0 + 13, side_left, "left", True))
                labels.append((x0 + panel.shape[1] - 4, y0 + 13, side_right, "right", True))
        top += row_height
    figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor=BACKGROUND)
    figure.figimage(mosaic, 0, 0, origin="upper", resize=False)
    for x, y, text, align, bold in labels:
        figure.text(x / width, 1 - y / height, text, ha=align, va="baseline", color="#e5e9f0" if bold else "#c9d1db",
                    fontsize=7.5 if bold else 7, fontweight="bold" if bold else "normal")
    return figure_to_data_uri(figure, dpi=dpi)
