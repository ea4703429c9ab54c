"""Read one uploaded CSV as text: encoding detection, RFC 4180 parsing, line numbers as the trust sees them."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipeline.extracts.contract import FILES, blank
from pipeline.policy import ExtractsPolicy


class FileRejected(Exception):
    """A file rule was broken: the whole file is rejected, with the line and what was expected."""

    def __init__(
        self,
        file: str,
        line: int | None,
        rule: str,
        message: str,
        column: str = "",
        results: list[dict] | None = None,
        findings: list[dict] | None = None,
        gx: dict | None = None,
    ):
        super().__init__(f"{file}: line {line or '-'}: {rule}: {message}")
        self.file, self.line, self.rule, self.message, self.column = file, line, rule, message, column
        self.results = results or []  # the suite's results, when the suite found the fault
        self.findings = findings or []  # the rows a file mostly held back would have held, for the trust to fix
        self.gx = gx or {}  # GX's results (kind: JSON) of the extract's files checked, the rejected one included


@dataclass
class TextFile:
    """A parsed upload: all values as text, plus what is needed to report rows back to the trust."""

    name: str
    sha256: str
    encoding: str
    frame: pd.DataFrame
    extra_columns: list[str]
    table: pa.Table  # the same values as Arrow text, for typing the rows that pass
    ragged: list[tuple[int | None, str]] = field(default_factory=list)

    _starts: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    blank_lines: list[int] = field(default_factory=list)  # rows of nothing but commas and spaces, skipped

    def line_numbers(self, rows) -> pa.Array:
        """Line (1-based, header = 1) where each data row starts in the trust's file, quoted newlines included,
        as an Arrow int64 column (null where the two parsers disagreed on the rows)."""
        rows = np.asarray(rows, dtype=np.int64)
        known = rows < len(self._starts)
        lines = self._starts[np.where(known, rows, 0)] if len(self._starts) else np.zeros(len(rows), np.int64)
        return pa.array(lines, pa.int64(), mask=None if known.all() else ~known)

    def lines(self, rows) -> list[int | None]:
        """`line_numbers` as a list (None where unknown)."""
        return self.line_numbers(rows).to_pylist()


def decode(raw: bytes, name: str) -> tuple[str, str, bytes]:
    """The upload's text, its encoding, and the text as UTF-8 bytes (the upload itself when it is UTF-8)."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff") or _utf16_without_bom(raw[:4096]):
        raise FileRejected(
            name,
            1,
            "WRONG_ENCODING",
            "the file is UTF-16 text (Excel's 'Unicode Text'): save it as 'CSV UTF-8 (Comma "
            "delimited)' and upload it again",
        )
    if raw.startswith(b"\xef\xbb\xbf"):
        body = raw[3:]
        return body.decode("utf-8", errors="strict"), "utf-8-sig", body
    if b"\x00" in raw[:4096]:
        raise FileRejected(
            name, 1, "NOT_CSV", "the file holds binary data, not CSV text (was a zip or spreadsheet uploaded?)"
        )
    try:
        return raw.decode("utf-8"), "utf-8", raw
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("cp1252")
        return text, "windows-1252", text.encode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise FileRejected(
            name, line, "UNDECODABLE", f"byte 0x{raw[exc.start]:02x} is neither UTF-8 nor Windows-1252 text"
        ) from exc


def _utf16_without_bom(head: bytes) -> bool:
    """Text in UTF-16 without a byte-order mark: a NUL in every other byte of mostly ASCII text."""
    if len(head) < 4 or b"\x00" not in head:
        return False
    even, odd = head[0::2], head[1::2]
    return even.count(0) >= 0.9 * len(even) or odd.count(0) >= 0.9 * len(odd)


def check_shape(raw: bytes, name: str, limits: ExtractsPolicy) -> None:
    """The limits checked on the raw bytes before parsing, so that no parser is handed a file that is not an
    extract: a header of more columns, or a line longer, than the policy allows (a wrong delimiter, a sheet
    saved transposed, a file with its line breaks lost)."""
    long = longest_line_over(raw, limits.max_line_bytes)
    if long is not None:
        line, length = long
        raise FileRejected(
            name,
            line,
            "LINE_TOO_LONG",
            f"line {line} is {length:,} bytes long; no line of an extract may be longer than "
            f"{limits.max_line_bytes:,} bytes. Check the export: a lost line break or an unclosed "
            "quote makes one line of many rows",
        )
    first = raw[: limits.max_line_bytes + 2].split(b"\n", 1)[0]
    if first.count(b",") + 1 > limits.max_columns:
        header = next(csv.reader(io.StringIO(first.decode("utf-8", errors="replace"))), [])
        if len(header) > limits.max_columns:
            raise FileRejected(
                name,
                1,
                "TOO_MANY_COLUMNS",
                f"the header has {len(header):,} columns; an extract has at most "
                f"{limits.max_columns}: the contract's columns and a few others. Was the sheet "
                "saved transposed, or with another delimiter?",
            )


