"""Table sections of the session report: region involvement, pattern scores, provenance."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pandas as pd

from regiontag.outputs.contract import parse_flag as as_bool
from regiontag.report.html import badge, bar, esc, missing, number, sort_value, table
from regiontag.report.qc_table import qc_section

PAIRED_SIDES = ("left", "right")


def split_list(value: Any) -> list[str]:
    """A list cell of scores.csv (``;`` or ``|`` separated, or a JSON list) -> items."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    text = str(value).strip()
    if text.startswith("["):
        try:
            return [str(item) for item in json.loads(text)]
        except ValueError:
            pass
    return [item.strip() for item in re.split(r"[;|]", text) if item.strip()]


def _symmetry(left: float, right: float, laterality: Any) -> str:
    """Back-to-back bars of the left and right fraction involved, the two shares and the laterality index."""
    scale = max(left, right, 1e-9)
    left_share, right_share = (left / scale, right / scale) if scale > 1e-9 else (0.0, 0.0)
    try:
        index = f"{float(laterality):.2f}" if math.isfinite(float(laterality)) else ""
    except (TypeError, ValueError):
        index = ""
    index = "0.00" if index == "-0.00" else index
    return (
        f'<span class="sym" title="left {left:.1%} / right {right:.1%}">'
        f'<span class="half l"><span style="width:{left_share * 100:.0f}%"></span></span><span class="mid"></span>'
        f'<span class="half r"><span style="width:{right_share * 100:.0f}%"></span></span></span>'
        f" <small>L {left:.1%} R {right:.1%}" + (f" ({index})" if index else "") + "</small>"
    )


def _millilitres(value: Any) -> str:
    """A lesion volume for the table: 2 decimals, ``<0.01`` for a trace (not ``1.6e-03``)."""
    try:
        volume = float(value)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(volume):
        return ""
    return "&lt;0.01" if 0 < volume < 0.01 else number(volume, 2)


def _fraction(row: dict | None) -> float:
    if row is None:
        return 0.0
    try:
        value = float(row["fraction_involved"])
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) else 0.0


def involvement_of(both: dict, left: dict | None, right: dict | None) -> str:
    """Where a region is involved, read as pattern scoring reads it.

    A region is involved when its ``both`` row is, or when one of its side rows is (a
    one-sided lesion can pass the thresholds on its side and not for the whole region).

    Returns
    -------
    str
        ``"both sides"``, ``"left only"``, ``"right only"``, ``"yes"`` (unpaired region, or
        only the whole-region row passes) or ``""`` (not involved).

    Examples
    --------
    >>> involvement_of({"involved": False}, {"involved": False}, {"involved": True})
    'right only'
    >>> involvement_of({"involved": True}, None, None)
    'yes'
    """
    left_flag = bool(as_bool(left["involved"])) if left is not None else False
    right_flag = bool(as_bool(right["involved"])) if right is not None else False
    if left_flag and right_flag:
        return "both sides"
    if left_flag:
        return "left only"
    if right_flag:
        return "right only"
    return "yes" if as_bool(both["involved"]) else ""


def _has_lesion(row: dict) -> bool:
    try:
        return float(row["lesion_voxels"]) > 0 or float(row["n_clusters"]) > 0
    except (TypeError, ValueError):
        return False


def _threshold_text(thresholds: dict[str, Any] | None) -> str:
    if not thresholds:
        return "the involvement thresholds"
    fraction, volume = thresholds.get("min_fraction"), thresholds.get("min_volume_ml")
    parts = []
    if isinstance(fraction, (int, float)):
        parts.append(f"at least {fraction:.0%} of the region")
    if isinstance(volume, (int, float)):
        parts.append(f"at least {volume:g} ml")
    return " and ".join(parts) or "the involvement thresholds"


