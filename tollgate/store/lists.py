"""Where call lists, alert queues and their realised outcomes live: ``artifacts/<dataset>/lists/``.

``<period>.csv`` is the list (what the team works through), ``<period>.json`` what it was made with and
predicted, ``<period>.outcome.json`` what it realised once the period's labels arrived. Every file is
written whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from tollgate.config.settings import Settings
from tollgate.core.calllist import CallList, CallListError, RealisedOutcome
from tollgate.store.files import write_json_atomic, write_text_atomic

OUTCOME_SUFFIX = ".outcome.json"


def lists_dir(dataset: str, settings: Settings) -> Path:
    return settings.dataset_artifacts(dataset) / "lists"


def write_call_list(call_list: CallList, folder: Path) -> Path:
    """The list as CSV beside its summary; returns the CSV's path."""
    path = folder / f"{call_list.period}.csv"
    write_text_atomic(path, call_list.table.to_csv(index=False))
    write_json_atomic(folder / f"{call_list.period}.json", call_list.summary())
    return path


def read_call_list(folder: Path, period: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A period's list and its summary; CallListError names the period when there is none."""
    path = folder / f"{period}.csv"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.csv")) if folder.is_dir() else []
        raise CallListError(f"no list for period '{period}' in {folder}; lists made: {known}")
    summary: dict[str, Any] = json.loads((folder / f"{period}.json").read_text(encoding="utf-8"))
    return pd.read_csv(path, dtype={"id": str}, keep_default_na=False), summary


def write_outcome(outcome: RealisedOutcome, folder: Path) -> Path:
    path = folder / f"{outcome.period}{OUTCOME_SUFFIX}"
    write_json_atomic(path, outcome.summary())
    return path


def read_outcomes(folder: Path) -> list[dict[str, Any]]:
    """Every recorded outcome, oldest period first."""
    if not folder.is_dir():
        return []
    paths = sorted(folder.glob(f"*{OUTCOME_SUFFIX}"))
    return [json.loads(path.read_text(encoding="utf-8")) for path in paths]
