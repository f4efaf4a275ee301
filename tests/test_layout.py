"""House rules a reviewer would check by hand: the layers import downwards only, no code names a dataset
column, flows only wire, and the service carries neither Prefect nor Great Expectations."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tollgate.config.settings import PROJECT_ROOT

PACKAGES = ("tollgate", "tasks", "flows", "service")
LAYERS = {
    "tollgate": 0,
    "tollgate.config": 0,
    "tollgate.core": 1,
    "tollgate.store": 1,
    "tollgate.rawlogs": 1,
    "tollgate.synth": 1,
    "tasks": 2,
    "flows": 3,
    "service": 2,
}
"""Rank of each layer: a module imports only from its own rank or below (config ← core/store/rawlogs/synth ←
tasks ← flows), and the service only from the library."""
FORBIDDEN_IN_LIBRARY = {"prefect", "great_expectations", "matplotlib"}


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts).removesuffix(".__init__")


def _project_modules() -> dict[str, Path]:
    return {_module_name(path): path for package in PACKAGES for path in sorted((PROJECT_ROOT / package).rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _layer(module: str) -> str:
    return max((layer for layer in LAYERS if module == layer or module.startswith(layer + ".")), key=len)


def _project_graph() -> dict[str, set[str]]:
    modules = _project_modules()
    return {
        module: {name for name in _imports(path) if name in modules and name != module}
        for module, path in modules.items()
    }


def test_layers_import_downwards_only():
    """Check config ← core/store/rawlogs/synth ← tasks ← flows, and that the service imports only the library."""
    upward = []
    for module, imported in _project_graph().items():
        if module.startswith(("tests", "benchmarks")):
            continue
        layer = _layer(module)
        for name in imported:
            target = _layer(name)
            allowed = target.startswith("tollgate") if layer == "service" else LAYERS[target] <= LAYERS[layer]
            if layer == "service" and target == "service":
                allowed = True
            if not allowed:
                upward.append(f"{module} imports {name}")
    assert upward == []


def test_no_import_cycles():
    """Check that no project module reaches itself through its imports (function-level imports included)."""
    graph = _project_graph()
    cycles = []

    def visit(module: str, path: list[str], done: set[str]) -> None:
        for name in sorted(graph[module]):
            if name in path:
                cycles.append(" → ".join([*path[path.index(name) :], name]))
            elif name not in done:
                visit(name, [*path, name], done)
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module], done)
    assert cycles == []


def test_the_library_never_imports_prefect_great_expectations_or_matplotlib():
    """Check every tollgate/ module, top-level and function-level imports alike."""
    offenders = {
        module: sorted(name for name in _imports(path) if name.split(".")[0] in FORBIDDEN_IN_LIBRARY)
        for module, path in _project_modules().items()
        if module.startswith("tollgate")
    }
    assert {module: names for module, names in offenders.items() if names} == {}


def test_the_service_imports_neither_prefect_nor_great_expectations():
    """Check, in a fresh interpreter, that every module the service imports leaves Prefect, Great Expectations
    and matplotlib unimported (the service module itself needs a stored model, so its imports are loaded)."""
    imported = sorted(
        name
        for name in _imports(PROJECT_ROOT / "service" / "service.py")
        if name.startswith(("tollgate.", "service.")) and name in _project_modules()
    )
    code = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in imported)
        + ("print(sorted({m.split('.')[0] for m in sys.modules} & {'prefect', 'great_expectations', 'matplotlib'}))")
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(imported) >= 8 and result.stdout.strip() == "[]"


def _string_constants(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_no_task_names_a_dataset_column(churn_spec, security_spec):
    """Check that no stage or library module (the sample generators aside) has a column name of either dataset
    as a string literal."""
    columns = set()
    for spec in (churn_spec, security_spec):
        columns |= {spec.id_column, spec.target.column, *spec.input_columns, *spec.columns.extra}
        columns |= set(spec.rename) | {f.name for f in spec.features}
    offenders = {
        path.name: sorted(_string_constants(path) & columns)
        for package in ("tasks", "tollgate/config", "tollgate/core", "tollgate/store", "tollgate/rawlogs")
        for path in sorted((PROJECT_ROOT / package).glob("*.py"))
        if path.name != "settings.py"  # names the service's default dataset ("churn"), not a column
    }
    assert {name: found for name, found in offenders.items() if found} == {}


@pytest.mark.parametrize("path", sorted((PROJECT_ROOT / "flows").glob("*.py")), ids=lambda p: p.name)
def test_flows_only_wire(path):
    """Check that flows import no pandas or scikit-learn: the work lives in tasks/."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"pandas", "sklearn", "lightgbm", "numpy"}


def test_prefect_yaml_deployments_point_at_real_flows():
    """Check every deployment's entrypoint is a Prefect flow accepting its parameters, on a cron schedule."""
    import importlib
    import inspect

    import yaml
    from prefect import Flow

    config = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())
    names = {deployment["name"] for deployment in config["deployments"]}
    assert names == {
        "churn-monthly-retrain",
        "security-monthly-retrain",
        "churn-monthly-call-list",
        "churn-monitor",
        "security-monitor",
    }
    crons = {d["name"]: d["schedules"][0]["cron"].split() for d in config["deployments"]}
    # the call list is made on the day of the retrain, after it
    assert crons["churn-monthly-call-list"][2:] == crons["churn-monthly-retrain"][2:]
    assert int(crons["churn-monthly-call-list"][1]) > int(crons["churn-monthly-retrain"][1])
    for deployment in config["deployments"]:
        path, name = deployment["entrypoint"].split(":")
        module = path.removesuffix(".py").replace("/", ".")
        flow = getattr(importlib.import_module(module), name)
        assert isinstance(flow, Flow)
        inspect.signature(flow.fn).bind(**deployment["parameters"])
        assert deployment["schedules"][0]["cron"].count(" ") == 4 and deployment["schedules"][0]["timezone"]
        assert deployment["work_pool"]["name"] == "tollgate-process"
