"""The validation report a trust data officer reads: one self-contained HTML page per trust and run.

Built from the suite results and the trust's own quarantine and warning rows (no network fetches, every value
escaped), so it can be opened from the operational folder or an e-mail attachment.
"""

from __future__ import annotations

from html import escape

import pandas as pd

from pipeline.extracts.guide import what_to_do

REPORT_FILE = "validation_report.html"
SAMPLES_PER_RULE = 5
SEVERITY_WORDS = {"reject_file": "file rejected", "quarantine_row": "row held back", "report": "warning"}
STATUS_WORDS = {
    "FRESH": "Your newest extract was used.",
    "CARRIED_OVER": "Your newest extract was rejected; the run used your last good extract instead.",
    "REJECTED": "Every extract was rejected; nothing of this trust was published in this run.",
    "NO_EXTRACT": "No extract was found for this trust.",
    "VALIDATED": "Validated on arrival; the nightly run has not used it yet.",
}
STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#1b1b1b}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}th,td{border:1px solid #bbb;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#eee}.bad{color:#a00}.ok{color:#060}
code{background:#f4f4f4;padding:0 .2rem;white-space:pre-wrap;word-break:break-all}"""


def _table(headers: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else escape(str(value))


def render_report(trust: str, run_date: str, summary: dict, quarantine: pd.DataFrame, warnings: pd.DataFrame) -> str:
    """The page: outcome, rejected files, failing rules with counts, and sample failing rows with lines."""
    status, fixes = summary["status"], what_to_do()
    rejected = {(r["file"], r["rule"]) for r in summary.get("rejected_files") or []}
    if rejected and len(quarantine):  # a rejected file is listed as such, not as a row held back
        quarantine = quarantine[[(f, r) not in rejected for f, r in zip(quarantine["file"], quarantine["rule"])]]
    results = [r for r in summary["validation"] if r.get("extract_date") == summary.get("extract_date")]
    failed = [r for r in results if not r["success"]]
    parts = [
        f"<h1>{escape(trust)}: extract validation</h1>",
        f"<p>Run date {escape(run_date)}. Extract used: {_text(summary.get('extract_date')) or 'none'}; "
        f"newest extract: {_text(summary.get('newest_extract')) or 'none'}.</p>",
        f'<p class="{"ok" if status in ("FRESH", "VALIDATED") else "bad"}"><strong>{escape(status)}</strong>: '
        f"{escape(STATUS_WORDS.get(status, ''))}</p>",
        f"<p>{len(results) - len(failed)} of {len(results)} checks passed; "
        f"{len(quarantine)} row finding(s) held back; {len(warnings)} warning(s).</p>",
    ]
    if summary.get("rejected_files"):
        parts.append("<h2>Files rejected</h2>")
        parts.append(
            _table(
                ["file", "line", "column", "rule", "what was expected", "what to do"],
                [
                    [
                        _text(r["file"]),
                        _text(r["line"]),
                        _text(r.get("column")),
                        _text(r["rule"]),
                        _text(r["message"]),
                        _text(fixes.get(r["rule"])),
                    ]
                    for r in summary["rejected_files"]
                ],
            )
        )
    if failed:
        parts.append("<h2>Checks that failed</h2>")
        parts.append(
            _table(
                ["file", "column", "rule", "effect", "rows", "what was expected", "what to do"],
                [
                    [
                        _text(r["file"]),
                        _text(r["column"]),
                        _text(r["rule"]),
                        escape(SEVERITY_WORDS.get(r["on_fail"], "")),
                        _text(r["unexpected_count"]),
                        _text(r["message"]),
                        _text(fixes.get(r["rule"])),
                    ]
                    for r in failed
                ],
            )
        )
    for title, rows in (("Rows held back (quarantined)", quarantine), ("Warnings", warnings)):
        if len(rows):
            parts.append(f"<h2>{title}: first {SAMPLES_PER_RULE} per rule</h2>")
            sample = rows.groupby(["file", "rule"], sort=True, dropna=False).head(SAMPLES_PER_RULE)
            parts.append(
                _table(
                    ["file", "line", "column", "rule", "value"],
                    [
                        [_text(r.file), _text(r.line), _text(r.column), _text(r.rule), f"<code>{_text(r.value)}</code>"]
                        for r in sample.itertuples()
                    ],
                )
            )
    if summary.get("notes"):
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in summary["notes"]) + "</ul>")
    parts.append(
        "<p>Every held-back row is listed with its line in <code>quarantine.csv</code>, every warning in "
        "<code>warnings.csv</code>, beside this page.</p>"
    )
    parts.append(
        "<p>Every column, its valid values and every rule are in the extract contract: the "
        "<code>/contract</code> page of the upload service, with template files of each extract file.</p>"
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(trust)} validation '
        f"{escape(run_date)}</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n"
    )
