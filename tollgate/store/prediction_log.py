"""The prediction log: every prediction as one JSON line, for monitoring; files rotate by size.

Each worker process writes its own file (``predictions-w<N>.jsonl``, rotated to ``.1``, ``.2``, …)
so rotation never races between processes; the monitoring flow reads them all.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

FILE_PREFIX = "predictions-w"
"""Each worker writes ``predictions-w<N>.jsonl`` (rotated to ``.1``, ``.2``, …); readers glob the prefix."""


def log_file_name(worker: int) -> str:
    return f"{FILE_PREFIX}{worker}.jsonl"


class PredictionLog:
    def __init__(self, directory: Path, worker: int = 1, max_bytes: int = 50 * 1024 * 1024, backups: int = 10):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / log_file_name(worker)
        self._logger = logging.getLogger(f"tollgate.predictions.{directory}.{worker}")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        if not self._logger.handlers:
            handler = RotatingFileHandler(self.path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(message)s"))
            self._logger.addHandler(handler)

    def write(self, entries: list[dict[str, Any]]) -> None:
        """Append one line per entry (a batch is one write; values must be plain JSON types)."""
        if entries:
            lines = b"\n".join(orjson.dumps(entry, option=orjson.OPT_SERIALIZE_NUMPY) for entry in entries)
            self._logger.info(lines.decode())


def prediction_entries(
    request_id: str, endpoint: str, inputs: list[dict[str, Any]], answers: list[dict[str, Any]], latency_ms: float
) -> list[dict[str, Any]]:
    """The log lines of one request: one per record, with its inputs, answer and the request's latency."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    return [
        {
            "time": now,
            "request_id": request_id,
            "endpoint": endpoint,
            "index": index,
            "model_version": answer["model_version"],
            "inputs": record,
            "probability": answer["probability"],
            "decision": answer["prediction"],
            "risk_level": answer["risk_level"],
            "latency_ms": round(latency_ms, 3),
        }
        for index, (record, answer) in enumerate(zip(inputs, answers, strict=False))
    ]


def read_prediction_log(directory: Path, model_version: str | None = None) -> pd.DataFrame:
    """Every logged prediction (all workers, rotated files included), optionally for one model version."""
    rows: list[dict[str, Any]] = []
    for path in sorted(directory.glob(f"{FILE_PREFIX}*.jsonl*")):
        with open(path, encoding="utf-8") as handle:
            rows.extend(json.loads(line) for line in handle if line.strip())
    frame = pd.DataFrame(rows)
    if model_version is not None and len(frame):
        frame = frame[frame["model_version"] == model_version]
    return frame.reset_index(drop=True)
