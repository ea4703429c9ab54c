"""`trp simulate`: the transition night after night. Between runs each trust's extract moves on the way
nDelius would show the trusts catching up with the plan: a share of planned moves and allocations done,
cases ending and arriving, officers leaving and joining, retention requests decided, the odd appeal upheld.
Deterministic by seed. Both the demo of a transition and the ground for the night-after-night tests.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline import layout
from pipeline.extracts.contract import FILES
from pipeline.extracts.csv_text import decode
from pipeline.extracts.reading import extract_dates
from pipeline.reference import load_reference
from pipeline.storage import Store

ARRIVALS_PER_NIGHT = 1400  # per trust: what the CRNs of arriving cases have room for (see _new_crns)


@dataclass(frozen=True)
class NightRates:
    """How far each trust's extract moves on between two nights (shares per night)."""

    moves_done: float = 0.25  # of the moves and allocations planned and not yet shown done
    cases_ending: float = 0.005
    cases_arriving: float = 0.005  # arriving unallocated
    leavers: float = 0.002  # of the offender managers
    joiners: float = 0.002  # of the offender managers, as new POs and PSOs
    retention_decided: float = 0.2  # of the PENDING retention requests, accepted or rejected evenly
    appeals_upheld: float = 0.05  # of the PENDING appeals


def _read(raw: bytes, name: str = "") -> pd.DataFrame:
    """An extract file as text, decoded as ingest decodes it (UTF-8 with or without BOM, or Windows-1252)."""
    text, _, _ = decode(raw, name)
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def _b36(n: int, width: int) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    for _ in range(width):
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out


