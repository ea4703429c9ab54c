"""`trp serve`: the upload service. A trust, with its own token, uploads its extract files and gets the
validation of `trp validate` back at once; it can list its uploads and fetch its own outputs, nothing else.

Every request is checked before anything is touched: the token (401), its trust against the path (403),
then the trust code, date and file name against strict allow-lists (400); no part of a path is ever taken
from the request as it is. An upload streams to a private spool file with a size limit (413), an idle and a
total time limit (408) and a SHA-256. Every upload is kept as it was sent under `OUT/uploads/`; a file that
breaks a file rule is answered with its rejection and not put in the landing zone, so the trust's last good
file of that date stays; any other is committed, whole, into `LANDING/<TRUST>/<date>/` (`Store.put_file`).
One trust's uploads are checked one at a time, and at most `validations_at_once` trusts' at once. Tokens
never reach a log: they travel in a header, and the access log drops every query string.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections import deque
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from pipeline import layout
from pipeline.extracts.contract import FILES
from pipeline.extracts.reading import check_alone
from pipeline.layout import is_date_folder
from pipeline.policy import ExtractsPolicy
from pipeline.reference import load_reference
from pipeline.runs.arrival import assess_extract, fingerprint, write_arrival
from pipeline.storage import Store
from pipeline.uploads.tokens import TokenStore

log = logging.getLogger("trp.service")
ALLOWED_FILES = frozenset(spec.name for spec in FILES.values())
KIND_OF = {spec.name: kind for kind, spec in FILES.items()}
UPLOAD_RECORD = "upload.json"
SHOWN_FINDINGS = 200
# Every answer may carry personal data (a trust's lists, its findings): never kept by a browser or proxy.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache", "X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True)
class ServiceOptions:
    landing: str
    out: str
    tokens: str
    max_bytes: int = 256 << 20
    idle_seconds: float = 30.0
    upload_seconds: float = 600.0
    limits: ExtractsPolicy = ExtractsPolicy()
    validations_at_once: int = 2  # one per core: a validation is CPU-bound
    auth_failures_per_minute: int = 30  # per client address, then 429 until the minute has passed
    hashes_at_once: int = 2  # scrypt checks at once (16 MiB each)


def _date(value: str) -> str:
    if not is_date_folder(value):
        raise HTTPException(400, "the extract date must be a real date, YYYY-MM-DD")
    return value


class FailureBudget:
    """Failed authentications per client address in the last minute: past the budget, a client is refused
    before its token is looked at. Kept small: an address is forgotten once its minute has passed."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self.failures: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self.failures.get(client) or deque()
        while times and times[0] < now - 60:
            times.popleft()
        if not times:
            self.failures.pop(client, None)
        return times

    def exhausted(self, client: str) -> bool:
        return len(self._recent(client, time.monotonic())) >= self.per_minute

    def failed(self, client: str) -> None:
        now = time.monotonic()
        if len(self.failures) > 10_000:  # a flood of addresses: keep only those failing now
            for c in list(self.failures):
                self._recent(c, now)
        times = self._recent(client, now)
        times.append(now)
        self.failures[client] = times


