"""`trp`: the command line, a thin shell over pipeline.runs.nightly (the same path the Airflow DAG takes)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline import settings

app = typer.Typer(
    add_completion=False, pretty_exceptions_enable=False, help="Transition pipeline: the NPS/CRC split, nightly."
)
console = Console(stderr=True, soft_wrap=True)
# Exit codes beyond each command's own: 2 the command could not do what was asked (a bad option, file or
# policy: the line says which), 4 an unexpected error (a fault in the pipeline; --debug shows where).
USAGE, FAULT = 2, 4
_OPTIONS = {"debug": False}


class UserError(Exception):
    """Input the command cannot use: printed as one line, exit 2."""


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an unexpected error"),
) -> None:
    _OPTIONS["debug"] = debug or settings.load().debug


def main() -> None:
    """The `trp` command: every error one line with its exit code; a traceback only with --debug."""
    try:
        app()
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not sixty
        # Imported only now: pipeline.runs.nightly brings pandas and pyarrow, which `trp query` never needs
        from pipeline.policy import PolicyError
        from pipeline.runs.planning import RunRefused

        if isinstance(exc, (UserError, PolicyError)):
            console.print(f"[bold red]error:[/] {exc}", highlight=False)
            sys.exit(USAGE)
        if isinstance(exc, RunRefused):
            console.print(f"[bold red]nothing published:[/] {exc}", highlight=False)
            sys.exit(USAGE)
        if _OPTIONS["debug"]:
            raise
        console.print(
            f"[bold red]error:[/] unexpected {type(exc).__name__}: {exc} (run again with --debug for "
            "the traceback, and send it to the programme data team)",
            highlight=False,
        )
        sys.exit(FAULT)


def _trust_code(value: str) -> str:
    from pipeline.reference import load_reference

    code = value.strip().upper()
    if code not in load_reference().trust_codes:
        raise UserError(f"unknown trust code {value!r}: use one of the 35 three-letter codes, such as LDN or WIL")
    return code


def _stdout() -> Console:
    """Tables on standard output: the terminal's width, or wide enough not to cut headers when piped."""
    out = Console(soft_wrap=True)
    return out if out.is_terminal else Console(soft_wrap=True, width=240)


def trust_line(s: dict) -> str:
    parts = [f"{s.get('cases', 0):>7} cases, {s.get('moved', 0):>6} moved"] if "cases" in s else []
    if s.get("quarantined_rows"):
        parts.append(f"{s['quarantined_rows']} row(s) quarantined")
    if s.get("warnings"):
        parts.append(f"{s['warnings']} warning(s)")
    if s.get("rejected_files"):
        parts.append(f"{len(s['rejected_files'])} file(s) rejected")
    return f"{s['trust']}  {s['status']:<12} {', '.join(parts)}".rstrip()


@contextmanager
def _progress(total: int) -> Iterator[Callable[[dict], None]]:
    """A live bar with a line per finished trust on a terminal; plain log lines otherwise (CI, cron, Airflow)."""
    if not console.is_terminal:
        yield lambda s: console.print(trust_line(s), highlight=False)
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("trusts", total=total)

        def done(s: dict) -> None:
            bar.console.print(trust_line(s), highlight=False)
            bar.update(task, advance=1, description=f"last: {s['trust']}")

        yield done


@app.command()
def run(
    landing: str = typer.Option(..., help="Landing zone: local path or fsspec URL (s3://...)"),
    out: str = typer.Option(..., help="Output root: local path or fsspec URL"),
    run_date: str | None = typer.Option(None, help="Run date YYYY-MM-DD (default: today)"),
    policy: str | None = typer.Option(None, help="Policy file (default: the packaged policy v1)"),
    scheduler: str | None = typer.Option(None, help="Dask scheduler address (default: a local cluster)"),
) -> None:
    """One nightly run. Exit 0: all trusts fresh; 3: published, some trusts rejected or carried over;
    2: nothing published."""
    from pipeline.reference import load_reference
    from pipeline.runs.nightly import run_nightly

    # plan_run refuses a run date that is not a real YYYY-MM-DD (an empty one too) or a bad policy file
    # before any work; main() says why in one line
    with _progress(len(load_reference().trust_codes)) as on_trust_done:
        result = run_nightly(landing, out, run_date, policy, scheduler, on_trust_done=on_trust_done)
    _summary(result.manifest, result.manifest_path)
    raise typer.Exit(result.exit_code)