def longest_line_over(raw: bytes, limit: int) -> tuple[int, int] | None:
    """The first line longer than `limit` bytes (its number and length), if any. Any such line holds a whole
    aligned window of limit/2 bytes without a line break, so only those windows are looked at: a few `find`
    calls per window instead of a pass over every byte of a file that may be hostile."""
    step = max(limit // 2, 1)
    for start in range(0, max(len(raw) - step + 1, 0), step):
        end = start + step
        if raw.find(b"\n", start, end) != -1 or raw.find(b"\r", start, end) != -1:
            continue
        begin = max(raw.rfind(b"\n", 0, start), raw.rfind(b"\r", 0, start)) + 1
        stops = [i for i in (raw.find(b"\n", end), raw.find(b"\r", end)) if i != -1]
        length = (min(stops) if stops else len(raw)) - begin
        if length > limit:
            crlf = raw.count(b"\r\n", 0, begin)  # one line break, as CR alone and LF alone are
            return raw.count(b"\n", 0, begin) + raw.count(b"\r", 0, begin) - crlf + 1, length
    return None


_LINE_END = re.compile(r"\r\n|\r|\n")
csv.field_size_limit(1 << 30)  # a trust's 10 MB field is a value to report, not a crash


def record_starts(text: str, width: int) -> tuple[list[int], list[tuple[int, str]]]:
    """One pass over the data records: the line each well-formed one starts on (header = line 1, quoted
    newlines counted) and, for each record with another number of fields than the header, its line and text.

    pyarrow parses the values (fast) and skips the same ill-formed records; this pass says where they are.
    """
    if '"' not in text:  # no quoting: a record is a non-blank physical line (LF, CRLF or a lone CR ends one)
        good, bad = [], []
        for number, row in enumerate(_LINE_END.split(text)[1:], start=2):
            if row:
                (good.append(number) if row.count(",") == width - 1 else bad.append((number, row[:200])))
        return good, bad
    good, bad, line, first = [], [], 1, True
    reader = csv.reader(io.StringIO(text, newline=""))
    for record in reader:
        if record and not first:
            (good.append(line) if len(record) == width else bad.append((line, ",".join(record)[:200])))
        first = first and not record
        line = reader.line_num + 1
    return good, bad


def starts_from_values(data: bytes, table: pa.Table, skipped: int) -> np.ndarray | None:
    """The line each record starts on, from the parsed values: a record takes one line plus the line breaks
    inside its quoted values (LF, CRLF or a lone CR, as the csv module counts them). None when the file has
    what this cannot see (a record Arrow skipped, a blank line), for the csv pass to number instead.
    `data`: the file's text as bytes in an encoding that keeps ASCII as it is (UTF-8, Windows-1252), so its
    line breaks are counted byte by byte, by NumPy, not by Python's text scans."""
    if skipped or not all(pa.types.is_large_string(t) for t in table.schema.types):
        return None
    octets = np.frombuffer(data, dtype=np.uint8)
    at = np.flatnonzero(octets <= 13)  # one pass finds every line-break byte, among a few other controls
    breaking = (octets[at] == 10) | (octets[at] == 13)
    at = at[breaking]
    byte = octets[at]
    adjacent = np.diff(at) == 1
    first, then = byte[:-1][adjacent], byte[1:][adjacent]  # two line-break bytes side by side
    carriage = bool((byte == 13).any())
    if data[:1] in (b"\n", b"\r") or ((then == 10) & (first == 10)).any() or (then == 13).any():
        return None  # a blank line (LF LF, CR CR or LF CR: an empty line, whatever the line ends)

    def breaks(values) -> np.ndarray:
        n = pc.count_substring(values, "\n").to_numpy(zero_copy_only=False)
        if carriage:
            n = n + (
                pc.count_substring(values, "\r").to_numpy(zero_copy_only=False)
                - pc.count_substring(values, "\r\n").to_numpy(zero_copy_only=False)
            )
        return n

    n = table.num_rows
    in_file = len(at) - int(np.count_nonzero((first == 13) & (then == 10)))  # a CRLF is one line break
    if in_file == n + 1 - (data[-1:] not in (b"\n", b"\r")):  # no line breaks inside values: one line each
        return np.arange(2, n + 2, dtype=np.int64)
    spans = np.ones(n, dtype=np.int64)
    for column in table.columns:
        spans += breaks(column)
    header = 1 + int(breaks(pa.array(table.column_names)).sum())
    return header + 1 + np.concatenate([[0], np.cumsum(spans)[:-1]]).astype(np.int64)


def read_table(text: str, data: bytes | None = None) -> tuple[pa.Table, int]:
    """The records as Arrow text columns, and how many ill-formed ones pyarrow skipped. `data`: the text as
    UTF-8 when the caller holds it already (an upload in UTF-8), else it is encoded here."""
    skipped = []
    table = pacsv.read_csv(
        io.BytesIO(text.encode("utf-8") if data is None else data),
        read_options=pacsv.ReadOptions(block_size=1 << 24),
        parse_options=pacsv.ParseOptions(
            newlines_in_values=True, invalid_row_handler=lambda row: skipped.append(1) or "skip"
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=_all_text(text), strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    )
    return table, len(skipped)


def parse_csv(raw: bytes, name: str, limits: ExtractsPolicy = ExtractsPolicy()) -> TextFile:
    """Any CSV upload as text columns (RFC 4180, quoted newlines, UTF-8 with or without BOM or Windows-1252).

    Rows with the wrong number of fields are set aside in `ragged` with their line; rows of nothing but
    separators and spaces (a spreadsheet's trailing rows) are skipped and listed; file-level faults raise.
    """
    if not raw or raw.isspace():
        raise FileRejected(name, 1, "EMPTY", "the file is empty: expected a header row and data rows")
    check_shape(raw, name, limits)
    text, encoding, utf8 = decode(raw, name)
    try:
        table, skipped = read_table(text, utf8)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        if "straddling" in str(exc):  # pyarrow's words for a record longer than its 16 MiB block
            raise FileRejected(
                name,
                None,
                "LINE_TOO_LONG",
                "one row is more than 16 MB long: an unclosed quote makes the rest of the file one "
                "value. Check the quotes in the export",
            ) from exc
        raise FileRejected(name, None, "NOT_CSV", f"the file could not be read as CSV: {exc}") from exc
    header = [c.strip().lstrip("\ufeff") for c in table.column_names]
    if len(set(header)) != len(header):
        dup = sorted({c for c in header if header.count(c) > 1})
        raise FileRejected(name, 1, "DUPLICATE_COLUMN", f"the header names {', '.join(dup)} more than once")
    starts = starts_from_values(utf8, table, skipped)
    table = table.rename_columns(header).combine_chunks()  # one chunk per column: read many times, joined once
    ragged = []
    if starts is None:
        starts, ragged = record_starts(text, len(header))
    starts = np.asarray(starts, dtype=np.int64)
    if len(starts) != table.num_rows:  # the two parsers disagree: keep every row, say no line rather than a wrong one
        starts = starts[:0]
    table, starts, blanks = _without_blank_rows(table, starts)
    frame = table.to_pandas()
    if not all(isinstance(t, pd.StringDtype) for t in frame.dtypes):  # pandas before 3 hands back objects
        frame = frame.astype(object).astype("str")
    return TextFile(name, hashlib.sha256(raw).hexdigest(), encoding, frame, [], table, ragged, starts, blanks)


def _without_blank_rows(table: pa.Table, starts: np.ndarray) -> tuple[pa.Table, np.ndarray, list[int]]:
    """The table without its rows of blanks only, the lines of the rows kept, and the lines (or, where lines
    are unknown, the row numbers) of those dropped. Only rows blank in the first column are looked at further."""
    if not table.num_rows or not table.num_columns:
        return table, starts, []
    maybe = np.flatnonzero(blank(table.column(0)).to_numpy(zero_copy_only=False))
    for column in table.columns[1:]:
        if not len(maybe):
            break
        maybe = maybe[blank(column.take(maybe)).to_numpy(zero_copy_only=False)]
    if not len(maybe):
        return table, starts, []
    keep = np.ones(table.num_rows, dtype=bool)
    keep[maybe] = False
    lines = (starts[maybe] if len(starts) else maybe + 2).tolist()
    return table.filter(keep), starts[keep] if len(starts) else starts, lines


def read_text(raw: bytes, kind: str, limits: ExtractsPolicy = ExtractsPolicy()) -> TextFile:
    """Parse an upload of `kind` (staff, cases, ...); its columns and values are checked by its suite."""
    spec = FILES[kind]
    parsed = parse_csv(raw, spec.name, limits)
    known = set(spec.required) | set(spec.optional)
    parsed.extra_columns = [c for c in parsed.frame.columns if c not in known]
    return parsed


_HEADER_MAX = 1 << 20  # a header is not 1 MB: an unclosed quote in it must not make it the whole file


def _all_text(text: str) -> dict[str, pa.DataType]:
    """Every header name typed as text (the header read as a CSV record: its names may hold quoted newlines),
    as pandas holds text: with 64-bit offsets, so that no column is copied to hand it to pandas."""
    # The first line is the whole header unless a quote is left open in it (a name holding a newline).
    end = text.find("\n", 0, _HEADER_MAX) + 1
    head = text[:end] if end and text.count('"', 0, end) % 2 == 0 else text[:_HEADER_MAX]
    try:
        header = next(csv.reader(io.StringIO(head, newline="")), [])
    except csv.Error:  # pyarrow will say what is wrong with the file
        header = []
    return {c: pa.large_string() for c in header}
