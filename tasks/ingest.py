"""The ingest stage: the library reads the run's batches (or raw logs); Prefect caches the result on
the hash of the bytes it would read, so a re-run on the same files skips parsing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task

from tasks.run import IO_RETRIES, MEASURED, TIMEOUTS, digest, input_cache
from tollgate.config.settings import Settings
from tollgate.config.spec import DatasetSpec
from tollgate.core.ingest import IngestError, RawData, planned_files, read_input
from tollgate.store.files import file_sha256


def ingest_input_hash(parameters: dict[str, Any]) -> str | None:
    """The files a run would read (where and what bytes) and the spec's renames; None if unplannable."""
    spec: DatasetSpec = parameters["spec"]
    raw = parameters.get("raw")
    try:
        paths, holdout = planned_files(
            spec, parameters["settings"], parameters.get("data"), parameters.get("month"), raw
        )
    except IngestError:
        return None
    files = [f"{path.resolve()}:{file_sha256(path)}" for path in paths]
    return digest("ingest", holdout, sorted(spec.rename.items()), spec.content_sha256 if raw else "", *files)


@task(name="ingest", timeout_seconds=TIMEOUTS["ingest"], **IO_RETRIES, **input_cache(ingest_input_hash), **MEASURED)
def ingest(
    spec: DatasetSpec,
    settings: Settings,
    data: str | Path | None = None,
    month: str | None = None,
    raw: str | Path | None = None,
) -> RawData:
    """Read the batches a run needs (see ``read_input``); reused while the same bytes are read with the same renames."""
    print(f"ingest: reading the {spec.name} input")
    return read_input(spec, settings, data, month, raw)
