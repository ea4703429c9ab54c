"""Validation of one uploaded file by Great Expectations 1.x, with the file's suite (`expectations/<kind>.json`).

The suites are the contract's rules as data. Each expectation's `meta` names its rule code, what a failure
does (`reject_file`: the trust's last good extract is used; `quarantine_row`: the row is held back with its
rule; `report`: a warning only) and the message a trust data officer reads. Great Expectations is the only
engine: this module prepares the frame the suites name, calls GX, and reads GX's results.

How GX is called, in each worker process (in each thread of the upload service: contexts are not
thread-safe): one ephemeral context with one pandas data source, one asset and batch definition per kind of
file, and each suite built once (`_gx()`, made on first use; a forked worker inherits the import). A long
reference list is cut to the values the file holds first (`_GX.narrowed`). Each file is validated twice at
most:
1. the whole suite at BOOLEAN_ONLY, the cheapest result: which expectations failed;
2. those, and any whose `mostly` lets some rows fail while it passes, again at COMPLETE: every row each
   flagged (its position: the frame's index is a RangeIndex) and how many.
The second pass's results replace the first's: `FileValidation.gx` is one suite validation result, GX's JSON.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import settings
from pipeline.extracts.contract import FILES

REJECT_FILE, QUARANTINE_ROW, REPORT = "reject_file", "quarantine_row", "report"
SUFFIXES = ("__num", "__date", "__given")
NUMBER = r"\s*-?\d+(?:\.\d+)?\s*"  # what `<col>__num` reads as a number (a fullmatch)
DATE = r"\d{4}-\d{2}-\d{2}"  # what `<col>__date` reads as a day, if the day exists
FIRST_PASS = {"result_format": "BOOLEAN_ONLY"}
ROW_DETAIL = {"result_format": "COMPLETE", "return_unexpected_index_query": False}


def suite_dir() -> Path:
    # The suites ship with the package (pipeline/data/expectations is the repository's expectations/).
    return Path(settings.load().expectations or Path(__file__).parent.parent / "data" / "expectations")


@dataclass(frozen=True)
class Check:
    """One expectation of a suite, with what its failure means for the trust."""

    kind: str
    type: str
    kwargs: dict
    rule: str
    on_fail: str
    message: str

    @property
    def column(self) -> str:
        """The uploaded column it is about (derived columns name their source)."""
        col = self.kwargs.get("column") or self.kwargs.get("column_A") or ""
        for suffix in SUFFIXES:
            col = col.removesuffix(suffix)
        return col

    @property
    def table_level(self) -> bool:
        return self.type.startswith("expect_table_")

    @property
    def partial(self) -> bool:
        """Passes with some rows failing (`mostly` below 1): only row detail says how many."""
        return self.kwargs.get("mostly", 1) < 1


def suite_json(kind: str) -> dict:
    return _suite_json(suite_dir(), kind)


@cache
def _suite_json(folder: Path, kind: str) -> dict:
    return json.loads((folder / f"{kind}.json").read_text(encoding="utf-8"))


def load_suite(kind: str) -> tuple[Check, ...]:
    """A suite's expectations as checks, in file order; each must say its rule and what its failure does."""
    return _checks(suite_dir(), kind)


@cache
def _checks(folder: Path, kind: str) -> tuple[Check, ...]:
    checks = []
    for e in _suite_json(folder, kind)["expectations"]:
        meta = e.get("meta", {})
        if meta.get("on_fail") not in (REJECT_FILE, QUARANTINE_ROW, REPORT) or not meta.get("rule"):
            raise ValueError(f"{kind} suite: {e['type']} needs meta.rule and meta.on_fail")
        checks.append(Check(kind, e["type"], e["kwargs"], meta["rule"], meta["on_fail"], meta.get("message", "")))
    return tuple(checks)


def _derived(kind: str) -> tuple[str, ...]:
    return _derived_in(suite_dir(), kind)


@cache
def _derived_in(folder: Path, kind: str) -> tuple[str, ...]:
    """The derived columns a suite names, as columns or in its row conditions."""
    checks = _checks(folder, kind)
    wanted = {c.kwargs.get(k) for c in checks for k in ("column", "column_A", "column_B")}
    wanted |= {
        name for c in checks for name in re.findall(r'"name": "(\w+)"', json.dumps(c.kwargs.get("row_condition")))
    }
    return tuple(sorted(n for n in wanted if n and n.endswith(SUFFIXES)))


