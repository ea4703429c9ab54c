"""The package's shape, read from its source with `ast`: no import circle, every arrow pointing down the stages
of the night, the output layout spelled in one module and the environment read in one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipeline import layout

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"
# Lower layers never import higher ones; a stage's modules may import each other.
LAYERS = [
    {"domain", "policy", "reference", "storage", "layout", "settings"},
    {"extracts", "decisions"},
    {"outputs"},
    {"publishing"},
    {"runs"},
    {"uploads", "synthetic", "scenarios"},
    {"cli"},
]


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(encoding="utf-8"))
    return found


MODULES = _modules()


def _imports(name: str, tree: ast.Module) -> set[str]:
    """Every pipeline module `name` imports, at the top or inside a function."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("pipeline")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline"):
            for a in node.names:  # `from pipeline import layout` imports a module; `from x import f` imports x
                full = f"{node.module}.{a.name}"
                out.add(full if full in MODULES else node.module)
    return out - {name, "pipeline", "pipeline.data"}


def _stage(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "pipeline"


def _layer(module: str) -> int:
    stage = _stage(module)
    return next(i for i, names in enumerate(LAYERS) if stage in names)


def test_the_package_has_no_import_circle():
    graph = {name: _imports(name, tree) for name, tree in MODULES.items()}
    seen, path = set(), []

    def visit(node: str) -> None:
        if node in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(node) :] + [node]))
        if node in seen:
            return
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            visit(nxt)
        path.pop()
        seen.add(node)

    for name in sorted(graph):
        visit(name)


def test_every_import_points_down_the_stages_of_the_night():
    upward = [
        f"{name} imports {other}"
        for name, tree in MODULES.items()
        if name != "pipeline"
        for other in sorted(_imports(name, tree))
        if _stage(other) != _stage(name) and (_layer(other) > _layer(name) or _layer(other) == _layer(name) > 0)
    ]
    assert upward == []


def test_every_stage_is_a_known_layer():
    stages = {_stage(m) for m in MODULES if m != "pipeline"} - {"data"}
    assert stages == set().union(*LAYERS)


# The names of the zones and folders of LANDING and OUT, which only layout spells.
ZONE_NAMES = {
    layout.STAGING,
    layout.KEPT_RUNS,
    layout.PUBLISHED,
    layout.OPERATIONAL,
    layout.SUPERSEDED,
    layout.REPORTS,
    layout.ARRIVALS,
    layout.UPLOADS,
    layout.LOCKS,
    layout.MANIFESTS,
    layout.CATALOG,
}


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n != "pipeline.layout"))
def test_only_the_layout_module_spells_a_path_of_the_output_zones(name):
    tree = MODULES[name]
    parts = [
        c
        for node in ast.walk(tree)
        if isinstance(node, (ast.Tuple, ast.Call))  # a path's parts, or an argument
        for c in (node.elts if isinstance(node, ast.Tuple) else node.args)
    ]
    spelled = sorted({(c.lineno, c.value) for c in parts if isinstance(c, ast.Constant) and c.value in ZONE_NAMES})
    assert spelled == []


def test_only_the_settings_module_reads_the_environment():
    readers = sorted(
        name
        for name, tree in MODULES.items()
        if name != "pipeline.settings"
        and any(
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in ("environ", "getenv")
            for node in ast.walk(tree)
        )
    )
    assert readers == []


def test_planning_a_run_imports_neither_dask_nor_great_expectations():
    """The Airflow DAG's first task runs only the planning: it must not pay for the heavy imports."""
    import subprocess
    import sys

    code = (
        "import sys, pipeline.runs.planning, pipeline.runs.airflow_steps; "
        "print(sorted(m for m in ('distributed', 'dask', 'great_expectations', 'ortools') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_operations_guide_lists_every_setting_as_the_settings_module_names_it():
    from pipeline import settings

    guide = (PACKAGE.parent / "docs" / "operations.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `") for line in guide.splitlines() if line.startswith("| `")}
    assert {name for name, _ in settings.table()} <= rows


def test_settings_are_typed_and_a_bad_number_is_refused_naming_its_variable():
    from pipeline import settings

    s = settings.load({"TRP_LOCK_MAX_AGE_HOURS": "1.5", "TRP_RAISE_FAULTS": "1", "TRP_OUT": "s3://b/out"})
    assert (s.lock_max_age.total_seconds(), s.raise_faults, s.out, s.landing) == (5400.0, True, "s3://b/out", None)
    assert settings.load({}) == settings.Settings()
    with pytest.raises(ValueError, match="TRP_LOCK_MAX_AGE_HOURS must be a number"):
        settings.load({"TRP_LOCK_MAX_AGE_HOURS": "twelve"})


# Declared for what they do without being imported: fsspec loads s3fs for s3:// by name, uvicorn picks httptools
# as its HTTP parser when it is installed.
LOADED_BY_NAME = {"s3fs", "httptools"}


def _third_party_imports() -> set[str]:
    import sys

    found = set()
    for path in [*PACKAGE.rglob("*.py"), *(PACKAGE.parent / "dags").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "pipeline"}


def test_every_import_of_the_package_is_declared_and_every_dependency_is_used():
    """`pip install -c constraints.txt .` (the image) gets everything the package and the DAGs import, and
    nothing they do not."""
    import re
    import tomllib
    from importlib.metadata import packages_distributions, requires

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    specs = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]["dependencies"]
    declared = {norm(re.match(r"[A-Za-z0-9_.-]+", s).group()): s for s in specs}
    dists = packages_distributions()  # module -> the distributions that provide it
    providers = {norm(d) for provided in dists.values() for d in provided}
    covered = set(declared)
    for name, spec in declared.items():
        extras = set(re.findall(r"\[([^\]]+)\]", spec)[0].split(",")) if "[" in spec else set()
        for req in requires(name) or []:
            extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)", req)
            # A meta package's requirements, and the extras asked for, are declared through it.
            if (name not in providers and not extra) or (extra and extra.group(1) in extras):
                covered.add(norm(re.match(r"[A-Za-z0-9_.-]+", req).group()))
    imported = _third_party_imports()
    undeclared = {m: dists.get(m) for m in imported if not {norm(d) for d in dists.get(m, [m])} & covered}
    assert not undeclared, f"imported but not declared in [project] dependencies: {undeclared}"
    used = {norm(d) for m in imported for d in dists.get(m, [])}
    unused = {d for d in declared if d not in used and d not in LOADED_BY_NAME and d in providers}
    assert not unused, f"declared but imported nowhere in pipeline/ or dags/: {sorted(unused)}"
