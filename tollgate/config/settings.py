"""Where Tollgate reads and writes, from environment variables (``TOLLGATE_*``) or defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOLLGATE_")

    specs_dir: Path = PROJECT_ROOT / "data" / "specs"
    raw_data_dir: Path = PROJECT_ROOT / "data" / "raw"
    expectations_dir: Path = PROJECT_ROOT / "expectations"
    artifacts_dir: Path = PROJECT_ROOT / "artifacts"
    task_runner: Literal["threads", "dask"] = "threads"
    dask_address: str | None = None  # an existing Dask scheduler (tcp://host:8786): the retrain runs its stages there
    # On a Dask cluster, a LightGBM winner's final fit goes over the workers (lightgbm.dask) above this many rows;
    # unset: when its encoded matrix would take more than a quarter of a worker's memory limit.
    dask_partition_rows: int | None = None

    # The service (``bentoml serve service.service:Tollgate``)
    dataset: str = "churn"
    model_tag: str | None = None  # serve this BentoML model tag instead of the dataset's newest
    api_key: str | None = None  # when set, predict/explain/metadata need it (health and metrics stay open)
    reload_seconds: float = 5.0  # how often the service checks the registry for a new champion (0: never)
    workers: int = 2  # `bentoml serve` worker processes (one per core here)
    max_body_bytes: int = 8 * 1024 * 1024
    max_batch_rows: int = 100_000  # per /predict_batch request: a compressed Parquet or Arrow body can expand a lot
    body_timeout_seconds: float = 15.0  # a request body that stops arriving this long is answered 408
    prediction_log_dir: Path | None = None  # default: artifacts/<dataset>/predictions
    prediction_log_max_bytes: int = 50 * 1024 * 1024
    prediction_log_backups: int = 10

    # Provenance (tollgate.store.signing): the key that signs packaged models, kept outside the store
    signing_key: SecretStr | None = None
    signing_key_file: Path = Path.home() / ".config" / "tollgate" / "signing.key"

    build_bento: bool = True  # build and export a bento for every promoted model (tests that never serve one: off)
    keep_runs: int = 12  # run folders kept per dataset besides champions' (a year of monthly runs)
    keep_rejected_models: int = 3  # rejected models kept in the BentoML store per dataset (the newest)

    def dataset_artifacts(self, dataset: str) -> Path:
        return self.artifacts_dir / dataset

    def prediction_logs(self, dataset: str) -> Path:
        """Where the service writes, and monitoring reads, the dataset's prediction log."""
        return self.prediction_log_dir or self.dataset_artifacts(dataset) / "predictions"
