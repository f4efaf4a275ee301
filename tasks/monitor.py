"""The monitoring stages: the served champion's reference, its logged traffic, the drift verdict with its
report, and starting a retrain when traffic has drifted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL

from tasks import plots
from tasks.run import IO_RETRIES, TIMEOUTS, artifact_key, publish_markdown, write_markdown
from tollgate.config.settings import Settings
from tollgate.core.drift import DriftReport, as_json, drift_markdown, drift_report
from tollgate.core.render import html_report
from tollgate.store.files import write_json_atomic
from tollgate.store.lists import lists_dir, read_outcomes
from tollgate.store.models import ChampionReference, champion_reference
from tollgate.store.prediction_log import read_prediction_log


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
def check_drift(log: pd.DataFrame, champion: ChampionReference, settings: Settings) -> DriftCheck:
    """Drift verdict with its report: drift.md/.json/.html under artifacts/<dataset>/monitoring/<time>/."""
    spec = champion.spec
    report = drift_report(log, champion.reference, spec, champion.version)
    folder = settings.dataset_artifacts(spec.name) / "monitoring" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder.mkdir(parents=True, exist_ok=True)
    markdown_text = drift_markdown(report)
    write_markdown(folder / "drift.md", markdown_text)
    write_json_atomic(folder / "drift.json", as_json(report))
    figures = {}
    if report.features:
        figures["PSI by input"] = plots.drift_bars(report.features, spec.monitoring.psi_threshold, folder / "psi.png")
    (folder / "drift.html").write_text(
        html_report(f"Tollgate {spec.name} drift", markdown_text, {}, figures), encoding="utf-8"
    )
    publish_markdown(
        key=artifact_key(spec.name, "drift"),
        markdown=markdown_text,
        description=f"{spec.name} drift of logged traffic vs {champion.tag}",
    )
    print(
        ("DRIFT: " + "; ".join(report.reasons))
        if report.drifted
        else "no drift: " + "; ".join(report.reasons or ["all inputs stable"])
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


@task(name="trigger-retrain", cache_policy=NO_CACHE)
def trigger_retrain(dataset: str) -> dict[str, str] | None:
    """Start the dataset's retrain deployment on the Prefect server; None when there is none
    (no server configured, or the deployment was never created), so the flow retrains itself."""
    name = f"retrain/{dataset}-monthly-retrain"
    if not PREFECT_API_URL.value():
        print("no Prefect server configured: running the retrain flow here")
        return None
    try:
        flow_run = run_deployment(name=name, timeout=0, tags=["drift"])
    except ObjectNotFound:
        print(f"no deployment '{name}' on the server: running the retrain flow here")
        return None
    print(f"drift: started deployment {name}, flow run {flow_run.id}")
    return {"how": "deployment", "deployment": name, "flow_run_id": str(flow_run.id)}