@app.command()
def scenarios(
    landing: str = typer.Option(..., help="Landing zone: local path or fsspec URL"),
    out: str = typer.Option(..., help="Output root: the nights before are read from it, the scenarios go under it"),
    run_date: str = typer.Option(..., help="The night to decide under each scenario, YYYY-MM-DD"),
    scenarios_file: Path = typer.Option(..., "--scenarios", help="Scenarios file (YAML; docs/scenarios.md)"),
    scheduler: str | None = typer.Option(None, help="Dask scheduler address (default: a local cluster)"),
) -> None:
    """Decide one night under several policies and compare them, trust by trust. Publishes nothing and
    changes no trust's lists. Exit 0: compared; 2: the scenarios file or an option cannot be used."""
    from pipeline.scenarios.runner import run_scenarios

    result = run_scenarios(
        landing,
        out,
        run_date,
        str(scenarios_file),
        scheduler,
        on_done=lambda scenario, s: console.print(
            f"{s['trust']}  {scenario:<20} {s['cases']:>7} cases, {s['moves']:>6} moved, "
            f"{s['over_capacity_policy']} officer(s) over capacity",
            highlight=False,
        ),
    )
    m = result.manifest
    table = Table("scenario", "cases", "moved", "over capacity", "cases differing", "people differing")
    changed = m["outcomes_changed"]
    for s in m["scenarios"]:
        name = s["scenario"]
        totals = m["totals"][name]
        differing = changed.get(name, {})
        table.add_row(
            name,
            f"{totals['cases']:,}",
            f"{totals['moves']:,}",
            f"{totals['over_capacity_policy']:,}",
            f"{sum(c['cases'] for c in differing.values()):,}" if name != "base" else "",
            f"{sum(c['staff'] for c in differing.values()):,}" if name != "base" else "",
        )
    _stdout().print(table)
    console.print(f"scenario set {m['scenario_set']}: {result.folder} (index.html, comparison/, trusts/)")


@app.command()
def validate(
    landing: str = typer.Option(..., help="Landing zone: local path or fsspec URL"),
    trust: str = typer.Option(..., help="Trust code, e.g. LDN"),
    out: str | None = typer.Option(None, help="Write the report to OUT/arrivals/<TRUST>/<date>/"),
    policy: str | None = typer.Option(None, help="Policy file (its limits on extracts; default: policy v1)"),
) -> None:
    """Check a trust's newest extract now, without the split. Exit 0: accepted (rows may be held back);
    1: a file was rejected; 2: no extract."""
    from pipeline.policy import load_policy
    from pipeline.runs.arrival import check_arrival

    s = check_arrival(landing, _trust_code(trust), out, limits=load_policy(policy).extracts)
    console.print(trust_line(s), highlight=False)
    for r in s["rejected_files"]:
        console.print(
            f"[red]{r['file']} line {r['line'] or '-'}, column {r['column'] or '-'}: {r['rule']}: {r['message']}[/]",
            highlight=False,
        )
    for r in s["validation"]:
        if not r["success"] and r["on_fail"] != "reject_file":
            console.print(
                f"  {r['file']} {r['column']}: {r['rule']}: {r['unexpected_count']} row(s): {r['message']}",
                highlight=False,
            )
    if s.get("report"):
        console.print(f"report: {s['report']}")
    raise typer.Exit({"VALIDATED": 0, "REJECTED": 1}.get(s["status"], 2))


