"""A run's identity and folder, and the atomic writes every artifact goes through."""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.settings import Settings
from tasks.spec import DatasetSpec

MODEL_FILE = "model.joblib"


@dataclass(frozen=True)
class RunPaths:
    run_id: str
    dir: Path

    @property
    def model_path(self) -> Path:
        return self.dir / MODEL_FILE


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write to a temporary file beside ``path`` then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    os.replace(temporary, path)


@task(name="start-run", cache_policy=NO_CACHE)
def start_run(spec: DatasetSpec, settings: Settings) -> RunPaths:
    """A new, unique run folder under the dataset's artifacts."""
    run_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    run_dir = settings.dataset_artifacts(spec.name) / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    print(f"run {run_id}: writing to {run_dir}")
    return RunPaths(run_id=run_id, dir=run_dir)




def retry_on_io_error(task, task_run, state) -> bool:
    """Retry transient I/O failures (a network share hiccup), never bad input."""
    try:
        state.result()
    except OSError:
        return True
    except Exception:  # noqa: BLE001 - any other failure is final
        return False
    return False


def artifact_key(dataset: str, what: str) -> str:
    """Prefect artifact keys allow only lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{dataset}-{what}".lower()).strip("-")
