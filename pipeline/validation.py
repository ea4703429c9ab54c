"""Validation of one uploaded file against its Great Expectations suite (`expectations/<kind>.json`).

The suites are the contract's rules as data. Each expectation's `meta` names its rule code, what a failure
does (`reject_file`: the trust's last good extract is used; `quarantine_row`: the row is held back with its
rule; `report`: a warning only) and the message a trust data officer reads.

Two engines run the same suites:
- `mirror` (the nightly default): every expectation type used in the suites, re-implemented as one
  vectorised pandas step that computes exactly the rows GX would flag. Fast enough for national volume.
- `gx`: Great Expectations 1.x itself, an ephemeral context built per call from the suite JSON (contexts
  are not thread-safe and do not pickle), SUMMARY results first and row detail only for what failed.
tests/test_validation.py checks the two agree, row for row, on dirty synthetic extracts and hostile values.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.contract import FILES, blank
from pipeline.text import arrow_text, equals, filled, isin, matches, repeated

REJECT_FILE, QUARANTINE_ROW, REPORT = "reject_file", "quarantine_row", "report"
SUFFIXES = ("__num", "__date", "__given")
NUMBER = r"\A\s*-?\d+(?:\.\d+)?\s*\Z"
DATE = r"\A\d{4}-\d{2}-\d{2}\Z"
ENGINES = ("mirror", "gx")


def suite_dir() -> Path:
    # The suites ship with the package (pipeline/data/expectations is the repository's expectations/).
    return Path(os.environ.get("TRP_EXPECTATIONS") or Path(__file__).with_name("data") / "expectations")


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

    @cached_property
    def question(self) -> str:
        """What the check asks of the values, whatever share of them must pass (`mostly`): two checks asking
        the same (a file rule and a row rule on a trust's code) are answered once."""
        return json.dumps([self.type, {k: v for k, v in self.kwargs.items() if k != "mostly"}], sort_keys=True)

    @cached_property
    def literal_set(self) -> pa.Array | None:
        """The suite's own value set (not a $PARAMETER) as Arrow text, made once."""
        allowed = self.kwargs.get("value_set")
        return _text_set(allowed) if isinstance(allowed, list) else None

    @property
    def table_level(self) -> bool:
        return self.type.startswith("expect_table_")


UNIQUE = "expect_column_values_to_be_unique"
MIRRORED = {
    "expect_table_columns_to_match_set", "expect_table_row_count_to_be_between",
    "expect_column_values_to_match_regex", "expect_column_values_to_be_in_set",
    "expect_column_values_to_be_between", "expect_column_values_to_not_be_null",
    UNIQUE, "expect_column_pair_values_a_to_be_greater_than_b",
}


@lru_cache(maxsize=None)
def load_suite(kind: str) -> tuple[Check, ...]:
    """A suite as checks, in file order; refuses an expectation type or failure mode it does not know."""
    raw = json.loads((suite_dir() / f"{kind}.json").read_text(encoding="utf-8"))
    checks = []
    for e in raw["expectations"]:
        meta = e.get("meta", {})
        if e["type"] not in MIRRORED:
            raise ValueError(f"{kind} suite: {e['type']} has no vectorised mirror")
        if meta.get("on_fail") not in (REJECT_FILE, QUARANTINE_ROW, REPORT) or not meta.get("rule"):
            raise ValueError(f"{kind} suite: {e['type']} needs meta.rule and meta.on_fail")
        checks.append(Check(kind, e["type"], e["kwargs"], meta["rule"], meta["on_fail"], meta["message"]))
    return tuple(checks)


def suite_json(kind: str) -> dict:
    return json.loads((suite_dir() / f"{kind}.json").read_text(encoding="utf-8"))


def prepare(kind: str, text: pd.DataFrame) -> Columns:
    """The columns a suite validates: the text columns (absent optional ones blank) and the derived columns
    its checks name: `<col>__num` (the number, when the text is one), `<col>__date` (the day, when the text
    is a real YYYY-MM-DD date), `<col>__given` (not blank). `.frame` holds them all as one DataFrame."""
    absent = {col: "" for col in FILES[kind].optional if col not in text}
    frame = text if not absent and text.index.equals(pd.RangeIndex(len(text))) else (
        text.reset_index(drop=True).assign(**absent))
    columns = Columns(frame, {c.kwargs["column"] for c in load_suite(kind) if c.type == UNIQUE})
    for name in _derived(kind):
        source = name.rsplit("__", 1)[0]
        if source not in frame:  # a required column left out: the table rule rejects the file, nothing to derive
            continue
        answer, missing = {"num": (_text_numbers, np.nan), "date": (_text_dates, np.datetime64("NaT", "ns")),
                           "given": (_given, False)}[name.rsplit("__", 1)[1]]
        if pd.api.types.is_string_dtype(columns.series(source)):
            columns.derived[name] = columns.per_value(source, answer, missing)
        else:
            columns.derived[name] = np.asarray(answer(columns.series(source).astype(str)))
    return columns


@lru_cache(maxsize=None)
def _derived(kind: str) -> tuple[str, ...]:
    """The derived columns a suite's checks name, in the columns or the row conditions."""
    checks = load_suite(kind)
    wanted = {c.kwargs.get(k) for c in checks for k in ("column", "column_A", "column_B")}
    wanted |= {m for c in checks for m in re.findall(r"\w+__(?:num|date|given)\b", c.kwargs.get("row_condition") or "")}
    return tuple(sorted(n for n in wanted if n and n.endswith(SUFFIXES)))


_FEW_ROWS = 1024  # below this, a rule costs less once per row than the encoding would save


@dataclass(frozen=True)
class Encoded:
    """A text column as its distinct values and each row's index into them (a missing value: one index past
    the end), made once per file for every rule that reads the column."""
    distinct: pa.Array
    codes: np.ndarray

    @cached_property
    def distinct_text(self) -> pd.Series:
        return self.distinct.to_pandas()

    @property
    def few(self) -> bool:
        """Few enough distinct values that a rule is better computed once per value (a code, a score, a
        date) than once per row (a CRN)."""
        return len(self.distinct) * 4 <= len(self.codes)


class Columns:
    """The columns of the frame one file's checks read, each converted once for all of them: the Series,
    which rows hold a value, and a text column's encoding. Derived columns stay arrays (adding each to the
    DataFrame costs more than the check that reads it); `.frame` joins them for what needs one frame.
    `unique`: the columns the suite expects to hold a different value in each row (a CRN), never encoded: an
    encoding of them is as long as the column and costs more than any rule it would save."""

    def __init__(self, text: pd.DataFrame, unique: frozenset[str] | set[str] = frozenset()):
        self.text: pd.DataFrame = text
        self.unique = unique
        self.derived: dict[str, np.ndarray] = {}
        self._series: dict[str, pd.Series] = {}
        self._present: dict[str, np.ndarray] = {}
        self._encoded: dict[str, Encoded | None] = {}
        self.answers: dict[str, tuple[np.ndarray, int]] = {}  # Check.question: (rows flagged, values considered)

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The text and derived columns as one DataFrame (Great Expectations, a row_condition pandas reads)."""
        return self.text.assign(**self.derived)

    @property
    def names(self) -> list[str]:
        return [*self.text.columns, *self.derived]

    def __contains__(self, column: str) -> bool:
        return column in self.derived or column in self.text

    def __len__(self) -> int:
        return len(self.text)

    def values(self, column: str) -> np.ndarray | pd.Series:
        """A derived column's array as it is, a text column's Series."""
        return self.derived[column] if column in self.derived else self.series(column)

    def series(self, column: str) -> pd.Series:
        if column not in self._series:
            self._series[column] = (pd.Series(self.derived[column], index=self.text.index, name=column, copy=False)
                                    if column in self.derived else self.text[column])
        return self._series[column]

    def encoded(self, column: str) -> Encoded | None:
        """The column's encoding, made on first use; None for a column that is not text."""
        if column not in self._encoded:
            self._encoded[column] = _encode(self.series(column))
        return self._encoded[column]

    def present(self, column: str) -> np.ndarray:
        """`notna()` of the column."""
        if column not in self._present:
            self._present[column] = self._notna(column)
        return self._present[column]

    def _notna(self, column: str) -> np.ndarray:
        enc = self._encoded.get(column)
        if enc is not None:
            return enc.codes < len(enc.distinct)
        if column in self.derived:
            return ~pd.isna(self.derived[column])
        values = arrow_text(self.series(column))
        if values is None:
            return self.series(column).notna().to_numpy()
        return pc.is_valid(values).to_numpy(zero_copy_only=False) if values.null_count else np.ones(len(values), bool)

    def per_value(self, column: str, answer, missing, worth_encoding: bool = True) -> np.ndarray:
        """`answer` (text Series -> array, one entry per value) for every row of the column, computed once per
        distinct value where the column holds few; `missing` for rows without a value. An answer cheaper
        than the encoding itself (`worth_encoding` False) uses one only if already made."""
        worth_encoding = worth_encoding and column not in self.unique and len(self) >= _FEW_ROWS
        enc = self.encoded(column) if worth_encoding or column in self._encoded else None
        if enc is None or not enc.few:
            return np.asarray(answer(self.series(column)))
        answers = np.asarray(answer(enc.distinct_text))
        if answers.dtype == bool and missing is False and answers.all():  # every value passes: no row to look up
            return self.present(column).copy()
        return np.append(answers, np.array([missing], dtype=answers.dtype))[enc.codes]


def _encode(s: pd.Series) -> Encoded | None:
    values = arrow_text(s)
    if values is None:
        return None
    found = pc.dictionary_encode(values)
    codes = filled(found.indices, len(found.dictionary)).to_numpy(zero_copy_only=False)
    return Encoded(found.dictionary, codes)


def _text_numbers(text: pd.Series) -> np.ndarray:
    return _numbers(text, matches(text, NUMBER))


def _text_dates(text: pd.Series) -> np.ndarray:
    return _dates(text, matches(text, DATE))


def _given(text: pd.Series) -> np.ndarray:
    return ~blank(pa.array(text, from_pandas=True)).to_numpy(zero_copy_only=False)


def _numbers(text: pd.Series, looks_like: np.ndarray) -> np.ndarray:
    """The numbers that text which looks like one holds (NaN elsewhere): Arrow's cast, pandas' when Arrow
    refuses one (a digit outside ASCII, say)."""
    values = pa.array(text, from_pandas=True)
    try:
        numbers = pc.cast(pc.utf8_trim_whitespace(pc.if_else(looks_like, values, pa.scalar(None, values.type))),
                          pa.float64())
        return numbers.to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.to_numeric(text.where(looks_like), errors="coerce").astype(float).to_numpy()


def _dates(text: pd.Series, looks_like: np.ndarray) -> np.ndarray:
    """The day each YYYY-MM-DD text names (NaT where it names none): Arrow's strict ISO cast, pandas' when a
    file holds a date that does not exist (2014-02-30), which Arrow refuses rather than leaving out."""
    values = pa.array(text, from_pandas=True)
    try:
        days = pc.cast(pc.if_else(looks_like, values, pa.scalar(None, values.type)), pa.timestamp("us"))
        return days.to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.to_datetime(text.where(looks_like), format="%Y-%m-%d", errors="coerce").to_numpy()


def _text_set(values) -> pa.Array | None:
    """A parameter's list (or Arrow array) of texts as one Arrow array, made once per file for every check
    that reads it; None when it holds anything else."""
    array = arrow_text(values if isinstance(values, (pa.Array, pa.ChunkedArray)) else list(values))
    if array is None or array.null_count:
        return None
    return array if array.type == pa.large_string() else array.cast(pa.large_string())  # pandas' text type


def reference_params(kind: str, table) -> dict:
    """The $PARAMETERs a checked file gives the files checked after it: from staff.csv its staff codes
    (cases and retention requests name them), from cases.csv its CRNs (retention requests name them).
    `table`: the file's rows (an Arrow table or a DataFrame)."""
    if kind == "staff":
        codes = arrow_text(table["staff_code"])
        return {"staff_codes": codes, "staff_codes_or_blank": pa.concat_arrays([codes, pa.array([""], codes.type)])}
    return {"crns": arrow_text(table["crn"])} if kind == "cases" else {}


def _as_lists(params: dict) -> dict:
    """Parameters as Great Expectations takes them: Arrow arrays as lists."""
    return {k: v.to_pylist() if isinstance(v, (pa.Array, pa.ChunkedArray)) else v for k, v in params.items()}


_EQUALS = re.compile(r'\A\s*(\w+)\s*==\s*(True|False|"[^"\\]*")\s*\Z')


def _condition(check: Check, columns: Columns) -> np.ndarray:
    """The rows a check's row_condition selects; `column==literal` directly, anything else by pandas' eval."""
    cond = check.kwargs.get("row_condition")
    if not cond:
        return np.ones(len(columns), dtype=bool)
    simple = _EQUALS.match(cond)
    if simple and simple.group(1) in columns:
        name, literal = simple.groups()
        value = {"True": True, "False": False}.get(literal, literal[1:-1])
        held = columns.derived.get(name)
        if held is not None and held.dtype == bool and isinstance(value, bool):
            return held == value
        if isinstance(value, str):
            return np.array(equals(columns.series(name), value), dtype=bool)
        return np.array((columns.series(name) == value).to_numpy(dtype=bool, na_value=False), dtype=bool)
    return np.array(columns.frame.eval(cond), dtype=bool)  # a writable copy: pandas hands out read-only views


def mirror(check: Check, columns: Columns, params: dict) -> tuple[bool, np.ndarray, int]:
    """(success, rows GX would list as unexpected, how many values were considered) for one check of the
    frame `columns` holds (which keeps its columns, as converted, between the checks of one file)."""
    kw = {k: (params[v["$PARAMETER"]] if isinstance(v, dict) and "$PARAMETER" in v else v)
          for k, v in check.kwargs.items()}
    n = len(columns)
    none = np.zeros(n, dtype=bool)
    if check.type == "expect_table_columns_to_match_set":
        return set(kw["column_set"]) <= set(columns.names), none, n
    if check.type == "expect_table_row_count_to_be_between":
        ok = (kw.get("min_value") is None or n >= kw["min_value"]) and (
            kw.get("max_value") is None or n <= kw["max_value"])
        return ok, none, n
    if check.question not in columns.answers:
        columns.answers[check.question] = _unexpected(check, columns, kw)
    bad, count = columns.answers[check.question]
    success = count == 0 or (count - np.count_nonzero(bad)) / count >= kw.get("mostly", 1.0)
    return success, bad, count


def _unexpected(check: Check, columns: Columns, kw: dict) -> tuple[np.ndarray, int]:
    """A column check's rows GX would list as unexpected, and how many values it considered."""
    considered = _condition(check, columns)
    if check.type == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = columns.values(kw["column_A"]), columns.values(kw["column_B"])
        considered &= columns.present(kw["column_A"]) & columns.present(kw["column_B"])
        good = (a >= b) if kw.get("or_equal") else (a > b)  # NumPy's NaT and NaN compare False, as pandas' do
        good = good.fillna(False).to_numpy(dtype=bool) if isinstance(good, pd.Series) else good
    else:
        column = kw["column"]
        if check.type != "expect_column_values_to_not_be_null":
            considered &= columns.present(column)  # GX leaves nulls out of column map expectations
        if check.type == "expect_column_values_to_match_regex":
            good = columns.per_value(column, lambda t: matches(t, kw["regex"]), False)
        elif check.type == "expect_column_values_to_be_in_set":
            allowed = kw["value_set"] if check.literal_set is None else check.literal_set
            good = columns.per_value(column, lambda t: isin(t, allowed), False,
                                     worth_encoding=False)
        elif check.type == "expect_column_values_to_be_between":
            good = _between(columns.values(column), kw)
        elif check.type == "expect_column_values_to_not_be_null":
            good = columns.present(column)
        else:  # UNIQUE, among the values considered
            good = ~_repeated(columns.series(column), considered)
    return considered & ~good, np.count_nonzero(considered)


def _between(column: pd.Series | np.ndarray, kw: dict) -> np.ndarray:
    """Within the bounds (missing values are not); by NumPy for numbers, else pandas' comparisons."""
    lo, hi = kw.get("min_value"), kw.get("max_value")
    numbers = pd.api.types.is_numeric_dtype(column.dtype)
    values = np.asarray(column) if numbers else pd.Series(column, copy=False)
    good = np.ones(len(values), dtype=bool) if numbers else pd.Series(True, index=values.index)
    if lo is not None:
        good &= (values > lo) if kw.get("strict_min") else (values >= lo)
    if hi is not None:
        good &= (values < hi) if kw.get("strict_max") else (values <= hi)
    return good if numbers else good.fillna(False).to_numpy(dtype=bool)


def _repeated(s: pd.Series, considered: np.ndarray) -> np.ndarray:
    """Rows whose value another considered row also holds (pandas' `duplicated(keep=False)` among them;
    missing values count as one value, as pandas counts NaN)."""
    if considered.all():
        return repeated(s)
    out = np.zeros(len(s), dtype=bool)
    out[considered] = repeated(s[considered])
    return out


@dataclass
class FileValidation:
    """What one file's validation found: a result per expectation, and the rows each failing one flagged."""
    kind: str
    results: list[dict]
    flagged: pd.DataFrame  # row, column, rule, message, value, on_fail

    def rejection(self) -> dict | None:
        """The first file rule that failed, if any."""
        for r in self.results:
            if r["on_fail"] == REJECT_FILE and not r["success"]:
                return r
        return None

    def rows(self, on_fail: str) -> pd.DataFrame:
        return self.flagged[self.flagged["on_fail"] == on_fail].drop(columns="on_fail")


def validate(kind: str, text: pd.DataFrame, params: dict, engine: str = "mirror") -> FileValidation:
    """Validate one parsed file. `params` fills the suites' $PARAMETERs: trust, staff_codes, crns, ... (lists
    or Arrow arrays of text).

    Table rules run first; if one fails, column rules are not run (the columns may not be there).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown validation engine {engine!r}; expected one of {ENGINES}")
    read = prepare(kind, text)
    checks = load_suite(kind)
    table = [c for c in checks if c.table_level]
    results, flagged = [], []
    for c in table:
        ok, _, _ = mirror(c, read, params)
        missing = sorted(set(c.kwargs.get("column_set", [])) - set(read.names))
        message = f"{c.message}: {', '.join(missing)}" if missing else c.message
        results.append(_result(c, ok, 0 if ok else 1, message))
    if any(not r["success"] for r in results):
        return FileValidation(kind, results, _flagged([]))
    columns = [c for c in checks if not c.table_level]
    if engine == "gx":
        outcomes = _run_gx(kind, columns, read.frame, params)
    else:
        sets = {k: _text_set(v) for k, v in params.items() if isinstance(v, (list, pa.Array, pa.ChunkedArray))}
        arrow_params = {**params, **{k: v for k, v in sets.items() if v is not None}}
        outcomes = [(ok, bad, np.count_nonzero(bad)) for ok, bad, _ in (mirror(c, read, arrow_params) for c in columns)]
    for c, (ok, bad, unexpected) in zip(columns, outcomes):
        rows = np.flatnonzero(bad)
        results.append(_result(c, ok, unexpected, c.message))
        if len(rows) and c.on_fail != REJECT_FILE:
            src = c.column if c.column in read.text else None
            values = read.text[src].iloc[rows].to_numpy(dtype=object) if src else np.full(len(rows), "", dtype=object)
            flagged.append((rows, c, values))
    return FileValidation(kind, results, _flagged(flagged))


def _result(c: Check, ok: bool, unexpected: int, message: str) -> dict:
    return {"file": FILES[c.kind].name, "expectation": c.type, "rule": c.rule, "column": c.column,
            "on_fail": c.on_fail, "success": bool(ok), "unexpected_count": int(unexpected), "message": message}


@lru_cache(maxsize=1)
def _nothing_flagged() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64" if c == "row" else object)
                         for c in ["row", "column", "rule", "message", "value", "on_fail"]})


def _flagged(parts: list[tuple[np.ndarray, Check, np.ndarray]]) -> pd.DataFrame:
    """The rows each failing check flagged (rows, check, values), as one frame in row order."""
    if not parts:
        return _nothing_flagged().copy()
    sizes = [len(rows) for rows, _, _ in parts]
    rows = np.concatenate([rows for rows, _, _ in parts])
    keys = [(c.column, c.rule) for _, c, _ in parts]
    rank = np.empty(len(parts), dtype=np.int64)
    rank[sorted(range(len(parts)), key=keys.__getitem__)] = np.arange(len(parts))
    order = np.lexsort((np.repeat(rank, sizes), rows))

    def each(attr: str) -> np.ndarray:
        return np.repeat(np.array([getattr(c, attr) for _, c, _ in parts], dtype=object), sizes)[order]
    return pd.DataFrame({"row": rows[order], "column": each("column"), "rule": each("rule"),
                         "message": each("message"), "value": np.concatenate([v for _, _, v in parts])[order],
                         "on_fail": each("on_fail")})


def _run_gx(kind: str, checks: list[Check], frame: pd.DataFrame,
            params: dict) -> list[tuple[bool, np.ndarray, int]]:
    """Great Expectations on the same frame: SUMMARY for all, then row ids only for the failed ones."""
    results = gx_results(kind, checks, frame, params, "SUMMARY")
    failed = [c for c, r in zip(checks, results) if not r.success]
    detail = dict(zip(map(id, failed), gx_results(kind, failed, frame, params, "COMPLETE"))) if failed else {}
    out = []
    for c, r in zip(checks, results):
        bad = np.zeros(len(frame), dtype=bool)
        if id(c) in detail:
            idx = detail[id(c)].result.get("unexpected_index_list") or []
            bad[[i if isinstance(i, (int, np.integer)) else i["row"] for i in idx]] = True
        out.append((bool(r.success), bad, int(r.result.get("unexpected_count") or 0)))
    return out


def gx_results(kind: str, checks: list[Check], frame: pd.DataFrame, params: dict, result_format: str):
    """Validate `frame` with Great Expectations itself, one ephemeral context per call."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    batch = (context.data_sources.add_pandas("trp").add_dataframe_asset(kind)
             .add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": frame}))
    suite = gx.ExpectationSuite(name=kind, expectations=[
        ExpectationConfiguration(type=c.type, kwargs=c.kwargs, meta={"rule": c.rule, "i": i}).to_domain_obj()
        for i, c in enumerate(checks)])
    fmt = {"result_format": result_format}
    if result_format == "COMPLETE":
        fmt["unexpected_index_column_names"] = ["row"]
        batch = (context.data_sources.add_pandas("trp_rows").add_dataframe_asset(kind)
                 .add_batch_definition_whole_dataframe("whole")
                 .get_batch(batch_parameters={"dataframe": frame.assign(row=np.arange(len(frame)))}))
    results = batch.validate(suite, result_format=fmt, expectation_parameters=_as_lists(params)).results
    return sorted(results, key=lambda r: r.expectation_config.meta["i"])  # in the order asked


CROSS_TRUST_RULE = "CRN_IN_TWO_TRUSTS"
CROSS_TRUST_MESSAGE = ("this CRN is also in another trust's extract for this run; both trusts keep the case "
                       "until one of them corrects its extract")


def cross_trust_result(extract_date: str, conflicts: int) -> dict:
    """The run-wide check no single file can make (spec section 3), as one more result of the cases file."""
    return {"file": FILES["cases"].name, "expectation": "crn_unique_across_trusts", "rule": CROSS_TRUST_RULE,
            "column": "crn", "on_fail": REPORT, "success": conflicts == 0, "unexpected_count": conflicts,
            "message": CROSS_TRUST_MESSAGE, "extract_date": extract_date}


def parse_result(exc) -> dict:
    """A file that could not be read as CSV at all (binary, undecodable, duplicated column) as a result, so
    the `validation` dataset shows every rejection, not only those a suite found."""
    return {"file": exc.file, "expectation": "readable_csv", "rule": exc.rule, "column": exc.column,
            "on_fail": REJECT_FILE, "success": False, "unexpected_count": 1, "message": exc.message}