def create_app(settings: ServiceOptions) -> FastAPI:
    spool = tempfile.mkdtemp(prefix="trp-uploads-")

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        try:
            yield
        finally:
            shutil.rmtree(spool, ignore_errors=True)  # uploads cut off by the shutdown: nothing was committed

    app = FastAPI(
        title="Transition pipeline uploads", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    tokens, land, out = TokenStore(settings.tokens), Store(settings.landing), Store(settings.out)
    trusts = frozenset(load_reference().trust_codes)
    trust_locks: dict[str, asyncio.Lock] = {}
    validations = asyncio.Semaphore(settings.validations_at_once)
    hashing = asyncio.Semaphore(settings.hashes_at_once)
    budget = FailureBudget(settings.auth_failures_per_minute)

    @app.middleware("http")
    async def no_store(request: Request, call_next):
        response = await call_next(request)
        for k, v in NO_STORE.items():
            response.headers.setdefault(k, v)
        return response

    async def caller(request: Request) -> str:
        """The caller's trust. Cheap refusals first (no token, malformed, unknown id, a client past its
        failure budget); scrypt only for a live id, a few at a time, off the event loop."""
        client = request.client.host if request.client else "-"

        def over_budget() -> None:
            if budget.exhausted(client):
                raise HTTPException(
                    429, "too many failed attempts from this address: wait a minute", headers={"Retry-After": "60"}
                )

        over_budget()
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        known = tokens.record_of(token) if scheme.lower() == "bearer" else None
        trust = tokens.remembered(token, known) if known else None
        if known and trust is None:
            async with hashing:
                over_budget()  # failures may have been counted while this request waited its turn
                trust = await run_in_threadpool(tokens.verify, token, known)
        if trust is None:
            budget.failed(client)
            raise HTTPException(401, "a valid token is required", headers={"WWW-Authenticate": "Bearer"})
        return trust

    def own(trust: str, caller_trust: str) -> str:
        if trust != caller_trust:
            raise HTTPException(403, "this token is not for that trust")
        if trust not in trusts:
            raise HTTPException(400, "unknown trust code")
        return trust

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        body = resources.files("pipeline.data").joinpath("upload.html").read_text(encoding="utf-8")
        return HTMLResponse(
            body,
            headers={
                "Content-Security-Policy": "default-src 'none'; script-src 'self' 'unsafe-inline'; "
                "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
                "frame-ancestors 'none'",
                "Referrer-Policy": "no-referrer",
            },
        )

    @app.get("/contract", response_class=HTMLResponse)
    def contract() -> HTMLResponse:
        from pipeline.extracts.guide import guide_html

        return HTMLResponse(
            guide_html(),
            headers={
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
            },
        )

    @app.get("/templates/{file_name}")
    def template(file_name: str) -> PlainTextResponse:
        from pipeline.extracts.guide import template_csv

        if file_name not in ALLOWED_FILES:
            raise HTTPException(404, "no such template")
        return PlainTextResponse(
            template_csv(KIND_OF[file_name]),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{file_name}"'},
        )

    @app.get("/healthz")
    async def healthz() -> dict:  # on the event loop: answers while every worker thread is busy
        return {"ok": True}

    @app.get("/api/v1/whoami")
    async def whoami(trust: str = Depends(caller)) -> dict:
        return {"trust": trust}

    @app.put("/api/v1/extracts/{trust}/{extract_date}/{file_name}")
    async def upload(
        trust: str, extract_date: str, file_name: str, request: Request, caller_trust: str = Depends(caller)
    ) -> dict:
        own(trust, caller_trust)
        _date(extract_date)
        if file_name not in ALLOWED_FILES:
            raise HTTPException(400, f"the file must be one of {', '.join(sorted(ALLOWED_FILES))}")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_bytes:
            raise HTTPException(413, f"uploads are limited to {settings.max_bytes} bytes")
        fd, tmp = tempfile.mkstemp(dir=spool)
        try:
            digest, size = await _receive(request, fd, settings)
            async with trust_locks.setdefault(trust, asyncio.Lock()), validations:
                answer = await run_in_threadpool(
                    _take, settings, land, out, tmp, digest, trust, extract_date, file_name
                )
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        log.info(
            "upload %s %s %s: %d bytes, sha256 %s, kept as %s, %s, %s",
            trust,
            extract_date,
            file_name,
            size,
            digest,
            answer["upload_id"],
            answer["outcome"].lower(),
            answer["validation"]["status"],
        )
        return {
            "trust": trust,
            "extract_date": extract_date,
            "file": file_name,
            "bytes": size,
            "sha256": digest,
            **answer,
        }

    @app.get("/api/v1/extracts/{trust}")
    def uploads(trust: str, caller_trust: str = Depends(caller)) -> dict:
        own(trust, caller_trust)
        dates = sorted(set(filter(is_date_folder, land.listdir(trust) + out.listdir(*layout.uploads(trust)))))
        return {"trust": trust, "extracts": [_extract_listing(land, out, trust, date) for date in dates]}

    @app.get("/api/v1/outputs/{trust}")
    def outputs(trust: str, caller_trust: str = Depends(caller)) -> dict:
        own(trust, caller_trust)
        return {
            "trust": trust,
            "files": [
                f"{zone}/{date}/{name}"
                for zone in layout.TRUST_ZONES
                for date in out.listdir(*layout.trust_zone(zone, trust))
                if is_date_folder(date)
                for name in out.listdir(*layout.trust_zone(zone, trust, date))
                if not name.startswith(".")
            ],
        }

    @app.get("/api/v1/outputs/{trust}/{zone}/{date}/{file_name}")
    def output(trust: str, zone: str, date: str, file_name: str, caller_trust: str = Depends(caller)) -> Response:
        own(trust, caller_trust)
        if (
            zone not in layout.TRUST_ZONES
            or not is_date_folder(date)
            or file_name not in out.listdir(*layout.trust_zone(zone, trust, date))
        ):
            raise HTTPException(404, "no such output")
        media = {"html": "text/html", "csv": "text/csv", "txt": "text/plain", "json": "application/json"}.get(
            file_name.rsplit(".", 1)[-1], "application/octet-stream"
        )
        return Response(
            out.read_bytes(zone, trust, date, file_name),
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="{file_name}"'},
        )

    return app


async def _receive(request: Request, fd: int, settings: ServiceOptions) -> tuple[str, int]:
    """Stream the body to the spool file: size, idle and total time limited; its SHA-256 and length."""
    digest, size = hashlib.sha256(), 0
    deadline = time.monotonic() + settings.upload_seconds
    chunks = request.stream().__aiter__()
    with os.fdopen(fd, "wb") as f:
        while True:
            wait = min(settings.idle_seconds, deadline - time.monotonic())
            try:
                chunk = await asyncio.wait_for(chunks.__anext__(), timeout=max(wait, 0.001))
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise HTTPException(408, "the upload stalled or took too long; nothing was saved") from None
            size += len(chunk)
            if size > settings.max_bytes:
                raise HTTPException(413, f"uploads are limited to {settings.max_bytes} bytes; nothing was saved")
            digest.update(chunk)
            f.write(chunk)
    if size == 0:
        raise HTTPException(400, "the upload is empty; nothing was saved")
    return digest.hexdigest(), size


def _take(
    settings: ServiceOptions,
    land: Store,
    out: Store,
    tmp: str,
    digest: str,
    trust: str,
    extract_date: str,
    file_name: str,
) -> dict:
    """Keep the upload as sent, check the extract with it in place, and commit it only if the file itself
    breaks no file rule. The answer: the upload's id and outcome (CURRENT, UNCHANGED or REJECTED), the
    validation, and which file of each name is current."""
    with open(tmp, "rb") as f:
        raw = f.read()
    received = dt.datetime.now(dt.UTC)
    upload_id = f"{received:%Y%m%dT%H%M%S%fZ}-{digest[:12]}"
    kept = layout.upload(trust, extract_date, upload_id)
    out.put_file(tmp, *kept, file_name)
    summary = assess_extract(
        settings.landing, trust, extract_date=extract_date, limits=settings.limits, replacing={file_name: raw}
    )
    rejection = next((r for r in summary["rejected_files"] if r["file"] == file_name), None)
    if rejection is None and summary["status"] == "REJECTED" and summary["rejected_files"][0]["rule"] == "MISSING_FILE":
        rejection = check_alone(KIND_OF[file_name], raw, trust, settings.limits)  # not checkable with the rest yet
        if rejection is not None:
            summary = {
                **summary,
                "rejected_files": [rejection],
                "quarantine": [rejection],
                "held_back": [],
                "validation": [],
                "quarantined_rows": 0,
            }
    current = _current(land, trust, extract_date)
    if rejection is not None:
        outcome = "REJECTED"
    elif current.get(file_name, {}).get("sha256") == digest:
        outcome = "UNCHANGED"
    else:
        land.put_file(tmp, trust, extract_date, file_name)
        current = {**current, file_name: {"bytes": len(raw), "sha256": digest}}
        outcome = "CURRENT"
    report = None
    if outcome != "REJECTED":
        report = write_arrival(settings.out, settings.landing, summary)
    record = {
        "upload_id": upload_id,
        "file": file_name,
        "bytes": len(raw),
        "sha256": digest,
        "received_at": received.isoformat(),
        "outcome": outcome,
        "rejection": rejection,
    }
    out.write_bytes(json.dumps(record, indent=2, sort_keys=True).encode(), *kept, UPLOAD_RECORD)
    failed = [
        {
            "file": r["file"],
            "rule": r["rule"],
            "column": r["column"],
            "severity": r["on_fail"],
            "unexpected_count": r["unexpected_count"],
            "message": r["message"],
        }
        for r in summary["validation"]
        if not r["success"]
    ]
    validation = {
        "status": summary["status"],
        "quarantined_rows": summary["quarantined_rows"],
        "warnings": summary["warnings"],
        "rejected_files": summary["rejected_files"],
        "failed_rules": failed,
        "held_back": summary.get("held_back", [])[:SHOWN_FINDINGS],
        "report": f"arrivals/{extract_date}/validation_report.html" if report else None,
    }
    return {
        "upload_id": upload_id,
        "outcome": outcome,
        "committed": outcome == "CURRENT",
        "validation": validation,
        "current": dict(sorted(current.items())),
    }


def _current(land: Store, trust: str, extract_date: str) -> dict[str, dict]:
    """The extract's files as the nightly run will read them: name, bytes and SHA-256."""
    return {
        name: {"bytes": size, "sha256": hashlib.sha256(land.read_bytes(trust, extract_date, name)).hexdigest()}
        for name, size in sorted(fingerprint(land, trust, extract_date).items())
        if name in ALLOWED_FILES
    }


def _extract_listing(land: Store, out: Store, trust: str, date: str) -> dict:
    """One extract date: its current files, and every upload to it (newest first), each marked current when
    it is what the landing zone holds."""
    files = _current(land, trust, date)
    records = [
        json.loads(out.read_bytes(*layout.upload(trust, date, u), UPLOAD_RECORD))
        for u in out.listdir(*layout.uploads(trust, date))
        if out.exists(*layout.upload(trust, date, u), UPLOAD_RECORD)
    ]
    records.sort(key=lambda r: r["upload_id"], reverse=True)
    seen: set[str] = set()
    for r in records:
        r["current"] = (
            r["file"] not in seen
            and files.get(r["file"], {}).get("sha256") == r["sha256"]
            and r["outcome"] != "REJECTED"
        )
        if r["current"]:
            seen.add(r["file"])
    return {"extract_date": date, "files": files, "uploads": records}


class _NoQueryStrings(logging.Filter):
    """The access log without query strings: a token sent as `?token=...` is refused, and never written down."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def guarded_protocol(header_seconds: float, max_connections: int):
    """uvicorn's HTTP protocol with the two limits it lacks: a connection must finish each request's headers
    within `header_seconds` (uvicorn waits for ever, so slow clients could hold every file descriptor), and
    no more than `max_connections` are open at once."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class Guarded(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()
            if len(self.connections) > max_connections:
                # Make room by closing the connection that has waited longest for its headers: a flood of
                # slow clients cannot lock out new ones; with none waiting, the new connection is closed.
                waiting = [
                    c
                    for c in self.connections
                    if isinstance(c, Guarded)
                    and c._header_timer is not None
                    and (c.cycle is None or c.cycle.response_complete)
                ]
                oldest = min(waiting, key=lambda c: c._header_timer.when(), default=self)
                oldest.transport.close()

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_seconds, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
                self.transport.close()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request on this connection has the same time for its headers

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

    return Guarded


def serve(
    settings: ServiceOptions, host: str, port: int, header_seconds: float = 10.0, max_connections: int = 512
) -> None:
    """Run the service on uvicorn until stopped, with the connection limits above and a quiet access log."""
    import resource

    import uvicorn

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(soft, min(hard, 8 * max_connections))
    if wanted != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_level="info",
        timeout_keep_alive=5,
        http=guarded_protocol(header_seconds, max_connections),
    )
    logging.getLogger("uvicorn.access").addFilter(_NoQueryStrings())
    uvicorn.Server(config).run()
