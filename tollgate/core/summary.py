"""The run's one JSON line, built once at the end of the flow from every stage's typed result."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from tollgate.config.spec import DatasetSpec
from tollgate.core.anomaly import AnomalyResult
from tollgate.core.clean import CleaningReport
from tollgate.core.fairness import FairnessReport
from tollgate.core.ingest import RawData
from tollgate.core.promotion import PromotionResult
from tollgate.core.quality import QualityResult
from tollgate.core.report import ReportResult, winner_summary
from tollgate.core.split import TrainHoldout
from tollgate.core.tournament import Leaderboard
from tollgate.store.models import PackageResult
from tollgate.store.retention import Retention
from tollgate.store.runs import RunPaths


def run_summary(
    spec: DatasetSpec,
    run: RunPaths,
    raw: RawData,
    quality: QualityResult,
    cleaning: CleaningReport,
    split: TrainHoldout,
    leaderboard: Leaderboard,
    report: ReportResult,
    anomaly: AnomalyResult | None,
    package: PackageResult,
    promotion: PromotionResult,
    retention: Retention | None = None,
    fairness: FairnessReport | None = None,
) -> dict[str, Any]:
    """What a completed run did, in the order it did it: the CLI prints this as its last line."""
    summary: dict[str, Any] = {
        "dataset": spec.name,
        "run_id": run.run_id,
        "status": "completed",
        "rows_in": raw.rows,
        "rows_clean": cleaning.rows_out,
        "quality": quality.summary(),
        "report_dir": str(run.dir),
        "data_docs": quality.data_docs,
        "input_sha256": raw.sha256,
        "holdout_month": split.holdout_month,
        "holdout": split.describe(),
        "cleaning": {"rows_dropped": cleaning.rows_dropped, "values_repaired": cleaning.total_repaired},
        "leaderboard": leaderboard.rows(),
        "winner": winner_summary(leaderboard),
        **(
            {"decision": leaderboard.winner.holdout_policy.summary()}
            if leaderboard.winner.holdout_policy is not None
            else {}
        ),
        **({"fairness": fairness.summary()} if fairness is not None and fairness.gaps else {}),
        "report": str(report.html),
        "model_path": str(package.model_path),
    }
    if anomaly is not None:
        summary["anomaly"] = anomaly.summary()
    summary.update(
        {
            "model_tag": package.model_tag,
            "model_sha256": package.model_sha256,
            "bento_tag": promotion.bento_tag,
            "verification": asdict(package.verification),
            "promotion": promotion.summary(),
            "registry": promotion.registry,
            "retention": retention.summary() if retention is not None else None,
        }
    )
    return summary
