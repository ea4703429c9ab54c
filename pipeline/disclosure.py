"""Small-count suppression for anything published to a wide audience (the run report), as ONS does.

Primary: a count of at least 1 and under the threshold is hidden. Secondary: a table is published with its
row and column totals, so a line (row or column) with exactly one hidden cell would give it away by
subtraction; the smallest other non-zero cell of that line is hidden too, repeated until no line has exactly
one hidden cell. Zeros stay visible (they are structural here: a side with no cases of a kind). Totals are
shown only when they are themselves at or above the threshold.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def suppression_mask(counts: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """True where a cell of a table of counts must be hidden (primary and secondary suppression)."""
    values = counts.to_numpy(dtype=float)
    hidden = (values >= 1) & (values < threshold)
    changed = True
    while changed:
        changed = False
        for axis_view in (hidden, hidden.T):
            vals = values if axis_view is hidden else values.T
            for i in range(axis_view.shape[0]):
                if axis_view[i].sum() == 1:
                    candidates = np.where(~axis_view[i] & (vals[i] > 0))[0]
                    if len(candidates):
                        axis_view[i, candidates[np.argmin(vals[i, candidates])]] = True
                        changed = True
    return pd.DataFrame(hidden, index=counts.index, columns=counts.columns)


def suppressed_table(counts: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """The table as text for publishing: hidden cells as "[c]", with row and column totals ("Total")."""
    mask = suppression_mask(counts, threshold)
    shown = counts.astype("int64").astype(str).mask(mask, "[c]")
    row_totals = counts.sum(axis=1).astype("int64")
    shown["Total"] = row_totals.astype(str).where(row_totals.eq(0) | row_totals.ge(threshold), "[c]")
    col_totals = counts.sum(axis=0).astype("int64")
    grand = int(col_totals.sum())
    totals = col_totals.astype(str).where(col_totals.eq(0) | col_totals.ge(threshold), "[c]").tolist()
    shown.loc["Total"] = [*totals, str(grand) if grand == 0 or grand >= threshold else "[c]"]
    return shown


def suppressed_values(counts: pd.Series, threshold: int) -> pd.Series:
    """One line of counts for a chart: hidden cells become NaN (drawn as gaps, never as their value)."""
    mask = suppression_mask(counts.to_frame(), threshold).iloc[:, 0]
    return counts.astype(float).mask(mask)
