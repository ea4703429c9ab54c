"""The upload service as trusts meet it: `trp serve` in its own process on 127.0.0.1, the `trp upload` client,
the web page in headless Chromium, every refusal a security reviewer would try, and 35 trusts at once."""

import hashlib
import io
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.extracts.guide import template_csv
from pipeline.synthetic.landing import generate_landing
from pipeline.uploads.tokens import TokenStore
from tests.net import free_port

BIN = Path(sys.executable).parent
CHROMIUM = shutil.which("chromium")
MAX_BYTES = 1 << 20


@pytest.fixture(scope="module")
def extracts(tmp_path_factory):
    """Good extract files for every trust, to upload."""
    root = tmp_path_factory.mktemp("extracts")
    generate_landing(str(root), 0.005, seed=11)
    return {t.name: sorted(t.iterdir())[-1] for t in root.iterdir()}


def _start(root: Path, *options: str):
    """`trp serve` in its own process on 127.0.0.1, three trusts' tokens issued and one revoked; stopped by
    the caller (`_stop`)."""
    landing, out, tokens = root / "landing", root / "out", root / "tokens.json"
    landing.mkdir(parents=True)
    store = TokenStore(tokens)
    issued = {t: store.issue(t) for t in ("LDN", "KNT", "DOR")}
    revoked = store.issue("LDN")
    store.revoke(revoked.token_id)
    port = free_port()
    log = open(root / "service.log", "wb")
    proc = subprocess.Popen(
        [
            BIN / "trp",
            "serve",
            "--landing",
            str(landing),
            "--out",
            str(out),
            "--tokens",
            str(tokens),
            "--port",
            str(port),
            *options,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, (root / "service.log").read_text()
        time.sleep(0.3)
    return {
        "url": url,
        "landing": landing,
        "out": out,
        "tokens": tokens,
        "issued": issued,
        "revoked": revoked,
        "log": root / "service.log",
        "store": store,
        "proc": proc,
    }


def _stop(service) -> None:
    service["proc"].terminate()
    service["proc"].wait(timeout=20)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    started = _start(
        tmp_path_factory.mktemp("service"),
        "--max-mb",
        str(MAX_BYTES / (1 << 20)),
        "--idle-seconds",
        "2",
        "--upload-seconds",
        "30",
    )
    yield started
    _stop(started)


def _put(service, trust, date, name, body, token=None, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.put(
        f"{service['url']}/api/v1/extracts/{trust}/{date}/{name}", content=body, headers=headers, timeout=60, **kw
    )


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_trust_uploads_with_the_cli_and_gets_its_validation_at_once(service, extracts, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(service["issued"]["KNT"].token)
    files = [extracts["KNT"] / "staff.csv", extracts["KNT"] / "cases.csv"]
    args = [
        "upload",
        *map(str, files),
        "--url",
        service["url"],
        "--token-file",
        str(token_file),
        "--trust",
        "KNT",
        "--date",
        "2014-06-03",
    ]
    started = time.monotonic()
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert time.monotonic() - started < 30
    assert "KNT 2014-06-03: VALIDATED" in done.output
    for f in files:
        assert (service["landing"] / "KNT" / "2014-06-03" / f.name).read_bytes() == f.read_bytes()
    assert (service["out"] / "arrivals" / "KNT" / "2014-06-03" / "validation_report.html").exists()

    stamp = (service["landing"] / "KNT" / "2014-06-03" / "cases.csv").stat().st_mtime_ns
    again = CliRunner().invoke(app, args)  # the same bytes again: nothing changes
    assert again.exit_code == 0 and "unchanged" in again.output
    assert (service["landing"] / "KNT" / "2014-06-03" / "cases.csv").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in (service["landing"] / "KNT" / "2014-06-03").iterdir()) == ["cases.csv", "staff.csv"]

    listed = httpx.get(
        f"{service['url']}/api/v1/extracts/KNT", headers={"Authorization": f"Bearer {service['issued']['KNT'].token}"}
    ).json()
    (extract,) = listed["extracts"]
    assert extract["extract_date"] == "2014-06-03"
    assert extract["files"] == {
        f.name: {"bytes": f.stat().st_size, "sha256": hashlib.sha256(f.read_bytes()).hexdigest()} for f in sorted(files)
    }
    # every upload kept, newest first: the second round changed nothing, and is what is current
    assert [(u["file"], u["outcome"], u["current"]) for u in extract["uploads"]] == [
        ("cases.csv", "UNCHANGED", True),
        ("staff.csv", "UNCHANGED", True),
        ("cases.csv", "CURRENT", False),
        ("staff.csv", "CURRENT", False),
    ]
    kept = service["out"] / "uploads" / "KNT" / "2014-06-03"
    for u in extract["uploads"]:
        assert (kept / u["upload_id"] / u["file"]).read_bytes() == (extracts["KNT"] / u["file"]).read_bytes()


def test_a_rejected_upload_is_kept_but_never_replaces_the_good_file(service, extracts):
    token = service["issued"]["DOR"].token
    good_staff, good_cases = ((extracts["DOR"] / n).read_bytes() for n in ("staff.csv", "cases.csv"))
    assert _put(service, "DOR", "2014-06-04", "staff.csv", good_staff, token).json()["outcome"] == "CURRENT"
    raw = b"PK\x03\x04\x00\x00binary"
    r = _put(service, "DOR", "2014-06-04", "cases.csv", raw, token)  # checked alone: no cases.csv there yet
    assert r.status_code == 200
    assert (r.json()["outcome"], r.json()["committed"]) == ("REJECTED", False)
    v = r.json()["validation"]
    assert v["status"] == "REJECTED"
    assert [(f["file"], f["line"], f["rule"]) for f in v["rejected_files"]] == [("cases.csv", 1, "NOT_CSV")]
    assert not (service["landing"] / "DOR" / "2014-06-04" / "cases.csv").exists()

    assert _put(service, "DOR", "2014-06-04", "cases.csv", good_cases, token).json()["outcome"] == "CURRENT"
    random = bytes(range(256)) * 64
    for name, bad in (("staff.csv", random), ("cases.csv", raw)):  # now against a good extract of that date
        answer = _put(service, "DOR", "2014-06-04", name, bad, token).json()
        assert answer["outcome"] == "REJECTED", answer
        assert answer["validation"]["rejected_files"][0]["file"] == name
        assert answer["current"] == {
            n: {"bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()}
            for n, b in (("cases.csv", good_cases), ("staff.csv", good_staff))
        }
    assert (service["landing"] / "DOR" / "2014-06-04" / "staff.csv").read_bytes() == good_staff
    assert (service["landing"] / "DOR" / "2014-06-04" / "cases.csv").read_bytes() == good_cases

    listed = httpx.get(f"{service['url']}/api/v1/extracts/DOR", headers={"Authorization": f"Bearer {token}"})
    uploads = listed.json()["extracts"][0]["uploads"]
    assert [(u["file"], u["outcome"], u["current"]) for u in uploads] == [
        ("cases.csv", "REJECTED", False),
        ("staff.csv", "REJECTED", False),
        ("cases.csv", "CURRENT", True),
        ("cases.csv", "REJECTED", False),
        ("staff.csv", "CURRENT", True),
    ]
    kept = service["out"] / "uploads" / "DOR" / "2014-06-04"
    assert (kept / uploads[1]["upload_id"] / "staff.csv").read_bytes() == random  # the raw upload, kept
    assert uploads[1]["rejection"]["rule"] == "NOT_CSV"
    assert listed.headers["cache-control"] == "no-store"

    outputs = httpx.get(f"{service['url']}/api/v1/outputs/DOR", headers={"Authorization": f"Bearer {token}"})
    assert "arrivals/2014-06-04/validation_report.html" in outputs.json()["files"]
    page = httpx.get(
        f"{service['url']}/api/v1/outputs/DOR/arrivals/2014-06-04/validation_report.html",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert page.status_code == 200 and "VALIDATED" in page.text  # the report of the extract as it stands
    assert page.headers["cache-control"] == "no-store"


def _refusals(service):
    ldn, knt = service["issued"]["LDN"].token, service["issued"]["KNT"].token
    staff = b"trust_code,staff_code\nLDN,A1\n"
    base = f"{service['url']}/api/v1/extracts"
    return [
        ("no token", "PUT", f"{base}/LDN/2014-06-05/staff.csv", {}, staff, 401),
        (
            "wrong token",
            "PUT",
            f"{base}/LDN/2014-06-05/staff.csv",
            {"Authorization": "Bearer trp.0000.nope"},
            staff,
            401,
        ),
        (
            "not a bearer token",
            "PUT",
            f"{base}/LDN/2014-06-05/staff.csv",
            {"Authorization": f"Basic {ldn}"},
            staff,
            401,
        ),
        (
            "revoked token",
            "PUT",
            f"{base}/LDN/2014-06-05/staff.csv",
            {"Authorization": f"Bearer {service['revoked'].token}"},
            staff,
            401,
        ),
        (
            "another trust's token",
            "PUT",
            f"{base}/LDN/2014-06-05/staff.csv",
            {"Authorization": f"Bearer {knt}"},
            staff,
            403,
        ),
        (
            "traversal in trust",
            "PUT",
            f"{base}/..%2F..%2Ftmp/2014-06-05/staff.csv",
            {"Authorization": f"Bearer {ldn}"},
            staff,
            (403, 404),
        ),
        (
            "dots as trust",
            "PUT",
            f"{base}/%2e%2e/2014-06-05/staff.csv",
            {"Authorization": f"Bearer {ldn}"},
            staff,
            (403, 404),
        ),
        (
            "traversal in date",
            "PUT",
            f"{base}/LDN/..%2F..%2Fetc/staff.csv",
            {"Authorization": f"Bearer {ldn}"},
            staff,
            (400, 404),
        ),
        ("dots as date", "PUT", f"{base}/LDN/%2e%2e/staff.csv", {"Authorization": f"Bearer {ldn}"}, staff, (400, 404)),
        ("not a real date", "PUT", f"{base}/LDN/2014-02-30/staff.csv", {"Authorization": f"Bearer {ldn}"}, staff, 400),
        (
            "traversal in file name",
            "PUT",
            f"{base}/LDN/2014-06-05/..%2F..%2Fstaff.csv",
            {"Authorization": f"Bearer {ldn}"},
            staff,
            (400, 404),
        ),
        (
            "absolute file name",
            "PUT",
            f"{base}/LDN/2014-06-05/%2Fetc%2Fpasswd",
            {"Authorization": f"Bearer {ldn}"},
            staff,
            (400, 404),
        ),
        (
            "encoded dots in file name",
            "PUT",
            f"{base}/LDN/2014-06-05/%2e%2e",
            {"Authorization": f"Bearer {ldn}"},
            staff,
            (400, 404),
        ),
        (
            "a file not in the contract",
            "PUT",
            f"{base}/LDN/2014-06-05/evil.csv",
            {"Authorization": f"Bearer {ldn}"},
            staff,
            400,
        ),
        (
            "a NUL in the file name",
            "PUT",
            f"{base}/LDN/2014-06-05/staff.csv%00.txt",
            {"Authorization": f"Bearer {ldn}"},
            staff,
            400,
        ),
        (
            "oversized",
            "PUT",
            f"{base}/LDN/2014-06-05/staff.csv",
            {"Authorization": f"Bearer {ldn}"},
            b"x" * (MAX_BYTES + 1),
            413,
        ),
        (
            "oversized without a length",
            "PUT",
            f"{base}/LDN/2014-06-05/staff.csv",
            {"Authorization": f"Bearer {ldn}"},
            iter([b"x" * MAX_BYTES, b"y"]),
            413,
        ),
        ("empty", "PUT", f"{base}/LDN/2014-06-05/staff.csv", {"Authorization": f"Bearer {ldn}"}, b"", 400),
        (
            "another trust's outputs",
            "GET",
            f"{service['url']}/api/v1/outputs/KNT",
            {"Authorization": f"Bearer {ldn}"},
            None,
            403,
        ),
        (
            "another trust's uploads",
            "GET",
            f"{service['url']}/api/v1/extracts/KNT",
            {"Authorization": f"Bearer {ldn}"},
            None,
            403,
        ),
        (
            "an output outside the zones",
            "GET",
            f"{service['url']}/api/v1/outputs/LDN/published/2014-06-01/x.csv",
            {"Authorization": f"Bearer {ldn}"},
            None,
            404,
        ),
    ]


def test_every_refusal_is_clear_and_writes_nothing(service):
    before = _tree(service["landing"]), _tree(service["out"])
    for name, method, url, headers, body, expected in _refusals(service):
        r = httpx.request(method, url, headers=headers, content=body, timeout=30)
        assert r.status_code in (expected if isinstance(expected, tuple) else (expected,)), (
            name,
            r.status_code,
            r.text,
        )
        assert r.json().get("detail"), name
        assert (_tree(service["landing"]), _tree(service["out"])) == before, name


def test_a_stalled_upload_is_dropped_within_its_time_limit_and_leaves_nothing(service):
    before = _tree(service["landing"])
    host, port = service["url"].removeprefix("http://").split(":")
    token = service["issued"]["LDN"].token
    with socket.create_connection((host, int(port)), timeout=20) as s:
        s.sendall(
            f"PUT /api/v1/extracts/LDN/2014-06-06/staff.csv HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: 1000\r\n\r\ntrust_code,".encode()
        )
        started = time.monotonic()
        answer = s.recv(4096).decode()
        waited = time.monotonic() - started
    assert answer.startswith("HTTP/1.1 408"), answer
    assert 1.5 < waited < 10
    assert _tree(service["landing"]) == before


def test_concurrent_uploads_of_one_file_end_with_one_of_them_whole(service, extracts):
    token = service["issued"]["LDN"].token
    good = (extracts["LDN"] / "staff.csv").read_bytes()
    versions = [good, good.replace(b"\n", b"\r\n"), good + good.splitlines(keepends=True)[1]]
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda b: _put(service, "LDN", "2014-06-07", "staff.csv", b, token), versions * 2))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    final = (service["landing"] / "LDN" / "2014-06-07" / "staff.csv").read_bytes()
    assert final in versions
    assert hashlib.sha256(final).hexdigest() in {a.json()["sha256"] for a in answers}
    assert [p.name for p in (service["landing"] / "LDN" / "2014-06-07").iterdir()] == ["staff.csv"]


def test_35_trusts_uploading_at_once_each_commit_exactly_once(service, extracts):
    store = service["store"]
    tokens = {t: store.issue(t).token for t in sorted(extracts)}

    def upload(trust: str) -> list[int]:
        return [
            _put(service, trust, "2014-06-08", name, (extracts[trust] / name).read_bytes(), tokens[trust]).status_code
            for name in ("staff.csv", "cases.csv")
        ]

    started = time.monotonic()
    with ThreadPoolExecutor(35) as pool:
        codes = dict(zip(sorted(extracts), pool.map(upload, sorted(extracts))))
    assert all(c == [200, 200] for c in codes.values()), codes
    assert time.monotonic() - started < 300
    for trust in extracts:
        folder = service["landing"] / trust / "2014-06-08"
        assert sorted(p.name for p in folder.iterdir()) == ["cases.csv", "staff.csv"], trust
        for name in ("staff.csv", "cases.csv"):
            assert (folder / name).read_bytes() == (extracts[trust] / name).read_bytes()


def test_tokens_are_stored_only_as_salted_hashes_and_never_logged(service):
    stored = service["tokens"].read_text()
    log = service["log"].read_text()
    assert "upload KNT 2014-06-03 staff.csv" in log  # the log does record uploads
    for issued in [*service["issued"].values(), service["revoked"]]:
        secret = issued.token.split(".")[2]
        assert secret not in stored and secret not in log
        assert issued.token_id in stored


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it as root)")
def test_the_web_page_uploads_a_good_and_a_bad_extract_and_shows_the_outcome(service, extracts, tmp_path):
    from playwright.sync_api import sync_playwright

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "staff.csv").write_bytes((extracts["LDN"] / "staff.csv").read_bytes())
    (bad / "cases.csv").write_bytes(b"PK\x03\x04binary")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        problems = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(service["url"] + "/")
        outcomes = []
        for date, folder in (("2014-06-09", extracts["LDN"]), ("2014-06-10", bad)):
            page.fill("#token", service["issued"]["LDN"].token)
            page.fill("#trust", "LDN")
            page.fill("#date", date)
            page.set_input_files("#files", [str(folder / "staff.csv"), str(folder / "cases.csv")])
            page.click("#send")
            page.locator("#status", has_text=date).wait_for(timeout=60000)  # the page's CSP forbids eval
            outcomes.append((page.inner_text("#status"), page.inner_text("#findings")))
        page.wait_for_selector("#outputs li")
        browser.close()
    assert problems == []
    assert "VALIDATED" in outcomes[0][0]
    assert "REJECTED" in outcomes[1][0] and "NOT_CSV" in outcomes[1][1] and "cases.csv" in outcomes[1][1]


def test_every_required_column_missing_is_rejected_at_upload_and_not_saved(service, extracts):
    """Each file kind without each of its required columns, and without all of them, against a good extract
    of the same date: the answer is its MISSING_COLUMN rejection, and the good file stays current."""
    from pipeline.extracts.contract import FILES

    token = service["issued"]["KNT"].token
    folder = service["landing"] / "KNT" / "2014-06-20"
    good = {}
    for kind, spec in FILES.items():
        good[spec.name] = (
            (extracts["KNT"] / spec.name).read_bytes()
            if (extracts["KNT"] / spec.name).exists()
            else template_csv(kind).replace("WIL", "KNT").encode()
        )
        assert _put(service, "KNT", "2014-06-20", spec.name, good[spec.name], token).json()["outcome"] == "CURRENT"
    for spec in FILES.values():
        frame = pd.read_csv(io.BytesIO(good[spec.name]), dtype=str, keep_default_na=False, encoding="utf-8-sig")
        for missing in [*([c] for c in spec.required), list(spec.required)]:
            raw = frame.drop(columns=missing).to_csv(index=False).encode()
            answer = _put(service, "KNT", "2014-06-20", spec.name, raw, token).json()
            (r,) = answer["validation"]["rejected_files"]
            assert (answer["outcome"], r["file"], r["rule"], r["column"]) == (
                "REJECTED",
                spec.name,
                "MISSING_COLUMN",
                ", ".join(sorted(missing)),
            ), (spec.name, missing)
            assert (folder / spec.name).read_bytes() == good[spec.name]


def test_the_page_serves_the_extract_contract_and_templates(service):
    page = httpx.get(service["url"] + "/")
    assert 'href="/contract"' in page.text and 'href="/templates/cases.csv"' in page.text
    contract = httpx.get(service["url"] + "/contract")
    assert contract.status_code == 200 and contract.headers["content-type"].startswith("text/html")
    assert "<table>" in contract.text and "TOO_MANY_ROWS_HELD_BACK" in contract.text
    assert "http" not in contract.text.split("<body>")[0]  # no external assets
    for name in ("staff.csv", "cases.csv", "retention_requests.csv", "appeals.csv"):
        got = httpx.get(f"{service['url']}/templates/{name}")
        assert got.status_code == 200 and len(got.text.strip().splitlines()) == 3, name
    assert httpx.get(f"{service['url']}/templates/evil.csv").status_code == 404
