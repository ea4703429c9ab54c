"""A synthetic landing zone (`trp generate`): extracts written as trusts upload them, clean or with the faults
real extracts have (--dirty)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.extracts.contract import FILES
from pipeline.reference import load_reference
from pipeline.storage import Store
from pipeline.synthetic.generator import TrustExtract, generate_all


def to_csv_text(df: pd.DataFrame) -> str:
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            out[col] = s.dt.strftime("%Y-%m-%d")
        elif pd.api.types.is_bool_dtype(s):
            out[col] = s.map({True: "Y", False: "N"})
    return out.to_csv(index=False, lineterminator="\n")


def write_extract(
    store: Store,
    e: TrustExtract,
    date: str,
    dirty_rng: np.random.Generator | None = None,
    faults: set[str] = frozenset(),
) -> None:
    """Write one trust's five files under LANDING/<TRUST>/<date>/; `faults` names the dirty ones to apply."""
    tables = {
        "staff": e.staff.copy(),
        "cases": e.cases.copy(),
        "retention_requests": e.retention_requests.copy(),
        "appeals": e.appeals.copy(),
        "reductions": e.reductions.copy(),
    }
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
    staff.loc[staff.index[: max(1, len(staff) // 50)], "full_name"] = 'O\'Brien, Siân "Sam"\nsecond line'
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
            cases.iat[i, cases.columns.get_loc("team_code")] = '=HYPERLINK("http://x")'
        else:
            cases.iat[i, cases.columns.get_loc("crn")] = cases["crn"].iat[(i + 1) % n]
    tables["cases"] = cases


EXTRACT_DATE = "2014-06-01"
PREVIOUS_DATE = "2014-05-31"
# Which trusts carry which file-level faults in a dirty landing zone.
DIRTY_FILE_FAULTS = {"WPT": {"cp1252"}, "KNT": {"bom"}, "LDN": {"crlf"}, "DOR": {"missing_column"}}


def generate_landing(
    out: str, scale: float = 1.0, seed: int = 0, dirty: bool = False, date: str = EXTRACT_DATE
) -> dict[str, int]:
    """Write every trust's extract; returns case counts per trust."""
    store = Store(out)
    extracts = generate_all(load_reference(), scale, seed)
    if dirty:
        # One CRN in two trusts' extracts: a conflict the run must report to both.
        a, b = extracts[0], extracts[1]
        b.cases.loc[b.cases.index[0], "crn"] = a.cases["crn"].iloc[0]
    for e in extracts:
        faults = DIRTY_FILE_FAULTS.get(e.trust_code, set()) if dirty else set()
        rng = np.random.default_rng([seed, 99, *e.trust_code.encode()]) if dirty else None
        if "missing_column" in faults:
            write_extract(store, e, PREVIOUS_DATE)  # the last good extract the run falls back to
        write_extract(store, e, date, rng, faults)
    return {e.trust_code: len(e.cases) for e in extracts}