def prepare(kind: str, text: pd.DataFrame) -> pd.DataFrame:
    """The frame a suite validates: the text columns (absent optional ones blank), by position (a RangeIndex,
    so that GX's unexpected index is the row), and the derived columns its expectations name: `<col>__num` (the
    number, when the text is one), `<col>__date` (the day, when the text is a real YYYY-MM-DD date) and
    `<col>__given` (not blank)."""
    absent = {col: "" for col in FILES[kind].optional if col not in text}
    frame = text.reset_index(drop=True).assign(**absent)
    derived = {}
    for name in _derived(kind):
        source, what = name.rsplit("__", 1)
        if source in frame:  # a required column left out: the table rule rejects the file, nothing to derive
            derived[name] = _DERIVE[what](frame[source].astype("str"))
    return frame.assign(**derived)


def _number(text: pd.Series) -> pd.Series:
    # As the accepted value will be typed (float(): digits of any script), so that the range rule sees it
    return text.where(text.str.fullmatch(NUMBER, na=False)).astype(float)


def _date(text: pd.Series) -> pd.Series:
    return pd.to_datetime(text.where(text.str.fullmatch(DATE, na=False)), format="%Y-%m-%d", errors="coerce")


def _given(text: pd.Series) -> pd.Series:
    return text.str.strip().ne("").fillna(False).astype(bool)


_DERIVE = {"num": _number, "date": _date, "given": _given}


def reference_params(kind: str, table) -> dict:
    """The $PARAMETERs a checked file gives the files checked after it: from staff.csv its staff codes
    (cases and retention requests name them), from cases.csv its CRNs (retention requests name them).
    `table`: the file's accepted rows (an Arrow table or a DataFrame)."""

    def texts(column) -> list:
        return column.to_pylist() if hasattr(column, "to_pylist") else list(column)

    if kind == "staff":
        codes = texts(table["staff_code"])
        return {"staff_codes": codes, "staff_codes_or_blank": [*codes, ""]}
    return {"crns": texts(table["crn"])} if kind == "cases" else {}


class _GX:
    """Great Expectations, set up once per process: an ephemeral context, one pandas data source, and per kind
    of file a dataframe asset, its whole-frame batch definition and its suite."""

    def __init__(self, folder: Path) -> None:
        import great_expectations as gx

        self.gx, self.folder = gx, folder
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = {"globally": False}
        self.source = self.context.data_sources.add_pandas("extracts")
        self.batches, self.suites, self.places, self.parameters, self.value_set_columns = {}, {}, {}, {}, {}
        for kind in FILES:  # what each file's validation reads of its suite, worked out once
            self.batches[kind] = self.source.add_dataframe_asset(kind).add_batch_definition_whole_dataframe(kind)
            self.suites[kind] = self.suite(kind, range(len(self.checks(kind))))
            ids, expectations = expectation_ids(folder, kind), _suite_json(folder, kind)["expectations"]
            self.places[kind] = {e: i for i, e in enumerate(ids)}
            # per expectation id, the $PARAMETER each argument names; per value-set parameter, its columns
            self.parameters[kind] = {
                ids[i]: {
                    k: v["$PARAMETER"] for k, v in e["kwargs"].items() if isinstance(v, dict) and "$PARAMETER" in v
                }
                for i, e in enumerate(expectations)
            }
            columns: dict[str, set[str]] = {}
            for i, e in enumerate(expectations):
                name = self.parameters[kind][ids[i]].get("value_set")
                if name and e["kwargs"].get("column"):
                    columns.setdefault(name, set()).add(e["kwargs"]["column"])
            self.value_set_columns[kind] = {k: sorted(v) for k, v in columns.items()}

    def checks(self, kind: str) -> tuple[Check, ...]:
        return _checks(self.folder, kind)

    def narrowed(self, kind: str, frame: pd.DataFrame, params: dict) -> dict:
        """The parameters, each list cut to the values the file holds in the columns whose value set it is.
        GX answers the same (a value of the file is in the cut list exactly when it is in the whole one), but
        it copies an expectation's arguments hundreds of times per file, so a trust's whole list of CRNs in
        every copy would cost more than the validation itself."""
        out = dict(params)
        for name, cols in self.value_set_columns[kind].items():
            cols = [c for c in cols if c in frame]
            if cols and isinstance(params.get(name), list) and len(params[name]) > _LONG:
                held = pd.unique(pd.concat([frame[c] for c in cols], ignore_index=True).dropna())
                out[name] = sorted(pd.Index(params[name]).intersection(pd.Index(held)).tolist())
        return out

    def suite(self, kind: str, places):
        """The suite of `kind`, or those of its expectations at `places`."""
        raw = _suite_json(self.folder, kind)
        return self.gx.ExpectationSuite(
            **{
                **raw,
                "name": kind,
                "expectations": [
                    {**raw["expectations"][i], "id": expectation_ids(self.folder, kind)[i]} for i in places
                ],
            }
        )

    def validate(self, kind: str, frame: pd.DataFrame, params: dict):
        """The file's suite validation result: BOOLEAN_ONLY, with COMPLETE results for what needs row detail."""
        params = self.narrowed(kind, frame, params)
        batch = self.batches[kind].get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(self.suites[kind], result_format=FIRST_PASS, expectation_parameters=params)
        place = self.places[kind]
        result.results.sort(key=lambda r: place[r.expectation_config.id])  # GX has an order of its own
        checks = self.checks(kind)
        detail = [i for i, (c, r) in enumerate(zip(checks, result.results)) if not r.success or c.partial]
        if any(checks[i].table_level for i in detail):  # the columns may not be there: the file is rejected
            detail = [i for i in detail if checks[i].table_level]
        if detail:
            rows = batch.validate(self.suite(kind, detail), result_format=ROW_DETAIL, expectation_parameters=params)
            for r in rows.results:
                result.results[place[r.expectation_config.id]] = r
        return result


