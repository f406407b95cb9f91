"""The "QC numbers" table of the session report: provenance ``qc`` values a researcher reads at a glance.

``provenance.json`` keeps the stages' QC values as nested JSON: numbers, hashes,
explanations ("image (18.4 mm: vertebral body/disc periodicity ...)") and lists of
records (``brain.left_right``, ``cord.lesions``).  Here each body part gets one
full-width table: hashes are shortened (the full value in a ``title`` attribute),
lists of records become a small table, numbers get a sensible precision and
explanations have the room of a full line.
"""

from __future__ import annotations

import math
import re
from typing import Any

from regiontag.report.html import esc, number

#: Hex digests (sha1, sha256, ...) shown shortened.
HASH_PATTERN = re.compile(r"^[0-9a-f]{32,}$")
#: Characters of a digest shown in the table.
HASH_SHOWN = 12


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts -> ``(dotted.key, value)`` pairs; lists and scalars are leaves.

    Examples
    --------
    >>> flatten({"atlas": {"name": "brain"}, "slices": 3})
    [('atlas.name', 'brain'), ('slices', 3)]
    """
    if isinstance(value, dict):
        pairs: list[tuple[str, Any]] = []
        for key, item in value.items():
            pairs += flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return pairs
    return [(prefix, value)]


def _scalar(value: Any) -> str:
    """One value as HTML: digests shortened, booleans as yes/no, floats at 3 decimals (or 3 significant)."""
    if value is None:
        return '<span class="help">-</span>'
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return esc(value)
        return number(value, 3) if abs(value) >= 0.001 or value == 0 else f"{value:.3g}"
    if isinstance(value, int):
        return number(value, 0)
    text = str(value)
    if HASH_PATTERN.match(text):
        return f'<code title="{esc(text)}">{esc(text[:HASH_SHOWN])}&hellip;</code>'
    return esc(text)


def _records_table(records: list[dict[str, Any]]) -> str:
    """A list of records as a small table, one column per key (in order of first appearance)."""
    columns: list[str] = []
    for record in records:
        columns += [str(key) for key in record if str(key) not in columns]
    head = "".join(f"<th>{esc(column)}</th>" for column in columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_scalar(record.get(column))}</td>" for column in columns) + "</tr>"
        for record in records
    )
    return f'<table class="mini"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def qc_value(value: Any) -> str:
    """HTML for one QC value: a scalar, a list of scalars, or a list of records (a small table).

    Examples
    --------
    >>> qc_value("d27db1dd7e206aa4d6bca5eec9c23bc3d6e24493657aef16788a803b864f4fb6")
    '<code title="d27db1dd7e206aa4d6bca5eec9c23bc3d6e24493657aef16788a803b864f4fb6">d27db1dd7e20&hellip;</code>'
    >>> qc_value([{"subject": "FLAIR", "mirrored": 0.26}])
    '<table class="mini"><thead><tr><th>subject</th><th>mirrored</th></tr></thead><tbody><tr><td>FLAIR</td><td>0.260</td></tr></tbody></table>'
    """
    if isinstance(value, list):
        if not value:
            return '<span class="help">none</span>'
        if all(isinstance(item, dict) for item in value):
            return _records_table(value)
        return ", ".join(_scalar(item) for item in value)
    if isinstance(value, dict):  # only when called on an unflattened value
        return _records_table([value])
    return _scalar(value)


def qc_section(qc: dict[str, Any]) -> str:
    """The QC numbers of a session: one two-column table per body part (``qc`` of provenance.json)."""
    if not qc:
        return '<p class="help">none recorded</p>'
    groups = qc.items() if all(isinstance(item, dict) for item in qc.values()) else [("", qc)]
    blocks = []
    for group, values in groups:
        rows = "".join(
            f'<tr><td class="key">{esc(key)}</td><td>{qc_value(value)}</td></tr>' for key, value in flatten(values)
        )
        heading = f"<h4>{esc(group)}</h4>" if group else ""
        blocks.append(f'{heading}<table class="data qc-numbers"><tbody>{rows}</tbody></table>')
    return "".join(blocks)


__all__ = ["flatten", "qc_section", "qc_value"]
