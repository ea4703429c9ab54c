"""`trp prune`: what the outputs may let go of after the policy's retention periods. Superseded runs (kept
whole for audit when a date is re-run) and trusts' operational folders older than their period before the
newest run date; never the current run of any date, and never a trust's newest operational folder (the
state the next night starts from). A dry run unless told to remove."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pipeline import layout
from pipeline.layout import is_date_folder
from pipeline.policy import RetentionPolicy
from pipeline.publishing.catalog import current_runs
from pipeline.storage import Store


@dataclass(frozen=True)
class Prunable:
    """A folder the retention periods let go of, why, and its size."""

    parts: tuple[str, ...]
    what: str
    bytes: int


def _run_date(run_id: str) -> str | None:
    head = run_id.split("_", 1)[0]
    return head if is_date_folder(head) else None


def prunable(out: Store, retention: RetentionPolicy, as_of: str | None = None) -> list[Prunable]:
    """Every folder past its retention period, oldest first. `as_of`: the date the periods count back from
    (the newest run date when not given, so the same outputs give the same answer on any day)."""
    current = current_runs(out)
    if not current:
        return []
    today = dt.date.fromisoformat(as_of or max(current))
    runs_before = (today - dt.timedelta(days=retention.superseded_runs_days)).isoformat()
    folders_before = (today - dt.timedelta(days=retention.operational_days)).isoformat()
    live = set(current.values())
    found = []
    for zone, what in (
        (layout.kept_runs(), "superseded run"),
        (layout.superseded(), "trust folders a re-run replaced"),
    ):
        for run_id in out.listdir(*zone):
            date = _run_date(run_id)
            if run_id not in live and date is not None and date < runs_before:
                found.append(Prunable((*zone, run_id), what, out.size(*zone, run_id)))
    for trust in out.listdir(*layout.operational()):
        dates = sorted(d for d in out.listdir(*layout.operational(trust)) if is_date_folder(d))
        for date in dates[:-1]:  # the newest is the next night's state, whatever its age
            if date < folders_before:
                found.append(
                    Prunable(
                        layout.operational(trust, date),
                        "operational folder",
                        out.size(*layout.operational(trust, date)),
                    )
                )
    return sorted(found, key=lambda p: (_run_date(p.parts[1]) or p.parts[-1], p.parts))


def prune(out: Store, found: list[Prunable]) -> None:
    """Remove what `prunable` found, then rebuild the catalog so its history views show what is kept."""
    from pipeline.publishing.catalog import refresh_catalog

    for p in found:
        out.rm(*p.parts)
    refresh_catalog(out)
