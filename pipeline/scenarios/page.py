"""The scenario set's page: `OUT/scenarios/<D>/<set id>/index.html`, the base against each variant.

Self-contained like the run report (inline SVG by pygal, no scripts, no fetches); counts from 1 to the
policy's suppression threshold less one are hidden as [c], with secondary suppression wherever a total is
shown, and a difference is hidden whenever either of its two figures is.
"""

from __future__ import annotations

import html

import pandas as pd

from pipeline.domain import SIDES
from pipeline.publishing.disclosure import suppressed_values
from pipeline.publishing.run_report import chart_svg, pygal_chart

# (column, label, is a count of people or cases: suppressed) in the order the page shows them
FIGURES = [
    ("cases", "cases", True),
    ("moves", "cases moved", True),
    ("moves_left", "moved: officer left", True),
    ("moves_side", "moved: officer to the other side", True),
    ("moves_grade", "moved: officer's grade", True),
    ("moves_capacity", "moved: capacity", True),
    ("retained", "kept by a retention request", True),
    ("over_capacity_policy", "officers over the policy's capacity line", True),
    ("over_capacity_100", "officers over 100% of capacity", True),
    ("over_capacity_110", "officers over 110% (HMPPS warning)", True),
    ("staff", "staff", True),
    ("staff_fte", "staff FTE", False),
    ("staff_at_risk_fte", "staff at risk (FTE surplus)", False),
    ("vacancies_fte", "vacancies (FTE deficit)", False),
    ("preference_met", "guaranteed staff on their preferred side", True),
]
# Shown when some trust gives its officers' hours or reductions: capacity counted both ways
OVER_TWO_WAYS = [
    ("over_capacity_fte", "officers over capacity, by FTE", True),
    ("over_capacity_hours", "officers over capacity, by hours", True),
]
TWO_WAYS = [
    ("capacity_points_fte", "capacity points, by FTE", False),
    ("capacity_points_hours", "capacity points, by hours", False),
    *OVER_TWO_WAYS,
]


def shown_figures(comparison: pd.DataFrame) -> list[tuple[str, str, bool]]:
    """The figures the page shows: capacity both ways beside the rest when any officer is counted by hours."""
    return FIGURES + (TWO_WAYS if comparison["officers_counted_by_hours"].sum() > 0 else [])


_PALETTE = ("#1d70b8", "#f47738", "#00703c", "#912b88", "#d4351c", "#505a5f", "#28a197", "#b58840")


def _shown(value: float, count: bool, threshold: int) -> str | None:
    """The cell as text, or None when it is a small count to hide."""
    if count:
        return None if 1 <= value < threshold else f"{int(value):,}"
    return f"{value:,.1f}"


def national_table(comparison: pd.DataFrame, scenarios: list[str], threshold: int) -> str:
    """Figure by side, one column per scenario; a variant's cell that differs from the base is marked, with
    the difference."""
    shown = shown_figures(comparison)
    totals = comparison.groupby(["scenario", "side"])[[c for c, _, _ in shown]].sum()
    head = "".join(f"<th>{html.escape(s)}</th>" for s in scenarios)
    rows = []
    for side in SIDES:
        for column, label, count in shown:
            base = float(totals.loc[(scenarios[0], side), column]) if (scenarios[0], side) in totals.index else 0.0
            base_text = _shown(base, count, threshold)
            cells = [f"<td>{base_text or '[c]'}</td>"]
            for s in scenarios[1:]:
                v = float(totals.loc[(s, side), column]) if (s, side) in totals.index else 0.0
                text = _shown(v, count, threshold)
                if round(v, 0 if count else 1) == round(base, 0 if count else 1):
                    cells.append(f"<td>{text or '[c]'}</td>")
                    continue
                delta = "" if text is None or base_text is None else f" ({v - base:+,.{0 if count else 1}f})"
                cells.append(f'<td class="diff">{text or "[c]"}{delta}</td>')
            rows.append(f"<tr><th>{side}</th><td>{html.escape(label)}</td>{''.join(cells)}</tr>")
    return f'<table id="national"><tr><th>side</th><th>figure</th>{head}</tr>\n' + "\n".join(rows) + "</table>"


def trust_table(comparison: pd.DataFrame, scenarios: list[str], changed: dict, threshold: int) -> str:
    """Per trust: cases moved in each scenario (each column suppressed with its total), and how many cases
    and people fare differently from the base."""
    moves = comparison.groupby(["trust_code", "scenario"])["moves"].sum().unstack("scenario")
    moves = moves.reindex(columns=scenarios).fillna(0).astype("int64")
    shown = {s: suppressed_values(moves[s], threshold) for s in scenarios}
    head = "".join(f"<th>moved: {html.escape(s)}</th>" for s in scenarios) + "".join(
        f"<th>cases / people differing: {html.escape(s)}</th>" for s in scenarios[1:]
    )

    def cell(v: float) -> str:
        return "[c]" if pd.isna(v) else f"{int(v):,}"

    def few(n: int) -> str:
        return "[c]" if 1 <= n < threshold else f"{n:,}"

    rows = []
    for t in moves.index:
        cells = "".join(
            f"<td{' class=diff' if s != scenarios[0] and moves.at[t, s] != moves.at[t, scenarios[0]] else ''}>"
            f"{cell(shown[s][t])}</td>"
            for s in scenarios
        )
        for s in scenarios[1:]:
            c = changed.get(s, {}).get(t, {"cases": 0, "staff": 0})
            mark = ' class="diff"' if c["cases"] or c["staff"] else ""
            cells += (
                f'<td{mark}><a href="trusts/{html.escape(t)}/{html.escape(s)}_cases.csv">{few(c["cases"])}</a> / '
                f'<a href="trusts/{html.escape(t)}/{html.escape(s)}_staff.csv">{few(c["staff"])}</a></td>'
            )
        rows.append(f"<tr><th>{html.escape(t)}</th>{cells}</tr>")
    total = "".join(f"<td>{int(moves[s].sum()):,}</td>" for s in scenarios) + "<td></td>" * (len(scenarios) - 1)
    return (
        f'<table id="trusts"><tr><th>trust</th>{head}</tr>\n'
        + "\n".join(rows)
        + f"\n<tr><th>Total</th>{total}</tr></table>"
    )


