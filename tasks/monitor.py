"""The monitoring stages: the served champion's reference, its logged traffic since the last check, the drift
verdict, the retrain rule (cooldown, new labels), the report, the retrain event, and what the check leaves for
the next one."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.events import emit_event
from prefect.exceptions import ObjectNotFound

from tasks import plots
from tasks.run import IO_RETRIES, TIMEOUTS, artifact_key, publish_markdown, write_markdown
from tollgate.config.settings import Settings
from tollgate.core.drift import DriftReport, as_json, drift_markdown, drift_report, newest_time, since
from tollgate.core.ingest import IngestError, combined_sha256, planned_files
from tollgate.core.render import html_report
from tollgate.core.retrain_rule import RetrainRequest, retrain_request
from tollgate.store.files import file_sha256, write_json_atomic, write_text_atomic
from tollgate.store.lists import lists_dir, read_outcomes
from tollgate.store.models import ChampionReference, champion_reference
from tollgate.store.monitoring import read_state, state_path, timestamp, write_state
from tollgate.store.prediction_log import read_prediction_log
from tollgate.store.registry import read_registry, registry_path


@dataclass(frozen=True)
class DriftCheck:
    """The check-drift stage's result: the verdict and where its report is."""

    report: DriftReport
    report_path: Path

    def summary(self) -> dict[str, Any]:
        return {**self.report.summary(), "report": str(self.report_path)}


@task(name="load-champion-reference", cache_policy=NO_CACHE, **IO_RETRIES)
def load_champion_reference(dataset: str, settings: Settings) -> ChampionReference:
    """The registry's champion (as the service resolves it), checksums verified."""
    champion = champion_reference(dataset, settings)
    print(f"monitoring {dataset} champion {champion.tag}")
    return champion


@task(name="read-prediction-log", cache_policy=NO_CACHE, **IO_RETRIES)
def load_prediction_log(champion: ChampionReference, settings: Settings, log_dir: str | None = None) -> pd.DataFrame:
    """The champion's logged predictions: from ``log_dir``, else the service's log folder."""
    directory = Path(log_dir) if log_dir else settings.prediction_logs(champion.spec.name)
    logged = read_prediction_log(directory, champion.version)
    print(f"{len(logged.frame):,} logged predictions of {champion.tag} in {directory}")
    if logged.unreadable_lines:
        print(f"WARNING: {logged.unreadable_lines:,} unreadable line(s) in {directory} skipped (cut short)")
    return logged.frame


@task(name="check-drift", cache_policy=NO_CACHE, timeout_seconds=TIMEOUTS["monitor"])
def check_drift(log: pd.DataFrame, champion: ChampionReference, state: dict[str, Any]) -> DriftReport:
    """The drift verdict on the predictions logged since the last verdict for this champion (all since its
    promotion at the first check)."""
    spec = champion.spec
    checked_until = state.get("checked_until") if state.get("champion") == champion.tag else None
    window = since(log, checked_until)
    print(f"window: {len(window):,} of {len(log):,} logged predictions are newer than the last check ({checked_until})")
    report = drift_report(window, champion.reference, spec, champion.version, checked_until)
    print(
        ("DRIFT: " + "; ".join(report.reasons))
        if report.drifted
        else "no drift: " + "; ".join(report.reasons or ["all inputs stable"])
    )
    return report


@task(name="write-monitoring-report", cache_policy=NO_CACHE, **IO_RETRIES)
def write_monitoring_report(
    report: DriftReport, decision: RetrainRequest, champion: ChampionReference, settings: Settings
) -> DriftCheck:
    """drift.md/.json/.html under artifacts/<dataset>/monitoring/<time>/, and a markdown artifact."""
    spec = champion.spec
    folder = settings.dataset_artifacts(spec.name) / "monitoring" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder.mkdir(parents=True, exist_ok=True)
    said = ("requested: " if decision.requested else "not requested: ") + decision.reason
    markdown_text = drift_markdown(report, said)
    write_markdown(folder / "drift.md", markdown_text)
    write_json_atomic(folder / "drift.json", {**as_json(report), "retrain": asdict(decision)})
    figures = {}
    if report.features:
        figures["PSI by input"] = plots.drift_bars(report.features, spec.monitoring.psi_threshold, folder / "psi.png")
    write_text_atomic(folder / "drift.html", html_report(f"Tollgate {spec.name} drift", markdown_text, {}, figures))
    publish_markdown(
        key=artifact_key(spec.name, "drift"),
        markdown=markdown_text,
        description=f"{spec.name} drift of logged traffic vs {champion.tag}",
    )
    return DriftCheck(report=report, report_path=folder / "drift.html")


