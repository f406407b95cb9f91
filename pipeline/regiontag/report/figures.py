"""Slice montages for the session report, composed as pixel arrays, labelled with Pillow.

Panels are resized and outlined with the numpy helpers of ``raster`` and
encoded with the PNG writers of ``png`` (the report must cost under 15%
of a session, issue 7).  All volumes are canonical RAS+ arrays on one grid (the reference scan's).
Display conventions: axial and coronal views show the subject's left on the
left of the panel (neurological, as nilearn does), sagittal views show
anterior on the left; pixel aspect follows the voxel size, so anisotropic
scans are not distorted.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from regiontag.report.png import data_uri, encode_palette_png, encode_png
from regiontag.report.raster import (
    blend_labels,
    boundary,
    dilate,
    outline,
    resample_plane,
)
from regiontag.report.text import draw_text

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


def png_data_uri(rgb: np.ndarray, colors: str = "rgb") -> str:
    """Encode an RGB image (uint8, or float in 0..1) as a ``data:image/png;base64`` URI.

    Parameters
    ----------
    rgb : numpy.ndarray
        (rows, columns, 3 or 4) image; an alpha channel is dropped.
    colors : str
        ``"rgb"``: lossless true colour; ``"grey"``: a fixed palette of 230
        grey levels plus the overlay colours (slice montages: no visible loss,
        about half the size); ``"adaptive"``: 256-colour octree palette (charts
        with few flat colours).
    """
    if rgb.dtype != np.uint8:
        rgb = to_uint8(np.asarray(rgb, dtype=np.float32))
    rgb = np.ascontiguousarray(rgb[..., :3])
    if colors == "rgb":
        return data_uri(encode_png(rgb))
    image = Image.fromarray(rgb, mode="RGB")
    if colors == "grey":
        image = image.quantize(palette=_grey_palette(), dither=Image.Dither.NONE)
    else:
        image = image.quantize(256, method=Image.Quantize.FASTOCTREE)
    return data_uri(encode_palette_png(image))


@lru_cache(maxsize=1)
def _grey_palette() -> Image.Image:
    """Palette image: the overlay and text colours of the montages, the rest grey levels."""
    named = [
        LESION_COLOR,
        MASK_COLOR,
        tuple(hex_rgb(BACKGROUND)),
        tuple(hex_rgb("#e5e9f0")),
        tuple(hex_rgb("#c9d1db")),
    ] + list(palette(list(range(12))).values())
    entries = [tuple(int(round(channel * 255)) for channel in color) for color in named]
    entries = list(dict.fromkeys(entries))
    levels = 256 - len(entries)
    flat: list[int] = []
    for level in range(levels):
        grey = int(round(level * 255 / (levels - 1)))
        flat += [grey, grey, grey]
    for entry in entries:
        flat += list(entry)
    picture = Image.new("P", (1, 1))
    picture.putpalette(flat)
    return picture


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
    selected = mask > 0 if mask is not None else None
    values = volume[selected] if selected is not None and selected.any() else volume[volume != 0]
    if values.size > 50_000:  # percentiles of a regular subsample: same window, a fraction of the time
        values = values[:: values.size // 50_000 + 1]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(values, [0.5, 99.5])
    return float(low), float(high if high > low else low + 1.0)


def bounding_box(mask: np.ndarray, margin: int = 3) -> tuple[slice, slice, slice]:
    """Slices of the bounding box of ``mask > 0`` grown by ``margin`` voxels (whole volume if empty)."""
    selected = mask > 0
    box = []
    for axis in range(selected.ndim):
        present = np.flatnonzero(selected.any(axis=tuple(a for a in range(selected.ndim) if a != axis)))
        if present.size == 0:
            return tuple(slice(0, size) for size in mask.shape)  # type: ignore[return-value]
        box.append(slice(max(int(present[0]) - margin, 0), min(int(present[-1]) + margin + 1, mask.shape[axis])))
    return tuple(box)  # type: ignore[return-value]


def choose_cuts(focus: np.ndarray | None, extent: np.ndarray, axis: int, count: int, min_gap: int = 1) -> list[int]:
    """Slice indices along ``axis``: where ``focus`` (lesions) is, else spread over ``extent``.

    With lesions, cuts are picked greedily by lesion area (the largest first),
    each at least ``min_gap`` slices from the others, so separate lesions get
    their own cut; when fewer than ``count`` such slices exist the spacing is
    relaxed to adjacent slices.  Every cut shows lesion.  Without lesions,
    cuts are spread over the middle 80% of ``extent``.
    """
    other_axes = tuple(a for a in range(3) if a != axis)
    if focus is not None and np.any(focus > 0):
        profile = (focus > 0).sum(axis=other_axes).astype(float)
        candidates = np.flatnonzero(profile)
        span = candidates[-1] - candidates[0] + 1
        gap = max(int(min_gap), int(np.ceil(span / (2.0 * count))), 1)
        cuts: list[int] = []
        for spacing in (gap, 1):
            for index in candidates[np.argsort(-profile[candidates], kind="stable")]:
                if len(cuts) == count:
                    break
                if all(abs(int(index) - cut) >= spacing for cut in cuts):
                    cuts.append(int(index))
        return sorted(cuts)
    profile = (extent > 0).sum(axis=other_axes)
    filled = np.flatnonzero(profile)
    low, high = (filled[0], filled[-1]) if filled.size else (0, profile.size - 1)
    return sorted({int(round(low + (high - low) * q)) for q in np.linspace(0.1, 0.9, count)})


def palette(values: list[int]) -> dict[int, tuple[float, float, float]]:
    """A qualitative colour per label value (stable: colour depends on the value only)."""
    base = [
        (0.12, 0.47, 0.71),
        (1.0, 0.5, 0.05),
        (0.17, 0.63, 0.17),
        (0.84, 0.15, 0.16),
        (0.58, 0.4, 0.74),
        (0.55, 0.34, 0.29),
        (0.89, 0.47, 0.76),
        (0.74, 0.74, 0.13),
        (0.09, 0.75, 0.81),
        (0.68, 0.78, 0.91),
        (1.0, 0.73, 0.47),
        (0.6, 0.87, 0.54),
    ]
    return {int(value): base[(int(value) * 7) % len(base)] for value in values}


def render_panel(
    planes: tuple[np.ndarray, list[np.ndarray]],
    overlays: list[Overlay],
    pixel_mm: tuple[float, float],
    cell: tuple[int, int],
    window: tuple[float, float],
) -> np.ndarray:
    """One slice with its overlays as an RGB float image fitted into ``cell`` (rows, cols) at true aspect.

    The anatomy is interpolated bilinearly; masks and labels are upsampled
    with nearest neighbour and outlined at display resolution, so outlines are
    thin and crisp whatever the voxel size.
    """
    background, overlay_planes = planes
    height_mm, width_mm = background.shape[0] * pixel_mm[0], background.shape[1] * pixel_mm[1]
    scale = min(cell[0] / max(height_mm, 1e-6), cell[1] / max(width_mm, 1e-6))
    shape = (max(1, int(round(height_mm * scale))), max(1, int(round(width_mm * scale))))
    grey = (resample_plane(background, shape, 1) - np.float32(window[0])) * np.float32(1.0 / (window[1] - window[0]))
    np.clip(grey, 0, 1, out=grey)
    rgb = np.empty(shape + (3,), dtype=np.float32)
    for channel in range(3):  # per channel: several times faster than broadcasting over a last axis of 3
        rgb[..., channel] = grey
    line = 2 if max(shape) > 120 else 1
    for overlay, plane in zip(overlays, overlay_planes):
        plane = np.asarray(plane)
        if plane.dtype.kind == "f":
            plane = np.rint(np.nan_to_num(plane))
        values = resample_plane(plane.astype(np.int32, copy=False), shape, 0)
        if overlay.kind in ("outline", "fill"):
            mask = values > 0
            drawn = outline(mask, line) if overlay.kind == "outline" else mask
            if drawn.any():
                color = np.asarray(overlay.color, dtype=np.float32)
                rgb[drawn] = rgb[drawn] * (1 - overlay.alpha) + color * overlay.alpha
            continue
        if overlay.kind == "label-outline":
            edges = boundary(values)
            drawn = dilate(edges) & (values > 0) if line > 1 else edges
        else:
            drawn = values > 0
        if overlay.colors is None:
            colors = palette([int(v) for v in np.unique(values[drawn])])
        else:
            colors = overlay.colors
        blend_labels(rgb, values, drawn, colors, overlay.alpha)
    return rgb


def _world_position(affine: np.ndarray, axis: int, index: int, offset: tuple[int, ...]) -> float:
    voxel = np.zeros(4)
    voxel[3] = 1.0
    voxel[axis] = index + offset[axis]
    return float((affine @ voxel)[axis])


def solid(shape: tuple[int, int], pixel: np.ndarray) -> np.ndarray:
    """An image of ``shape`` filled with one pixel value (copied row by row: fast for a last axis of 3)."""
    image = np.empty(tuple(shape) + (len(pixel),), dtype=pixel.dtype)
    image[...] = np.tile(pixel, (shape[1], 1))
    return image


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """A float image in 0..1 as uint8 (rounded)."""
    scaled = np.multiply(rgb, np.float32(255), dtype=np.float32)
    np.clip(scaled, 0, 255, out=scaled)
    scaled += np.float32(0.5)
    return scaled.astype(np.uint8)


def hex_rgb(color: str) -> np.ndarray:
    return np.array([int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)])


def montage(
    background: np.ndarray,
    zooms: tuple[float, ...],
    affine: np.ndarray,
    overlays: list[Overlay],
    cuts: dict[int, list[int]],
    crop: np.ndarray | None = None,
    window_mask: np.ndarray | None = None,
    panel_px: int = 208,
) -> str:
    """Rows of slices (one row per view in ``cuts``) as a PNG data URI.

    The mosaic is composed as one pixel array with the labels drawn by PIL,
    which is an order of magnitude faster than one matplotlib axes per slice
    (and keeps matplotlib out of the session report).

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
        aspect = (
            cropped.shape[height_axis] * zooms[height_axis] / max(cropped.shape[width_axis] * zooms[width_axis], 1e-6)
        )
        row_heights.append(int(round(panel_px * float(np.clip(aspect, 0.55, 2.0)))))
    width = columns * panel_px + (columns + 1) * gap_px
    height = sum(row_heights) + len(rows) * title_px + gap_px
    mosaic = solid((height, width), np.rint(hex_rgb(BACKGROUND) * 255).astype(np.uint8))
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
            mosaic[y0 : y0 + panel.shape[0], x0 : x0 + panel.shape[1]] = to_uint8(panel)
            position = _world_position(affine, axis, index, offset)
            labels.append(
                (
                    left + panel_px / 2,
                    top - 4,
                    f"{VIEW_NAMES[axis]}  {'xyz'[axis]} = {position:.0f} mm",
                    "center",
                    False,
                )
            )
            if column == 0:
                side_left, side_right = VIEW_SIDES[axis]
                labels.append((x0 + 4, y0 + 13, side_left, "left", True))
                labels.append((x0 + panel.shape[1] - 4, y0 + 13, side_right, "right", True))
        top += row_height
    picture = Image.fromarray(mosaic, mode="RGB")
    draw = ImageDraw.Draw(picture)
    for x, y, text, align, bold in labels:
        anchor = {"center": "ms", "left": "ls", "right": "rs"}[align]
        draw_text(draw, (x, y), text, 11 if bold else 10, bold, "#e5e9f0" if bold else "#c9d1db", anchor)
    return png_data_uri(np.asarray(picture), colors="grey")
