"""Retention requests decided: each request as made, with its outcome and what happened to the case."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.domain import (
    OUTCOME_WORDS,
    RETENTION_HONOURED,
    RETENTION_NOT_FOUND,
    RETENTION_NOT_NEEDED,
    RETENTION_OM_LEFT,
    RETENTION_PENDING,
    RETENTION_REJECTED_MOVED,
)

HOLDING_STATUSES = ("ACCEPTED", "PENDING")


def retention_decisions(retention: pd.DataFrame, aligned: pd.DataFrame) -> pd.DataFrame:
    """Each request as made, with its status, explanation and what happened to the case."""
    out = retention.copy()
    row = pd.Index(aligned["crn"]).get_indexer(out["crn"])
    found = row >= 0

    def of_case(column: str) -> np.ndarray:
        values = np.full(len(row), None, dtype=object)
        values[found] = aligned[column].iloc[row[found]].to_numpy(dtype=object, na_value=None)
        return values

    cur, final, reason = of_case("current_om"), of_case("om"), of_case("reason")
    out["case_om"] = final
    out["case_reason"] = reason
    holding = out["status"].isin(HOLDING_STATUSES).to_numpy()
    pending = (out["status"] == "PENDING").to_numpy()
    stayed = pd.notna(final) & (final == cur)
    out["outcome"] = np.select(
        [pd.isna(reason), pending & stayed, holding & stayed, holding, stayed],
        [RETENTION_NOT_FOUND, RETENTION_PENDING, RETENTION_HONOURED, RETENTION_OM_LEFT, RETENTION_NOT_NEEDED],
        default=RETENTION_REJECTED_MOVED,
    )
    out["outcome_in_words"] = out["outcome"].map(OUTCOME_WORDS)
    return out.sort_values(["crn", "requested_by"], kind="stable").reset_index(drop=True)
