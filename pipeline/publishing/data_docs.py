"""Great Expectations Data Docs of a run: every file's validation result, kept as the JSON GX produced, and
rendered once per run by GX's own site builder into `OUT/reports/<run date>/data-docs/`.

The results are staged as `_runs/<run id>/validation/<trust>/<extract date>/<kind>.json` and kept with the
published run as `runs/<run id>/validation/...`. The site is built on a worker while the trusts' decisions
run, and staged as `_runs/<run id>/data-docs/` until the run is put in place.

The site is self-contained (it is opened from a file share or an object store, often with no internet):
GX's templates load Bootstrap, jQuery and bootstrap-table from CDNs and a logo from GX's web server; each is
replaced by the copy in `pipeline/data/data-docs-assets/` (versions and licences there) or by GX's own static
copy, and what the pages do not use (Vega's charts, a dark theme) is left out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from pipeline import layout
from pipeline.storage import Store

SITE = layout.DATA_DOCS  # GX site name: the folder name too
ASSETS = Path(__file__).parent.parent / "data" / "data-docs-assets"
VENDOR = "static/vendor"
# The addresses GX's templates fetch, and the shipped copy each becomes ("" : the tag is left out).
_TABLE, _PICKER = (
    "https://unpkg.com/bootstrap-table@",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0",
)
_FILTER = "dist/extensions/filter-control/bootstrap-table-filter-control"
FETCHED = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.min.js",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap.min.css",
    f"{_TABLE}1.19.1/dist/bootstrap-table.min.css": "bootstrap-table.min.css",
    f"{_TABLE}1.19.1/dist/bootstrap-table.min.js": "bootstrap-table.min.js",
    f"{_TABLE}1.19.1/{_FILTER}.min.js": "bootstrap-table-filter-control.min.js",
    f"{_TABLE}1.19.0/{_FILTER}.min.css": "bootstrap-table-filter-control.min.css",
    f"{_TABLE}1.19.0/{_FILTER}.css": "bootstrap-table-filter-control.min.css",
    f"{_PICKER}/css/bootstrap-datepicker.min.css": "bootstrap-datepicker.min.css",
    f"{_PICKER}/js/bootstrap-datepicker.min.js": "bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome/css/all.min.css",
}
LEFT_OUT = ("https://cdn.jsdelivr.net/npm/vega", "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark")
_TAG = re.compile(r"<(script|link|img)\b[^>]*?\b(?:src|href)=\"(https?://[^\"]*)\"[^>]*>(?:\s*</script>)?")
_STATIC = re.compile(r'\b(src|href)="(?:\.\./)*static/')
_CHECKS = re.compile(r"\s(?:integrity|crossorigin)=\"[^\"]*\"")


def stage_results(out: Store, run_id: str, trust: str, extract_date: str, results: dict[str, dict]) -> None:
    """A trust's GX results of one extract (kind: result JSON), staged with the run."""
    for kind, result in results.items():
        out.write_bytes(
            json.dumps(result, sort_keys=True, default=str).encode(),
            *layout.staged_gx_result(run_id, trust, extract_date, kind),
        )


def build_site(out_url: str, run_id: str, started_at: str) -> dict:
    """GX's Data Docs over every result the run staged, staged under `_runs/<run id>/data-docs/`: one page
    per trust's file, one per suite, and GX's index of them. What was built: counts and where."""
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from pipeline.extracts.validation import suite_json

    out = Store(out_url)
    schema, run = ExpectationSuiteValidationResultSchema(), RunIdentifier(run_name=run_id, run_time=started_at)
    with tempfile.TemporaryDirectory(prefix="trp-data-docs-") as tmp:
        site = Path(tmp) / "site"
        context = gx.get_context(mode="file", project_root_dir=tmp)
        context.add_data_docs_site(
            SITE,
            {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "show_cta_footer": False},
            },
        )
        kinds = set()
        pages = 0
        for trust in sorted(out.listdir(*layout.staged_gx_results(run_id))):
            for date in sorted(out.listdir(*layout.staged_gx_results(run_id), trust)):
                for name in sorted(out.listdir(*layout.staged_gx_results(run_id), trust, date)):
                    kind = name.removesuffix(".json")
                    result = schema.load(
                        json.loads(out.read_bytes(*layout.staged_gx_result(run_id, trust, date, kind)))
                    )
                    key = ValidationResultIdentifier(ExpectationSuiteIdentifier(name=kind), run, f"{trust}-{date}")
                    context.validation_results_store.set(key, result)
                    kinds.add(kind)
                    pages += 1
        for kind in sorted(kinds):
            context.suites.add(gx.ExpectationSuite(**{**suite_json(kind), "name": kind}))
        context.build_data_docs(site_names=[SITE])
        _self_contained(site)
        for path in sorted(p for p in site.rglob("*") if p.is_file()):
            out.put_file(str(path), *layout.staged_data_docs(run_id), *path.relative_to(site).parts)
    return {"validation_pages": pages, "suites": len(kinds), "index": f"{SITE}/index.html"}


def _self_contained(site: Path) -> None:
    """Every page's fetched addresses replaced by local copies; the static images no page shows removed."""
    shutil.copytree(ASSETS, site / VENDOR, ignore=shutil.ignore_patterns("README.md"))
    shown: set[str] = set()
    for page in site.rglob("*.html"):
        up = os.path.relpath(site, page.parent).replace(os.sep, "/")
        html = _CHECKS.sub("", _TAG.sub(lambda m: _local(m, up), page.read_text(encoding="utf-8")))
        html = _STATIC.sub(lambda m: f'{m.group(1)}="{up}/static/', html)  # GX's favicon is one level short
        page.write_text(html, encoding="utf-8")
        shown |= set(re.findall(r"static/images/([\w.-]+)", html))
    for css in site.rglob("*.css"):  # the dark theme's logo, fetched from GX's web server: its static copy
        text = re.sub(r"url\('https?://[^']*'\)", "url('../images/logo-long.png')", css.read_text(encoding="utf-8"))
        css.write_text(text, encoding="utf-8")
        shown |= set(re.findall(r"images/([\w.-]+)", text))
    for image in (site / "static" / "images").glob("*"):
        if image.name not in shown:
            image.unlink()


def _local(m: re.Match, up: str) -> str:
    """One tag that fetched from the internet, pointing at the site's own copy, or nothing."""
    tag, url = m.group(1), m.group(2)
    if tag == "img":  # GX's logo, fetched from its web server with the context's id: its static copy instead
        return m.group(0).replace(url, f"{up}/static/images/logo-long.png")
    if url.startswith(LEFT_OUT):
        return ""
    if url not in FETCHED:  # a template of another GX version: its asset has to be shipped first
        raise ValueError(f"GX's Data Docs fetch {url}, which pipeline/data/data-docs-assets does not hold")
    return m.group(0).replace(url, f"{up}/{VENDOR}/{FETCHED[url]}")
