"""A text-only XLSX writer: sheets of string cells under a bold header row, with filters and a frozen header.

xlsxwriter spends about 10 us a cell in Python (storing, then serialising each cell), and London's transfer
list alone has 300,000 cells. This writes the parts xlsxwriter writes for such a workbook, with the same
worksheet and shared-string XML (tests compare them byte for byte on the naughty strings), but builds the
shared strings with one dictionary encoding and the rows with one join, both by Arrow. It writes no theme
part and no formulas, numbers or links: every cell is text.
"""
from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass
from xml.sax.saxutils import escape

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.text import concatenated

_ESCAPED_ESCAPE = re.compile(r"(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile(r"([\x00-\x08\x0b-\x1f])")
_EDGE_SPACE = re.compile(r"^\s|\s$")
_PLAIN = re.compile(r"[A-Za-z0-9.\-]*")  # text a shared string holds as it is (nothing to escape)
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_ATTR = {'"': "&quot;"}


@dataclass(frozen=True)
class Sheet:
    """A sheet's name and how many of the table's rows, after the previous sheets', it holds."""
    name: str
    rows: int


def _shared_string(text: str) -> str:
    """One <si>: Excel's _xHHHH_ escapes for control characters (and for literal escapes), XML escapes."""
    text = _CONTROL.sub(lambda m: f"_x{ord(m.group(1)):04X}_", _ESCAPED_ESCAPE.sub(r"_x005F\1", text))
    text = text.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")
    space = ' xml:space="preserve"' if _EDGE_SPACE.search(text) else ""
    return f"<si><t{space}>{escape(text)}</t></si>"


def _letters(n: int) -> list[str]:
    if n > 26:
        raise ValueError("at most 26 columns")
    return [chr(ord("A") + i) for i in range(n)]


def _rows_xml(codes: np.ndarray, numbers: np.ndarray, bold: np.ndarray) -> pa.Array:
    """Every row's XML, one Arrow string each, built a column at a time by Arrow (a %-template per sheet took
    a third of the workbook's time): its number, bold (style 1) for a header row, and its cells' shared-string
    indices."""
    letters = _letters(codes.shape[1])
    number = pc.cast(pa.array(numbers, pa.int64()), pa.string())
    style = pc.if_else(pa.array(bold, pa.bool_()), pa.scalar(' s="1"'), pa.scalar(""))
    parts: list = ['<row r="', number, f'" spans="1:{len(letters)}">']
    for j, c in enumerate(letters):
        parts += [f'<c r="{c}', number, '"', style, ' t="s"><v>',
                  pc.cast(pa.array(codes[:, j], pa.int64()), pa.string()), "</v></c>"]
    return pc.binary_join_element_wise(*parts, "</row>", "")


def _sheet_xml(index: int, rows: bytes, size: tuple[int, int], width: float) -> bytes:
    """A worksheet of `size` (rows, columns) around its rows' XML."""
    n, last = size[0], _letters(size[1])[-1]
    selected = ' tabSelected="1"' if index == 0 else ""
    return (f'{_HEAD}<worksheet xmlns="{_MAIN}" xmlns:r="{_REL}"><dimension ref="A1:{last}{n}"/>'
            f'<sheetViews><sheetView{selected} workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
            'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft"/></sheetView></sheetViews>'
            f'<sheetFormatPr defaultRowHeight="15"/><cols><col min="1" max="{size[1]}" width="{width}" '
            f'customWidth="1"/></cols><sheetData>').encode() + rows + (
            f'</sheetData><autoFilter ref="A1:{last}{max(n, 2)}"/><pageMargins left="0.7" right="0.7" top="0.75" '
            'bottom="0.75" header="0.3" footer="0.3"/></worksheet>').encode()


def _shared_strings(texts: pa.Array) -> bytes:
    """The <si> of each string: plain ones (codes and CRNs: nothing to escape) by Arrow, the rest through
    `_shared_string`."""
    plain = pc.match_substring_regex(texts, f"^{_PLAIN.pattern}$").to_numpy(zero_copy_only=False)
    items = pc.binary_join_element_wise("<si><t>", texts, "</t></si>", "")
    if not plain.all():
        items = pc.replace_with_mask(items, pa.array(~plain), pa.array(
            [_shared_string(t) for t in texts.filter(pa.array(~plain)).to_pylist()], items.type))
    return concatenated(items)


def _workbook_xml(sheets: list[Sheet], columns: int) -> str:
    names = "".join(f'<sheet name="{escape(s.name, _ATTR)}" sheetId="{i}" r:id="rId{i}"/>'
                    for i, s in enumerate(sheets, start=1))
    filters = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
        f"{escape(repr_name(s.name))}!$A$1:${_letters(columns)[-1]}${max(s.rows + 1, 2)}</definedName>"
        for i, s in enumerate(sheets))
    return (f'{_HEAD}<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><fileVersion appName="xl" lastEdited="4" '
            'lowestEdited="4" rupBuild="4505"/><workbookPr/><bookViews><workbookView xWindow="240" yWindow="15" '
            f'windowWidth="16095" windowHeight="9660"/></bookViews><sheets>{names}</sheets>'
            f'<definedNames>{filters}</definedNames><calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>')