def region_section(regions: pd.DataFrame, thresholds: dict[str, Any] | None = None) -> str:
    """Region involvement tables (one per atlas): volume, fraction bar, z, L/R symmetry, cord extent.

    The "involved" column says where the region is involved (``left only``, ``right only``,
    ``both sides``), with the same reading of the ``left`` / ``right`` / ``both`` rows as
    pattern scoring, so the table and the scores agree.  Regions with lesion voxels below
    the thresholds (``thresholds``: the ``involvement`` section of the parameters) are shown
    as "below threshold" instead of being hidden.
    """
    if regions.empty:
        return missing("regions.csv not available: no region table for this session.")
    rule = _threshold_text(thresholds)
    blocks = []
    for atlas_name, atlas_rows in regions.groupby("atlas", sort=False, dropna=False):
        both = atlas_rows[atlas_rows["side"].astype(str) == "both"]
        # plain dicts, not iterrows(): a Series per row costs more than building the whole table
        sides = {
            (row["region"], row["side"]): row
            for row in atlas_rows[atlas_rows["side"].isin(PAIRED_SIDES)].to_dict("records")
        }
        has_cord = atlas_rows[["lesion_length_mm", "vertebral_levels", "csa_ratio"]].notna().any().any()
        rows = []
        n_involved = n_below = 0
        for row in both.to_dict("records"):
            left, right = sides.get((row["region"], "left")), sides.get((row["region"], "right"))
            where = involvement_of(row, left, right)
            below = not where and (_has_lesion(row) or any(r is not None and _has_lesion(r) for r in (left, right)))
            n_involved += bool(where)
            n_below += below
            depth = int(row["depth"]) if pd.notna(row["depth"]) else 0
            name = row["name"] if isinstance(row["name"], str) and row["name"] else str(row["region"]).split(" > ")[-1]
            fraction = _fraction(row)
            if left is not None and right is not None:
                symmetry = _symmetry(_fraction(left), _fraction(right), row["laterality_index"])
            else:
                symmetry = '<small class="help">unpaired</small>'
            cells = [
                (f'<td class="region-name" data-sort="{esc(row["region"])}" title="{esc(row["region"])}">'
                 f'<span style="padding-left:{depth * 14}px">{esc(name)}</span></td>'),
                f'<td class="num" data-sort="{sort_value(row["lesion_volume_ml"])}">{_millilitres(row["lesion_volume_ml"])}</td>',
                f'<td data-sort="{sort_value(fraction)}">{bar(fraction)} <small>{fraction:.1%}</small></td>',
                f'<td class="num">{number(row["n_clusters"], 0)}</td>',
                f'<td class="num">{number(row["mean_z"], 1)}</td>',
                f'<td class="num">{number(row["max_z"], 1)}</td>',
                f'<td class="sym-cell" data-sort="{sort_value(row["laterality_index"])}">{symmetry}</td>',
            ]
            if has_cord:
                extensive = as_bool(row["longitudinally_extensive"])
                cells += [
                    f'<td class="num">{number(row["lesion_length_mm"], 0)}</td>',
                    f"<td>{esc(row['vertebral_levels']) or '-'}"
                    + (' <span class="chip" title="longitudinally extensive: 3 or more vertebral segments">LE</span>'
                       if extensive else "") + "</td>",
                    f'<td class="num">{number(row["csa_ratio"], 2)}</td>',
                ]
            if where:
                label = "involved" if where == "yes" else f"involved: {where}"
                verdict = f'<td data-sort="2">{badge(label, "failed")}</td>'
            elif below:
                verdict = (f'<td data-sort="1" title="lesion voxels, but less than {esc(rule)}">'
                           f'{badge("below threshold", "na")}</td>')
            else:
                verdict = '<td data-sort="0"></td>'
            cells.append(verdict)
            css = "involved" if where else ("below" if below else "uninvolved")
            rows.append(f'<tr class="{css}">{"".join(cells)}</tr>')
        headers = [
            ("region", ""),
            ("lesion ml", "num"),
            ("fraction involved", ""),
            ("clusters", "num"),
            ("mean z", "num"),
            ("max z", "num"),
            ("left | right (laterality)", ""),
        ]
        if has_cord:
            headers += [("length mm", "num"), ("levels", ""), ("CSA ratio", "num")]
        headers.append(("involved", ""))
        table_id = f"regions-{re.sub(r'[^A-Za-z0-9_-]', '_', str(atlas_name))}"
        toggle = (
            f'<label class="help"><input type="checkbox" data-toggle-all="{table_id}"> show all '
            f"{len(both)} regions</label>"
        )
        summary = f"{n_involved} of {len(both)} regions involved" if n_involved else "no region involved"
        if n_below:
            summary += f", {n_below} with lesion below threshold"
        empty = "" if n_involved or n_below else (
            f'<p class="help">No lesion in any of the {len(both)} regions: the table below is empty until '
            '"show all" is ticked.</p>')
        blocks.append(
            f'<h3>{esc(atlas_name)} atlas <small class="help">({summary})</small></h3>'
            f'<div class="toolbar">{toggle}</div>{empty}{table(headers, rows, table_id=table_id)}'
        )
    return "".join(blocks)


