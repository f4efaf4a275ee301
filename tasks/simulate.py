"""The simulation stages: which months to run, and the traffic the champion would have served.

The traffic replay scores a month's customers or sessions through the serving path (the request
form, ``clean_record``, the fast path, the cost-tuned decision) and writes the same prediction log
lines as the service, so the monitoring flow reads it as it reads production.
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tollgate.config.settings import Settings
from tollgate.config.spec import DatasetSpec
from tollgate.core.clean import clean_frame, clean_record
from tollgate.core.decision import decide
from tollgate.core.fastpath import FastScorer
from tollgate.core.ingest import IngestError, month_of, read_batch
from tollgate.core.render import markdown_table
from tollgate.core.schema import request_records
from tollgate.store.models import champion_tag, load_packaged_model
from tollgate.store.prediction_log import PredictionLog, prediction_entries
from tollgate.store.registry import read_registry


@task(name="fresh-simulation-root", cache_policy=NO_CACHE)
def fresh_simulation_root(spec: DatasetSpec, settings: Settings) -> Settings:
    """Settings whose artifacts live under ``<artifacts>/simulation/``, the dataset's folder there emptied:
    a replay starts with no champion and never writes the production registry."""
    simulation = settings.model_copy(
        update={"artifacts_dir": settings.artifacts_dir / "simulation", "prediction_log_dir": None}
    )
    folder = simulation.dataset_artifacts(spec.name)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    print(f"simulation: runs, registry and prediction log under {folder}")
    return simulation


@task(name="plan-months", cache_policy=NO_CACHE)
def plan_months(spec: DatasetSpec, settings: Settings, months: int) -> list[tuple[str, str | None]]:
    """The last ``months`` holdout months that have a full training window, each with the month after it."""
    folder = spec.raw_path(settings)
    available = sorted(m for m in (month_of(p) for p in folder.glob("*")) if m)
    eligible = available[spec.split.train_window_months :] or available[1:]
    if not eligible:
        raise IngestError(f"{folder} has too few monthly batches to replay")
    chosen = eligible[-months:]
    following = {
        m: available[available.index(m) + 1] if available.index(m) + 1 < len(available) else None for m in chosen
    }
    return [(month, following[month]) for month in chosen]


@task(name="replay-traffic", cache_policy=NO_CACHE)
def replay_traffic(spec: DatasetSpec, settings: Settings, month: str, log_dir: Path) -> dict[str, Any]:
    """Score ``month``'s rows with the current champion as the service would, logging each one."""
    model = load_packaged_model(champion_tag(spec.name, settings))
    scorer = FastScorer.compile(model.pipeline)
    raw = read_batch(spec.raw_path(settings) / f"{month}.csv", spec.read).rename(columns=spec.rename)
    records = request_records(clean_frame(raw, spec).frame, spec)
    answers = []
    started = time.perf_counter()
    for record in records:
        probability = scorer.predict_proba(clean_record(record, spec))
        decision = decide(probability, model.threshold, spec)
        answers.append(
            {
                "prediction": decision.prediction,
                "probability": probability,
                "risk_level": decision.risk_level,
                "model_version": model.version,
            }
        )
    per_record_ms = (time.perf_counter() - started) * 1000 / max(len(records), 1)
    log = PredictionLog(log_dir)
    log.write(prediction_entries(uuid.uuid4().hex, "replay", records, answers, per_record_ms))
    positive = sum(answer["prediction"] == spec.target.positive for answer in answers)
    print(f"replayed {len(records):,} {month} records through {model.tag}: {positive:,} flagged")
    return {"month": month, "records": len(records), "model": model.tag, "flagged": positive}


SIMULATION_COLUMNS = [
    "holdout",
    "challenger",
    "decision",
    "champion",
    "champion_roc_auc",
    "champion_net_value",
    "served_month",
    "flagged",
    "listed",
    "predicted_value",
    "realised_value",
    "realised_precision",
    "drift",
    "reason",
]


def decisions_table(rows: list[dict[str, Any]]) -> str:
    """The month-by-month table the simulation prints."""
    return markdown_table(rows, SIMULATION_COLUMNS)


@task(name="simulation-row", cache_policy=NO_CACHE)
def simulation_row(
    month: str,
    run: dict[str, Any],
    registry_file: str,
    traffic: dict[str, Any] | None,
    drift: dict[str, Any] | None,
    outcome: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One line of the table: the month's decision, the champion that served afterwards and what its list for
    the next month realised."""
    champion = read_registry(Path(registry_file))["champion"] or {}
    metrics = champion.get("metrics") or {}
    promotion = run.get("promotion") or {}
    return {
        "holdout": month,
        "challenger": run.get("winner", {}).get("model"),
        "decision": promotion.get("decision"),
        "champion": champion.get("tag", "—").split(":")[-1],
        "champion_roc_auc": round(metrics.get("roc_auc", float("nan")), 4),
        "champion_net_value": round(metrics.get("net_value") or float("nan"), 0),
        "served_month": traffic["month"] if traffic else "—",
        "flagged": traffic["flagged"] if traffic else "—",
        "listed": outcome["listed"] if outcome else "—",
        "predicted_value": round(outcome["predicted_net_value"]) if outcome else "—",
        "realised_value": round(outcome["net_value"]) if outcome else "—",
        "realised_precision": round(outcome["precision"], 3) if outcome else "—",
        "drift": ("yes" if drift["drifted"] else "no") if drift else "—",
        "reason": promotion.get("reason", "")[:90],
    }
