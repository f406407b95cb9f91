"""Extra sections other tools add to the batch report (``write_batch_report(..., extra_sections=...)``).

A section is a title, already-safe HTML and optional PNG figures embedded as
data URIs, placed before or after the batch sections.  ``regiontag validate``
uses it to show its thresholds and accuracy plots above the suite's sessions.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from regiontag.report import html as h


@dataclass(frozen=True)
class ExtraSection:
    """A section added to the batch report by another tool (e.g. the validation results).

    Attributes
    ----------
    title : str
        Heading, plain text (escaped here); also the table-of-contents entry.
    html : str
        Body as already-safe HTML: the caller escapes whatever came from files
        or users (``regiontag.report.html.esc``).  No external resources: the
        page's Content-Security-Policy blocks them.
    figures : sequence of (path or bytes, str)
        PNG images (a file path or the PNG bytes) with a plain-text caption,
        embedded as data URIs after ``html``, in a grid.
    anchor : str
        Element id (default: derived from ``title``).
    position : str
        ``"start"``: before the batch overview; ``"end"`` (default): after the cohort plots.
    """

    title: str
    html: str = ""
    figures: Sequence[tuple[Path | str | bytes, str]] = ()
    anchor: str = ""
    position: str = "end"

    def __post_init__(self) -> None:
        if self.position not in ("start", "end"):
            raise ValueError(f"ExtraSection {self.title!r}: position must be 'start' or 'end', got {self.position!r}")

    @property
    def element_id(self) -> str:
        """The section's ``id`` (``anchor``, else ``x-`` and the title in lower-case words)."""
        return self.anchor or "x-" + (re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-") or "section")

    def render(self) -> str:
        """The ``<section>`` element."""
        figures = "".join(
            h.figure(_png_uri(image), h.esc(caption), caption, "chart") for image, caption in self.figures
        )
        grid = f'<div class="grid2">{figures}</div>' if figures else ""
        return (
            f'<section class="card" id="{h.esc(self.element_id)}"><h2>{h.esc(self.title)}</h2>'
            f"{self.html}{grid}</section>"
        )


def _png_uri(image: Path | str | bytes) -> str:
    data = image if isinstance(image, bytes) else Path(image).read_bytes()
    if not data.startswith(b"\x89PNG"):
        raise ValueError(f"extra section figure is not a PNG: {image if not isinstance(image, bytes) else 'bytes'}")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def as_extra_sections(sections: Sequence[ExtraSection | tuple[str, str]] | None) -> list[ExtraSection]:
    """Normalise ``extra_sections``: ``ExtraSection`` objects or ``(title, safe_html)`` pairs."""
    normalised = []
    for section in sections or ():
        if isinstance(section, ExtraSection):
            normalised.append(section)
        elif isinstance(section, tuple) and len(section) == 2 and all(isinstance(part, str) for part in section):
            normalised.append(ExtraSection(section[0], section[1]))
        else:
            raise TypeError(f"extra section must be ExtraSection or (title, html), got {section!r:.80}")
    return normalised


def sections_page(
    title: str, meta: str, sections: Sequence[ExtraSection | tuple[str, str]], qc_scope: str
) -> str:
    """A page in the batch-report style holding only ``sections`` (when there is no batch to show).

    Parameters
    ----------
    title : str
        Page title (plain text).
    meta : str
        Header line, plain text.
    sections : sequence of ExtraSection or (title, html)
    qc_scope : str
        Key under which the browser keeps this page's QC ratings.
    """
    normalised = as_extra_sections(sections)
    body = "".join(section.render() for section in normalised)
    toc = [(section.element_id, section.title) for section in normalised]
    return h.page(title, h.esc(meta), toc, body, qc_scope)


__all__ = ["ExtraSection", "as_extra_sections", "sections_page"]
