"""The model registry: ``artifacts/<dataset>/registry.json`` names the champion and keeps every decision.

Readers (the service, the flow) see either the old file or the new one: every write goes to a
temporary file that replaces the registry in one ``os.replace``. Writers take a per-dataset file
lock, so two runs for the same dataset cannot interleave their read-decide-write.

Every write also refreshes ``registry.json.last-good``. A registry that cannot be read (cut short by a
full disk, edited by hand) is read from that copy instead, with a warning naming both files, and the
next write repairs it; when neither can be read, every reader stops with a ``RegistryError`` that
names the file and what to do.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from tollgate.config.settings import Settings
from tollgate.store.files import write_json_atomic

LOCK_TIMEOUT_SECONDS = 3600
LAST_GOOD_SUFFIX = ".last-good"

logger = logging.getLogger("tollgate.registry")


class RegistryError(RuntimeError):
    """The registry cannot do what was asked (e.g. roll back with no previous champion)."""


def registry_path(dataset: str, settings: Settings) -> Path:
    return settings.dataset_artifacts(dataset) / "registry.json"


Registry = dict[str, Any]
"""The registry file's content: ``champion``, ``previous`` champions, ``history`` of decisions."""


def last_good_path(path: Path) -> Path:
    return path.with_name(path.name + LAST_GOOD_SUFFIX)


def read_registry(path: Path) -> Registry:
    """The registry as a dict; an empty one (no champion, no history) if none was written yet; its last
    good copy if the file itself cannot be read."""
    if not path.is_file():
        return {"champion": None, "previous": [], "history": []}
    try:
        return _parse(path)
    except RegistryError as damaged:
        backup = last_good_path(path)
        try:
            registry = _parse(backup)
        except (RegistryError, FileNotFoundError):
            raise RegistryError(
                f"{damaged}; its last good copy {backup} is missing or unreadable too. Restore either file from a "
                "backup (or move both away to start a new registry: champions and history would be forgotten)"
            ) from None
        logger.warning("%s; reading its last good copy %s (the next registry write repairs it)", damaged, backup)
        return registry


def _parse(path: Path) -> Registry:
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        registry = json.loads(text)
    except ValueError as error:
        raise RegistryError(f"registry {path} is not valid JSON ({error}; {len(text):,} characters)") from None
    if not isinstance(registry, dict) or not {"champion", "history"} <= registry.keys():
        raise RegistryError(f"registry {path} is not a registry (a JSON object with 'champion' and 'history')")
    registry.setdefault("previous", [])
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
        write_json_atomic(last_good_path(path), registry)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def rollback(
    path: Path, reason: str = "manual rollback", verify: Callable[[dict[str, Any]], object] = lambda entry: None
) -> dict[str, Any]:
    """Make the previous champion the champion again and record it; returns the new champion.

    ``verify`` checks the previous champion before the registry points at it (it raises to refuse:
    the registry is then left as it was)."""
    if not path.is_file():
        raise RegistryError(f"no registry at {path}: nothing was ever promoted for this dataset")
    with locked_registry(path) as registry:
        if not registry.get("previous"):
            raise RegistryError(f"{path}: no previous champion to roll back to")
        demoted = registry["champion"]
        verify(registry["previous"][-1])
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
