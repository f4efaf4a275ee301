"""The prediction log: every prediction as one JSON line, for monitoring; files rotate by size.

Each worker process writes its own file (``predictions-w<N>.jsonl``, rotated to ``.1``, ``.2``, …)
so rotation never races between processes; the monitoring flow reads them all.

A write never raises: the request it logs has already been scored and answered. A write that fails
(disk full, folder gone, read-only) is counted, its error kept, and the log reports itself unhealthy
until a write succeeds again; the service shows that in ``/readyz`` and on ``/metrics``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

FILE_PREFIX = "predictions-w"
"""Each worker writes ``predictions-w<N>.jsonl`` (rotated to ``.1``, ``.2``, …); readers glob the prefix."""

logger = logging.getLogger("tollgate.predictions")


def log_file_name(worker: int) -> str:
    return f"{FILE_PREFIX}{worker}.jsonl"


@dataclass(frozen=True)
class LogHealth:
    """Whether the last write reached the file, and how many lines could not be written so far."""

    writable: bool
    lines_lost: int
    last_error: str | None


class PredictionLog:
    def __init__(self, directory: Path, worker: int = 1, max_bytes: int = 50 * 1024 * 1024, backups: int = 10):
        self.directory = directory
        self.path = directory / log_file_name(worker)
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()  # sync APIs run in a thread pool: one writer at a time per file
        self._lines_lost = 0
        self._last_error: str | None = None
        self._writable = True

    def write(self, entries: list[dict[str, Any]]) -> int:
        """Append one line per entry (a request is one write); returns how many predictions were lost (0 when
        all reached the file; a batch line holds ``rows`` of them). Values that are not plain JSON (an integer
        beyond 64 bits) are written as text."""
        if not entries:
            return 0
        data = b"".join(_line(entry) for entry in entries)
        with self._lock:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                if self.path.exists() and self.path.stat().st_size + len(data) > self.max_bytes:
                    self._rotate()
                with open(self.path, "ab") as handle:
                    handle.write(data)
                    handle.flush()
            except OSError as error:
                lost = sum(int(entry.get("rows", 1)) for entry in entries)
                self._lines_lost += lost
                self._last_error = f"{self.path}: {error.strerror or error}"
                if self._writable:  # said once per outage; every lost line is counted
                    logger.error("prediction log cannot be written, lines are being lost: %s", self._last_error)
                self._writable = False
                return lost
            if not self._writable:
                logger.warning("prediction log writable again (%d line(s) lost meanwhile)", self._lines_lost)
            self._writable = True
        return 0

    def health(self) -> LogHealth:
        return LogHealth(self._writable, self._lines_lost, self._last_error)

    def _rotate(self) -> None:
        for index in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
        if self.backups > 0:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()


def _line(entry: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(entry, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # e.g. an integer beyond 64 bits: kept as its text rather than lost
        return (json.dumps(entry, default=str) + "\n").encode()


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


def batch_entry(
    request_id: str,
    endpoint: str,
    inputs: dict[str, list[Any]],
    answers: dict[str, list[Any]],
    model_version: str,
    latency_ms: float,
) -> dict[str, Any]:
    """One log line for a whole batch, column by column (``rows`` says how many predictions it holds): a
    5,000-row batch was 5,000 dicts serialised one by one (22 ms); as columns it is one orjson call. The reader
    turns it back into one row per prediction."""
    rows = len(answers["probability"])
    return {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "request_id": request_id,
        "endpoint": endpoint,
        "model_version": model_version,
        "latency_ms": round(latency_ms, 3),
        "rows": rows,
        "inputs": inputs,
        **answers,
    }


def _rows_of(line: dict[str, Any]) -> list[dict[str, Any]]:
    """A read line as prediction rows: itself, or a batch line's columns as one row each."""
    if "rows" not in line:
        return [line]
    inputs = line["inputs"]
    columns = list(inputs)
    shared = {key: line[key] for key in ("time", "request_id", "endpoint", "model_version", "latency_ms")}
    return [
        {
            **shared,
            "index": index,
            "inputs": dict(zip(columns, values, strict=True)),
            "probability": line["probability"][index],
            "decision": line["decision"][index],
            "risk_level": line["risk_level"][index],
        }
        for index, values in enumerate(zip(*(inputs[column] for column in columns), strict=True))
    ]


@dataclass(frozen=True)
class LoggedPredictions:
    """The prediction log as read: one row per readable line, and the lines that were not (a line cut
    short by a full disk or a killed worker), counted rather than skipped in silence."""

    frame: pd.DataFrame
    unreadable_lines: int


def read_prediction_log(directory: Path, model_version: str | None = None) -> LoggedPredictions:
    """Every logged prediction (all workers, rotated files included), optionally for one model version."""
    rows: list[dict[str, Any]] = []
    unreadable = 0
    for path in sorted(directory.glob(f"{FILE_PREFIX}*.jsonl*")):
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    unreadable += 1
                    continue
                if not isinstance(row, dict):
                    unreadable += 1
                    continue
                try:
                    rows.extend(_rows_of(row))
                except (KeyError, IndexError, TypeError, ValueError):  # a batch line whose columns disagree
                    unreadable += 1
    frame = pd.DataFrame(rows)
    if model_version is not None and len(frame):
        frame = frame[frame["model_version"] == model_version]
    return LoggedPredictions(frame.reset_index(drop=True), unreadable)
