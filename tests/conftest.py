"""Shared fixtures: small seeded data from the generator, the real specs, and one Prefect test API for the tests
that ask for it (``prefect_api``; every test under ``tests/integration`` does)."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
# Models and bentos the tests build go to a store of their own, never the user's ~/bentoml.
os.environ.setdefault("BENTOML_HOME", tempfile.mkdtemp(prefix="tollgate-test-bentoml-"))
# ... and are signed with a key of their own, never the user's ~/.config/tollgate/signing.key.
os.environ.setdefault("TOLLGATE_SIGNING_KEY_FILE", os.path.join(tempfile.mkdtemp(prefix="tollgate-test-key-"), "key"))

from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from tollgate.config.settings import PROJECT_ROOT, Settings  # noqa: E402
from tollgate.config.spec import DatasetSpec, load_spec  # noqa: E402
from tollgate.core.clean import clean_frame  # noqa: E402
from tollgate.core.split import TrainHoldout, split_rows  # noqa: E402
from tollgate.synth.generate import generate, make_batch  # noqa: E402

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
TELCO_CSV = SHARED_DATA / "telco_churn.csv"
SEED = 7


@pytest.fixture(scope="session")
def prefect_api():
    """One ephemeral Prefect API for the session (starting one takes ~20 s): only for tests that run flows or
    publish artifacts, so unit tests never wait for it."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def churn_spec() -> DatasetSpec:
    return load_spec(PROJECT_ROOT / "data" / "specs" / "churn.yaml")


@pytest.fixture(scope="session")
def security_spec() -> DatasetSpec:
    return load_spec(PROJECT_ROOT / "data" / "specs" / "security.yaml")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Project specs and suites, but artifacts written under the test's own folder."""
    return Settings(artifacts_dir=tmp_path / "artifacts")


@pytest.fixture(scope="session")
def churn_batch() -> pd.DataFrame:
    """One raw month of churn data (600 customers) with the generator's usual defects."""
    return make_batch("churn", "2026-01", 0, 12, 600, SEED)


@pytest.fixture(scope="session")
def churn_split(churn_batch: pd.DataFrame, churn_spec: DatasetSpec) -> TrainHoldout:
    """``churn_batch`` cleaned and split as the flow does (a seeded stratified 80/20); tests must not change it."""
    return split_rows(clean_frame(churn_batch, churn_spec).frame, churn_spec, None)


@pytest.fixture(scope="session")
def security_batch() -> pd.DataFrame:
    return make_batch("security", "2026-01", 0, 12, 1500, SEED)


@pytest.fixture(scope="session")
def monthly_batches(tmp_path_factory) -> Path:
    """Four small raw months per dataset under <tmp>/<dataset>/YYYY-MM.csv."""
    root = tmp_path_factory.mktemp("raw")
    generate(root, ["churn"], months=4, rows=500, seed=SEED, progress=False)
    generate(root, ["security"], months=4, rows=1500, seed=SEED, progress=False)
    return root
