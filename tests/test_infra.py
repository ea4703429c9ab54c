"""The deployment files agree with the product: settings, image, ports and commands (parsed, not started:
no Docker daemon or cluster is reachable here)."""

import re
import sys
import tomllib
from pathlib import Path

import typer
import yaml

from pipeline.cli import app

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
PRODUCT_SERVICES = ("dask-worker", "airflow-scheduler", "airflow-api-server", "airflow-dag-processor", "airflow-init")
RUN_SETTINGS = {"TRP_LANDING", "TRP_OUT", "TRP_POLICY", "TRP_PSEUDONYM_KEY", "DASK_SCHEDULER_ADDRESS"}


def _settings_read_by_the_code() -> set[str]:
    """The product's own settings, as the one module that reads them names them."""
    from pipeline import settings

    return {name for name, _ in settings.table() if name.startswith(("TRP_", "DASK_SCHEDULER"))}


def _compose() -> dict:
    return yaml.safe_load((INFRA / "compose.yaml").read_text())


def _k8s() -> list[dict]:
    return [
        d
        for f in sorted((INFRA / "k8s").glob("*.yaml"))
        if f.name != "airflow-values.yaml"
        for d in yaml.safe_load_all(f.read_text())
        if d
    ]


def _options(argv: list[str]) -> list[str]:
    return [a for a in argv if a.startswith("--")]


def _trp_options(command: str) -> set[str]:
    group = typer.main.get_command(app)
    cmd = group.commands[command]
    return {o for p in cmd.params if p.param_type_name == "option" for o in p.opts}


def test_every_setting_the_code_reads_is_documented_and_given_to_the_services():
    read = _settings_read_by_the_code()
    assert RUN_SETTINGS <= read
    doc = (INFRA / "README.md").read_text()
    for name in read:
        assert f"`{name}`" in doc, name
    services = _compose()["services"]
    for name in PRODUCT_SERVICES:
        assert RUN_SETTINGS <= set(services[name]["environment"]), name
    assert "TRP_TOKENS" in services["trp-upload"]["environment"]
    config = next(d for d in _k8s() if d["kind"] == "ConfigMap")["data"]
    secret = next(d for d in _k8s() if d["kind"] == "Secret")["stringData"]
    assert RUN_SETTINGS <= set(config) | set(secret)
    assert "TRP_PSEUDONYM_KEY" in secret and "TRP_PSEUDONYM_KEY" not in config


