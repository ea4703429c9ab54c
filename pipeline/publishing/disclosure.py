"""Small-count suppression for anything published to a wide audience (the run report), as ONS does.

Primary: a count of at least 1 and under the threshold is hidden, totals included. Secondary: a table is
published with its row and column totals, so a line (a row or column with its total) with exactly one
hidden cell would give it away by subtraction; the smallest other non-zero cell of that line (which may be
the total) is hidden too, repeated until no line has exactly one hidden cell. Zeros stay visible (they are
structural here: a side with no cases of a kind).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _with_totals(counts: pd.DataFrame) -> np.ndarray:
    values = counts.to_numpy(dtype=float)
    values = np.column_stack([values, values.sum(axis=1)])
    return np.vstack([values, values.sum(axis=0)])


def _hidden_with_totals(counts: pd.DataFrame, threshold: int) -> np.ndarray:
    """The mask over the table with its totals row and column: every line (a row or column, its total
    included) ends with no hidden cell or at least two, so no subtraction recovers one."""
    values = _with_totals(counts)
    hidden = (values >= 1) & (values < threshold)
    changed = True
    while changed:
        changed = False
        for lines_hidden, lines in ((hidden, values), (hidden.T, values.T)):
            for i in range(lines.shape[0]):
                if lines_hidden[i].sum() == 1:
                    candidates = np.where(~lines_hidden[i] & (lines[i] > 0))[0]
                    lines_hidden[i, candidates[np.argmin(lines[i, candidates])]] = True
                    changed = True
    return hidden


def suppression_mask(counts: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """True where a cell of a table of counts must be hidden (primary and secondary suppression)."""
    hidden = _hidden_with_totals(counts, threshold)[:-1, :-1]
    return pd.DataFrame(hidden, index=counts.index, columns=counts.columns)


def suppressed_table(counts: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """The table as text for publishing, with its "Total" row and column: hidden cells as "[c]"."""
    values = _with_totals(counts).astype("int64").astype(str)
    values[_hidden_with_totals(counts, threshold)] = "[c]"
    return pd.DataFrame(values, index=[*counts.index, "Total"], columns=[*counts.columns, "Total"])


def suppressed_values(counts: pd.Series, threshold: int) -> pd.Series:
    """One line of counts for a chart (its total shown beside it): hidden cells become NaN, never drawn."""
    mask = suppression_mask(counts.to_frame(), threshold).iloc[:, 0]
    return counts.astype(float).mask(mask)