def _chips(items: list[str], kind: str = "") -> str:
    return "".join(f'<span class="chip {kind}">{esc(item.split(" > ")[-1])}</span>' for item in items) or "-"


def explanation_html(text: Any) -> str:
    """A score explanation, one clause per line (``raised by: ...``, ``lowered by: ...``, ``not assessed: ...``).

    Examples
    --------
    >>> explanation_html("score 1.2 (log10 odds); raised by: Pons involved (LR x8.0); lowered by: none")
    'score 1.2 (log10 odds)<br><b>raised by:</b> Pons involved (LR x8.0)<br><b>lowered by:</b> none'
    """
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    clauses = [clause.strip() for clause in str(text).split("; ") if clause.strip()]
    lines = []
    for clause in clauses:
        head, colon, rest = clause.partition(": ")
        if colon and head in ("raised by", "lowered by", "not assessed", "not assessable"):
            lines.append(f"<b>{esc(head)}:</b> {esc(rest)}")
        else:
            lines.append(esc(clause))
    return "<br>".join(lines)


def scores_section(scores: pd.DataFrame, match_threshold: float | None = None) -> str:
    """Pattern scores ranked, with score bars, match flags, core regions and the explanation.

    Bars run from 0 to the highest score (at least ``match_threshold``); negative scores
    get no bar.  When no pattern matches, the table starts with a line saying so.
    """
    if scores.empty:
        return missing("scores.csv not available: the session was not scored.")
    ordered = scores.copy()
    ordered["_rank"] = pd.to_numeric(ordered["rank"], errors="coerce")
    ordered["_score"] = pd.to_numeric(ordered["score"], errors="coerce")
    ordered = ordered.sort_values(["_rank", "_score"], ascending=[True, False], na_position="last")
    finite = ordered["_score"].dropna()
    # bars show the positive part of the score only (0 .. the highest score, at least the match
    # threshold): a negative score -- evidence against the pattern -- has no bar at all
    high = max([float(finite.max()) if len(finite) else 0.0, match_threshold or 0.0, 1e-9])
    rows = []
    for row in ordered.to_dict("records"):
        assessable = as_bool(row["assessable"])
        matched = as_bool(row["match"])
        score = row["_score"]
        share = max(float(score), 0.0) / high if pd.notna(score) and assessable is not False else 0.0
        status = badge("match", "match") if matched else (badge("not assessable", "na") if assessable is False else "")
        core = _chips(split_list(row["matched_core_regions"]))
        missing_core = _chips(split_list(row["missing_core_regions"]), "miss")
        atypical = _chips(split_list(row["atypical_findings"]), "atyp")
        rows.append(
            f'<tr class="{"na" if assessable is False else ""}">'
            f'<td class="num" data-sort="{sort_value(row["_rank"])}">{number(row["_rank"], 0)}</td>'
            f'<td data-sort="{esc(row["pattern"])}"><b>{esc(row["pattern"])}</b><br><small class="help">{esc(row["disease"])}</small></td>'
            f'<td class="nowrap" data-sort="{sort_value(score)}">{bar(share, "score")} <small>{number(score, 2)}</small></td>'
            f"<td>{status}</td>"
            f'<td class="core"><div>matched: {core}</div><div>missing: {missing_core}</div>'
            f"<div>atypical: {atypical}</div></td>"
            f'<td class="explanation">{explanation_html(row["explanation"])}</td></tr>'
        )
    headers = [
        ("rank", "num"),
        ("pattern", ""),
        ("score", ""),
        ("verdict", ""),
        ("core regions", ""),
        ("explanation", ""),
    ]
    note = ""
    if not any(as_bool(value) for value in scores["match"]):
        rule = f" (a match needs a score of at least {match_threshold:g} and an involved core region)" if (
            match_threshold is not None) else ""
        note = f'<p class="verdict"><b>No pattern matched</b>{esc(rule)}: the ranking below lists the evidence for and against each pattern.</p>'
    return note + table(headers, rows, table_id="scores")


