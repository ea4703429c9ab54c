"""What the nights before decided for a trust, read back from its operational folders: the state each night
starts from (decisions.night applies the rules)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipeline import layout
from pipeline.decisions.night import OUTSTANDING, PLAN_COLUMNS
from pipeline.decisions.staff_split import HELD_COLUMNS
from pipeline.storage import Store


@dataclass(frozen=True)
class PreviousState:
    """What the last run before this one decided for a trust (decisions.night): its run date, its staff
    assignment (staff_split.HELD_COLUMNS) and its case plan (night.PLAN_COLUMNS); all None for a trust no
    earlier run decided."""

    date: str | None = None
    staff: pd.DataFrame | None = None
    plan: pd.DataFrame | None = None


def previous_state(out: Store, trust: str, run_date: str) -> PreviousState:
    """The trust's state from the most recent operational folder before `run_date` that holds a plan: what
    the committed run of that date decided (a re-run or a backfill of `run_date` reads the same). Read once
    per trust. A plan written before `assigned_on` and `planned_on` were kept takes that run's date for them."""
    earlier = [d for d in out.listdir(*layout.operational(trust)) if layout.is_date_folder(d) and d < run_date]
    for date in sorted(earlier, reverse=True):
        folder = layout.operational(trust, date)
        if not (out.exists(*folder, "case_alignment.csv") and out.exists(*folder, "staff_assignment.csv")):
            continue
        then = pa.scalar(pd.Timestamp(date), pa.timestamp("ns"))
        plan = _state_table(out.read_bytes(*folder, "case_alignment.csv"), PLAN_COLUMNS, "planned_on")
        staff = _state_table(out.read_bytes(*folder, "staff_assignment.csv"), HELD_COLUMNS, "assigned_on")
        if plan["planned_on"].null_count == plan.num_rows:  # written before planned_on was kept
            planned = pc.is_in(plan["reason"], pa.array(sorted(OUTSTANDING)))
            plan = plan.set_column(
                plan.column_names.index("planned_on"),
                "planned_on",
                pc.if_else(planned, then, pa.scalar(None, pa.timestamp("ns"))),
            )
        if staff["assigned_on"].null_count == staff.num_rows:
            staff = staff.set_column(
                staff.column_names.index("assigned_on"),
                "assigned_on",
                pa.array([then.as_py()] * staff.num_rows, pa.timestamp("ns")),
            )
        return PreviousState(date, staff.to_pandas(), plan.to_pandas())
    return PreviousState()


def _state_table(raw: bytes, columns: list[str], day: str) -> pa.Table:
    """The columns of an operational CSV the state needs, read by Arrow (a large trust's plan is read every
    night): text with blanks as nulls (a column the file lacks: all null), `day` a timestamp."""
    table = pacsv.read_csv(
        io.BytesIO(raw),
        read_options=pacsv.ReadOptions(block_size=1 << 24),
        convert_options=pacsv.ConvertOptions(
            include_columns=columns,
            include_missing_columns=True,
            column_types={c: pa.string() for c in columns},
            strings_can_be_null=True,
            null_values=[""],
        ),
    )
    at = table.column_names.index(day)
    return table.set_column(at, day, pc.strptime(table[day], "%Y-%m-%d", "ns"))