def _out_root(out: str | None) -> str:
    return out or settings.load().out or str(Path("demo-out", "out"))


@app.command()
def query(
    sql: str = typer.Argument(..., help='SQL over the catalog\'s views, e.g. "select * from runs"'),
    out: str | None = typer.Option(None, help="Output root (default: TRP_OUT, else demo-out/out)"),
    format: str = typer.Option("table", help="table (on screen), csv or parquet"),
    output: str | None = typer.Option(None, help="File to write (csv: default standard output)"),
    limit: int = typer.Option(100, help="Rows shown in table format"),
) -> None:
    """Run SQL against the published catalog (published/catalog.duckdb): one view per dataset, *_history
    views of superseded runs, and the runs and run_trusts tables."""
    import duckdb

    from pipeline.publishing.catalog import open_catalog
    from pipeline.storage import Store

    if format not in ("table", "csv", "parquet") or (format == "parquet" and not output):
        console.print("[red]--format is table, csv or parquet (parquet needs --output FILE)[/]")
        raise typer.Exit(2)
    try:
        with open_catalog(Store(_out_root(out))) as con:
            rel = con.sql(sql)
            if rel is None:
                raise typer.Exit(0)
            if format == "parquet":
                rel.write_parquet(output)
            elif format == "csv":
                rel.df().to_csv(output or sys.stdout, index=False)
            else:
                _print_relation(rel, limit)
    except (duckdb.Error, FileNotFoundError) as exc:
        console.print(f"[red]query failed:[/] {exc}")
        raise typer.Exit(2) from None


_NUMERIC = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
}


def _print_relation(rel, limit: int) -> None:
    """DuckDB's own values (a DATE prints as a date, a count as an integer), numbers right-aligned."""
    rows = rel.limit(limit + 1).fetchall()
    table = Table(show_lines=False)
    for name, kind in zip(rel.columns, rel.types):
        table.add_column(str(name), justify="right" if str(kind).split("(")[0] in _NUMERIC else "left")
    for row in rows[:limit]:
        table.add_row(*("" if v is None else str(v) for v in row))
    _stdout().print(table)
    if len(rows) > limit:
        console.print(f"(first {limit} rows; --limit N for more, or --format csv)")


