"""The four decisions for one trust, composed in order: case split, staff split, alignment, balance."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipeline.decisions.alignment import SolveReport, align_cases
from pipeline.decisions.balance import workforce_balance
from pipeline.decisions.capacity import with_capacity
from pipeline.decisions.case_split import split_cases
from pipeline.decisions.caseload import caseload
from pipeline.decisions.night import PROGRESS_COLUMNS, progress
from pipeline.decisions.retention import retention_decisions
from pipeline.decisions.staff_split import split_staff
from pipeline.domain import CRC, NPS
from pipeline.policy import Policy


@dataclass(frozen=True)
class TrustDecisions:
    staff_assignment: pd.DataFrame
    case_alignment: pd.DataFrame
    caseload: pd.DataFrame
    workforce_balance: pd.DataFrame
    retention_decisions: pd.DataFrame
    solver: list[SolveReport]
    progress: pd.DataFrame


def decide_trust(
    staff: pd.DataFrame,
    cases: pd.DataFrame,
    retention: pd.DataFrame,
    appeals: pd.DataFrame,
    policy: Policy,
    nps_unit: str,
    crc_unit: str,
    as_of: pd.Timestamp,
    previous_plan: pd.DataFrame | None = None,
    previous_staff: pd.DataFrame | None = None,
    run_date: pd.Timestamp | None = None,
    reductions: pd.DataFrame | None = None,
) -> TrustDecisions:
    """Run the split for one trust from typed tables (as pipeline.extracts.contract types them) to decision
    tables. `previous_*`: the staff assignment and case plan the last run before this one left
    (decisions.night); `run_date` the night's date, recorded as `assigned_on` and `planned_on` of what is
    decided tonight, and the day on which `reductions` (reductions.csv) must be active to count (the extract's
    date when not given)."""
    staff = with_capacity(staff, reductions, policy, run_date if run_date is not None else as_of)
    split = split_cases(cases.sort_values("crn", kind="stable").reset_index(drop=True), policy)
    assignment = split_staff(staff, split, appeals, policy, nps_unit, crc_unit, previous_staff, run_date)
    aligned, reports = align_cases(split, assignment, retention, policy, as_of, previous_plan, run_date)
    load = caseload(aligned, assignment, policy)
    balance = workforce_balance(load, assignment, policy, {NPS: nps_unit, CRC: crc_unit})
    night = progress(aligned, assignment, run_date) if run_date is not None else pd.DataFrame(columns=PROGRESS_COLUMNS)
    return TrustDecisions(assignment, aligned, load, balance, retention_decisions(retention, aligned), reports, night)