def _grouped_bars(
    comparison: pd.DataFrame,
    scenarios: list[str],
    columns: list[tuple[str, str, bool]],
    cid: str,
    title: str,
    threshold: int,
) -> str:
    """One group of bars per figure (both sides together), one bar per scenario; hidden counts not drawn."""
    totals = comparison.groupby("scenario")[[c for c, _, _ in columns]].sum().reindex(scenarios).fillna(0)
    chart = pygal_chart(
        "Bar",
        cid,
        title,
        380,
        colors=_PALETTE[: len(scenarios)],
        x_labels=[label for _, label, _ in columns],
        x_label_rotation=20,
    )
    for s in scenarios:
        values = []
        for column, _, count in columns:
            v = float(totals.at[s, column])
            values.append(None if count and 1 <= v < threshold else v)
        chart.add(s, values)
    return chart_svg(chart)


def render_page(manifest: dict, comparison: pd.DataFrame, threshold: int) -> str:
    """The page for a scenario set from its manifest and comparison rows (pure)."""
    scenarios = [s["scenario"] for s in manifest["scenarios"]]
    listing = "".join(
        f"<tr><th>{html.escape(s['scenario'])}</th><td>{html.escape(s['purpose'])}</td>"
        f"<td>{html.escape(', '.join(f'{k} = {v}' for k, v in s['set'].items()) or 'the base policy')}</td></tr>"
        for s in manifest["scenarios"]
    )
    shown = shown_figures(comparison)
    by_name = dict((c, (c, label, count)) for c, label, count in shown)
    charts = [
        (
            "moves",
            "Cases moved, by reason",
            [by_name[c] for c in ("moves_left", "moves_side", "moves_grade", "moves_capacity")],
        ),
        (
            "capacity",
            "Offender managers over capacity",
            [by_name[c] for c in ("over_capacity_policy", "over_capacity_100", "over_capacity_110")],
        ),
        *(
            [("capacity-two-ways", "Capacity counted by FTE and by hours", OVER_TWO_WAYS)]
            if "over_capacity_hours" in by_name
            else []
        ),
        (
            "workforce",
            "Workforce surplus and deficit (FTE)",
            [by_name[c] for c in ("staff_at_risk_fte", "vacancies_fte")],
        ),
    ]
    figures = "\n".join(
        f'<figure id="chart-{cid}"><figcaption>{html.escape(title)}</figcaption>'
        f"{_grouped_bars(comparison, scenarios, cols, f'svg-{cid}', title, threshold)}</figure>"
        for cid, title, cols in charts
    )
    statuses = ", ".join(f"{t} {v['status']}" for t, v in sorted(manifest["trusts"].items()) if v["status"] != "FRESH")
    not_fresh = f" Trusts not fresh: {html.escape(statuses)}." if statuses else ""
    d, set_id = html.escape(manifest["run_date"]), html.escape(manifest["scenario_set"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Policy scenarios {d} ({set_id})</title>
<style>
body {{ font-family: Arial, sans-serif; margin: 2em auto; max-width: 70em; color: #0b0c0c; }}
figure {{ margin: 2em 0; }} figcaption {{ font-weight: bold; margin-bottom: .5em; }}
svg {{ max-width: 100%; height: auto; }}
table {{ border-collapse: collapse; font-size: .85em; margin: 1em 0; }}
td, th {{ padding: .2em .6em; border-bottom: 1px solid #ccc; text-align: left; }}
td.diff {{ background: #fff2cc; font-weight: bold; }} .note {{ color: #505a5f; }}
</style></head><body>
<h1>Policy scenarios for {d}</h1>
<p id="about">Scenario set {set_id}: the night of {d} decided under each policy below, from the same extracts and
the same state the nights before left. Nothing here is published or sent to the trusts; the figures are in the
<code>scenario_comparison</code> view of the catalog.</p>
<table id="scenarios"><tr><th>scenario</th><th>purpose</th><th>what it changes</th></tr>{listing}</table>
<p class="note">Cells that differ from the base are highlighted, with the difference. Small counts (1 to
{threshold - 1}) are hidden as [c]; charts leave them out.{not_fresh}</p>
{figures}
<h2>All trusts, by side</h2>
{national_table(comparison, scenarios, threshold)}
<h2>By trust</h2>
<p class="note">The cases and people whose outcome (side, officer, reason) differs from the base are listed, per
trust and scenario, in the files linked.</p>
{trust_table(comparison, scenarios, manifest.get("outcomes_changed", {}), threshold)}
</body></html>
"""
