"""The rollback stage: the previous champion becomes the champion again (see ``tollgate.store.registry.rollback``)."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.run import IO_RETRIES
from tollgate.config.settings import Settings
from tollgate.store.models import verify_model
from tollgate.store.registry import registry_path, rollback


@task(name="rollback", cache_policy=NO_CACHE, **IO_RETRIES)
def rollback_champion(dataset: str, settings: Settings, reason: str = "manual rollback") -> dict[str, Any]:
    """Restore the previous champion of ``dataset``; the service follows the registry within seconds."""
    path = registry_path(dataset, settings)
    # The previous champion is verified (signature, files, the checksums recorded at its promotion) first.
    champion = rollback(path, reason, verify=lambda entry: verify_model(entry["tag"], settings, entry.get("sha256")))
    print(f"{dataset}: champion is {champion['tag']} again ({reason})")
    return {"dataset": dataset, "status": "rolled_back", "champion": champion["tag"], "registry": str(path)}
