"""What monitoring remembers between checks (``artifacts/<dataset>/monitoring/state.json``): the champion it
checked, the newest prediction a verdict covered (the next check reads only later ones) and the last retrain
it asked for (the cooldown runs from it)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from tollgate.config.settings import Settings
from tollgate.store.files import write_json_atomic


def state_path(dataset: str, settings: Settings) -> Path:
    return settings.dataset_artifacts(dataset) / "monitoring" / "state.json"


def read_state(path: Path) -> dict[str, Any]:
    """The state, or an empty one when there was no check yet; an unreadable file is said and started afresh
    (the cost: one window read again from the champion's promotion)."""
    if not path.is_file():
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"WARNING: monitoring state {path} unreadable ({error}); starting from the champion's promotion")
        return {}
    return state if isinstance(state, dict) else {}


def write_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, state)


def timestamp(value: object) -> datetime | None:
    """An ISO time from the state file, or None."""
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None