def repr_name(name: str) -> str:
    """A sheet name as a formula refers to it: quoted, with any quote doubled."""
    return "'" + name.replace("'", "''") + "'"


_STYLES = (f'{_HEAD}<styleSheet xmlns="{_MAIN}"><fonts count="2"><font><sz val="11"/><name val="Calibri"/>'
           '<family val="2"/></font><font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
           '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill '
           'patternType="gray125"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/>'
           '<diagonal/></border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" '
           'borderId="0"/></cellStyleXfs><cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" '
           'xfId="0"/><xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
           '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles><dxfs count="0"/>'
           '<tableStyles count="0" defaultTableStyle="TableStyleMedium9" defaultPivotStyle="PivotStyleLight16"/>'
           '</styleSheet>')


def _package(n: int, created: dt.datetime, names: list[str]) -> dict[str, str]:
    """The parts around the sheets: content types, relationships, styles and document properties."""
    ct = "application/vnd.openxmlformats-officedocument"
    sheets = "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{ct}.spreadsheetml.'
                     'worksheet+xml"/>' for i in range(1, n + 1))
    rels = "".join(f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
                   for i in range(1, n + 1))
    stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    titles = "".join(f"<vt:lpstr>{escape(name)}</vt:lpstr>" for name in names)
    return {
        "[Content_Types].xml": (
            f'{_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/docProps/app.xml" ContentType="{ct}.extended-properties+xml"/>'
            '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.'
            'core-properties+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{ct}.spreadsheetml.styles+xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{ct}.spreadsheetml.sheet.main+xml"/>{sheets}'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{ct}.spreadsheetml.sharedStrings+xml"/>'
            "</Types>"),
        "_rels/.rels": (
            f'{_HEAD}<Relationships xmlns="{_PKG_REL}"><Relationship Id="rId1" Type="{_REL}/officeDocument" '
            f'Target="xl/workbook.xml"/><Relationship Id="rId2" Type="{_PKG_REL}/metadata/core-properties" '
            f'Target="docProps/core.xml"/><Relationship Id="rId3" Type="{_REL}/extended-properties" '
            'Target="docProps/app.xml"/></Relationships>'),
        "xl/_rels/workbook.xml.rels": (
            f'{_HEAD}<Relationships xmlns="{_PKG_REL}">{rels}<Relationship Id="rId{n + 1}" Type="{_REL}/styles" '
            f'Target="styles.xml"/><Relationship Id="rId{n + 2}" Type="{_REL}/sharedStrings" '
            'Target="sharedStrings.xml"/></Relationships>'),
        "xl/styles.xml": _STYLES,
        "docProps/core.xml": (
            f'{_HEAD}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
            'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/'
            'terms/" xmlns:dcmitype="http://purl.org/dc/dcmitype/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-'
            'instance"><dc:creator></dc:creator><cp:lastModifiedBy></cp:lastModifiedBy><dcterms:created '
            f'xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created><dcterms:modified xsi:type="dcterms:W3CDTF">'
            f"{stamp}</dcterms:modified></cp:coreProperties>"),
        "docProps/app.xml": (
            f'{_HEAD}<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-'
            'properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
            "<Application>Microsoft Excel</Application><DocSecurity>0</DocSecurity><ScaleCrop>false</ScaleCrop>"
            '<HeadingPairs><vt:vector size="2" baseType="variant"><vt:variant><vt:lpstr>Worksheets</vt:lpstr>'
            f'</vt:variant><vt:variant><vt:i4>{n}</vt:i4></vt:variant></vt:vector></HeadingPairs><TitlesOfParts>'
            f'<vt:vector size="{n}" baseType="lpstr">{titles}</vt:vector></TitlesOfParts><Company></Company>'
            "<LinksUpToDate>false</LinksUpToDate><SharedDoc>false</SharedDoc><HyperlinksChanged>false"
            "</HyperlinksChanged><AppVersion>12.0000</AppVersion></Properties>"),
    }