@cache
def expectation_ids(folder: Path, kind: str) -> tuple[str, ...]:
    """Each expectation's id: the one its suite file gives it, else one made from its place in the file."""
    return tuple(
        e.get("id") or str(uuid.uuid5(uuid.NAMESPACE_URL, f"transition-pipeline/expectations/{kind}/{i}"))
        for i, e in enumerate(_suite_json(folder, kind)["expectations"])
    )


_HELD = threading.local()  # GX contexts are not thread-safe: the upload service checks uploads in threads


def _gx() -> _GX:
    """This thread's GX (a worker process has one thread: one per process), for the suites now in use."""
    folder, held = suite_dir(), getattr(_HELD, "gx", None)
    if held is None or held.folder != folder:
        held = _HELD.gx = _GX(folder)
    return held


def import_gx() -> None:
    """Import Great Expectations (3-6 s) without building anything: a process about to fork its workers."""
    import great_expectations  # noqa: F401


def warm_up() -> None:
    """Import GX and build its context now (a worker's first file would otherwise pay for it)."""
    _gx()


@dataclass
class FileValidation:
    """What one file's validation found: a result per expectation, the rows each failing one flagged, and
    GX's own result (JSON)."""

    kind: str
    results: list[dict]
    flagged: pd.DataFrame  # row, column, rule, message, value, on_fail
    gx: dict = field(default_factory=dict)

    def rejection(self) -> dict | None:
        """The first file rule that failed, if any."""
        for r in self.results:
            if r["on_fail"] == REJECT_FILE and not r["success"]:
                return r
        return None

    def rows(self, on_fail: str) -> pd.DataFrame:
        return self.flagged[self.flagged["on_fail"] == on_fail].drop(columns="on_fail")


def validate(kind: str, text: pd.DataFrame, params: dict) -> FileValidation:
    """Validate one parsed file with Great Expectations. `params` fills the suites' $PARAMETERs: trust,
    staff_codes, crns, ... (lists of text). If a table rule fails, no row is flagged: the file is rejected
    (its columns may not be there)."""
    frame = prepare(kind, text)
    gx = _gx()
    result = gx.validate(kind, frame, params)
    checks = gx.checks(kind)
    outcomes = list(zip(checks, result.results))
    rejected_whole = any(c.table_level and not r.success for c, r in outcomes)
    results, flagged = [], []
    for c, r in outcomes:
        if rejected_whole and not c.table_level:
            continue
        _raise_if_broken(c, r)
        rows = np.asarray(r.result.get("unexpected_index_list") or [], dtype=np.int64)
        results.append(_result(c, r))
        if len(rows) and c.on_fail != REJECT_FILE:
            src = c.column if c.column in text else None
            values = frame[src].iloc[rows].to_numpy(dtype=object) if src else np.full(len(rows), "", dtype=object)
            flagged.append((rows, c, values))
    return FileValidation(kind, results, _flagged(flagged), _kept(result.to_json_dict(), gx.parameters[kind]))


