"""The retention stage: after the promotion decision, the oldest run folders and rejected models beyond the
settings' counts are removed (never a champion's), and what went is said."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.run import IO_RETRIES, MEASURED
from tollgate.config.settings import Settings
from tollgate.config.spec import DatasetSpec
from tollgate.core.promotion import PromotionResult
from tollgate.store.registry import locked_registry, registry_path
from tollgate.store.retention import Retention, apply_retention
from tollgate.store.runs import RunPaths


@task(name="retention", cache_policy=NO_CACHE, **IO_RETRIES, **MEASURED)
def retain(spec: DatasetSpec, settings: Settings, run: RunPaths, promotion: PromotionResult) -> Retention:
    """Apply the retention rule under the registry lock (so no concurrent run promotes what it removes)."""
    with locked_registry(registry_path(spec.name, settings)) as registry:
        kept = apply_retention(spec.name, registry, settings, current_run=run.run_id)
    print(
        f"retention: {len(kept.runs_removed)} old run folder(s) and {len(kept.models_removed)} rejected model(s) "
        f"removed (keeping {settings.keep_runs} runs and {settings.keep_rejected_models} rejected models besides "
        f"champions): {', '.join(kept.runs_removed + kept.models_removed) or 'nothing to remove'}"
    )
    return kept