def write_workbook(header: list[str], columns: list[pa.Array], sheets: list[Sheet], created: dt.datetime,
                   width: float = 18.7109375) -> bytes:
    """The workbook's bytes: `columns` (text, no missing values; an empty string is an empty text cell, as
    xlsxwriter writes it) are the sheets' rows one after another, each sheet under the `header` row. The same
    input and `created` give the same bytes.

    The shared strings are numbered in order of first appearance, reading each sheet row by row (as
    xlsxwriter numbers them), by one Arrow dictionary encoding of the cells taken in that order."""
    w, n = len(header), len(columns[0]) if columns else 0
    sizes = np.array([s.rows for s in sheets], dtype=np.int64)
    if len(columns) != w or any(len(c) != n for c in columns) or int(sizes.sum()) != n:
        raise ValueError("every sheet needs the header's columns, and the sheets the table's rows")
    heights = sizes + 1
    ends = np.cumsum(heights)
    numbers = np.arange(int(ends[-1])) - np.repeat(ends - heights, heights) + 1
    row = numbers - 2 + np.repeat(np.cumsum(sizes) - sizes, heights)  # the table's row; a header row: -1
    cell = np.where((numbers == 1)[:, None], np.arange(w)[None, :], w + np.arange(w)[None, :] * n + row[:, None])
    values = pa.concat_arrays([pa.array(header, pa.string()), *(c.cast(pa.string()) for c in columns)])
    encoded = pc.dictionary_encode(values.take(pa.array(cell.ravel())))
    codes = encoded.indices.to_numpy(zero_copy_only=False).reshape(-1, w)
    rows = _rows_xml(codes, numbers, numbers == 1)
    parts: dict[str, str | bytes] = dict(_package(len(sheets), created, [s.name for s in sheets]))
    for i, (height, end) in enumerate(zip(heights.tolist(), ends.tolist())):
        parts[f"xl/worksheets/sheet{i + 1}.xml"] = _sheet_xml(i, concatenated(rows, end - height, end),
                                                              (height, w), width)
    parts["xl/workbook.xml"] = _workbook_xml(sheets, w)
    parts["xl/sharedStrings.xml"] = (
        f'{_HEAD}<sst xmlns="{_MAIN}" count="{codes.size}" uniqueCount="{len(encoded.dictionary)}">'.encode()
        + _shared_strings(encoded.dictionary) + b"</sst>")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        for name, xml in parts.items():
            book.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)),
                          xml if isinstance(xml, bytes) else xml.encode("utf-8"),
                          compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
    return buf.getvalue()