def _new_crns(trust_index: int, night: int, count: int) -> list[str]:
    """CRNs no extract holds: the synthetic extracts use letters A-C, these H onwards, 20 nights a letter,
    each trust its own range of numbers."""
    letter = chr(ord("H") + night // 20)
    base = trust_index * 20 * ARRIVALS_PER_NIGHT + (night % 20) * ARRIVALS_PER_NIGHT
    return [f"{letter}{base + j:06d}" for j in range(count)]


def evolve(
    tables: dict[str, pd.DataFrame],
    plan: pd.DataFrame | None,
    rng: np.random.Generator,
    rates: NightRates,
    trust_index: int,
    night: int,
    date: str,
) -> dict[str, pd.DataFrame]:
    """The next extract of one trust, from its current one (text tables by kind) and the plan the last run
    made from it (case_alignment.csv as text, None when the trust had none)."""
    staff, cases = tables["staff"].copy(), tables["cases"].copy()
    trust = staff["trust_code"].mode().iloc[0] if len(staff) else ""

    if plan is not None and len(plan):
        planned = plan[(plan["moved"] == "Y") | (plan["reason"] == "ALLOCATED")].set_index("crn")
        at = cases["crn"].map(planned["om"])
        then = cases["crn"].map(planned["current_om"]).astype(object).fillna("")  # all missing: float, not text
        due = at.notna().to_numpy() & (cases["om_staff_code"].to_numpy() == then.to_numpy())
        done = due & (rng.random(len(cases)) < rates.moves_done)
        cases.loc[done, "om_staff_code"] = at[done]
        team = staff.drop_duplicates("staff_code").set_index("staff_code")["team_code"]
        moved_team = cases.loc[done, "om_staff_code"].map(team)
        cases.loc[done, "team_code"] = moved_team.where(moved_team.notna(), cases.loc[done, "team_code"])

    managers = np.flatnonzero((staff["role"] == "OFFENDER_MANAGEMENT").to_numpy())
    leaving = (
        rng.choice(managers, size=min(len(managers), rng.binomial(len(managers), rates.leavers)), replace=False)
        if len(managers)
        else np.array([], dtype=np.int64)
    )
    joining = rng.binomial(len(managers), rates.joiners) if len(managers) else 0
    new_staff = staff.iloc[rng.choice(managers, size=joining)].copy() if joining else staff.iloc[:0]
    if joining:
        new_staff["staff_code"] = [f"{trust[:3]}J{_b36(night * 36 + j, 3)}" for j in range(joining)]
        new_staff["grade"] = np.where(rng.random(joining) < 0.5, "PO", "PSO")
        new_staff["full_name"] = [f"New Officer {night}-{j}" for j in range(joining)]
        new_staff["service_start"] = date
        for col in ("leaving_date", "preference", "ni_number"):
            if col in new_staff:
                new_staff[col] = ""
    staff = pd.concat([staff.drop(staff.index[leaving]), new_staff], ignore_index=True)

    ending = rng.random(len(cases)) < rates.cases_ending
    arriving = min(rng.binomial(len(cases), rates.cases_arriving) if len(cases) else 0, ARRIVALS_PER_NIGHT)
    new_cases = cases.iloc[rng.choice(len(cases), size=arriving)].copy() if arriving else cases.iloc[:0]
    if arriving:
        new_cases["crn"] = _new_crns(trust_index, night, arriving)
        new_cases["om_staff_code"] = ""
        new_cases["sentence_date"] = date
        if "expected_end" in new_cases:
            new_cases["expected_end"] = ""
    cases = pd.concat([cases[~ending], new_cases], ignore_index=True)

    out = {"staff": staff, "cases": cases}
    if "retention_requests" in tables:
        r = tables["retention_requests"].copy()
        pending = np.flatnonzero((r["status"] == "PENDING").to_numpy())
        decided = pending[rng.random(len(pending)) < rates.retention_decided]
        accept = rng.random(len(decided)) < 0.5
        r.loc[r.index[decided[accept]], "status"] = "ACCEPTED"
        r.loc[r.index[decided[~accept]], "status"] = "REJECTED"
        if "decision_note" in r:
            r.loc[r.index[decided[~accept]], "decision_note"] = "Decided at the transition panel"
        out["retention_requests"] = r
    if "appeals" in tables:
        a = tables["appeals"].copy()
        pending = np.flatnonzero((a["status"] == "PENDING").to_numpy())
        a.loc[a.index[pending[rng.random(len(pending)) < rates.appeals_upheld]], "status"] = "UPHELD"
        out["appeals"] = a
    if "reductions" in tables:  # a leaver's reductions leave the file with them
        r = tables["reductions"]
        out["reductions"] = r[r["staff_code"].isin(staff["staff_code"])]
    return out


def _plan_of(out: Store, trust: str, date: str) -> pd.DataFrame | None:
    path = layout.operational(trust, date, "case_alignment.csv")
    return _read(out.read_bytes(*path), path[-1]) if out.exists(*path) else None


def next_night(
    landing: str, out: str, date: str, after: str, night: int, seed: int, rates: NightRates, hold: Iterable[str] = ()
) -> None:
    """Write every trust's extract for `date`, moved on from its newest extract not after `after` and the plan
    the run of `after` made; the trusts in `hold` upload the same files again, unchanged."""
    land, done = Store(landing), Store(out)
    hold = set(hold)
    manifest = layout.manifest(after)
    used = (
        {t: v.get("extract_date") for t, v in json.loads(done.read_bytes(*manifest))["trusts"].items()}
        if done.exists(*manifest)
        else {}
    )
    for index, trust in enumerate(load_reference().trust_codes):
        dates, _ = extract_dates(land, trust, after)
        if not dates:
            continue
        # A trust moves on from the extract its last night used: one whose newest was rejected sends a good
        # one again, as a trust does once told.
        source = used.get(trust) if used.get(trust) in dates else dates[0]
        names = {kind: spec.name for kind, spec in FILES.items() if land.exists(trust, source, spec.name)}
        if trust in hold:
            for name in names.values():
                land.write_bytes(land.read_bytes(trust, source, name), trust, date, name)
            continue
        tables = {kind: _read(land.read_bytes(trust, source, name), name) for kind, name in names.items()}
        rng = np.random.default_rng([seed, night, index])
        for kind, frame in evolve(tables, _plan_of(done, trust, after), rng, rates, index, night, date).items():
            land.write_bytes(
                frame.to_csv(index=False, lineterminator="\n").encode("utf-8"), trust, date, FILES[kind].name
            )


def simulate(
    landing: str,
    out: str,
    nights: int,
    seed: int = 0,
    rates: NightRates = NightRates(),
    hold: Iterable[str] = (),
    run: Callable[[str], object] | None = None,
) -> list:
    """Run `nights` nights from the landing zone's newest extract date: that night as it is, then each next
    day's extracts moved on from the night before (`next_night`) and run. `run(date)` runs one night (the
    caller's `run_nightly`); the results, night by night."""
    land = Store(landing)
    newest = max(d for t in load_reference().trust_codes for d in extract_dates(land, t, "9999-12-31")[0][:1])
    results, date = [], newest
    for night in range(nights):
        if night:
            following = (dt.date.fromisoformat(date) + dt.timedelta(days=1)).isoformat()
            next_night(landing, out, following, date, night, seed, rates, hold)
            date = following
        results.append(run(date))
    return results
