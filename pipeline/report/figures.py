"""Slice montages for the session report, composed as pixel arrays and encoded with Pillow.

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
from functools import lru_cache

import numpy as np
from importlib.util import find_spec
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
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
        rgb = np.clip(np.rint(np.asarray(rgb, dtype=np.float32) * 255), 0, 255).astype(np.uint8)
    image = Image.fromarray(np.ascontiguousarray(rgb[..., :3]), mode="RGB")
    if colors == "grey":
        image = image.quantize(palette=_grey_palette(), dither=Image.Dither.NONE)
    elif colors == "adaptive":
        image = image.quantize(256, method=Image.Quantize.FASTOCTREE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


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


@lru_cache(maxsize=8)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans at ``size`` pixels (the TTF shipped with matplotlib, found without importing it).

    Falls back to Pillow's built-in font.  Keeping matplotlib out of the
    session report saves about a second of import time in every worker.
    """
    spec = find_spec("matplotlib")
    if spec is not None and spec.submodule_search_locations:
        name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
        path = Path(list(spec.submodule_search_locations)[0]) / "mpl-data" / "fonts" / "ttf" / name
        try:
            return ImageFont.truetype(str(path), size)
        except OSError:
            pass
    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def draw_text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    size: int = 10,
    bold: bool = False,
    color: str = "#c9d1db",
    anchor: str = "ls",
) -> None:
    """Draw one label on a PIL image (anchor as in Pillow: ``ls`` left-baseline, ``ms`` centre-baseline)."""
    draw.text(xy, text, fill=color, font=font(size, bold), anchor=anchor)


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
    values = np.nan_to_num(plane.astype(np.float32), nan=0.0)
    return ndimage.map_coordinates(values, grid, order=order, mode="nearest")


def _outline(mask: np.ndarray, width: int) -> np.ndarray:
    """Inner outline of a 2-D mask, ``width`` pixels thick."""
    return mask & ~ndimage.binary_erosion(mask, iterations=width, border_value=1)


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
    grey = np.nan_to_num((resample_plane(background, shape, 1) - window[0]) / (window[1] - window[0]), nan=0.0)
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
    mosaic = np.tile(hex_rgb(BACKGROUND), (height, width, 1))
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
            mosaic[y0 : y0 + panel.shape[0], x0 : x0 + panel.shape[1]] = panel
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
    picture = Image.fromarray(np.clip(np.rint(mosaic * 255), 0, 255).astype(np.uint8), mode="RGB")
    draw = ImageDraw.Draw(picture)
    for x, y, text, align, bold in labels:
        anchor = {"center": "ms", "left": "ls", "right": "rs"}[align]
        draw_text(draw, (x, y), text, 11 if bold else 10, bold, "#e5e9f0" if bold else "#c9d1db", anchor)
    return png_data_uri(np.asarray(picture), colors="grey")
