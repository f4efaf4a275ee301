"""Integration tests: real Prefect API, real BentoML store and servers, the real flows.

Every test here is marked ``integration`` and runs against the session's Prefect API. Runs use fast specs
(the shipped specs with 2 CV folds and 2 candidates, written to a session folder and found through
``TOLLGATE_SPECS_DIR``) and build no bento (``TOLLGATE_BUILD_BENTO=false``) unless a test needs the full
tournament or checks the bento; those say so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tollgate.config.settings import PROJECT_ROOT, Settings

FAST_CANDIDATES = ("logistic_regression", "lightgbm")
FAST_FOLDS = 2


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def fast_spec(path: Path, settings: Settings) -> dict:
    """The spec at ``path`` with a small tournament, every relative path made absolute so it reads from anywhere."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    folder = path.parent
    quality = spec.setdefault("quality", {})
    quality["suite"] = (
        str((folder / quality["suite"]).resolve())
        if quality.get("suite")
        else str(settings.expectations_dir / f"{spec['name']}.json")
    )
    if spec.get("raw_dir"):
        spec["raw_dir"] = str((folder / spec["raw_dir"]).resolve())
    if spec.get("raw_logs", {}).get("suite"):
        spec["raw_logs"]["suite"] = str((folder / spec["raw_logs"]["suite"]).resolve())
    tournament = spec.setdefault("tournament", {})
    tournament["cv_folds"] = FAST_FOLDS
    candidates = tournament.get("candidates") or [{"name": name, "estimator": name} for name in FAST_CANDIDATES]
    tournament["candidates"] = [c for c in candidates if c["estimator"] in FAST_CANDIDATES]
    return spec


@pytest.fixture(scope="session", autouse=True)
def integration_environment(prefect_api, tmp_path_factory) -> Iterator[Path]:
    """The session's Prefect API, fast specs and no bento builds, for every integration test."""
    shipped = Settings().specs_dir
    folder = tmp_path_factory.mktemp("fast-specs")
    for path in sorted(shipped.glob("*.yaml")):
        (folder / path.name).write_text(yaml.safe_dump(fast_spec(path, Settings()), sort_keys=False), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOLLGATE_SPECS_DIR", str(folder))
        patch.setenv("TOLLGATE_BUILD_BENTO", "false")
        yield folder


@pytest.fixture
def with_bento(monkeypatch) -> None:
    """This test checks the bento: runs in it build one."""
    monkeypatch.setenv("TOLLGATE_BUILD_BENTO", "true")


SHIPPED_SPECS = PROJECT_ROOT / "data" / "specs"
"""The full specs (every candidate, 5 folds), for the tests that check the full tournament."""


@pytest.fixture(scope="session")
def churn_champion(monthly_batches, tmp_path_factory) -> dict:
    """One churn model trained by the real flow (fast spec, bento built) and promoted as the first champion of
    its own artifacts folder: the service tests serve it, the promotion tests challenge it."""
    from flows.retrain import retrain

    artifacts = tmp_path_factory.mktemp("champion-artifacts")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOLLGATE_ARTIFACTS_DIR", str(artifacts))
        patch.setenv("TOLLGATE_BUILD_BENTO", "true")
        summary = retrain(dataset="churn", data=str(monthly_batches / "churn"))
        registry = Path(summary["registry"]).read_bytes()
        bentos = sorted(path.name for path in (artifacts / "churn" / "bentos").iterdir())
    return {"summary": summary, "artifacts": artifacts, "registry_bytes": registry, "bentos": bentos}
