"""House rules a reviewer would check by hand: tasks name no dataset column, flows only wire."""

import ast

import pytest

from tollgate.config.settings import PROJECT_ROOT


def _string_constants(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_no_task_names_a_dataset_column(churn_spec, security_spec):
    """Check that no module in tasks/ has a column name of either dataset as a string literal."""
    columns = set()
    for spec in (churn_spec, security_spec):
        columns |= {spec.id_column, spec.target.column, *spec.input_columns, *spec.columns.extra}
        columns |= set(spec.rename) | {f.name for f in spec.features}
    offenders = {
        path.name: sorted(_string_constants(path) & columns)
        for path in sorted((PROJECT_ROOT / "tasks").glob("*.py"))
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
    assert names == {"churn-monthly-retrain", "security-monthly-retrain", "churn-monitor", "security-monitor"}
    for deployment in config["deployments"]:
        path, name = deployment["entrypoint"].split(":")
        module = path.removesuffix(".py").replace("/", ".")
        flow = getattr(importlib.import_module(module), name)
        assert isinstance(flow, Flow)
        inspect.signature(flow.fn).bind(**deployment["parameters"])
        assert deployment["schedules"][0]["cron"].count(" ") == 4 and deployment["schedules"][0]["timezone"]
        assert deployment["work_pool"]["name"] == "tollgate-process"
