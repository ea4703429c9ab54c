"""The commit: a fully staged run made visible by its manifest, then put in place for readers; an interrupted
swap finished by the next run."""

from __future__ import annotations

import json
import logging

from pipeline import layout
from pipeline.layout import DATASETS
from pipeline.storage import Store

log = logging.getLogger("trp")


def publish(out: Store, run_id: str, run_date: str, manifest: dict, trusts: list[str]) -> tuple[str, dict]:
    """Commit a fully staged run: the manifest first (the commit), then put it in place for readers.

    Until the manifest is written nothing visible has changed, so a crash leaves the previous run in place.
    After it, `_swap_in` keeps the run's datasets under `runs/<run id>/published/` (immutable: what the
    catalog reads, and the audit copy once superseded) and replaces the date's partitions in the analysts'
    `published/` tree with them; if that is interrupted, the next run's `recover` finishes it. First, the
    temporary files of writes a killed worker never finished are removed from the staging (its retry
    wrote the file whole), so that none is published.
    """
    for left in out.remove_partial(*layout.staging(run_id)):
        log.warning("removed %s, left by a worker stopped mid-write", left)
    previous = current_manifest(out, run_date)
    manifest = {**manifest, "supersedes": previous["run_id"] if previous else None, "trusts_published": trusts}
    body = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode()
    out.write_bytes(body, *layout.staged_manifest(run_id))
    path = out.write_bytes(body, *layout.manifest(run_date))
    _swap_in(out, manifest)
    return path, manifest


def _swap_in(out: Store, manifest: dict) -> None:
    """Put a committed run in place; idempotent, so an interrupted swap can resume.

    Per dataset: the staged partition becomes the run's kept copy, then the date's partition in
    `published/` is removed and the kept one copied in (local: hard links). The glob never shows two
    versions of a date; during the swap it may briefly show none, so readers who need a whole run at every
    instant (object stores, where nothing renames atomically) read through the catalog, which follows the
    manifests. Trusts' operational folders are swapped the same way; the replaced ones go to
    `superseded/<old run id>/operational/`.
    """
    run_id, run_date = manifest["run_id"], manifest["run_date"]
    old = manifest.get("supersedes") or "unknown"
    for ds in DATASETS:
        staged, kept = (
            (*layout.staged_published(run_id), ds, layout.date_partition(run_date)),
            layout.kept_partition(run_id, ds, run_date),
        )
        if out.exists(*staged):
            out.rm(*kept)
            out.move(staged, kept)
        if out.exists(*kept):
            out.rm(*layout.published(ds, run_date))
            out.copy(kept, layout.published(ds, run_date))
    for trust in out.listdir(*layout.staging(run_id), layout.OPERATIONAL):
        staged = layout.staged_operational(run_id, trust, run_date)
        if out.exists(*staged):
            if out.exists(*layout.operational(trust, run_date)):
                out.move(layout.operational(trust, run_date), layout.superseded_operational(old, trust, run_date))
            out.move(staged, layout.operational(trust, run_date))
    if out.exists(*layout.staged_gx_results(run_id)):  # each file's GX result, kept with the run
        out.rm(*layout.kept_gx_results(run_id))
        out.move(layout.staged_gx_results(run_id), layout.kept_gx_results(run_id))
    if out.exists(*layout.staged_data_docs(run_id)):  # the run's Data Docs, beside its report
        out.rm(*layout.data_docs(run_date))
        out.move(layout.staged_data_docs(run_id), layout.data_docs(run_date))
    out.write_bytes(json.dumps(manifest, indent=2, sort_keys=True, default=str).encode(), *layout.kept_manifest(run_id))
    out.rm(*layout.staging(run_id))


def recover(out: Store) -> list[str]:
    """Finish the swap of any committed run that was interrupted after its manifest; returns their ids.

    A staged run the pointer does not name was never committed; it is left alone (its run may still be
    going).
    """
    finished = []
    for run_id in out.listdir(*layout.staging()):
        if out.exists(*layout.staged_manifest(run_id)):
            manifest = json.loads(out.read_bytes(*layout.staged_manifest(run_id)))
            current = current_manifest(out, manifest["run_date"])
            if current and current["run_id"] == run_id:
                _swap_in(out, manifest)
                finished.append(run_id)
    if finished:
        from pipeline.publishing.catalog import refresh_catalog

        refresh_catalog(out)
    return finished


def current_manifest(out: Store, run_date: str) -> dict | None:
    """The manifest of the date's committed run, or None."""
    if not out.exists(*layout.manifest(run_date)):
        return None
    return json.loads(out.read_bytes(*layout.manifest(run_date)))
