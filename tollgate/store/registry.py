"""The model registry: ``artifacts/<dataset>/registry.json`` names the champion and keeps every decision.

Readers (the service, the flow) see either the old file or the new one: every write goes to a
temporary file that replaces the registry in one ``os.replace``. Writers take a per-dataset file
lock, so two runs for the same dataset cannot interleave their read-decide-write.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from tollgate.config.settings import Settings
from tollgate.store.files import write_json_atomic

LOCK_TIMEOUT_SECONDS = 3600


class RegistryError(RuntimeError):
    """The registry cannot do what was asked (e.g. roll back with no previous champion)."""


def registry_path(dataset: str, settings: Settings) -> Path:
    return settings.dataset_artifacts(dataset) / "registry.json"


Registry = dict[str, Any]
"""The registry file's content: ``champion``, ``previous`` champions, ``history`` of decisions."""


def read_registry(path: Path) -> Registry:
    """The registry as a dict; an empty one (no champion, no history) if none was written yet."""
    if not path.is_file():
        return {"champion": None, "previous": [], "history": []}
    registry: Registry = json.loads(path.read_text(encoding="utf-8"))
    return registry


def champion_entry(path: Path) -> dict[str, Any] | None:
    champion: dict[str, Any] | None = read_registry(path).get("champion")
    return champion


@contextmanager
def locked_registry(path: Path) -> Iterator[Registry]:
    """Hold the dataset's registry lock; yields the registry, written back atomically on success.

    If the body raises (or the process dies), the file on disk is left exactly as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_SECONDS):
        registry = read_registry(path)
        yield registry
        write_json_atomic(path, registry)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def rollback(path: Path, reason: str = "manual rollback") -> dict[str, Any]:
    """Make the previous champion the champion again and record it; returns the new champion."""
    if not path.is_file():
        raise RegistryError(f"no registry at {path}: nothing was ever promoted for this dataset")
    with locked_registry(path) as registry:
        if not registry.get("previous"):
            raise RegistryError(f"{path}: no previous champion to roll back to")
        demoted = registry["champion"]
        restored = registry["previous"].pop()
        champion: dict[str, Any] = {**restored, "promoted_at": now()}
        registry["champion"] = champion
        registry["history"].append(
            {
                "at": now(),
                "decision": "rolled_back",
                "reason": reason,
                "champion": restored["tag"],
                "replaced": demoted["tag"] if demoted else None,
            }
        )
    return champion
