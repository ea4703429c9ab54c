"""The landing zone and outputs on S3: moto's real S3 HTTP server on 127.0.0.1, real Dask workers."""

import json

import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pytest
import s3fs
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.runs.nightly import run_nightly
from pipeline.synthetic.landing import generate_landing
from tests.net import free_port
from tests.readback import catalog_cases_by_trust, polling

KEY = b"test-key-not-secret"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    fs = s3fs.S3FileSystem(anon=False)
    fs.mkdir("landing")
    fs.mkdir("outputs")
    local = tmp_path_factory.mktemp("s3") / "landing"
    generate_landing(str(local), 0.01, seed=3, dirty=True)
    fs.put(str(local), "landing/zone", recursive=True)
    yield fs, endpoint
    mp.undo()
    server.stop()


def test_a_run_reads_and_publishes_on_s3(s3):
    fs, endpoint = s3
    result = run_nightly("s3://landing/zone", "s3://outputs/trp", "2014-06-01", pseudonym_key=KEY)
    assert result.exit_code == 3  # the dirty zone carries Dorset over
    pointer = json.loads(fs.cat_file("outputs/trp/published/_manifests/run_date=2014-06-01.json"))
    assert pointer["run_id"] == result.manifest["run_id"]
    assert not fs.exists("outputs/trp/_runs") or not fs.ls("outputs/trp/_runs")

    s3 = pafs.S3FileSystem(
        endpoint_override=endpoint, access_key="test", secret_key="test", region="us-east-1", scheme="http"
    )
    table = pads.dataset(
        "outputs/trp/published/case_alignment", filesystem=s3, format="parquet", partitioning="hive"
    ).to_table()
    assert set(table.column("trust_code").to_pylist()) == set(pointer["trusts_published"])
    assert table.num_rows == sum(t.get("cases", 0) for t in pointer["trusts"].values())
    ldn = fs.cat_file("outputs/trp/operational/LDN/2014-06-01/transfer_list.csv").decode()
    assert ldn.startswith("crn,side,case_class,rosh,team_code,current_om,current_om_name")


def test_the_catalog_on_s3_answers_trp_query_and_a_reader_never_sees_half_a_run(s3, tmp_path):
    fs, _ = s3
    out = "s3://outputs/catalog-test"
    first = run_nightly("s3://landing/zone", out, "2014-06-01", pseudonym_key=KEY)
    before = catalog_cases_by_trust(out)
    assert sum(before.values()) == sum(t.get("cases", 0) for t in first.manifest["trusts"].values())

    shown = CliRunner().invoke(
        app, ["query", "select count(*) as n from case_alignment", "--out", out, "--format", "csv"]
    )
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines()[-1] == str(sum(before.values()))
    assert fs.exists("outputs/catalog-test/reports/2014-06-01/index.html")

    other = tmp_path / "landing2"  # different extracts: every trust's count changes
    generate_landing(str(other), 0.012, seed=9, dirty=True)
    fs.put(str(other), "landing/zone2", recursive=True)
    with polling(lambda: catalog_cases_by_trust(out), every=0.2) as seen:
        second = run_nightly("s3://landing/zone2", out, "2014-06-01", pseudonym_key=KEY)
    after = catalog_cases_by_trust(out)
    assert after != before
    assert sum(after.values()) == sum(t.get("cases", 0) for t in second.manifest["trusts"].values())
    assert seen[0] == before and seen[-1] in (before, after)
    mixed = [s for s in seen if s not in (before, after)]
    assert not mixed and len(seen) > 3, (len(seen), mixed[:1])