def _kv(pairs: list[tuple[str, Any]]) -> str:
    if not pairs:
        return '<p class="help">none recorded</p>'
    items = "".join(
        f"<dt>{esc(key)}</dt><dd>{number(value, 3) if isinstance(value, float) else esc(value)}</dd>"
        for key, value in pairs
    )
    return f'<dl class="kv">{items}</dl>'


def provenance_section(provenance: dict[str, Any]) -> str:
    """Versions, inputs with checksums, atlases, timings, QC numbers, warnings and parameters."""
    if not provenance:
        return missing("provenance.json not available: the session did not complete.")
    parts = [
        _kv(
            [
                ("regiontag", provenance.get("regiontag_version")),
                ("session", provenance.get("session")),
                ("status", provenance.get("status")),
            ]
        )
    ]
    warnings = provenance.get("warnings") or []
    if warnings:
        items = "".join(f"<li>{esc(warning)}</li>" for warning in warnings)
        parts.append(f'<h3>Warnings ({len(warnings)})</h3><ul class="warnings">{items}</ul>')
    inputs = provenance.get("inputs") or []
    if inputs:
        rows = []
        references = {str(path) for path in (provenance.get("reference") or {}).values()}
        for scan in inputs:
            if not isinstance(scan, dict):
                continue
            path = str(scan.get("path", ""))
            extras = ", ".join(
                f"{k}: {v}" for k, v in scan.items() if k not in ("path", "sequence", "body_part", "sha256")
            )
            rows.append(
                f'<tr><td style="word-break:break-all">{esc(path)}{" <b>(reference)</b>" if path in references else ""}</td>'
                f"<td>{esc(scan.get('sequence'))}</td><td>{esc(scan.get('body_part'))}</td>"
                f'<td><code title="{esc(scan.get("sha256"))}">{esc(str(scan.get("sha256") or "")[:12])}</code></td>'
                f"<td><small>{esc(extras)}</small></td></tr>"
            )
        parts.append(
            "<h3>Inputs</h3>"
            + table(
                [("file", ""), ("sequence", ""), ("body part", ""), ("sha256", ""), ("details", "")],
                rows,
                sortable=False,
            )
        )
    columns = []
    software = provenance.get("software") or {}
    columns.append("<div><h3>Software</h3>" + _kv(sorted(software.items())) + "</div>")
    atlases = provenance.get("atlases") or {}
    atlas_pairs = [
        (name, f"{(info or {}).get('space', '')}  sha256 {str((info or {}).get('sha256', ''))[:12]}")
        for name, info in atlases.items() if isinstance(info, dict) or info is None
    ]
    columns.append("<div><h3>Atlases</h3>" + _kv(atlas_pairs) + "</div>")
    timings = {
        key: value for key, value in (provenance.get("timings") or {}).items() if isinstance(value, (int, float))
    }
    if timings:
        total = sum(timings.values()) or 1.0
        rows = [
            f'<tr><td>{esc(stage)}</td><td class="num">{number(seconds, 1)}</td><td>{bar(seconds / total, "time")}</td></tr>'
            for stage, seconds in timings.items()
        ]
        rows.append(f'<tr><td><b>total</b></td><td class="num"><b>{number(total, 1)}</b></td><td></td></tr>')
        columns.append(
            "<div><h3>Timings (s)</h3>"
            + table([("stage", ""), ("seconds", "num"), ("share", "")], rows, sortable=False)
            + "</div>"
        )
    parts.append(f'<div class="grid2">{"".join(columns)}</div>')
    qc = provenance.get("qc")
    parts.append("<h3>QC numbers</h3>" + qc_section(qc if isinstance(qc, dict) else {}))
    parameters = json.dumps(provenance.get("parameters") or {}, indent=2, sort_keys=True, default=str)
    parts.append(f"<details><summary>Parameters</summary><pre>{esc(parameters)}</pre></details>")
    return "".join(parts)