_LONG = 20  # a parameter of more values is another file's keys (a trust's CRNs): not copied into each result


def _kept(result: dict, parameters: dict[str, dict[str, str]]) -> dict:
    """GX's result as kept: an argument filled with a long parameter (the CRNs of the trust's cases, say) is
    the suite's `{"$PARAMETER": name}` again. It repeats another file of the extract: London's 48,000 CRNs made
    its retention requests' result 0.5 MB and its Data Docs page 2.7 MB, ten times slower to render."""
    for r in result["results"]:
        config = r["expectation_config"]
        for key, name in parameters.get(config["id"], {}).items():
            if isinstance(config["kwargs"].get(key), list) and len(config["kwargs"][key]) > _LONG:
                config["kwargs"][key] = {"$PARAMETER": name}
    return result


def _raise_if_broken(c: Check, r) -> None:
    """An expectation GX could not evaluate is the pipeline's fault, not the trust's: said as such."""
    info = r.exception_info or {}
    if info.get("raised_exception"):
        raise RuntimeError(f"{c.kind} suite, {c.type} ({c.rule}): {info.get('exception_message')}")


def _result(c: Check, r) -> dict:
    """One expectation's result as a row of the `validation` dataset."""
    message = c.message
    missing = sorted((r.result.get("details") or {}).get("mismatched", {}).get("missing") or [])
    if missing:
        message = f"{c.message}: {', '.join(missing)}"
    if c.table_level:
        unexpected = 0 if r.success else 1
    else:  # absent only from a BOOLEAN_ONLY result, which is kept for passing expectations that flag no row
        unexpected = r.result.get("unexpected_count", 0)
    return {
        "file": FILES[c.kind].name,
        "expectation": c.type,
        "rule": c.rule,
        "column": c.column,
        "on_fail": c.on_fail,
        "success": bool(r.success),
        "unexpected_count": int(unexpected),
        "message": message,
    }


@lru_cache(maxsize=1)
def _nothing_flagged() -> pd.DataFrame:
    return pd.DataFrame(
        {
            c: pd.Series(dtype="int64" if c == "row" else object)
            for c in ["row", "column", "rule", "message", "value", "on_fail"]
        }
    )


def _flagged(parts: list[tuple[np.ndarray, Check, np.ndarray]]) -> pd.DataFrame:
    """The rows each failing check flagged (rows, check, values), as one frame in row order, then by column
    and rule."""
    if not parts:
        return _nothing_flagged().copy()
    frame = pd.concat(
        [
            pd.DataFrame(
                {
                    "row": rows,
                    "column": c.column,
                    "rule": c.rule,
                    "message": c.message,
                    "value": values,
                    "on_fail": c.on_fail,
                }
            )
            for rows, c, values in parts
        ],
        ignore_index=True,
    )
    return frame.sort_values(["row", "column", "rule"], kind="stable").reset_index(drop=True)


CROSS_TRUST_RULE = "CRN_IN_TWO_TRUSTS"
CROSS_TRUST_MESSAGE = (
    "this CRN is also in another trust's extract for this run; both trusts keep the case "
    "until one of them corrects its extract"
)


def cross_trust_result(extract_date: str, conflicts: int) -> dict:
    """The run-wide check no single file can make (docs/extract-contract.md), as one more result of the cases file."""
    return {
        "file": FILES["cases"].name,
        "expectation": "crn_unique_across_trusts",
        "rule": CROSS_TRUST_RULE,
        "column": "crn",
        "on_fail": REPORT,
        "success": conflicts == 0,
        "unexpected_count": conflicts,
        "message": CROSS_TRUST_MESSAGE,
        "extract_date": extract_date,
    }


def parse_result(exc) -> dict:
    """A file that could not be read as CSV at all (binary, undecodable, duplicated column) as a result, so
    the `validation` dataset shows every rejection, not only those a suite found."""
    return {
        "file": exc.file,
        "expectation": "readable_csv",
        "rule": exc.rule,
        "column": exc.column,
        "on_fail": REJECT_FILE,
        "success": False,
        "unexpected_count": 1,
        "message": exc.message,
    }