@app.command()
def diff(
    from_date: str = typer.Option(..., "--from", help="The earlier run date, YYYY-MM-DD"),
    to_date: str = typer.Option(..., "--to", help="The later run date, YYYY-MM-DD"),
    out: str | None = typer.Option(None, help="Output root (default: TRP_OUT, else demo-out/out)"),
) -> None:
    """What changed between two runs, per trust: moves done, newly planned and re-planned; cases whose OM or
    side changed; staff re-assigned; and rules newly rejecting files or holding rows back. Runs made under
    different pseudonym keys are not compared."""
    from pipeline.publishing.catalog import open_catalog
    from pipeline.publishing.night_diff import case_changes, quarantine_changes, staff_changes
    from pipeline.storage import Store

    queries = {
        "case_alignment": "trust_code, case_id, om_id, side",
        "staff_assignment": "trust_code, staff_id, side, unit",
        "validation": "trust_code, file, rule, severity, success, unexpected_count",
    }
    with open_catalog(Store(_out_root(out))) as con:
        dates = {str(d) for (d,) in con.sql("select run_date from runs").fetchall()}
        missing = [d for d in (from_date, to_date) if d not in dates]
        if missing:
            console.print(f"[red]no published run for {', '.join(missing)}[/] (runs: {', '.join(sorted(dates))})")
            raise typer.Exit(2)
        keys = dict((str(d), k) for d, k in con.sql("select run_date, key_id from runs").fetchall())
        if keys[from_date] != keys[to_date]:
            raise UserError(
                f"the runs of {from_date} and {to_date} were made under different pseudonym keys "
                "(TRP_PSEUDONYM_KEY): their pseudonyms do not join, so they cannot be compared"
            )
        runs = {
            d: {
                ds: con.execute(f"select {cols} from {ds} where run_date = ?", [d]).df() for ds, cols in queries.items()
            }
            for d in (from_date, to_date)
        }
        moves = con.execute(
            "select trust_code, sum(moves_outstanding) filter (where run_date = ?::date) as outstanding_before, "
            "sum(moves_outstanding) filter (where run_date = ?::date) as outstanding_after, "
            "sum(moves_done) filter (where run_date > ?::date) as done, "
            "sum(newly_planned) filter (where run_date > ?::date) as newly_planned, "
            "sum(replanned) filter (where run_date > ?::date) as replanned "
            "from progress where run_date between ?::date and ?::date group by all order by 1",
            [from_date, to_date, from_date, from_date, from_date, from_date, to_date],
        ).df()
    a, b = runs[from_date], runs[to_date]
    for title, frame in (
        (
            "moves (done, newly planned and re-planned summed over the runs after the first)",
            moves.astype({c: "Int64" for c in moves.columns if c != "trust_code"}),
        ),
        ("cases", case_changes(a["case_alignment"], b["case_alignment"])),
        ("staff", staff_changes(a["staff_assignment"], b["staff_assignment"])),
        ("files rejected and rows held back", quarantine_changes(a["validation"], b["validation"])),
    ):
        table = Table(title=f"{title}: {from_date} -> {to_date}")
        for col in frame.columns:
            table.add_column(col, justify="right" if frame[col].dtype.kind in "iu" else "left")
        for row in frame.itertuples(index=False):
            table.add_row(*(str(v) for v in row))
        _stdout().print(table)


@app.command()
def prune(
    out: str | None = typer.Option(None, help="Output root (default: TRP_OUT, else demo-out/out)"),
    policy: str | None = typer.Option(None, help="Policy file: its retention periods (default: policy v1)"),
    as_of: str | None = typer.Option(None, help="Count the periods back from this date (default: the newest run date)"),
    apply: bool = typer.Option(False, "--apply", help="Remove them (without it, only say what would go)"),
) -> None:
    """Superseded runs and trusts' operational folders past the policy's retention periods: listed, and with
    --apply removed (never the current run of a date, never a trust's newest operational folder)."""
    from pipeline.policy import load_policy
    from pipeline.publishing.prune import prunable
    from pipeline.publishing.prune import prune as remove
    from pipeline.runs.planning import checked_run_date
    from pipeline.storage import Store

    store = Store(_out_root(out))
    found = prunable(store, load_policy(policy).retention, None if as_of is None else checked_run_date(as_of))
    by_kind: dict[str, list] = {}
    for p in found:
        by_kind.setdefault(p.what, []).append(p)
    for what, items in sorted(by_kind.items()):
        console.print(
            f"{len(items)} {what}(s), {sum(p.bytes for p in items) / (1 << 20):,.1f} MiB: "
            f"{', '.join('/'.join(p.parts) for p in items[:5])}{', ...' if len(items) > 5 else ''}",
            highlight=False,
        )
    if not found:
        console.print("nothing to prune")
    elif apply:
        remove(store, found)
        console.print(f"removed {len(found)} folder(s); the catalog is rebuilt")
    else:
        console.print("dry run: nothing removed (--apply removes them)")


tokens_app = typer.Typer(help="Trusts' API tokens for the upload service (stored as salted hashes only).")
app.add_typer(tokens_app, name="tokens")
TOKENS_HELP = "Token file (default: TRP_TOKENS, else trp-tokens.json)"


def _tokens(path: str | None):
    from pipeline.uploads.tokens import TokenStore

    return TokenStore(path or settings.load().tokens or "trp-tokens.json")


