"""HTML building blocks shared by the session and batch reports: page shell, CSS, JS, tables.

Pages are self-contained: inline CSS and JavaScript, images as data URIs, and
a Content-Security-Policy that forbids any network request.  Every string
from the output folder is escaped (file names and notes can be hostile).
"""

from __future__ import annotations

import html
import math
from typing import Any, Iterable

from regiontag import __version__

NOTICE = (
    "Research use only - not a medical device. regiontag results are automated image analyses for "
    "research; they are not a diagnosis and must not be used for clinical decisions."
)

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

CSS = """
:root{--ink:#1f2933;--muted:#5f6b7a;--line:#dde3ea;--bg:#f4f6f9;--card:#fff;--accent:#2b6cb0;
--ok:#2f855a;--warn:#b7791f;--fail:#c53030;--lesion:#e53e3e}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:var(--bg)}
header.top{background:#1a2332;color:#fff;padding:14px 28px;display:flex;align-items:center;gap:18px;flex-wrap:wrap}
header.top h1{font-size:20px;margin:0;font-weight:600}
header.top .meta{color:#b8c4d4;font-size:13px}
header.top .spacer{flex:1}
.notice{background:#fff4d6;border-bottom:2px solid #e0a800;color:#5c4400;padding:9px 28px;font-weight:600}
nav.toc{background:#fff;border-bottom:1px solid var(--line);padding:7px 28px;font-size:13px;position:sticky;top:0;z-index:5}
nav.toc a{color:var(--accent);text-decoration:none;margin-right:16px}
main{max-width:1240px;margin:0 auto;padding:18px 24px 40px}
section.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:0 0 18px;box-shadow:0 1px 2px rgba(16,24,40,.04)}
section.card h2{font-size:17px;margin:0 0 4px}
section.card h3{font-size:14px;margin:16px 0 6px;color:#334155}
p.help{color:var(--muted);margin:2px 0 12px;font-size:13px}
.badge{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:600;color:#fff;background:#718096;white-space:nowrap}
.badge.ok,.badge.pass{background:var(--ok)}.badge.warning{background:var(--warn)}.badge.failed,.badge.fail{background:var(--fail)}
.badge.match{background:#6b46c1}.badge.na{background:#a0aec0}
table.data{border-collapse:collapse;width:100%;font-size:13px}
table.data th,table.data td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
table.data th{background:#f0f3f7;font-weight:600;color:#334155;position:sticky;top:34px;white-space:nowrap}
table.data td.num,table.data th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.data tbody tr:hover{background:#f8fafc}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th::after{content:" \\2195";color:#a0aec0;font-size:11px}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2";color:var(--accent)}
table.sortable th[aria-sort=descending]::after{content:" \\25BC";color:var(--accent)}
tr.failed td{background:#fff5f5}
tr.na td{color:#94a3b8}
td.nowrap{white-space:nowrap}
.bar.time>span{background:var(--accent)}
.alert{background:#fffaf0;border:1px solid #f6ad55;border-radius:6px;padding:8px 14px;margin:8px 0;color:#7b341e}
.alert ul{margin:4px 0;padding-left:20px}
tr.uninvolved{display:none}
tr.below td{color:#5f6b7a}
td.explanation{min-width:420px;font-size:12.5px}td.core{max-width:300px}
table.qc-numbers{width:auto;min-width:60%}table.qc-numbers td.key{color:var(--muted);white-space:nowrap;padding-right:24px}
table.mini{border-collapse:collapse;font-size:12px;margin:2px 0}
table.mini th,table.mini td{border:1px solid var(--line);padding:2px 8px;text-align:left}table.mini th{background:#f0f3f7;font-weight:600}
section.card h4{font-size:13px;margin:10px 0 4px;color:#334155}
p.verdict{background:#f7fafc;border-left:4px solid #a0aec0;padding:6px 12px;margin:4px 0 10px}
table.show-all tr.uninvolved{display:table-row;color:#718096}
.bar{display:inline-block;width:130px;height:10px;background:#edf2f7;border-radius:5px;overflow:hidden;vertical-align:middle}
.bar>span{display:block;height:100%;background:var(--lesion)}
.bar.score>span{background:#6b46c1}
.sym{display:inline-flex;align-items:center;gap:2px;vertical-align:middle}
td.sym-cell,td.region-name{white-space:nowrap}
.sym .half{width:44px;height:10px;background:#edf2f7;overflow:hidden;display:flex}
.sym .half.l{justify-content:flex-end;border-radius:5px 0 0 5px}.sym .half.r{border-radius:0 5px 5px 0}
.sym .half span{display:block;height:100%;background:#3182ce}
.sym .mid{width:1px;height:14px;background:#4a5568}
.chip{display:inline-block;background:#edf2f7;border-radius:4px;padding:0 6px;margin:1px 3px 1px 0;font-size:12px}
.chip.miss{background:#fed7d7}.chip.atyp{background:#feebc8}
figure{margin:8px 0 14px}figure img{max-width:100%;border-radius:6px;display:block;background:#101418}
figure.chart img{background:none;border:1px solid var(--line)}
figcaption{color:var(--muted);font-size:12.5px;margin-top:5px}
.missing{background:#f7fafc;border:1px dashed #cbd5e0;color:var(--muted);padding:10px 14px;border-radius:6px;margin:6px 0}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,1fr));gap:16px}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;font-size:13px}
.kv dt{color:var(--muted)}.kv dd{margin:0;word-break:break-all}
ul.warnings li{color:#7b341e}
pre{background:#1a202c;color:#e2e8f0;padding:10px 12px;border-radius:6px;overflow:auto;font-size:12px;max-height:420px}
details summary{cursor:pointer;color:var(--accent);margin:6px 0}
.qc{display:inline-flex;gap:6px;align-items:center;white-space:nowrap}
.qc label{font-size:12px;cursor:pointer}
input.filter{width:260px;font-size:13px;padding:5px 8px;border:1px solid #cbd5e0;border-radius:5px}
.qc input.qc-note{width:170px;font-size:12px;padding:2px 5px;border:1px solid #cbd5e0;border-radius:4px}
button{background:var(--accent);color:#fff;border:0;border-radius:5px;padding:6px 12px;font-size:13px;cursor:pointer}
button.secondary{background:#e2e8f0;color:var(--ink)}
.toolbar{display:flex;gap:10px;align-items:center;flex-wrap:wrap;margin:6px 0 10px}
.stats{display:flex;gap:12px;flex-wrap:wrap;margin:4px 0 6px}
.stat{background:#f7fafc;border:1px solid var(--line);border-radius:6px;padding:6px 14px;min-width:110px}
.stat b{display:block;font-size:19px}.stat b small{font-weight:400;font-size:12.5px;color:var(--muted)}.stat>span{color:var(--muted);font-size:12px}
footer{color:var(--muted);font-size:12px;text-align:center;padding:10px 0 30px}
a{color:var(--accent)}
"""

