"""What a dataset keeps: every champion and previous champion (model and run) for ever; of the rest, the
newest ``keep_runs`` run folders and the newest ``keep_rejected_models`` rejected models in the store.

A monthly retrain that is rejected used to leave its model (and bento) behind for ever; the rule removes the
oldest of them after every promotion decision and says what it removed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import Any

import bentoml

from tollgate.config.settings import Settings


@dataclass(frozen=True)
class Retention:
    """What the rule removed, by name, and what it kept."""

    runs_removed: list[str] = field(default_factory=list)
    models_removed: list[str] = field(default_factory=list)
    runs_kept: int = 0

    def summary(self) -> dict[str, Any]:
        return {"runs_removed": self.runs_removed, "models_removed": self.models_removed, "runs_kept": self.runs_kept}


def protected(registry: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Model tags and run ids never removed: the champion's and every previous champion's."""
    entries = [entry for entry in [registry.get("champion"), *registry.get("previous", [])] if entry]
    return {str(entry["tag"]) for entry in entries}, {str(entry.get("run_id")) for entry in entries}


def apply_retention(
    dataset: str, registry: dict[str, Any], settings: Settings, current_run: str | None = None
) -> Retention:
    """Remove the oldest run folders and rejected models beyond the settings' counts (never a champion's, never
    ``current_run``)."""
    tags, runs = protected(registry)
    runs_dir = settings.dataset_artifacts(dataset) / "runs"
    others = (
        sorted(
            (folder for folder in runs_dir.iterdir() if folder.is_dir() and folder.name not in runs | {current_run}),
            key=lambda folder: folder.name,
        )
        if runs_dir.is_dir()
        else []
    )
    stale_runs = others[: max(0, len(others) - settings.keep_runs)]
    for folder in stale_runs:
        shutil.rmtree(folder, ignore_errors=True)
    rejected = [
        str(record["challenger"])
        for record in registry.get("history", [])
        if record.get("decision") == "rejected" and record.get("challenger") and record["challenger"] not in tags
    ]
    stale_models = list(dict.fromkeys(rejected))[: max(0, len(set(rejected)) - settings.keep_rejected_models)]
    removed_models = []
    for tag in stale_models:
        try:
            bentoml.models.delete(tag)
        except bentoml.exceptions.NotFound:
            continue  # removed before (by hand, or by an earlier pass)
        removed_models.append(tag)
    return Retention(
        runs_removed=[folder.name for folder in stale_runs],
        models_removed=removed_models,
        runs_kept=len(others) - len(stale_runs),
    )