@task(name="check-realised-value", cache_policy=NO_CACHE, **IO_RETRIES)
def check_realised(champion: ChampionReference, settings: Settings) -> dict[str, Any] | None:
    """The newest realised outcome of a list the serving champion made (None when there is none yet):
    realised net value below predicted by more than the spec's tolerance is a reason to retrain."""
    mine = [o for o in read_outcomes(lists_dir(champion.spec.name, settings)) if o.get("model_tag") == champion.tag]
    if not mine:
        print("no realised outcome of this champion's lists yet")
        return None
    newest = mine[-1]
    print(
        f"realised value of the {newest['period']} list: ${newest['net_value']:,.0f} vs "
        f"${newest['predicted_net_value']:,.0f} predicted" + (" — SHORTFALL" if newest["shortfall"] else "")
    )
    return newest


@task(name="decide-retrain", cache_policy=NO_CACHE, **IO_RETRIES)
def decide_retrain(
    report: DriftReport,
    realised: dict[str, Any] | None,
    champion: ChampionReference,
    state: dict[str, Any],
    settings: Settings,
) -> RetrainRequest:
    """Apply the retrain rule: a reason, out of the cooldown, and labelled data the champion did not train on
    (the files a retrain would read, hashed as ingest hashes them)."""
    spec = champion.spec
    reasons = list(report.reasons) if report.drifted else []
    if realised and realised.get("shortfall"):
        reasons.append(f"the {realised['period']} list realised less value than predicted")
    entry = read_registry(registry_path(spec.name, settings)).get("champion") or {}
    try:
        paths, holdout = planned_files(spec, settings)
        available: str | None = combined_sha256((path.name, file_sha256(path)) for path in paths)
    except IngestError as error:
        print(f"no labelled data to retrain on: {error}")
        available, holdout = None, None
    decision = retrain_request(
        reasons,
        datetime.now(UTC),
        timestamp(state.get("retrain_requested_at")),
        timedelta(days=spec.monitoring.cooldown_days),
        entry.get("input_sha256"),
        entry.get("holdout_month"),
        available,
        holdout,
    )
    print(f"retrain {'requested' if decision.requested else 'not requested'}: {decision.reason}")
    return decision


RETRAIN_REQUESTED = "tollgate.retrain.requested"
"""The event the monitor emits; prefect.yaml's retrain deployments have a trigger on it."""


def dataset_resource(dataset: str) -> dict[str, str]:
    """The Prefect event resource of a dataset (what the retrain deployments' triggers match on)."""
    return {"prefect.resource.id": f"tollgate.dataset.{dataset}", "prefect.resource.name": dataset}


def emit_retrain_request(dataset: str, reason: str, champion_tag: str | None) -> str | None:
    """Emit the retrain event for ``dataset``; returns its id (None when Prefect has events switched off)."""
    event = emit_event(
        event=RETRAIN_REQUESTED,
        resource=dataset_resource(dataset),
        payload={"reason": reason, "champion": champion_tag},
    )
    return str(event.id) if event is not None else None


@task(name="request-retrain", cache_policy=NO_CACHE)
def request_retrain(dataset: str, reason: str, champion_tag: str) -> dict[str, str | None] | None:
    """Emit the retrain event; a server with the dataset's retrain deployment (prefect.yaml) starts it through
    the deployment's trigger. None when there is no such deployment, so the flow retrains itself."""
    event_id = emit_retrain_request(dataset, reason, champion_tag)
    name = f"retrain/{dataset}-monthly-retrain"
    try:
        with get_client(sync_client=True) as client:
            client.read_deployment_by_name(name)
    except ObjectNotFound:
        print(f"event {RETRAIN_REQUESTED} emitted; no deployment '{name}' reacts to it here: retraining in this flow")
        return None
    print(f"event {RETRAIN_REQUESTED} emitted: deployment {name} starts through its trigger")
    return {"how": "event", "event": RETRAIN_REQUESTED, "event_id": event_id, "deployment": name}


@task(name="remember-check", cache_policy=NO_CACHE, **IO_RETRIES)
def remember_check(
    log: pd.DataFrame,
    report: DriftReport,
    decision: RetrainRequest,
    acted: bool,
    state: dict[str, Any],
    champion: ChampionReference,
    settings: Settings,
) -> dict[str, Any]:
    """Advance the window past the predictions a verdict covered (not past too few: they count next time) and
    start the cooldown when a retrain was asked for."""
    same_champion = state.get("champion") == champion.tag
    verdict = bool(report.features)  # too few predictions: no verdict, so the window does not move
    updated = {
        **(state if same_champion else {k: v for k, v in state.items() if k.startswith("retrain_")}),
        "champion": champion.tag,
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if verdict and not log.empty:
        updated["checked_until"] = newest_time(log)
    if decision.requested and acted:
        updated["retrain_requested_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        updated["retrain_reason"] = decision.reason
    write_state(state_path(champion.spec.name, settings), updated)
    return updated


@task(name="read-monitoring-state", cache_policy=NO_CACHE, **IO_RETRIES)
def read_monitoring_state(dataset: str, settings: Settings) -> dict[str, Any]:
    """What the last check left: its champion, the newest prediction it covered, the last retrain request."""
    return read_state(state_path(dataset, settings))
