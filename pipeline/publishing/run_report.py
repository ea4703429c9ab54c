"""The run report: `OUT/reports/<run_date>/index.html`, one self-contained page for programme teams.

Charts are drawn with pygal as inline SVG (no scripts, no network fetches). Every count on the page
goes through `pipeline.publishing.disclosure` first: the page is for a wide audience, so small counts are hidden with
secondary suppression (threshold: the policy's `publishing.suppression_threshold`).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import pandas as pd

from pipeline import layout
from pipeline.decisions.capacity import counted_by_hours, over_line
from pipeline.domain import HMPPS_WARNING
from pipeline.publishing.data_docs import SITE
from pipeline.publishing.disclosure import suppressed_table, suppressed_values, suppression_mask
from pipeline.reference import load_reference
from pipeline.storage import Store

SIDES = ["NPS", "CRC"]
SIDE_COLOURS = dict(zip(SIDES, ("#1d70b8", "#f47738")))
# Bands closed on the right: a load exactly at a line is not over it.
UTILISATION_BINS = [i / 10 for i in range(0, 21)] + [float("inf")]
TRUST_NIGHTS = 7  # nights shown in the table of moves outstanding by trust
_NOT_DRAWING = re.compile(r"<!--.*?-->|<script\b[^>]*>.*?</script>", re.S)


@dataclass(frozen=True)
class ReportTables:
    """What the page shows, every count already suppressed (NaN in chart series, "[c]" in tables)."""

    cases_by_side: pd.DataFrame  # trust x side, suppressed counts for the chart
    staff_by_side: pd.DataFrame
    cases_table: pd.DataFrame  # trust x side as text with totals
    moved_by_reason: pd.Series
    utilisation: pd.Series  # OMs per utilisation band
    balance_by_grade: pd.DataFrame  # grade x side, net FTE (surplus - deficit); FTE, not a count
    held_back_by_trust: pd.Series  # rows quarantined per trust
    hidden_cells: int
    outstanding_by_night: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SIDES))  # date x side
    outstanding_by_trust: pd.DataFrame = field(default_factory=pd.DataFrame)  # trust x the last nights, as text
    capacity_two_ways: pd.DataFrame | None = None  # measure x side, as text; None when no trust gives hours


def _count(frame: pd.DataFrame, by: list[str]) -> pd.Series:
    """Rows per group; a frame already grouped says how many rows each of its rows stands for (`rows`)."""
    groups = frame.groupby(by)
    return groups["rows"].sum() if "rows" in frame else groups.size()


def _by_side(frame: pd.DataFrame, trusts: list[str]) -> pd.DataFrame:
    table = _count(frame, ["trust_code", "side"]).unstack("side")
    return table.reindex(index=trusts, columns=SIDES).fillna(0).astype("int64")


def report_tables(
    cases: pd.DataFrame,
    staff: pd.DataFrame,
    caseload: pd.DataFrame,
    balance: pd.DataFrame,
    trusts: pd.DataFrame,
    threshold: int,
    progress: pd.DataFrame | None = None,
    capacity_limit: float = 1.0,
) -> ReportTables:
    """The report's tables from the run's published rows (pure: the page is drawn from these alone). `cases`
    may come grouped, with how many rows each stands for in a `rows` column. `progress`: the progress
    dataset's rows of every run date up to this one (run_date, side, moves_outstanding)."""
    codes = sorted(trusts["trust_code"])
    cases_n, staff_n = _by_side(cases, codes), _by_side(staff, codes)
    moved = _count(cases[cases["moved"]], ["reason"]).sort_values(ascending=False)
    bands = pd.cut(caseload["utilisation"], UTILISATION_BINS, right=True, include_lowest=True)
    per_band = bands.value_counts(sort=False)
    per_band.index = [f"over {b.left:.0%}" if b.right == float("inf") else f"to {b.right:.0%}" for b in per_band.index]
    net = (
        balance.assign(net=balance["surplus_fte"] - balance["deficit_fte"])
        .groupby(["grade", "side"])["net"]
        .sum()
        .unstack("side")
        .reindex(columns=SIDES)
        .fillna(0.0)
        .round(1)
    )
    held = trusts.set_index("trust_code")["quarantined_rows"].reindex(codes).fillna(0).astype("int64")

    def hide(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.astype(float).mask(suppression_mask(frame, threshold))

    cases_shown, staff_shown = hide(cases_n), hide(staff_n)
    moved_shown, band_shown = suppressed_values(moved, threshold), suppressed_values(per_band, threshold)
    held_shown = suppressed_values(held, threshold)
    nights, per_trust = pd.DataFrame(columns=SIDES, dtype=float), pd.DataFrame()
    if progress is not None and len(progress):
        progress = progress.assign(run_date=progress["run_date"].astype(str).str[:10])
        nights = (
            progress.groupby(["run_date", "side"])["moves_outstanding"]
            .sum()
            .unstack("side")
            .reindex(columns=SIDES)
            .fillna(0)
            .astype("int64")
        )
        nights = hide(nights)
        recent = sorted(progress["run_date"].unique())[-TRUST_NIGHTS:]
        by_trust = (
            progress[progress["run_date"].isin(recent)]
            .groupby(["trust_code", "run_date"])["moves_outstanding"]
            .sum()
            .unstack("run_date")
            .reindex(index=codes, columns=recent)
            .fillna(0)
        )
        # night by night, each night's column suppressed on its own with its total (a sum across nights of
        # moves outstanding means nothing, so the table has no total column)
        per_trust = pd.DataFrame(
            {
                night: [
                    ("[c]" if pd.isna(v) else str(int(v)))
                    for v in suppressed_values(by_trust[night].astype("int64"), threshold)
                ]
                + [str(int(by_trust[night].sum()))]
                for night in recent
            },
            index=[*codes, "Total"],
        )
    hidden = int(
        cases_shown.isna().sum().sum()
        + staff_shown.isna().sum().sum()
        + moved_shown.isna().sum()
        + band_shown.isna().sum()
        + held_shown.isna().sum()
        + nights.isna().sum().sum()
    )
    two_ways = capacity_two_ways(caseload, capacity_limit, threshold)
    return ReportTables(
        cases_shown,
        staff_shown,
        suppressed_table(cases_n, threshold),
        moved_shown,
        band_shown,
        net,
        held_shown,
        hidden,
        nights,
        per_trust,
        two_ways,
    )


def capacity_two_ways(caseload: pd.DataFrame, capacity_limit: float, threshold: int) -> pd.DataFrame | None:
    """Capacity counted by FTE and by hours (contracted hours less the reductions active on the run date), per
    side: points, and offender managers over the policy's line each way, counts suppressed. None when no
    officer's hours or reductions were given, so that both ways say the same."""
    if "capacity_points_hours" not in caseload or not counted_by_hours(caseload).any():
        return None
    by_side = caseload.groupby("side")
    points = (
        pd.DataFrame(
            {
                "capacity points, by FTE": by_side["capacity_points_fte"].sum(),
                "capacity points, by hours": by_side["capacity_points_hours"].sum(),
            }
        )
        .T.reindex(columns=SIDES)
        .fillna(0.0)
    )
    points["Total"] = points.sum(axis=1)
    counts = (
        pd.DataFrame(
            {
                "over capacity, by FTE": over_line(caseload["points"], caseload["capacity_points_fte"], capacity_limit),
                "over capacity, by hours": over_line(
                    caseload["points"], caseload["capacity_points_hours"], capacity_limit
                ),
                "with a caseload reduction today": caseload["reduction_hours"] > 0,
            }
        )
        .groupby(caseload["side"].to_numpy())
        .sum()
        .T.reindex(columns=SIDES)
        .fillna(0)
        .astype("int64")
    )
    counts.columns.name = points.columns.name = None
    shown = suppressed_table(counts, threshold).drop(index="Total")
    return pd.concat([points.round(0).astype("int64").astype(str), shown.rename(index=lambda r: f"officers {r}")])


def pygal_chart(kind: str, cid: str, title: str, height: int, **config):
    """A pygal chart: static SVG (no scripts), the page's colours, CSS scoped to this chart's id."""
    import pygal
    from pygal.style import Style

    chart = getattr(pygal, kind)(
        js=[],
        disable_xml_declaration=True,
        width=800,
        height=height,
        title=title,
        legend_at_bottom=True,
        truncate_label=-1,
        truncate_legend=-1,
        show_minor_x_labels=True,
        margin=10,
        style=Style(
            colors=config.pop("colors", (SIDE_COLOURS["NPS"],)),
            font_family="Arial, sans-serif",
            background="white",
            plot_background="white",
        ),
        **config,
    )
    chart.uuid = cid  # pygal's default is a random id; the page is the same for the same run
    return chart


def chart_svg(chart) -> str:
    """The chart's SVG without pygal's comments (one carries today's date) or its config script (the page runs
    no script: pygal's tooltips are not used)."""
    return _NOT_DRAWING.sub("", chart.render(is_unicode=True))


def _labelled(index, names: dict[str, str], hidden: pd.Series | None = None) -> list[str]:
    """Labels by name ("LDN London"), marked [c] where a value is hidden, so a missing bar never reads as a
    zero."""
    return [
        f"{code} {names.get(code, '')}".strip() + (" [c]" if hidden is not None and hidden.get(code) else "")
        for code in index
    ]


def _side_bars(frame: pd.DataFrame, cid: str, title: str, names: dict[str, str] | None = None) -> str:
    frame = frame.iloc[::-1]  # pygal draws the first label at the bottom: the first trust goes on top
    chart = pygal_chart(
        "HorizontalStackedBar",
        cid,
        title,
        int(0.22 * 96 * len(frame)) + 140,
        colors=tuple(SIDE_COLOURS.values()),
        x_labels=_labelled(frame.index, names or {}, frame.isna().any(axis=1)),
    )
    for side in SIDE_COLOURS:
        chart.add(side, [None if pd.isna(v) else float(v) for v in frame[side]])
    return chart_svg(chart)


def _bars(values: pd.Series, cid: str, title: str, xlabel: str) -> str:
    chart = pygal_chart(
        "Bar",
        cid,
        title,
        360,
        x_labels=[f"{i} [c]" if pd.isna(v) else str(i) for i, v in values.items()],
        x_label_rotation=60,
        x_title=xlabel,
        show_legend=False,
    )
    chart.add(title, [None if pd.isna(v) else float(v) for v in values])
    return chart_svg(chart)


def _utilisation_bars(values: pd.Series, cid: str, title: str, capacity_limit: float) -> str:
    """Officers per utilisation band, coloured by where the band sits against the policy's capacity line and
    HMPPS' 110% warning line (a band holds loads above its left edge, up to and including its right)."""
    edges = sorted({round(capacity_limit, 4), HMPPS_WARNING})
    what = {round(capacity_limit, 4): "capacity", HMPPS_WARNING: "HMPPS warning"}
    names = (
        [f"up to {edges[0]:.0%} ({what[edges[0]]})"]
        + ([f"over {edges[0]:.0%}, up to {edges[1]:.0%} ({what[edges[1]]})"] if len(edges) > 1 else [])
        + [f"over {edges[-1]:.0%}"]
    )
    colours = ("#1d70b8", "#f47738", "#d4351c") if len(names) == 3 else ("#1d70b8", "#d4351c")
    chart = pygal_chart(
        "StackedBar",
        cid,
        title,
        380,
        colors=colours,
        x_labels=[str(i) for i in values.index],
        x_label_rotation=60,
        x_title="utilisation band",
    )
    lower = [UTILISATION_BINS[i] for i in range(len(values))]
    group = [sum(low >= e - 1e-9 for e in edges) for low in lower]  # bins do not straddle a 10% line
    for g, name in enumerate(names):
        chart.add(name, [None if pd.isna(v) or group[i] != g else float(v) for i, v in enumerate(values)])
    return chart_svg(chart)


def _night_lines(nights: pd.DataFrame, cid: str) -> str:
    """Moves outstanding, night by night, by side: the transition's progress over the runs published."""
    chart = pygal_chart(
        "Line",
        cid,
        "Moves outstanding by night",
        340,
        colors=tuple(SIDE_COLOURS.values()),
        x_labels=[f"{d} [c]" if nights.loc[d].isna().any() else d for d in nights.index],
        x_label_rotation=60,
        y_title="moves outstanding",
    )
    for side in SIDE_COLOURS:
        chart.add(side, [None if pd.isna(v) else float(v) for v in nights[side]] if side in nights else [])
    return chart_svg(chart)


def _balance_bars(net: pd.DataFrame, cid: str) -> str:
    chart = pygal_chart(
        "Bar",
        cid,
        "Workforce surplus and deficit by grade",
        340,
        colors=tuple(SIDE_COLOURS.values()),
        x_labels=list(net.index),
        y_title="FTE: surplus (+) / deficit (-)",
    )
    for side in SIDE_COLOURS:
        chart.add(side, [float(v) for v in net[side]])
    return chart_svg(chart)


def warm_up() -> None:
    """Import pygal and draw a tiny chart (about 0.15 s), so a caller with idle time can pay for it early."""
    _bars(pd.Series([1.0], index=["x"]), "svg-warm-up", "warm-up", "x")


def manifest_in_words(manifest: dict) -> str:
    """The manifest as a paragraph a programme manager reads."""
    trusts = manifest["trusts"]
    by_status: dict[str, list[str]] = {}
    for code, t in sorted(trusts.items()):
        by_status.setdefault(t["status"], []).append(code)
    parts = [
        f"{len(v)} {k.lower().replace('_', ' ')} ({', '.join(v)})" if k != "FRESH" else f"{len(v)} fresh"
        for k, v in sorted(by_status.items())
    ]
    policy = manifest["policy"]
    files = sum(len(t.get("input_sha256", {}) or {}) for t in trusts.values())
    return (
        f"Run {manifest['run_id']} for {manifest['run_date']}, started {manifest['started_at']} and "
        f"finished {manifest['finished_at']} (UTC), under policy version {policy['version']} (SHA-256 "
        f"{policy['sha256'][:12]}…) and code version {manifest['code_version']}. Of {len(trusts)} trusts: "
        f"{'; '.join(parts)}. {len(manifest.get('trusts_published', []))} trusts were published"
        + (f"; it replaced run {manifest['supersedes']}" if manifest.get("supersedes") else "")
        + (f"; {files} input files were fingerprinted (SHA-256)" if files else "")
        + "."
    )


def capacity_in_words(manifest: dict, capacity_limit: float) -> str:
    """How many offender managers the plan leaves over capacity, and whether any plan could avoid it."""
    sides = [(code, s) for code, t in sorted(manifest["trusts"].items()) for s in t.get("solver") or []]
    over = sum(s.get("over_capacity", 0) for _, s in sides)
    if not sides:
        return "No trust was aligned in this run."
    text = (
        f"{over:,} offender managers are over capacity (a load above {capacity_limit:.0%} of capacity; "
        "a load exactly at capacity is not over it)."
    )
    unavoidable = [f"{c} {s['side']}" for c, s in sides if s.get("over_capacity") and s.get("overload_unavoidable")]
    avoidable = [f"{c} {s['side']}" for c, s in sides if s.get("over_capacity") and not s.get("overload_unavoidable")]
    if unavoidable:
        text += (
            f" No plan could avoid it on {', '.join(unavoidable)}: the cases there need more capacity than the "
            "officers have."
        )
    if avoidable:
        text += (
            f" On {', '.join(avoidable)} a plan with nobody over capacity may exist, at the cost of more "
            "moves than the policy's costs allow for it."
        )
    unproven = [f"{c} {s['side']} ({s['gap']:.2%})" for c, s in sides if not s.get("proven") and s.get("gap")]
    text += (
        " Every side's plan is proven optimal, within the policy's gap."
        if not unproven
        else f" Plans not proven optimal (at most this share of their cost could be saved): {', '.join(unproven)}."
    )
    return text


def _why(t: dict) -> str:
    """Why a trust was not published fresh, in a line: its newest rejected file and the rule it broke."""
    files = t.get("rejected_files") or []
    return "; ".join(f"{r['file']}: {r['rule']}: {r['message']}" for r in files[:1])


def _two_ways_html(table: pd.DataFrame | None) -> str:
    if table is None:
        return ""
    return (
        '<section id="capacity-two-ways"><h2>Capacity counted two ways</h2><p class="note">By FTE: points per '
        "FTE x fte. By hours, as HMPPS counts it: points per FTE x contracted hours / full-time hours, less the "
        "caseload reductions active on the run date (the policy's <code>capacity.model</code> says which one the "
        "plan used).</p>"
        + table.rename_axis("measure").reset_index().to_html(classes="counts", border=0, index=False)
        + "</section>"
    )


def render_run_report(
    manifest: dict,
    t: ReportTables,
    threshold: int,
    capacity_limit: float,
    names: dict[str, str] | None = None,
    data_docs: str | None = None,
) -> str:
    """The page: inline SVG charts and tables, no scripts and no external resources. `names`: trust and unit
    names by code (the reference data); `data_docs`: the run's Data Docs, relative to the page, if built."""
    names = names or {}
    docs = (
        f"<p id=\"data-docs\">Every file's validation, expectation by expectation: the run's "
        f'<a href="{html.escape(data_docs)}">Great Expectations Data Docs</a>.</p>'
        if data_docs
        else '<p id="data-docs" class="note">The Data Docs of this run could not be built (see the run\'s log); '
        "the <code>validation</code> dataset holds every expectation's result.</p>"
    )
    charts = [
        ("cases-by-side", "Cases by side and trust", _side_bars(t.cases_by_side, "svg-cases", "Cases by side", names)),
        ("staff-by-side", "Staff by side and trust", _side_bars(t.staff_by_side, "svg-staff", "Staff by side", names)),
        (
            "progress",
            "Moves outstanding, night by night (all trusts)",
            _night_lines(t.outstanding_by_night, "svg-progress"),
        ),
        (
            "moved-by-reason",
            "Cases moved, by reason",
            _bars(t.moved_by_reason, "svg-moved", "Cases moved by reason", "reason"),
        ),
        (
            "utilisation",
            "Caseload utilisation of offender managers (workload points against capacity)",
            _utilisation_bars(
                t.utilisation, "svg-utilisation", "Offender managers by caseload utilisation", capacity_limit
            ),
        ),
        ("balance", "Workforce surplus and deficit by grade (FTE)", _balance_bars(t.balance_by_grade, "svg-balance")),
        (
            "validation",
            "Rows held back by validation, by trust",
            _bars(t.held_back_by_trust, "svg-validation", "Rows held back", "trust"),
        ),
    ]
    figures = "\n".join(
        f'<figure id="chart-{cid}"><figcaption>{html.escape(cap)}</figcaption>{svg}</figure>'
        for cid, cap, svg in charts
    )
    statuses = "".join(
        f"<tr><td>{html.escape(c)}</td><td>{html.escape(names.get(c, ''))}</td>"
        f"<td>{html.escape(v['status'])}</td>"
        f"<td>{html.escape(str(v.get('extract_date') or ''))}</td>"
        f"<td>{html.escape(_why(v))}</td></tr>"
        for c, v in sorted(manifest["trusts"].items())
    )
    cases_table = t.cases_table.rename_axis("trust").reset_index().to_html(classes="counts", border=0, index=False)
    per_trust = (
        t.outstanding_by_trust.rename_axis("trust").reset_index().to_html(classes="counts", border=0, index=False)
        if len(t.outstanding_by_trust)
        else "<p>No night published yet.</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Transition pipeline run report {html.escape(manifest["run_date"])}</title>
<style>
body {{ font-family: Arial, sans-serif; margin: 2em auto; max-width: 60em; color: #0b0c0c; }}
figure {{ margin: 2em 0; }} figcaption {{ font-weight: bold; margin-bottom: .5em; }}
svg {{ max-width: 100%; height: auto; }}
table {{ border-collapse: collapse; font-size: .85em; }} td, th {{ padding: .2em .6em; border-bottom: 1px solid #ccc; }}
.note {{ color: #505a5f; }}
</style></head><body>
<h1>Transition pipeline: run report for {html.escape(manifest["run_date"])}</h1>
<h2>This run</h2>
<p id="manifest">{html.escape(manifest_in_words(manifest))}</p>
<p id="capacity">{html.escape(capacity_in_words(manifest, capacity_limit))}</p>
{_two_ways_html(t.capacity_two_ways)}
{docs}
<p class="note">Small counts (1 to {threshold - 1}) are hidden and shown as [c], with other cells hidden where a
total would give them away ({t.hidden_cells} chart values hidden on this page); charts leave hidden values
out. The pseudonymised datasets for analysts are under <code>published/</code>.</p>
{figures}
<h2>Cases by trust and side</h2>
{cases_table}
<h2>Moves outstanding by trust, the last nights</h2>
{per_trust}
<h2>Trusts</h2>
<table id="trusts"><tr><th>trust</th><th>name</th><th>status</th><th>extract used</th><th>why not fresh</th></tr>
{statuses}</table>
</body></html>
"""


def write_run_report(out: Store, manifest: dict, threshold: int, capacity_limit: float) -> str:
    """Read the run's published rows back and write its report; returns the page's path."""
    from pipeline.publishing.catalog import connect, scan

    run_date = manifest["run_date"]
    con = connect(out)

    def rows(ds: str, cols: str, group: str = "") -> pd.DataFrame:
        files = out.url_of(*layout.published(ds, run_date), "**", "*.parquet")
        return con.sql(f"select {cols} from {scan([files])}" + (f" group by {group}" if group else "")).df()

    trusts = pd.DataFrame(
        [{"trust_code": c, "quarantined_rows": t.get("quarantined_rows", 0)} for c, t in manifest["trusts"].items()]
    )
    nights = out.url_of(*layout.published("progress"), "**", "*.parquet")
    progress = (
        con.sql(
            f"select run_date, trust_code, side, moves_outstanding from {scan([nights])} "
            f"where run_date <= '{run_date}'::date"
        ).df()
        if out.exists(*layout.published("progress"))
        else None
    )
    tables = report_tables(
        rows("case_alignment", "trust_code, side, moved, reason, count(*) as rows", "all"),
        rows("staff_assignment", "trust_code, side"),
        rows(
            "caseload",
            "side, utilisation, points, capacity_points_fte, capacity_points_hours, hours_given, reduction_hours",
        ),
        rows("workforce_balance", "side, grade, surplus_fte, deficit_fte"),
        trusts,
        threshold,
        progress,
        capacity_limit,
    )
    con.close()
    reference = load_reference()
    names = dict(zip(reference.trusts["trust_code"], reference.trusts["trust_name"]))
    docs = f"{SITE}/index.html" if out.exists(*layout.data_docs(run_date), "index.html") else None
    page = render_run_report(manifest, tables, threshold, capacity_limit, names, docs)
    return out.write_bytes(page.encode("utf-8"), *layout.run_report(run_date))
