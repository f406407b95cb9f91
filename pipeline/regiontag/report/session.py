"""The session report ``OUTPUT_DIR/<session>/report.html``.

Reads only the output contract of one session folder and writes one
self-contained HTML page: summary and QC rating, registration check, lesion
overlays on every sequence, cord views, region involvement, pattern scores and
provenance.  Any missing piece is shown as "not available" instead of failing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from regiontag import outputs
from regiontag.report import html as h
from regiontag.report.data import SessionData, load_session, read_label_names
from regiontag.report.figures import MASK_COLOR, Overlay, choose_cuts, montage
from regiontag.report.figures_cord import (
    axial_levels,
    cord_axial_figure,
    cord_sagittal_figure,
)
from regiontag.report.images import (
    BODY_PART_FILES,
    BodyPartImages,
    load_body_part,
    sample_planes,
)
from regiontag.report.sections import (
    as_bool,
    provenance_section,
    region_section,
    scores_section,
)

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class MontageLayout:
    """Slice montages of one body part: registration views, cuts per view, panel width in pixels."""

    registration_views: tuple[int, ...]
    cuts_per_view: int
    panel_px: int


#: The cord's own sagittal and axial figures already show its anatomy and column atlas at the lesion
#: levels, so its generic montages are smaller: a cord session runs in about a second and its report
#: must stay under 15% of that (issue 7).
LAYOUTS = {"brain": MontageLayout((2, 1, 0), 5, 208), "cord": MontageLayout((2, 0), 3, 144)}
#: Lesion cuts of one view are at least this far apart when the lesions allow it.
MIN_CUT_GAP_MM = 4.0


def _guarded(what: str, make: Callable[[], str]) -> str:
    """Run a section builder; a failure becomes a visible note instead of a broken report."""
    try:
        return make()
    except Exception as error:  # noqa: BLE001 - the report must render whatever else is there
        LOGGER.warning("report: %s failed: %s", what, error, exc_info=True)
        return h.missing(f"{what} could not be drawn: {type(error).__name__}: {error}")


def registration_figure(images: BodyPartImages, label_names: dict[int, str]) -> str:
    """Atlas outlines over the reference scan (cuts spread over the mask)."""
    layout = LAYOUTS.get(images.body_part, LAYOUTS["brain"])
    extent = images.mask if images.mask is not None else images.crop_mask
    cuts = {axis: choose_cuts(None, extent, axis, layout.cuts_per_view) for axis in layout.registration_views}
    overlays = []
    if images.labels is not None:
        overlays.append(Overlay(images.labels, kind="label-outline", alpha=0.95))
    if images.mask is not None:
        overlays.append(Overlay(images.mask, kind="outline", color=MASK_COLOR, alpha=0.9))
    uri = montage(
        images.background,
        images.zooms,
        images.grid.affine,
        overlays,
        cuts,
        crop=images.crop_mask,
        window_mask=images.window_mask,
        panel_px=layout.panel_px,
    )
    what = "atlas label boundaries (colours) and mask outline (yellow)" if images.labels is not None else "mask outline"
    return h.figure(
        uri,
        f"{h.esc(what)} over the {h.esc(images.background_name)}. Outlines should follow the "
        "anatomy; misplaced outlines mean registration failed.",
        f"{images.body_part} registration check",
    )


def lesion_figures(images: BodyPartImages) -> str:
    """One montage per sequence with the lesion outline, cuts where the lesions are."""
    focus = images.lesion
    extent = images.mask if images.mask is not None else images.crop_mask
    gaps = {axis: int(np.ceil(MIN_CUT_GAP_MM / images.zooms[axis])) for axis in (2, 1, 0)}
    layout = LAYOUTS.get(images.body_part, LAYOUTS["brain"])
    cuts = {axis: choose_cuts(focus, extent, axis, layout.cuts_per_view, gaps[axis]) for axis in (2, 1, 0)}
    overlays = [Overlay(focus, kind="outline")] if focus is not None else []
    parts = []
    if focus is None:
        parts.append(h.missing("lesions.nii.gz not available on this grid: showing the sequences without lesions."))
    elif not np.any(focus):
        parts.append('<p class="help">No lesion detected: cuts are spread over the volume.</p>')
    sequences = images.sequences or {"reference": ("", None)}
    for sequence, (path, image) in sequences.items():
        if image is None and images.sequences:
            parts.append(h.missing(f"{sequence}: input scan not found ({path})."))
            continue
        data = images.background if image is None else sample_planes(image, images.grid, cuts)
        uri = montage(
            data,
            images.zooms,
            images.grid.affine,
            overlays,
            cuts,
            crop=images.crop_mask,
            window_mask=images.window_mask,
            panel_px=layout.panel_px,
        )
        parts.append(
            h.figure(
                uri,
                f"<b>{h.esc(sequence)}</b> {h.esc(path)} - lesion outline in red",
                f"{images.body_part} {sequence} lesion overlay",
            )
        )
    return "".join(parts)


def centerline_summary(centerline: pd.DataFrame) -> str:
    """Cord cross-sectional area statistics from ``centerline.csv`` (its first ``csa``/``area`` column)."""
    columns = [c for c in centerline.columns if "csa" in str(c).lower() or "area" in str(c).lower()]
    if centerline.empty or not columns:
        return ""
    area = pd.to_numeric(centerline[columns[0]], errors="coerce").dropna()
    area = area[area > 0]
    if area.empty:
        return ""
    stats = [(f"{len(area)}", "slices on the centreline"), (f"{area.median():.0f} mm²", "median cord area"),
             (f"{area.min():.0f}-{area.max():.0f} mm²", "cord area range")]
    cards = "".join(f'<div class="stat"><b>{h.esc(v)}</b><span>{h.esc(k)}</span></div>' for v, k in stats)
    return f'<div class="stats">{cards}</div>'


def cord_figures(data: SessionData, images: BodyPartImages) -> str:
    """Sagittal view with lesion extent and axial cross-sections with the column atlas."""
    if images.mask is None or not np.any(images.mask):
        return h.missing("cord_mask.nii.gz not available: no cord views.")
    cord_rows = (
        data.regions[(data.regions["side"].astype(str) == "both") & data.regions["lesion_length_mm"].notna()]
        if not data.regions.empty
        else data.regions
    )
    extent_label = ""
    if len(cord_rows):
        longest = cord_rows.loc[cord_rows["lesion_length_mm"].astype(float).idxmax()]
        if float(longest["lesion_length_mm"]) > 0:
            levels = longest["vertebral_levels"] if isinstance(longest["vertebral_levels"], str) else ""
            extensive = " LETM" if as_bool(longest["longitudinally_extensive"]) else ""
            extent_label = f"{float(longest['lesion_length_mm']):.0f} mm {levels}{extensive}".strip()
    has_lesion = images.lesion is not None and bool(np.any(images.lesion))
    sagittal = cord_sagittal_figure(images.background, images.mask, images.lesion, images.zooms, extent_label)
    names = read_label_names(data.session_dir, outputs.CORD_LABELS_NII)
    levels = axial_levels(images.mask, images.lesion)
    axial = cord_axial_figure(
        images.background, images.mask, images.labels, images.lesion, images.zooms, images.grid.affine, names, levels
    )
    return (
        centerline_summary(data.centerline)
        + '<div class="grid2">'
        + h.figure(
            sagittal,
            ("Curved sagittal plane through the cord centre (yellow: cord outline), lesion voxels "
             "projected across the cord (red) with their extent, and the cord cross-sectional area "
             "per axial slice (red band: lesion extent; a bulge there suggests swelling)."
             if has_lesion else
             "Curved sagittal plane through the cord centre (yellow: cord outline; no cord lesion detected) "
             "and the cord cross-sectional area per axial slice."),
            "cord sagittal",
        )
        + h.figure(
            axial,
            ("Axial cross-sections at the lesion levels: anatomy with cord outline (top), cord column "
             "atlas with lesion outline (bottom)." if has_lesion else
             "No cord lesion detected: axial cross-sections spread over the cord, anatomy with cord "
             "outline (top) and cord column atlas (bottom)."),
            "cord axial column atlas",
        )
        + "</div>"
    )


def pattern_card(scores: pd.DataFrame, match_threshold: float | None) -> tuple[str, str]:
    """The summary card of the pattern result: the best *matching* pattern, else "no pattern matched".

    The same rule as ``sessions.csv`` (``top_pattern`` is the best-ranked pattern with
    ``match`` true, empty when none), so the page and the tables agree.
    """
    matched = scores[scores["match"].map(lambda value: bool(as_bool(value)))]
    if len(matched):
        top = matched.sort_values("rank").iloc[0]
        others = len(matched) - 1
        more = f" <small>(+{others} more match{'es' if others > 1 else ''})</small>" if others else ""
        return "top pattern", f"{h.esc(top['pattern'])} {h.badge('match', 'match')}{more}"
    scored = pd.to_numeric(scores["score"], errors="coerce")
    rule = f"a match needs a score of at least {match_threshold:g} and an involved core region" if (
        match_threshold is not None) else "no pattern reached the match threshold"
    best = f"highest score {scored.max():.2f}; " if scored.notna().any() else ""
    return "pattern result", f'no pattern matched <small class="help">({h.esc(best + rule)})</small>'


def _summary(data: SessionData) -> str:
    findings = data.findings
    stats = [("status", h.badge(data.status)), ("body parts", h.esc(", ".join(data.body_parts()) or "-"))]
    volumes = findings.get("lesion_volume_ml") or {}
    counts = findings.get("n_lesions") or {}
    if isinstance(volumes, dict):
        for part, volume in volumes.items():
            count = counts.get(part) if isinstance(counts, dict) else None
            stats.append(
                (
                    f"{part} lesion volume",
                    f"{h.number(volume, 2)} ml"
                    + (f" <small>({count} lesion{'' if count == 1 else 's'})</small>" if count is not None else ""),
                )
            )
    if not data.scores.empty:
        stats.append(pattern_card(data.scores, data.match_threshold()))
    cards = "".join(f'<div class="stat"><b>{value}</b><span>{h.esc(label)}</span></div>' for label, value in stats)
    parts = [f'<div class="stats">{cards}</div>']
    features = findings.get("features") or {}
    if isinstance(features, dict) and features:
        chips = "".join(
            f'<span class="chip{" miss" if value else ""}">{h.esc(name)}: '
            f"{'yes' if value else ('no' if value is False else 'not assessable')}</span>"
            for name, value in features.items()
        )
        parts.append(f"<div>Findings: {chips}</div>")
    if data.retry:
        parts.append(f'<div class="alert"><b>Retried</b>: {h.esc(data.retry)}. The log keeps both attempts.</div>')
    warnings = [str(warning) for warning in data.provenance.get("warnings") or []]
    if warnings:
        items = "".join(f"<li>{h.esc(warning)}</li>" for warning in warnings)
        parts.append(f'<div class="alert"><b>Warnings</b><ul>{items}</ul></div>')
    if data.error:
        parts.append(f"<p><b>Error:</b> {h.esc(data.error)}</p>")
    for problem in data.problems:
        parts.append(h.missing(problem))
    if data.log_tail and data.status in ("failed", "incomplete"):
        parts.append(f"<h3>Log (last lines)</h3><pre>{h.esc(data.log_tail)}</pre>")
    parts.append(f'<h3>QC rating</h3><div class="toolbar">{h.qc_widget(data.session)}</div>{h.qc_toolbar()}')
    return "".join(parts)


def render_session_report(data: SessionData) -> str:
    """The session report as an HTML string (see module doc)."""
    started = time.perf_counter()
    sections = [("summary", "Summary", _summary(data))]
    registration, lesions, cord = [], [], ""
    for body_part in data.body_parts():
        if body_part not in BODY_PART_FILES:
            continue
        images = None
        try:
            images = load_body_part(data, body_part)
        except Exception as error:  # noqa: BLE001
            LOGGER.warning("report: cannot load %s images: %s", body_part, error, exc_info=True)
        if images is None:
            registration.append(f"<h3>{body_part}</h3>" + h.missing(f"no {body_part} images in the output folder."))
            continue
        names = read_label_names(data.session_dir, BODY_PART_FILES[body_part][1])
        heading = f"<h3>{body_part}</h3>"
        registration.append(
            heading + _guarded(f"{body_part} registration check", partial(registration_figure, images, names))
        )
        lesions.append(heading + _guarded(f"{body_part} lesion overlays", partial(lesion_figures, images)))
        if body_part == "cord":
            cord = _guarded("cord views", partial(cord_figures, data, images))
    no_images = h.missing("no images: the session produced no image outputs.")
    sections.append(("registration", "Registration check", "".join(registration) or no_images))
    sections.append(("lesions", "Lesions", "".join(lesions) or no_images))
    if "cord" in data.body_parts():
        sections.append(("cord", "Spinal cord", cord or h.missing("no cord images.")))
    sections.append(("regions", "Region involvement", _guarded("region table", lambda: region_section(data.regions, data.involvement_thresholds()))))
    sections.append(("patterns", "Pattern scores", _guarded("pattern scores", lambda: scores_section(data.scores, data.match_threshold()))))
    sections.append(("provenance", "Provenance", _guarded("provenance", lambda: provenance_section(data.provenance))))
    help_text = {
        "registration": "Atlas in the subject's space, drawn over the reference scan.",
        "lesions": "Detected hyperintensities outlined on every sequence; cuts are placed where the lesions are.",
        "regions": "Share of each atlas region covered by lesion; bars left|right compare the two sides "
        "(laterality index: +1 left only, -1 right only, 0 symmetric). 'involved' says on which side, as the "
        "pattern scores read it: a region counts as involved when one side passes the thresholds.",
        "patterns": "Each known lesion pattern scored against this session, best first, with the regions and "
        "features that raised or lowered the score.",
    }
    body = "".join(
        f'<section class="card" id="{anchor}"><h2>{h.esc(title)}</h2>'
        + (f'<p class="help">{h.esc(help_text[anchor])}</p>' if anchor in help_text else "")
        + content
        + "</section>"
        for anchor, title, content in sections
    )
    meta = f"{h.badge(data.status)} &nbsp; {h.esc(', '.join(data.body_parts()))}"
    batch_dir = data.session_dir.parent
    if (batch_dir / outputs.INDEX_HTML).exists() or (batch_dir / outputs.SESSIONS_CSV).exists():
        meta += f' &nbsp; <a style="color:#cbd5e0" href="../{outputs.INDEX_HTML}">&larr; batch report</a>'
    scope = str(data.session_dir.resolve().parent)
    document = h.page(f"regiontag - {data.session}", meta, [(a, t) for a, t, _ in sections], body, scope)
    LOGGER.debug("report for %s rendered in %.2f s", data.session, time.perf_counter() - started)
    return document


def write_session_report(session_dir: str | Path) -> Path:
    """Write ``<session_dir>/report.html`` atomically and return its path.

    Parameters
    ----------
    session_dir : str or Path
        ``OUTPUT_DIR/<session>``; any subset of the output contract may be present.

    Returns
    -------
    Path
        The written report.
    """
    session_dir = Path(session_dir)
    if not session_dir.is_dir():
        raise FileNotFoundError(f"{session_dir}: not a session output folder")
    data = load_session(session_dir)
    return outputs.write_text(render_session_report(data), session_dir / outputs.REPORT_HTML)
