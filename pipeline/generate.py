"""`trp generate`: a synthetic national landing zone, clean or with realistic faults (--dirty)."""
from __future__ import annotations

import numpy as np

from pipeline.extract_io import write_extract
from pipeline.reference import load_reference
from pipeline.storage import Store
from pipeline.synthetic import generate_all

EXTRACT_DATE = "2014-06-01"
PREVIOUS_DATE = "2014-05-31"
# Which trusts carry which file-level faults in a dirty landing zone.
DIRTY_FILE_FAULTS = {"WPT": {"cp1252"}, "KNT": {"bom"}, "LDN": {"crlf"}, "DOR": {"missing_column"}}


def generate_landing(out: str, scale: float = 1.0, seed: int = 0, dirty: bool = False,
                     date: str = EXTRACT_DATE) -> dict[str, int]:
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
            write_extract(store, e, PREVIOUS_DATE)      # the last good extract the run falls back to
        write_extract(store, e, date, rng, faults)
    return {e.trust_code: len(e.cases) for e in extracts}
