"""`trp serve`: the upload service. A trust, with its own token, uploads its extract files and gets the
validation of `trp validate` back at once; it can list its uploads and fetch its own outputs, nothing else.

Every request is checked before anything is touched: the token (401), its trust against the path (403),
then the trust code, date and file name against strict allow-lists (400); no part of a path is ever taken
from the request as it is. An upload streams to a private spool file with a size limit (413), an idle and a
total time limit (408) and a SHA-256; only a complete upload is committed, whole, into
`LANDING/<TRUST>/<date>/` (`Store.put_file`), and uploads of one extract are committed and validated one at
a time. The same bytes again change nothing. Tokens never reach a log: they travel in a header and are
never printed.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from importlib import resources

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from pipeline.arrival import fingerprint
from pipeline.contract import FILES
from pipeline.reference import load_reference
from pipeline.storage import Store
from pipeline.tokens import TokenStore
from pipeline.trust_task import DATE_DIR

log = logging.getLogger("trp.service")
ALLOWED_FILES = frozenset(spec.name for spec in FILES.values())
OUTPUT_ZONES = ("operational", "arrivals")
CHUNK = 1 << 16
SHOWN_FINDINGS = 200


@dataclass(frozen=True)
class Settings:
    landing: str
    out: str
    tokens: str
    max_bytes: int = 256 << 20
    idle_seconds: float = 30.0
    upload_seconds: float = 600.0


def _date(value: str) -> str:
    if not DATE_DIR.fullmatch(value):
        raise HTTPException(400, "the extract date must be YYYY-MM-DD")
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, "the extract date is not a real date") from None
    return value


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="Transition pipeline uploads", docs_url=None, redoc_url=None, openapi_url=None)
    tokens, land, out = TokenStore(settings.tokens), Store(settings.landing), Store(settings.out)
    trusts = frozenset(load_reference().trust_codes)
    spool = tempfile.mkdtemp(prefix="trp-uploads-")
    locks: dict[tuple[str, str], asyncio.Lock] = {}

    def caller(request: Request) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        trust = tokens.trust_of(token.strip()) if scheme.lower() == "bearer" and token else None
        if trust is None:
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
        return HTMLResponse(body, headers={
            "Content-Security-Policy": "default-src 'none'; script-src 'self' 'unsafe-inline'; "
                                       "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
                                       "frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    @app.get("/api/v1/whoami")
    def whoami(trust: str = Depends(caller)) -> dict:
        return {"trust": trust}

    @app.put("/api/v1/extracts/{trust}/{extract_date}/{file_name}")
    async def upload(trust: str, extract_date: str, file_name: str, request: Request,
                     caller_trust: str = Depends(caller)) -> dict:
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
            async with locks.setdefault((trust, extract_date), asyncio.Lock()):
                changed = await run_in_threadpool(_commit, land, tmp, digest, trust, extract_date, file_name)
                outcome = await run_in_threadpool(_validate, settings, trust, extract_date)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        log.info("upload %s %s %s: %d bytes, sha256 %s, %s, %s", trust, extract_date, file_name, size, digest,
                 "committed" if changed else "unchanged", outcome["status"])
        return {"trust": trust, "extract_date": extract_date, "file": file_name, "bytes": size, "sha256": digest,
                "committed": changed, "validation": outcome}

    @app.get("/api/v1/extracts/{trust}")
    def uploads(trust: str, caller_trust: str = Depends(caller)) -> dict:
        own(trust, caller_trust)
        found = [{"extract_date": date, "files": {k: v for k, v in sorted(fingerprint(land, trust, date).items())
                                                  if k in ALLOWED_FILES}}
                 for date in land.listdir(trust) if DATE_DIR.fullmatch(date)]
        return {"trust": trust, "extracts": found}

    @app.get("/api/v1/outputs/{trust}")
    def outputs(trust: str, caller_trust: str = Depends(caller)) -> dict:
        own(trust, caller_trust)
        return {"trust": trust, "files": [f"{zone}/{date}/{name}" for zone in OUTPUT_ZONES
                                          for date in out.listdir(zone, trust) if DATE_DIR.fullmatch(date)
                                          for name in out.listdir(zone, trust, date) if not name.startswith(".")]}

    @app.get("/api/v1/outputs/{trust}/{zone}/{date}/{file_name}")
    def output(trust: str, zone: str, date: str, file_name: str, caller_trust: str = Depends(caller)) -> Response:
        own(trust, caller_trust)
        if zone not in OUTPUT_ZONES or not DATE_DIR.fullmatch(date) or file_name not in out.listdir(zone, trust, date):
            raise HTTPException(404, "no such output")
        media = {"html": "text/html", "csv": "text/csv", "txt": "text/plain", "json": "application/json"}.get(
            file_name.rsplit(".", 1)[-1], "application/octet-stream")
        return Response(out.read_bytes(zone, trust, date, file_name), media_type=media,
                        headers={"Content-Disposition": f'attachment; filename="{file_name}"',
                                 "X-Content-Type-Options": "nosniff"})

    return app


async def _receive(request: Request, fd: int, settings: Settings) -> tuple[str, int]:
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
            except asyncio.TimeoutError:
                raise HTTPException(408, "the upload stalled or took too long; nothing was saved") from None
            size += len(chunk)
            if size > settings.max_bytes:
                raise HTTPException(413, f"uploads are limited to {settings.max_bytes} bytes; nothing was saved")
            digest.update(chunk)
            f.write(chunk)
    if size == 0:
        raise HTTPException(400, "the upload is empty; nothing was saved")
    return digest.hexdigest(), size


def _commit(land: Store, tmp: str, digest: str, trust: str, extract_date: str, file_name: str) -> bool:
    """Put the upload in place whole; False when the same bytes are already there."""
    if land.exists(trust, extract_date, file_name):
        if hashlib.sha256(land.read_bytes(trust, extract_date, file_name)).hexdigest() == digest:
            return False
    land.put_file(tmp, trust, extract_date, file_name)
    return True


def _validate(settings: Settings, trust: str, extract_date: str) -> dict:
    from pipeline.arrival import check_arrival

    s = check_arrival(settings.landing, trust, settings.out, extract_date=extract_date)
    failed = [{"file": r["file"], "rule": r["rule"], "column": r["column"], "severity": r["on_fail"],
               "unexpected_count": r["unexpected_count"], "message": r["message"]}
              for r in s["validation"] if not r["success"]]
    return {"status": s["status"], "quarantined_rows": s["quarantined_rows"], "warnings": s["warnings"],
            "rejected_files": s["rejected_files"], "failed_rules": failed,
            "held_back": s.get("quarantine", [])[:SHOWN_FINDINGS],
            "report": f"arrivals/{extract_date}/validation_report.html" if s.get("report") else None}
