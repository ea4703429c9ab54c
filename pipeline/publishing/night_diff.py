"""What changed between two nights' runs, per trust: a pure function of the two runs' published tables.

Cases and staff are matched by their pseudonyms (stable while the pseudonym key is). A case "changed
offender manager" when it is in both runs with a different OM; a person was "re-assigned" when their side
or unit differs; a rule is "new" when it rejected a file or held rows back in the later run and not in the
earlier.
"""

from __future__ import annotations

import pandas as pd

TRUST = "trust_code"


def _counts(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame.groupby(TRUST).size().rename(name)


def _per_trust(**frames: pd.DataFrame) -> pd.DataFrame:
    """One row per trust, a count column per frame (named by its keyword), 0 where a trust has none."""
    table = pd.concat([_counts(frame, name) for name, frame in frames.items()], axis=1)
    return table.fillna(0).astype("int64").sort_index().reset_index().rename(columns={"index": TRUST})


def case_changes(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Per trust: cases in each run, new and gone, and those whose OM or side changed between the runs."""
    both = before.merge(after, on=[TRUST, "case_id"], suffixes=("_before", "_after"))
    changed_om = both[both["om_id_before"] != both["om_id_after"]]
    changed_side = both[both["side_before"] != both["side_after"]]
    gone = before.merge(after[[TRUST, "case_id"]], how="left", indicator=True).query("_merge == 'left_only'")
    new = after.merge(before[[TRUST, "case_id"]], how="left", indicator=True).query("_merge == 'left_only'")
    return _per_trust(
        cases_before=before,
        cases_after=after,
        new_cases=new,
        gone_cases=gone,
        om_changed=changed_om,
        side_changed=changed_side,
    )


def staff_changes(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Per trust: people re-assigned (side or unit changed), joined and left between the runs."""
    both = before.merge(after, on=[TRUST, "staff_id"], suffixes=("_before", "_after"))
    moved = both[(both["side_before"] != both["side_after"]) | (both["unit_before"] != both["unit_after"])]
    left = before.merge(after[[TRUST, "staff_id"]], how="left", indicator=True).query("_merge == 'left_only'")
    joined = after.merge(before[[TRUST, "staff_id"]], how="left", indicator=True).query("_merge == 'left_only'")
    return _per_trust(staff_before=before, staff_after=after, reassigned=moved, joined=joined, left=left)


def quarantine_changes(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Per trust, file and rule that rejected a file or held rows back in either run: counts, and if it is new."""
    key = [TRUST, "file", "rule", "severity"]

    def failing(v: pd.DataFrame) -> pd.Series:
        held = v[~v["success"] & v["severity"].isin(["reject_file", "quarantine_row"])]
        return held.groupby(key)["unexpected_count"].sum()

    table = pd.concat([failing(before).rename("rows_before"), failing(after).rename("rows_after")], axis=1)
    table = table.fillna(0).astype("int64").sort_index().reset_index()
    table["new"] = (table["rows_before"] == 0) & (table["rows_after"] > 0)
    return table