def test_compose_uses_one_project_image_and_its_addresses_and_ports_agree():
    services = _compose()["services"]
    product = [s for s in services.values() if "transition-pipeline" in str(s.get("image", ""))]
    assert len(product) == 7 and len({s["image"] for s in product}) == 1
    assert all(s["build"] == {"context": "..", "dockerfile": "Dockerfile"} for s in product)
    assert (INFRA / ".." / "Dockerfile").resolve().exists()
    scheduler_port = services["dask-scheduler"]["command"][services["dask-scheduler"]["command"].index("--port") + 1]
    worker = services["dask-worker"]
    address = worker["environment"]["DASK_SCHEDULER_ADDRESS"]
    assert address == f"tcp://dask-scheduler:{scheduler_port}"
    assert worker["environment"]["OMP_NUM_THREADS"] == worker["command"][worker["command"].index("--nthreads") + 1]
    assert address in services["dask-worker"]["command"]
    api = services["airflow-api-server"]
    api_port = api["command"][api["command"].index("--port") + 1]
    assert (
        api["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
        == f"http://airflow-api-server:{api_port}/execution/"
    )
    upload = services["trp-upload"]["command"]
    assert upload[:2] == ["trp", "serve"] and set(_options(upload)) <= _trp_options("serve")
    assert (
        f"127.0.0.1:{upload[upload.index('--port') + 1]}:{upload[upload.index('--port') + 1]}"
        in services["trp-upload"]["ports"]
    )
    for name, s in services.items():
        for p in s.get("ports", []):
            assert p.startswith("127.0.0.1:"), (name, p)


def test_the_image_installs_the_package_with_its_dags_and_suites_on_the_python_it_declares():
    docker = (ROOT / "Dockerfile").read_text()
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    version = re.search(r"^FROM python:(\d+\.\d+)", docker, re.M).group(1)
    assert f">={version}" in requires
    for folder in ("pipeline", "expectations", "dags"):
        assert f"COPY {folder} ./{folder}" in docker
    assert "COPY pyproject.toml README.md constraints.txt ./" in docker  # the versions CI tested
    assert "pip install --no-cache-dir -c constraints.txt ." in docker
    assert "TRP_EXPECTATIONS=/opt/trp/expectations" in docker
    assert "AIRFLOW__CORE__DAGS_FOLDER=/opt/trp/dags" in docker


def test_kubernetes_manifests_agree_with_each_other_and_the_product():
    docs = _k8s()
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    cluster = next(d for d in docs if d["kind"] == "DaskCluster")
    host, port = re.fullmatch(
        r"tcp://([^:.]+)\.transition\.svc\.cluster\.local:(\d+)", config["DASK_SCHEDULER_ADDRESS"]
    ).groups()
    assert host == f"{cluster['metadata']['name']}-scheduler"
    assert int(port) in {p["port"] for p in cluster["spec"]["scheduler"]["service"]["ports"]}
    scheduler = cluster["spec"]["scheduler"]["spec"]["containers"][0]["args"]
    assert scheduler[scheduler.index("--port") + 1] == port
    values = yaml.safe_load((INFRA / "k8s" / "airflow-values.yaml").read_text())
    image = f"{values['images']['airflow']['repository']}:{values['images']['airflow']['tag']}"
    containers = [
        c
        for d in docs
        if d["kind"] in ("DaskCluster", "Deployment")
        for c in (
            d["spec"]["worker"]["spec"]["containers"] + d["spec"]["scheduler"]["spec"]["containers"]
            if d["kind"] == "DaskCluster"
            else d["spec"]["template"]["spec"]["containers"]
        )
    ]
    assert {c["image"] for c in containers} == {image}
    assert "trp-settings" in values["extraEnvFrom"] and "trp-secrets" in values["extraEnvFrom"]
    assert values["config"]["core"]["dags_folder"] == "/opt/trp/dags"
    worker = cluster["spec"]["worker"]["spec"]["containers"][0]
    threads = {e["name"]: e["value"] for e in worker["env"]}["OMP_NUM_THREADS"]
    assert threads == worker["args"][worker["args"].index("--nthreads") + 1] == worker["resources"]["requests"]["cpu"]
    upload = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert upload["args"][:2] == ["trp", "serve"] and set(_options(upload["args"])) <= _trp_options("serve")
    assert all(d["metadata"]["namespace"] == "transition" for d in docs)


def test_the_built_package_ships_the_suites_policy_and_contract(tmp_path, monkeypatch):
    """`pip install .` needs no TRP_EXPECTATIONS: the wheel carries the suites (and the policy and the
    extract contract), and the package finds its own suites when the variable is not set."""
    import shutil
    import subprocess
    import zipfile

    from pipeline.extracts.validation import suite_dir

    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    subprocess.run([uv, "build", "--wheel", "-q", "-o", str(tmp_path), str(ROOT)], check=True, timeout=300)
    names = zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist()
    suites = sorted(p.name for p in (ROOT / "expectations").glob("*.json"))
    assert suites and all(f"pipeline/data/expectations/{s}" in names for s in suites)
    assert {"pipeline/data/policy-v1.yaml", "pipeline/data/extract-contract.md"} <= set(names)
    assets = ROOT / "pipeline" / "data" / "data-docs-assets"  # what the Data Docs load instead of CDNs
    shipped = {
        f"pipeline/data/data-docs-assets/{p.relative_to(assets).as_posix()}" for p in assets.rglob("*") if p.is_file()
    }
    assert len(shipped) > 10 and shipped <= set(names)
    monkeypatch.delenv("TRP_EXPECTATIONS", raising=False)
    assert sorted(p.name for p in suite_dir().glob("*.json")) == suites