JS = r"""
(function(){
  function cellValue(row, index){
    var cell = row.cells[index]; if(!cell) return '';
    var raw = cell.getAttribute('data-sort'); if(raw === null) raw = cell.textContent.trim();
    var number = parseFloat(raw);
    return (raw !== '' && !isNaN(number) && isFinite(raw)) ? number : raw.toLowerCase();
  }
  function sortTable(table, index, header){
    var body = table.tBodies[0]; var rows = Array.prototype.slice.call(body.rows);
    var ascending = header.getAttribute('aria-sort') !== 'ascending';
    rows.sort(function(a, b){
      var x = cellValue(a, index), y = cellValue(b, index);
      var xe = (x === '' || x === 'nan'), ye = (y === '' || y === 'nan');
      if(xe || ye) return xe === ye ? 0 : (xe ? 1 : -1);
      if(typeof x === typeof y) return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
      return (typeof x === 'number' ? -1 : 1);
    });
    Array.prototype.forEach.call(header.parentNode.cells, function(h){ h.removeAttribute('aria-sort'); });
    header.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    rows.forEach(function(row){ body.appendChild(row); });
  }
  document.querySelectorAll('table.sortable').forEach(function(table){
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function(header, index){
      header.addEventListener('click', function(){ sortTable(table, index, header); });
    });
  });
  document.querySelectorAll('input[data-filter]').forEach(function(box){
    var table = document.getElementById(box.getAttribute('data-filter'));
    box.addEventListener('input', function(){
      var words = box.value.toLowerCase().split(/\s+/).filter(Boolean), shown = 0;
      Array.prototype.forEach.call(table.tBodies[0].rows, function(row){
        var text = row.textContent.toLowerCase();
        var keep = words.every(function(word){ return text.indexOf(word) >= 0; });
        row.style.display = keep ? '' : 'none'; if(keep) shown++;
      });
      var count = document.getElementById(box.getAttribute('data-filter') + '-count');
      if(count) count.textContent = shown + ' of ' + table.tBodies[0].rows.length + ' shown';
    });
  });
  document.querySelectorAll('input[data-toggle-all]').forEach(function(box){
    box.addEventListener('change', function(){
      var table = document.getElementById(box.getAttribute('data-toggle-all'));
      if(table) table.classList.toggle('show-all', box.checked);
    });
  });

  // --- QC ratings: kept in localStorage, exported as CSV with a Blob download ---
  var scope = document.body.getAttribute('data-qc-scope') || 'regiontag';
  var storageKey = 'regiontag-qc:' + scope, memory = {}, storageOk = true;
  function load(){
    try { var text = window.localStorage.getItem(storageKey); return text ? JSON.parse(text) : {}; }
    catch(error){ storageOk = false; return memory; }
  }
  function save(ratings){
    memory = ratings;
    try { window.localStorage.setItem(storageKey, JSON.stringify(ratings)); }
    catch(error){ storageOk = false; }
  }
  function csvField(value){
    var text = String(value === undefined || value === null ? '' : value);
    if(/^[=+\-@\t\r]/.test(text)) text = "'" + text;
    return '"' + text.replace(/"/g, '""') + '"';
  }
  window.regiontagQcCsv = function(){
    var ratings = load(), lines = ['session,rating,note,rated_at'];
    Object.keys(ratings).sort().forEach(function(session){
      var r = ratings[session];
      lines.push([session, r.rating || '', r.note || '', r.rated_at || ''].map(csvField).join(','));
    });
    return lines.join('\r\n') + '\r\n';
  };
  function summary(){
    var node = document.getElementById('qc-summary'); if(!node) return;
    var ratings = load(), pass = 0, fail = 0;
    Object.keys(ratings).forEach(function(k){ if(ratings[k].rating === 'pass') pass++; else if(ratings[k].rating === 'fail') fail++; });
    node.textContent = pass + ' pass, ' + fail + ' fail' + (storageOk ? ' (saved in this browser)' : ' (browser storage unavailable: export before closing)');
  }
  var initial = load();
  function bind(widget){
    var session = widget.getAttribute('data-session');
    var current = initial[session] || {};
    widget.querySelectorAll('input[type=radio]').forEach(function(radio){
      radio.checked = (radio.value === current.rating);
      radio.addEventListener('change', store);
    });
    var note = widget.querySelector('input.qc-note');
    if(note){ note.value = current.note || ''; note.addEventListener('input', store); }
    function store(){
      var all = load(), checked = widget.querySelector('input[type=radio]:checked');
      all[session] = {rating: checked ? checked.value : '', note: note ? note.value : '', rated_at: new Date().toISOString()};
      save(all); summary();
    }
  }
  document.querySelectorAll('.qc[data-session]').forEach(bind);
  summary();
  var exportButton = document.getElementById('qc-export');
  if(exportButton) exportButton.addEventListener('click', function(){
    var blob = new Blob([window.regiontagQcCsv()], {type: 'text/csv'});
    var link = document.createElement('a');
    link.href = URL.createObjectURL(blob); link.download = 'qc_ratings.csv';
    document.body.appendChild(link); link.click();
    setTimeout(function(){ URL.revokeObjectURL(link.href); link.remove(); }, 1000);
  });
})();
"""


