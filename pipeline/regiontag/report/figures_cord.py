"""Spinal-cord figures: sagittal view along the cord with lesion extent, axial cuts with the column atlas.

Inputs are canonical RAS+ arrays on the cord reference scan's grid; the cord
is assumed to run roughly along the scanner's superior-inferior axis (true
for cervical and thoracic spine protocols).  Figures are composed as pixel
arrays and labelled with Pillow, like the slice montages.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from regiontag.report.figures import (
    BACKGROUND,
    LESION_COLOR,
    MASK_COLOR,
    Overlay,
    display_window,
    hex_rgb,
    palette,
    png_data_uri,
    render_panel,
    solid,
    to_uint8,
)
from regiontag.report.text import draw_text, font

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
TITLE_COLOR, LETTER_COLOR, AXIS_COLOR = "#d8dee9", "#e5e9f0", "#8b96a5"
SAGITTAL_HEIGHT_PX, SAGITTAL_WIDTH_PX, PROFILE_WIDTH_PX = 380, 170, 160
AXIAL_CELL_PX = 132


def _rgb255(color: tuple[float, float, float]) -> tuple[int, int, int]:
    return tuple(int(round(channel * 255)) for channel in color)  # type: ignore[return-value]


def filled(shape: tuple[int, int], color: str, dtype: type = np.uint8) -> np.ndarray:
    """An RGB canvas of ``shape`` in one colour (uint8 0-255, or float 0-1)."""
    rgb = hex_rgb(color)
    pixel = np.rint(rgb * 255).astype(np.uint8) if np.dtype(dtype) == np.uint8 else rgb.astype(dtype)
    return solid(shape, pixel)


def _paste(canvas: np.ndarray, panel: np.ndarray, top: int, left: int) -> None:
    """Copy a panel (float 0-1 or uint8) into a uint8 canvas."""
    canvas[top : top + panel.shape[0], left : left + panel.shape[1]] = (
        panel if panel.dtype == np.uint8 else to_uint8(panel)
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


def short_region_name(name: str) -> str:
    """The last level of an atlas path (``"Spinal cord > ... > Dorsal horn [left]"`` -> ``"Dorsal horn [left]"``)."""
    return name.split(" > ")[-1].strip() or name


def cord_centre_x(cord_mask: np.ndarray) -> np.ndarray:
    """Left-right centre (voxel index) of the cord on every axial slice, interpolated where absent."""
    per_x = (cord_mask > 0).sum(axis=1, dtype=np.int64).astype(float)  # (x, z) voxel counts
    counts = per_x.sum(axis=0)
    sums = (np.arange(cord_mask.shape[0], dtype=float)[:, None] * per_x).sum(axis=0)
    present = counts > 0
    if not np.any(present):
        return np.full(cord_mask.shape[2], cord_mask.shape[0] / 2.0)
    slices = np.arange(cord_mask.shape[2])
    return np.interp(slices, slices[present], sums[present] / counts[present])


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
        Text beside the bracket (e.g. ``"42 mm C2-C5"``); the measured length when empty.

    Returns
    -------
    str
        PNG data URI.
    """
    cord = cord_mask > 0
    anatomy = _to_display(_sagittal_reformat(background, cord_centre_x(cord)))
    cord_projection = _to_display(cord.any(axis=0))
    has_lesion = lesion is not None and bool(np.any(lesion > 0))
    lesion_projection = _to_display((lesion > 0).any(axis=0)) if has_lesion else np.zeros_like(cord_projection)
    y_cord = np.flatnonzero(cord.any(axis=(0, 2)))
    if y_cord.size:  # display columns run anterior -> posterior, i.e. reversed y; keep 14 mm around the cord
        margin, ny = int(round(14.0 / zooms[1])), background.shape[1]
        first, last = ny - 1 - min(y_cord[-1] + margin, ny - 1), ny - 1 - max(y_cord[0] - margin, 0)
        anatomy, cord_projection, lesion_projection = (
            a[:, first : last + 1] for a in (anatomy, cord_projection, lesion_projection)
        )
    row_mm, col_mm = float(zooms[2]), float(zooms[1])
    height_mm, width_mm = anatomy.shape[0] * row_mm, anatomy.shape[1] * col_mm
    scale = min(SAGITTAL_HEIGHT_PX / height_mm, SAGITTAL_WIDTH_PX / width_mm)  # pixels per mm
    cell = (max(1, int(round(height_mm * scale))), max(1, int(round(width_mm * scale))))
    window = display_window(anatomy, None)
    left_panel = render_panel(
        (anatomy, [cord_projection]), [Overlay(cord_projection, "outline", MASK_COLOR, 0.85)], (row_mm, col_mm),
        cell, window,
    )
    right_panel = render_panel(
        (anatomy, [cord_projection, lesion_projection]),
        [Overlay(cord_projection, "outline", MASK_COLOR, 0.35), Overlay(lesion_projection, "fill", LESION_COLOR, 0.6)],
        (row_mm, col_mm),
        cell,
        window,
    )
    panel_h, panel_w = left_panel.shape[:2]
    title_px, axis_px, gap, gutter = 24, 30, 10, 44
    width = gap + panel_w + gap + panel_w + gutter + PROFILE_WIDTH_PX + gap + 6
    height = title_px + panel_h + axis_px
    canvas = filled((height, width), BACKGROUND)
    x_left, x_right, x_profile = gap, 2 * gap + panel_w, 2 * gap + 2 * panel_w + gutter
    _paste(canvas, left_panel, title_px, x_left)
    _paste(canvas, right_panel, title_px, x_right)
    # cord cross-sectional area per display row (superior at the top), lesion rows shaded
    area_mm2 = cord.sum(axis=(0, 1))[::-1].astype(float) * float(zooms[0]) * float(zooms[1])
    lesion_rows = np.flatnonzero(lesion_projection.any(axis=1)) if has_lesion else np.array([], int)
    profile = filled((panel_h, PROFILE_WIDTH_PX), "#1b2128", np.float32)
    row_px = panel_h / max(area_mm2.size, 1)
    if lesion_rows.size:
        band = slice(int(lesion_rows[0] * row_px), int(np.ceil((lesion_rows[-1] + 1) * row_px)))
        profile[band] = profile[band] * 0.7 + np.asarray(LESION_COLOR) * 0.3
    _paste(canvas, profile, title_px, x_profile)
    picture = Image.fromarray(canvas, mode="RGB")
    draw = ImageDraw.Draw(picture)
    top = title_px
    area_max = float(area_mm2.max()) if area_mm2.size else 0.0
    axis_max = max(10.0, float(np.ceil(area_max * 1.15 / 10.0) * 10.0))
    present = np.flatnonzero(area_mm2 > 0)
    points = [(x_profile + 4 + (PROFILE_WIDTH_PX - 8) * area_mm2[r] / axis_max, top + (r + 0.5) * row_px)
              for r in present]
    if len(points) > 1:
        draw.line(points, fill=_rgb255(MASK_COLOR), width=2, joint="curve")
    draw.rectangle((x_profile, top, x_profile + PROFILE_WIDTH_PX - 1, top + panel_h - 1), outline="#3b4450")
    for tick in (0.0, axis_max / 2, axis_max):
        x = x_profile + 4 + (PROFILE_WIDTH_PX - 8) * tick / axis_max
        draw.line((x, top + panel_h, x, top + panel_h + 4), fill=AXIS_COLOR)
        draw_text(draw, (x, top + panel_h + 16), f"{tick:.0f}", 10, color=AXIS_COLOR, anchor="ms")
    if lesion_rows.size:  # extent bracket beside the lesion panel
        y_top, y_bottom = top + lesion_rows[0] * row_px, top + (lesion_rows[-1] + 1) * row_px
        x = x_right + panel_w + 10
        draw.line((x, y_top, x, y_bottom), fill="#ffffff", width=2)
        for y in (y_top, y_bottom):
            draw.line((x - 6, y, x, y), fill="#ffffff", width=2)
        label = extent_label or f"{(lesion_rows[-1] - lesion_rows[0] + 1) * row_mm:.0f} mm"
        text_box = draw.textbbox((0, 0), label, font=font(11))
        text = Image.new("RGBA", (text_box[2] + 4, text_box[3] + 4), (0, 0, 0, 0))
        ImageDraw.Draw(text).text((2, 0), label, fill="#ffffff", font=font(11))
        text = text.rotate(90, expand=True)
        y_text = int(max(top, min((y_top + y_bottom) / 2 - text.height / 2, top + panel_h - text.height)))
        picture.paste(text, (x + 6, y_text), text)
    for x, title in ((x_left, "sagittal along the cord"), (x_right, "lesion extent (projection)"),
                     (x_profile, "cord area (mm²)")):
        panel_width = PROFILE_WIDTH_PX if title.startswith("cord area") else panel_w
        draw_text(draw, (x + panel_width / 2, 16), title, 11, color=TITLE_COLOR, anchor="ms")
    for x in (x_left, x_right):
        draw_text(draw, (x + 4, top + 14), "A", 11, True, LETTER_COLOR)
        draw_text(draw, (x + panel_w - 4, top + 14), "P", 11, True, LETTER_COLOR, anchor="rs")
    return png_data_uri(np.asarray(picture), colors="rgb")


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
    legend = [(colors[v], short_region_name(label_names.get(v, f"label {v}"))) for v in values]
    legend.append((LESION_COLOR, "lesion (outline)"))
    legend_columns = 2  # region names are up to ~30 characters
    legend_rows = -(-len(legend) // legend_columns)
    title_px, gap, cell = 22, 8, AXIAL_CELL_PX
    width = gap + len(levels) * (cell + gap)
    width = max(width, 3 * 170 + 2 * gap)
    height = title_px + 2 * cell + gap + 12 + legend_rows * 17 + 6
    canvas = filled((height, width), BACKGROUND)
    offset_x = (width - (gap + len(levels) * (cell + gap))) // 2
    half = np.ceil(10.0 / np.asarray(zooms[:2], dtype=float)).astype(int)  # 10 mm around the cord centre
    captions = []
    for column, level in enumerate(levels):
        plane_mask = cord[:, :, level]
        centre = np.argwhere(plane_mask).mean(axis=0) if plane_mask.any() else np.array(cord.shape[:2]) / 2.0
        low = np.maximum(np.rint(centre).astype(int) - half, 0)
        high = np.minimum(np.rint(centre).astype(int) + half + 1, cord.shape[:2])
        box = (slice(low[0], high[0]), slice(low[1], high[1]), level)
        anatomy = np.rot90(background[box])  # rows anterior -> posterior, columns left -> right
        cord_plane = np.rot90(plane_mask[box[:2]])
        window = display_window(background[:, :, level], None)
        pixel_mm = (float(zooms[1]), float(zooms[0]))
        top_panel = render_panel((anatomy, [cord_plane]), [Overlay(cord_plane, "outline", MASK_COLOR, 0.8)],
                                 pixel_mm, (cell, cell), window)
        planes, overlays = [], []
        if cord_labels is not None:
            label_plane = np.rot90(cord_labels[box])
            planes.append(label_plane)
            overlays.append(Overlay(label_plane, "label-fill", alpha=0.55, colors=colors))
        if lesion is not None:
            lesion_plane = np.rot90(lesion[box] > 0)
            planes.append(lesion_plane)
            overlays.append(Overlay(lesion_plane, "outline", LESION_COLOR, 1.0))
        bottom_panel = render_panel((anatomy, planes), overlays, pixel_mm, (cell, cell), window)
        left = offset_x + gap + column * (cell + gap)
        for row, panel in enumerate((top_panel, bottom_panel)):
            top = title_px + row * (cell + gap) + (cell - panel.shape[0]) // 2
            _paste(canvas, panel, top, left + (cell - panel.shape[1]) // 2)
        position = float((affine @ np.array([0.0, 0.0, level, 1.0]))[2])
        captions.append((left + cell / 2, f"z = {position:.0f} mm"))
    picture = Image.fromarray(canvas, mode="RGB")
    draw = ImageDraw.Draw(picture)
    for x, caption in captions:
        draw_text(draw, (x, 15), caption, 11, color=TITLE_COLOR, anchor="ms")
    first = offset_x + gap
    for row in range(2):
        y = title_px + row * (cell + gap) + 13
        draw_text(draw, (first + 4, y), "L", 10, True, LETTER_COLOR)
        draw_text(draw, (first + cell / 2, y), "A", 10, True, LETTER_COLOR, anchor="ms")
        draw_text(draw, (first + cell - 4, y), "R", 10, True, LETTER_COLOR, anchor="rs")
    legend_top = title_px + 2 * cell + gap + 12
    column_width = (width - 2 * gap) // legend_columns
    for index, (color, name) in enumerate(legend):
        x = gap + (index % legend_columns) * column_width
        y = legend_top + (index // legend_columns) * 17
        swatch = (x, y, x + 11, y + 11)
        if name.startswith("lesion"):
            draw.rectangle(swatch, outline=_rgb255(color), width=2)
        else:
            draw.rectangle(swatch, fill=_rgb255(color))
        draw_text(draw, (x + 16, y + 10), name, 10, color=TITLE_COLOR)
    return png_data_uri(np.asarray(picture), colors="rgb")
