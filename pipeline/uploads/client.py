"""The client side of `trp upload`: each file streamed to the service with a progress bar."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

CHUNK = 1 << 16


def _chunks(path: Path, progress: Progress, task) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            progress.update(task, advance=len(chunk))
            yield chunk


SAID = {
    "CURRENT": "saved: now the current file",
    "UNCHANGED": "unchanged (the same bytes are already current)",
    "REJECTED": "rejected: not saved, the current file (if any) stays",
}


def upload_extract(url: str, token: str, trust: str, date: str, files: list[Path], console: Console) -> list[dict]:
    """Upload each file in turn; every response (the last one holds the extract's validation as it then
    stands)."""
    answers: list[dict] = []
    headers = {"Authorization": f"Bearer {token}"}
    with (
        httpx.Client(base_url=url, timeout=httpx.Timeout(60.0, connect=10.0)) as client,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console,
            transient=True,
        ) as progress,
    ):
        for path in files:
            task = progress.add_task(path.name, total=path.stat().st_size)
            response = client.put(
                f"/api/v1/extracts/{trust}/{date}/{path.name}", headers=headers, content=_chunks(path, progress, task)
            )
            if response.status_code != 200:
                detail = (
                    response.json().get("detail")
                    if response.headers.get("content-type", "").startswith("application/json")
                    else response.text
                )
                raise RuntimeError(f"{path.name} refused ({response.status_code}): {detail}")
            last = response.json()
            answers.append(last)
            console.print(
                f"{path.name}: {last['bytes']:,} bytes, sha256 {last['sha256'][:12]}…, kept as upload "
                f"{last['upload_id']}; {SAID[last['outcome']]}",
                highlight=False,
            )
    return answers