def esc(value: Any) -> str:
    """HTML-escape any value (None and NaN become an empty string)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)


def number(value: Any, digits: int = 2) -> str:
    """Format a number for a table cell; empty for missing values."""
    try:
        numeric = float(value)
    except (TypeError, ValueError):
        return esc(value)
    if not math.isfinite(numeric):
        return ""
    if digits > 0 and numeric != 0 and abs(numeric) < 10 ** (-digits):
        return f"{numeric:.1e}"
    return f"{numeric:,.{digits}f}"


def sort_value(value: Any) -> str:
    """``data-sort`` attribute content: the raw number, or the text."""
    try:
        numeric = float(value)
        return "" if not math.isfinite(numeric) else repr(numeric)
    except (TypeError, ValueError):
        return esc(value)


def badge(text: str, kind: str | None = None) -> str:
    """A coloured pill (kind = css class: ok, warning, failed, match, na)."""
    return f'<span class="badge {esc(kind or text)}">{esc(text)}</span>'


def bar(fraction: float, kind: str = "") -> str:
    """A horizontal bar for a value in 0..1 (clipped)."""
    try:
        share = min(max(float(fraction), 0.0), 1.0)
    except (TypeError, ValueError):
        share = 0.0
    if not math.isfinite(share):
        share = 0.0
    return f'<span class="bar {kind}"><span style="width:{share * 100:.1f}%"></span></span>'


def missing(text: str) -> str:
    """A 'not available' box."""
    return f'<div class="missing">{esc(text)}</div>'


def figure(data_uri: str, caption: str, alt: str, kind: str = "") -> str:
    """An embedded image with a caption (``caption`` is HTML; kind ``chart`` for light plots)."""
    css = f' class="{esc(kind)}"' if kind else ""
    return f'<figure{css}><img src="{data_uri}" alt="{esc(alt)}"><figcaption>{caption}</figcaption></figure>'


def table(headers: Iterable[tuple[str, str]], rows: Iterable[str], table_id: str = "", sortable: bool = True) -> str:
    """A data table from (label, css class) headers and pre-rendered ``<tr>`` rows."""
    head = "".join(f'<th class="{cls}">{esc(label)}</th>' for label, cls in headers)
    classes = "data sortable" if sortable else "data"
    identifier = f' id="{esc(table_id)}"' if table_id else ""
    return f'<table class="{classes}"{identifier}><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def qc_widget(session: str) -> str:
    """Pass/fail radio buttons and a note field for one session (stored by the page script)."""
    name = esc(f"qc-{session}")
    return (
        f'<span class="qc" data-session="{esc(session)}">'
        f'<label><input type="radio" name="{name}" value="pass"> pass</label>'
        f'<label><input type="radio" name="{name}" value="fail"> fail</label>'
        f'<input class="qc-note" type="text" placeholder="note" aria-label="QC note for {esc(session)}"></span>'
    )


def qc_toolbar() -> str:
    """Export button and the running count of ratings."""
    return (
        '<div class="toolbar"><button id="qc-export" type="button">Export QC ratings (CSV)</button>'
        '<span id="qc-summary" class="help"></span></div>'
    )


def page(title: str, header_meta: str, toc: list[tuple[str, str]], body: str, qc_scope: str) -> str:
    """The full HTML document (inline CSS/JS, CSP forbidding network access, notice on top)."""
    links = "".join(f'<a href="#{esc(anchor)}">{esc(label)}</a>' for anchor, label in toc)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f'<body data-qc-scope="{esc(qc_scope)}">'
        f'<header class="top"><h1>{esc(title)}</h1><span class="meta">{header_meta}</span>'
        f'<span class="spacer"></span><span class="meta">regiontag {esc(__version__)}</span></header>'
        f'<div class="notice" role="note" id="notice">{esc(NOTICE)}</div>'
        f'<nav class="toc">{links}</nav><main>{body}</main>'
        f"<footer>{esc(NOTICE)}</footer><script>{JS}</script></body></html>\n"
    )
