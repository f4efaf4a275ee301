"""What every stage shares: time limits, retries on I/O errors, input-hash caching, artifact keys, and the
first two stages of a run (its spec and its folder)."""

from __future__ import annotations

import hashlib
import re
import resource
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE, TASK_SOURCE, CachePolicy
from prefect.logging import get_logger
from prefect.tasks import Task, exponential_backoff

from tollgate.config.settings import Settings
from tollgate.config.spec import DatasetSpec, resolve_spec
from tollgate.core.memory import release_freed_memory, resident_gib
from tollgate.core.render import markdown_safe, readable_rows
from tollgate.store.files import write_text_atomic
from tollgate.store.runs import RunPaths, new_run

CACHE_EXPIRATION = timedelta(days=62)
"""How long an ingest or validation result is reused for the same input (two monthly cycles)."""

MINUTE = 60
TIMEOUTS = {
    "ingest": 30 * MINUTE,
    "validate": 30 * MINUTE,
    "clean": 30 * MINUTE,
    "explain": 60 * MINUTE,
    "fairness": 30 * MINUTE,
    "report": 30 * MINUTE,
    "package": 60 * MINUTE,
    "promote": 30 * MINUTE,
    "monitor": 30 * MINUTE,
    "retrain": 6 * 60 * MINUTE,
}
"""Time limits (seconds), each several times the stage's time on a 1,000,000-row month here. Tournament
candidates, the report and the anomaly report run in worker threads, which Prefect cannot interrupt; the whole
retrain flow's limit covers them."""


def retry_on_io_error(task: Task, task_run: Any, state: Any) -> bool:
    """Retry transient I/O failures (a network share hiccup), never bad input."""
    try:
        state.result()
    except OSError:
        return True
    except Exception:  # noqa: BLE001 - any other failure is final
        return False
    return False


IO_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_on_io_error,
}
"""Task options for stages that read or write files: three retries after ~2, 4 and 8 s on OSError only."""


def log_memory(task: Task, task_run: Any, state: Any) -> None:
    """A stage's memory, in the run's log when it ends: what it freed is handed back to the system first, then the
    process's resident set and its peak so far (the stage that raised the peak is the one that needed it)."""
    release_freed_memory()
    now = resident_gib()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    stage = task_run.name if task.task_run_name else task.name  # candidates by name: candidate-lightgbm
    get_logger("tollgate.memory").info("memory after %s: %.2f GiB resident, peak so far %.2f GiB", stage, now, peak)


MEASURED: dict[str, Any] = {"on_completion": [log_memory]}
"""Task options for the stages whose data grows with the input: their memory in the log."""


def digest(*parts: object) -> str:
    """SHA-256 of the parts' text, in order: the cache keys' common form."""
    text = "\n".join(str(part) for part in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class InputHashPolicy(CachePolicy):
    """Cache key: the hash of what the task reads (``input_hash(parameters)``) and the task's source.

    ``input_hash`` returning None (input it cannot plan, which the task itself will report) means no
    caching, never a key from the source alone.
    """

    input_hash: Callable[[dict[str, Any]], str | None] | None = None

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        key = self.input_hash(inputs) if self.input_hash else None
        if key is None:
            return None
        return digest(key, TASK_SOURCE.compute_key(task_ctx, inputs, flow_parameters, **kwargs))


def input_cache(input_hash: Callable[[dict[str, Any]], str | None]) -> dict[str, Any]:
    """Task options that reuse a result while the task's code and its input hash are unchanged.

    Set ``PREFECT_TASKS_REFRESH_CACHE=true`` to recompute anyway.
    """
    return {
        "cache_policy": InputHashPolicy(input_hash=input_hash),
        "cache_expiration": CACHE_EXPIRATION,
        "persist_result": True,
    }


def cached(stage: Task, settings: Settings) -> Task:
    """``stage`` with its cached results kept under ``<artifacts>/.cache`` (the run's settings, not the import's)."""
    return stage.with_options(result_storage=settings.artifacts_dir / ".cache")


def artifact_key(dataset: str, what: str) -> str:
    """Prefect artifact keys allow only lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{dataset}-{what}".lower()).strip("-")


def write_markdown(path: Path, text: str) -> Path:
    """Write a markdown report analysts open in a viewer that renders HTML: no raw HTML can open in it."""
    write_text_atomic(path, markdown_safe(text))
    return path


def publish_markdown(key: str, markdown: str, description: str) -> None:
    """A Prefect markdown artifact (the UI renders it), with no raw HTML able to open."""
    create_markdown_artifact(key=key, markdown=markdown_safe(markdown), description=markdown_safe(description))


def publish_link(key: str, link: str, link_text: str, description: str) -> None:
    """A Prefect link artifact (a report file on the worker's disk, say), its texts with no raw HTML."""
    create_link_artifact(key=key, link=link, link_text=markdown_safe(link_text), description=markdown_safe(description))


def publish_table(key: str, rows: list[dict[str, Any]], description: str) -> None:
    """A Prefect table artifact with readable headers and money as dollars, every text cell with no raw HTML
    able to open."""
    safe = [
        {name: markdown_safe(value) if isinstance(value, str) else value for name, value in row.items()}
        for row in readable_rows(rows)
    ]
    create_table_artifact(key=key, table=safe, description=markdown_safe(description))


@task(name="start-run", cache_policy=NO_CACHE, **IO_RETRIES)
def start_run(spec: DatasetSpec, settings: Settings) -> RunPaths:
    """A new, unique run folder under the dataset's artifacts."""
    run = new_run(spec.name, settings)
    print(f"run {run.run_id}: writing to {run.dir}")
    return run


@task(name="load-spec", cache_policy=NO_CACHE)
def load_dataset_spec(dataset: str | None, spec_path: str | None, settings: Settings) -> DatasetSpec:
    """The run's spec: a file given by path wins over a dataset name."""
    spec = resolve_spec(dataset, spec_path, settings)
    print(f"dataset '{spec.name}' from {spec.source_path}")
    return spec
