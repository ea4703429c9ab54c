"""Write synthetic extracts as trusts upload them (spec §3), optionally with the faults real extracts have."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.contract import FILES
from pipeline.storage import Store
from pipeline.synthetic import TrustExtract


def to_csv_text(df: pd.DataFrame) -> str:
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            out[col] = s.dt.strftime("%Y-%m-%d")
        elif pd.api.types.is_bool_dtype(s):
            out[col] = s.map({True: "Y", False: "N"})
    return out.to_csv(index=False, lineterminator="\n")


def write_extract(store: Store, e: TrustExtract, date: str, dirty_rng: np.random.Generator | None = None,
                  faults: set[str] = frozenset()) -> None:
    """Write one trust's four files under LANDING/<TRUST>/<date>/; `faults` names the dirty ones to apply."""
    tables = {"staff": e.staff.copy(), "cases": e.cases.copy(), "retention_requests": e.retention_requests.copy(),
              "appeals": e.appeals.copy()}
    if dirty_rng is not None:
        _spoil_rows(tables, dirty_rng, e.trust_code)
    if "missing_column" in faults:
        tables["staff"] = tables["staff"].drop(columns=["grade"])
    for kind, df in tables.items():
        text = to_csv_text(df)
        encoding, newline, bom = "utf-8", "\n", b""
        if "cp1252" in faults and kind == "staff":
            encoding = "cp1252"
        if "crlf" in faults:
            newline = "\r\n"
        if "bom" in faults:
            bom = b"\xef\xbb\xbf"
        data = bom + text.replace("\n", newline).encode(encoding, errors="replace")
        store.write_bytes(data, e.trust_code, date, FILES[kind].name)


def _spoil_rows(tables: dict[str, pd.DataFrame], rng: np.random.Generator, trust: str) -> None:
    """Row faults at realistic rates (about 0.2% of rows): the rest of each file must still go through."""
    staff, cases = tables["staff"], tables["cases"]
    staff["full_name"] = staff["full_name"].astype(object)
    staff.loc[staff.index[: max(1, len(staff) // 50)], "full_name"] = "O'Brien, Siân \"Sam\"\nsecond line"
    n = len(cases)
    picks = rng.choice(n, size=min(n, max(6, n // 500)), replace=False)
    cases["crn"] = cases["crn"].astype(object)
    cases["sentence_date"] = cases["sentence_date"].dt.strftime("%Y-%m-%d").astype(object)
    for j, i in enumerate(picks):
        fault = j % 6
        if fault == 0:
            cases.iat[i, cases.columns.get_loc("crn")] = "x12"
        elif fault == 1:
            cases.iat[i, cases.columns.get_loc("sentence_date")] = "31/02/2013"
        elif fault == 2:
            cases.iat[i, cases.columns.get_loc("trust_code")] = "ZZZ"
        elif fault == 3:
            cases.iat[i, cases.columns.get_loc("rosh")] = "EXTREME"
        elif fault == 4:
            cases.iat[i, cases.columns.get_loc("team_code")] = "=HYPERLINK(\"http://x\")"
        else:
            cases.iat[i, cases.columns.get_loc("crn")] = cases["crn"].iat[(i + 1) % n]
    tables["cases"] = cases
