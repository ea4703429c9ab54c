"""The extract contract as trust data officers read it: the guide (docs/extract-contract.md, packaged) as a
self-contained page, and a template of each file with its header and two example rows."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

GUIDE = "extract-contract.md"
STYLE = """body{font-family:Arial,sans-serif;margin:2em auto;max-width:60em;color:#0b0c0c;line-height:1.4}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0 1.2em}th,td{border:1px solid #bbb;padding:.2em .5em;
text-align:left;vertical-align:top}th{background:#eee}code{background:#f3f2f1;padding:0 .2em}
pre{background:#f3f2f1;padding:.6em;overflow-x:auto}"""


def guide_text() -> str:
    return resources.files("pipeline.data").joinpath(GUIDE).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def guide_html() -> str:
    """The guide as one HTML page with no external assets; raw HTML in the text is escaped, not passed on."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(guide_text())
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>What to upload: the extract '
        f"contract</title><style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def template_csv(kind: str) -> str:
    """The template of one file (staff, cases, retention_requests, appeals): its header and two example rows."""
    return resources.files("pipeline.data").joinpath("templates", f"{kind}.csv").read_text(encoding="utf-8")


_RULE_ROW = re.compile(r"^\|\s*(`[A-Z0-9_]+`(?:,\s*`[A-Z0-9_]+`)*)\s*\|.*\|\s*([^|]+?)\s*\|\s*$", re.M)


@lru_cache(maxsize=1)
def what_to_do() -> dict[str, str]:
    """Each rule code's "what to do", from the guide's rule tables (the last cell of the rule's row), so that
    reports and the guide never say two things."""
    out = {}
    for codes, todo in _RULE_ROW.findall(guide_text()):
        for code in re.findall(r"`([A-Z0-9_]+)`", codes):
            out[code] = todo.replace("`", "")
    return out