@tokens_app.command("issue")
def tokens_issue(
    trust: str = typer.Option(..., help="Trust code"), tokens: str | None = typer.Option(None, help=TOKENS_HELP)
) -> None:
    """Issue a token for a trust; it is printed once, on standard output, and never stored."""
    issued = _tokens(tokens).issue(_trust_code(trust))
    console.print(
        f"token {issued.token_id} for {issued.trust} (give it to the trust's data officer; it cannot be shown again)"
    )
    print(issued.token)


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: str = typer.Argument(..., help="The token id (the part after 'trp.')"),
    tokens: str | None = typer.Option(None, help=TOKENS_HELP),
) -> None:
    """Revoke a token at once: the next request with it is refused."""
    if not _tokens(tokens).revoke(token_id):
        console.print(f"[red]no live token {token_id}[/]")
        raise typer.Exit(2)
    console.print(f"revoked {token_id}")


@tokens_app.command("list")
def tokens_list(tokens: str | None = typer.Option(None, help=TOKENS_HELP)) -> None:
    """Tokens issued: id, trust, when issued and revoked (never the token)."""
    for t in _tokens(tokens).list():
        print(f"{t['token_id']}  {t['trust']}  issued {t['issued_at']}  revoked {t['revoked_at'] or '-'}")


@app.command()
def serve(
    landing: str = typer.Option(..., help="Landing zone: local path or fsspec URL"),
    out: str = typer.Option(..., help="Output root (arrival reports, trusts' outputs)"),
    tokens: str | None = typer.Option(None, help=TOKENS_HELP),
    host: str = typer.Option("127.0.0.1", help="Address to bind (put a TLS proxy in front for anything else)"),
    port: int = typer.Option(8000),
    max_mb: float = typer.Option(256, help="Largest file accepted, MiB"),
    idle_seconds: float = typer.Option(30, help="An upload that sends nothing this long is dropped"),
    upload_seconds: float = typer.Option(600, help="An upload must finish within this"),
    header_seconds: float = typer.Option(10, help="A connection must send each request's headers within this"),
    max_connections: int = typer.Option(
        512, help="Connections open at most; past it, the one waiting longest for its headers is closed"
    ),
    policy: str | None = typer.Option(
        None, help="Policy file (its limits on extracts; default: TRP_POLICY, else policy v1)"
    ),
) -> None:
    """The upload service and its web page for trust data officers."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")

    from pipeline.policy import load_policy
    from pipeline.uploads.service import ServiceOptions
    from pipeline.uploads.service import serve as run_service

    limits = load_policy(policy or settings.load().policy).extracts
    options = ServiceOptions(
        landing, out, str(_tokens(tokens).path), int(max_mb * (1 << 20)), idle_seconds, upload_seconds, limits
    )
    run_service(options, host, port, header_seconds, max_connections)


@app.command()
def upload(
    files: list[Path] = typer.Argument(
        ...,
        help="staff.csv, cases.csv, retention_requests.csv, appeals.csv, reductions.csv "
        "(in this order: each is checked against those before it)",
    ),
    url: str = typer.Option(..., help="The upload service, e.g. http://127.0.0.1:8000"),
    token_file: Path = typer.Option(..., help="File holding your trust's token"),
    trust: str = typer.Option(..., help="Your trust code"),
    date: str = typer.Option(..., help="Extract date YYYY-MM-DD"),
) -> None:
    """Upload an extract's files and print the validation. Exit 0: accepted (rows may be held back);
    1: a file was rejected; 2: an upload was refused."""
    import httpx

    from pipeline.layout import is_date_folder
    from pipeline.uploads.client import upload_extract

    trust = _trust_code(trust)
    if not is_date_folder(date):
        raise UserError(f"--date must be a real date written YYYY-MM-DD, not {date!r}")
    try:
        token = token_file.read_text().strip()
    except OSError as exc:
        raise UserError(f"the token file {token_file} cannot be read: {exc.strerror or exc}") from None
    for f in files:
        if not f.is_file():
            raise UserError(f"{f} is not a file")
    try:
        outcome = upload_extract(url, token, trust, date, files, console)
    except RuntimeError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    except httpx.HTTPError as exc:
        raise UserError(
            f"cannot reach the upload service at {url} ({type(exc).__name__}: {exc}): check the address "
            "and that the service is running"
        ) from None
    refused = [a for a in outcome[:-1] if a["outcome"] == "REJECTED"]  # the last answer says the rest
    v = outcome[-1]["validation"]
    console.print(
        f"{trust} {date}: {v['status']}, {v['quarantined_rows']} row(s) held back, {v['warnings']} warning(s)",
        highlight=False,
    )
    for r in [f for a in refused for f in a["validation"]["rejected_files"]] + v["rejected_files"] + v["held_back"]:
        console.print(
            f"  {r['file']} line {r['line'] or '-'}, column {r['column'] or '-'}: {r['rule']}: {r['message']}",
            highlight=False,
        )
    status = "REJECTED" if refused else v["status"]
    raise typer.Exit({"VALIDATED": 0, "REJECTED": 1}.get(status, 2))


@app.command()
def generate(
    out: str = typer.Option(..., help="Landing zone to write"),
    scale: float = typer.Option(1.0, help="1.0 = national volume (about 240,000 cases, 18,000 staff)"),
    seed: int = typer.Option(0),
    dirty: bool = typer.Option(False, help="Add the faults real extracts have"),
) -> None:
    """Realistic synthetic extracts for all 35 trusts."""
    from pipeline.synthetic.landing import generate_landing

    counts = generate_landing(out, scale, seed, dirty)
    console.print(f"wrote {len(counts)} trusts, {sum(counts.values()):,} cases to {out}")


DEMO_KEY = b"trp-demo-key-not-secret"  # documented: demo outputs are synthetic, and a second demo joins the first


@app.command()
def demo(
    workdir: str = typer.Option("demo-out", help="Where the landing zone and outputs go"),
    scale: float = typer.Option(1.0),
    nights: int = typer.Option(1, help="Nights to run: the first as generated, then each moved on (trp simulate)"),
) -> None:
    """Generate a national landing zone, run it (night after night with --nights) and summarise: no set-up."""
    from pipeline.runs.nightly import run_nightly
    from pipeline.synthetic.landing import generate_landing
    from pipeline.synthetic.simulate import simulate

    if nights < 1:
        raise UserError("--nights must be at least 1")
    landing, out = str(Path(workdir, "landing")), str(Path(workdir, "out"))
    t0 = time.perf_counter()
    counts = generate_landing(landing, scale, seed=0, dirty=True)
    console.print(
        f"generated {len(counts)} trusts, {sum(counts.values()):,} cases in {landing} "
        f"({time.perf_counter() - t0:.1f} s; with realistic faults)"
    )
    key = settings.load().pseudonym_key.encode()
    if not key:
        key = DEMO_KEY
        console.print(
            "[yellow]demo mode: TRP_PSEUDONYM_KEY not set; using the demo key "
            f"{DEMO_KEY.decode()!r} (synthetic data only)[/]"
        )

    def night(date: str):
        t = time.perf_counter()
        with _progress(len(counts)) as on_trust_done:
            result = run_nightly(landing, out, date, pseudonym_key=key, on_trust_done=on_trust_done)
        _summary(result.manifest, result.manifest_path)
        console.print(f"run of {date} took {time.perf_counter() - t:.1f} s")
        return result

    simulate(landing, out, nights, seed=0, run=night)


@app.command("simulate")
def simulate_nights(
    landing: str = typer.Option(..., help="Landing zone holding each trust's first extract (trp generate)"),
    out: str = typer.Option(..., help="Output root"),
    nights: int = typer.Option(..., help="Nights to run, from the newest extract date"),
    seed: int = typer.Option(0),
    moves_done: float | None = typer.Option(None, help="Share of planned moves shown done in nDelius each night"),
    cases_ending: float | None = typer.Option(None, help="Share of cases ending each night"),
    cases_arriving: float | None = typer.Option(None, help="Share of new cases arriving (unallocated) each night"),
    leavers: float | None = typer.Option(None, help="Share of offender managers leaving each night"),
    joiners: float | None = typer.Option(None, help="Share of offender managers joining each night"),
    retention_decided: float | None = typer.Option(None, help="Share of pending retention requests decided each night"),
    appeals_upheld: float | None = typer.Option(None, help="Share of pending appeals upheld each night"),
    policy: str | None = typer.Option(None, help="Policy file (default: the packaged policy v1)"),
) -> None:
    """Run the transition night after night: each night's extracts moved on from the night before as nDelius
    would show the trusts catching up (deterministic by seed), then run. Needs TRP_PSEUDONYM_KEY. A rate left
    out takes its default (docs/decisions.md, section 5)."""
    from pipeline.runs.nightly import run_nightly
    from pipeline.synthetic.simulate import NightRates, simulate

    if nights < 1:
        raise UserError("--nights must be at least 1")
    given = {
        "moves_done": moves_done,
        "cases_ending": cases_ending,
        "cases_arriving": cases_arriving,
        "leavers": leavers,
        "joiners": joiners,
        "retention_decided": retention_decided,
        "appeals_upheld": appeals_upheld,
    }
    rates = NightRates(**{k: v for k, v in given.items() if v is not None})
    if not all(0 <= r <= 1 for r in vars(rates).values()):
        raise UserError("every rate is a share between 0 and 1")

    def night(date: str):
        result = run_nightly(landing, out, date, policy)
        trusts = result.manifest["trusts"].values()
        moved, published = sum(t.get("moved", 0) for t in trusts), sum("cases" in t for t in trusts)
        console.print(f"{date}: {published} trusts published, {moved:,} moves outstanding", highlight=False)
        return result

    simulate(landing, out, nights, seed, rates, run=night)


def _summary(manifest: dict, path: str) -> None:
    trusts = manifest["trusts"].values()
    done = [t for t in trusts if "cases" in t]
    cases = sum(t["cases"] for t in done)
    staff = sum(t["staff"] for t in done)
    table = Table(title=f"run {manifest['run_id']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    by_status: dict[str, int] = {}
    for t in trusts:
        by_status[t["status"]] = by_status.get(t["status"], 0) + 1
    table.add_row("trusts", ", ".join(f"{v} {k.lower()}" for k, v in sorted(by_status.items())))
    table.add_row("cases aligned", f"{cases:,}")
    table.add_row("cases to NPS", f"{sum(t['nps_cases'] for t in done) / max(cases, 1):.1%}")
    table.add_row("staff assigned", f"{staff:,}")
    table.add_row("staff to NPS", f"{sum(t['nps_staff'] for t in done) / max(staff, 1):.1%}")
    table.add_row("cases moved", f"{sum(t['moved'] for t in done):,}")
    table.add_row("rows quarantined", f"{sum(t.get('quarantined_rows', 0) for t in done):,}")
    table.add_row("officers over capacity", f"{sum(t['over_capacity'] for t in done):,}")
    table.add_row("manifest", path)
    root = path.rsplit("/published/_manifests/", 1)[0]
    table.add_row("run report", f"{root}/reports/{manifest['run_date']}/index.html")
    table.add_row("analysts", f'trp query --out {root} "select * from run_trusts"')
    Console().print(table)
    for t in trusts:
        if t["status"] != "FRESH":
            why = "; ".join(
                f"{r['file']} line {r['line'] or '-'}: {r['rule']}: {r['message']}" for r in t["rejected_files"]
            )
            console.print(f"[yellow]{t['trust']} {t['status']}[/] (extract {t['extract_date']}): {why}")


if __name__ == "__main__":  # pragma: no cover
    main()
