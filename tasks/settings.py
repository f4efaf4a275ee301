"""Where Tollgate reads and writes, from environment variables (``TOLLGATE_*``) or defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOLLGATE_")

    specs_dir: Path = PROJECT_ROOT / "data" / "specs"
    raw_data_dir: Path = PROJECT_ROOT / "data" / "raw"
    expectations_dir: Path = PROJECT_ROOT / "expectations"
    artifacts_dir: Path = PROJECT_ROOT / "artifacts"
    task_runner: Literal["threads", "dask"] = "threads"

    def dataset_artifacts(self, dataset: str) -> Path:
        return self.artifacts_dir / dataset
