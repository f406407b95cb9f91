"""Table sections of the session report: region involvement, pattern scores, provenance."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pandas as pd

from regiontag.outputs.contract import parse_flag as as_bool
from regiontag.report.html import badge, bar, esc, missing, number, sort_value, table

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
    """Back-to-back bars of the left and right fraction involved, with the laterality index."""
    scale = max(left, right, 1e-9)
    left_share, right_share = (left / scale, right / scale) if scale > 1e-9 else (0.0, 0.0)
    index = number(laterality, 2)
    return (
        f'<span class="sym" title="left {left:.1%} / right {right:.1%}">'
        f'<span class="half l"><span style="width:{left_share * 100:.0f}%"></span></span><span class="mid"></span>'
        f'<span class="half r"><span style="width:{right_share * 100:.0f}%"></span></span></span>'
        f" <small>{index}</small>"
    )


def region_section(regions: pd.DataFrame) -> str:
    """Region involvement tables (one per atlas): volume, fraction bar, z, L/R symmetry, cord extent."""
    if regions.empty:
        return missing("regions.csv not available: no region table for this session.")
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
        n_involved = 0
        for row in both.to_dict("records"):
            involved = bool(as_bool(row["involved"]))
            n_involved += involved
            depth = int(row["depth"]) if pd.notna(row["depth"]) else 0
            name = row["name"] if isinstance(row["name"], str) and row["name"] else str(row["region"]).split(" > ")[-1]
            fraction = float(row["fraction_involved"]) if pd.notna(row["fraction_involved"]) else 0.0
            left, right = sides.get((row["region"], "left")), sides.get((row["region"], "right"))
            if left is not None and right is not None:
                symmetry = _symmetry(
                    float(left["fraction_involved"] or 0.0),
                    float(right["fraction_involved"] or 0.0),
                    row["laterality_index"],
                )
            else:
                symmetry = '<small class="help">unpaired</small>'
            cells = [
                f'<td data-sort="{esc(row["region"])}" title="{esc(row["region"])}">'
                f'<span style="padding-left:{depth * 14}px">{esc(name)}</span></td>',
                f'<td class="num" data-sort="{sort_value(row["lesion_volume_ml"])}">{number(row["lesion_volume_ml"], 2)}</td>',
                f'<td data-sort="{sort_value(fraction)}">{bar(fraction)} <small>{fraction:.1%}</small></td>',
                f'<td class="num">{number(row["n_clusters"], 0)}</td>',
                f'<td class="num">{number(row["mean_z"], 1)}</td>',
                f'<td class="num">{number(row["max_z"], 1)}</td>',
                f'<td data-sort="{sort_value(row["laterality_index"])}">{symmetry}</td>',
            ]
            if has_cord:
                extensive = as_bool(row["longitudinally_extensive"])
                cells += [
                    f'<td class="num">{number(row["lesion_length_mm"], 0)}</td>',
                    f"<td>{esc(row['vertebral_levels'])}{' (LE)' if extensive else ''}</td>",
                    f'<td class="num">{number(row["csa_ratio"], 2)}</td>',
                ]
            cells.append(f'<td data-sort="{int(involved)}">{badge("involved", "failed") if involved else ""}</td>')
            rows.append(f'<tr class="{"involved" if involved else "uninvolved"}">{"".join(cells)}</tr>')
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
        blocks.append(
            f'<h3>{esc(atlas_name)} atlas <small class="help">({summary})</small></h3>'
            f'<div class="toolbar">{toggle}</div>{table(headers, rows, table_id=table_id)}'
        )
    return "".join(blocks)


def _chips(items: list[str], kind: str = "") -> str:
    return "".join(f'<span class="chip {kind}">{esc(item.split(" > ")[-1])}</span>' for item in items) or "-"


def scores_section(scores: pd.DataFrame) -> str:
    """Pattern scores ranked, with score bars, match flags, core regions and the explanation."""
    if scores.empty:
        return missing("scores.csv not available: the session was not scored.")
    ordered = scores.copy()
    ordered["_rank"] = pd.to_numeric(ordered["rank"], errors="coerce")
    ordered["_score"] = pd.to_numeric(ordered["score"], errors="coerce")
    ordered = ordered.sort_values(["_rank", "_score"], ascending=[True, False], na_position="last")
    finite = ordered["_score"].dropna()
    low, high = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    span = high - min(low, 0.0) or 1.0
    rows = []
    for row in ordered.to_dict("records"):
        assessable = as_bool(row["assessable"])
        matched = as_bool(row["match"])
        score = row["_score"]
        share = (score - min(low, 0.0)) / span if pd.notna(score) and assessable is not False else 0.0
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
            f"<td><div>matched: {core}</div><div>missing: {missing_core}</div><div>atypical: {atypical}</div></td>"
            f'<td style="max-width:380px">{esc(row["explanation"])}</td></tr>'
        )
    headers = [
        ("rank", "num"),
        ("pattern", ""),
        ("score", ""),
        ("verdict", ""),
        ("core regions", ""),
        ("explanation", ""),
    ]
    return table(headers, rows, table_id="scores")


def _flatten(prefix: str, value: Any, into: list[tuple[str, Any]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, into)
    else:
        into.append((prefix, value))


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
        for name, info in atlases.items()
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
    qc_pairs: list[tuple[str, Any]] = []
    _flatten("", provenance.get("qc") or {}, qc_pairs)
    columns.append("<div><h3>QC numbers</h3>" + _kv(qc_pairs) + "</div>")
    parts.append(f'<div class="grid2">{"".join(columns)}</div>')
    parameters = json.dumps(provenance.get("parameters") or {}, indent=2, sort_keys=True, default=str)
    parts.append(f"<details><summary>Parameters</summary><pre>{esc(parameters)}</pre></details>")
    return "".join(parts)
