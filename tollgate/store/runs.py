"""A run's identity and folder: ``artifacts/<dataset>/runs/<run-id>/`` holds everything one run wrote."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tollgate.config.settings import Settings
from tollgate.store.models import MODEL_FILE


@dataclass(frozen=True)
class RunPaths:
    run_id: str
    dir: Path

    @property
    def model_path(self) -> Path:
        return self.dir / MODEL_FILE

    @property
    def metadata_path(self) -> Path:
        return self.dir / "metadata.json"


def new_run(dataset: str, settings: Settings) -> RunPaths:
    """A new, unique run folder under the dataset's artifacts (UTC time and a random suffix)."""
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    run_dir = settings.dataset_artifacts(dataset) / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    return RunPaths(run_id=run_id, dir=run_dir)
