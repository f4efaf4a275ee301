"""The run's report content: the winner's figures, the decision table, the summary an ML lead reads before
signing off, and the model's metadata (lineage, parameters, metrics, versions). Drawing and writing files is
the report stage's job."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm
import pandas as pd
import sklearn

from tollgate.config.spec import DatasetSpec
from tollgate.core.clean import CleaningReport
from tollgate.core.explain import GlobalExplanation
from tollgate.core.features import feature_names
from tollgate.core.ingest import RawData
from tollgate.core.quality import QualityResult
from tollgate.core.split import TrainHoldout
from tollgate.core.tournament import CandidateResult, Leaderboard
from tollgate.store.models import MODEL_FILE
from tollgate.store.runs import RunPaths

WELL_CALIBRATED_ECE = 0.05


@dataclass(frozen=True)
class ReportResult:
    """The report stage's result: where the report is, and the model metadata it wrote beside it."""

    html: Path
    markdown: Path
    metadata: dict[str, Any]


def winner_summary(leaderboard: Leaderboard) -> dict[str, Any]:
    winner = leaderboard.winner
    at_threshold, at_half = winner.holdout_metrics["at_threshold"], winner.holdout_metrics["at_0_5"]
    return {
        "model": winner.name,
        "cv_roc_auc": round(winner.cv["roc_auc"]["mean"], 4),
        "test_roc_auc": round(winner.holdout_metrics["roc_auc"], 4),
        "test_pr_auc": round(winner.holdout_metrics["pr_auc"], 4),
        "threshold": winner.oof_threshold,
        "test_accuracy": round(at_threshold["accuracy"], 4),
        "test_recall": round(at_threshold["recall"], 4),
        "test_accuracy_at_0_5": round(at_half["accuracy"], 4),
        "expected_cost": round(at_threshold["expected_cost"], 2),
        "expected_cost_at_0_5": round(at_half["expected_cost"], 2),
    }


def decision_table(winner: CandidateResult) -> pd.DataFrame:
    rows = []
    for label, report in (
        ("0.5", winner.holdout_metrics["at_0_5"]),
        (f"tuned {winner.oof_threshold:.3f}", winner.holdout_metrics["at_threshold"]),
    ):
        rows.append(
            {
                "threshold": label,
                "TP": report["tp"],
                "FP": report["fp"],
                "FN": report["fn"],
                "TN": report["tn"],
                "precision": round(report["precision"], 3),
                "recall": round(report["recall"], 3),
                "accuracy": round(report["accuracy"], 3),
                "expected cost $": f"{report['expected_cost']:,.0f}",
                "value vs doing nothing $": f"{report['value_vs_nothing']:,.0f}",
            }
        )
    return pd.DataFrame(rows)


def summary_markdown(
    spec: DatasetSpec,
    run: RunPaths,
    split: TrainHoldout,
    leaderboard: Leaderboard,
    explanation: GlobalExplanation,
    quality: QualityResult,
    cleaning: CleaningReport,
) -> str:
    winner = leaderboard.winner
    summary = winner_summary(leaderboard)
    ece = winner.holdout_metrics["calibration_error"]
    calibrated = "well calibrated" if ece <= WELL_CALIBRATED_ECE else "not well calibrated: read with care"
    drivers = ", ".join(f"`{name}`" for name in explanation.shap_mean_abs["feature"].head(5))
    quality_line = (
        "passed" if quality.success else "FAILED"
    ) + f", {len(quality.warnings)} warning(s) repaired by cleaning"
    return "\n".join(
        [
            f"# {spec.name}: {winner.name} wins (run {run.run_id})",
            "",
            f"- **Data**: {split.describe()}; quality gate {quality_line}; "
            f"{sum(cleaning.rows_dropped.values()):,} rows dropped and counted, "
            f"{cleaning.total_repaired:,} values repaired.",
            f"- **Selection rule**: {leaderboard.rule}.",
            f"- **Winner**: {winner.name}: "
            f"CV ROC-AUC {winner.cv['roc_auc']['mean']:.4f} ± {winner.cv['roc_auc']['std']:.4f}; "
            f"holdout ROC-AUC {summary['test_roc_auc']:.4f}, PR-AUC {summary['test_pr_auc']:.4f}.",
            f"- **Threshold**: {summary['threshold']:.3f}, tuned on out-of-fold training predictions to minimise "
            f"expected cost (FN ${spec.costs.false_negative:,.0f}, FP ${spec.costs.false_positive:,.0f}, "
            f"TP ${spec.costs.true_positive:,.0f}). On the holdout it costs ${summary['expected_cost']:,.0f} "
            f"against ${summary['expected_cost_at_0_5']:,.0f} at 0.5 and "
            f"${winner.holdout_metrics['at_threshold']['cost_of_doing_nothing']:,.0f} for doing nothing.",
            f"- **Calibration**: expected calibration error {ece:.3f} on the holdout, Brier "
            f"{winner.holdout_metrics['brier']:.4f}: {calibrated}.",
            f"- **Top drivers** (mean |SHAP|): {drivers}.",
        ]
    )


def run_metadata(
    spec: DatasetSpec,
    run: RunPaths,
    raw: RawData,
    quality: QualityResult,
    cleaning: CleaningReport,
    split: TrainHoldout,
    leaderboard: Leaderboard,
) -> dict[str, Any]:
    """What the model is and where it came from: saved beside the report and inside the packaged model."""
    winner = leaderboard.winner
    return {
        "version": run.run_id,
        "run_id": run.run_id,
        "dataset": spec.name,
        "trained_at": datetime.now(UTC).isoformat(),
        "spec_path": str(spec.source_path),
        "spec_sha256": spec.content_sha256,
        "input_sha256": raw.sha256,
        "input_files": [asdict(batch) for batch in raw.files],
        "holdout_month": split.holdout_month,
        "holdout_file": split.holdout_file,
        "split_strategy": split.strategy,
        "train_rows": len(split.train),
        "holdout_rows": len(split.holdout),
        "algorithm": winner.estimator,
        "estimator_class": type(winner.pipeline[-1]).__name__,
        "hyperparameters": {k: v for k, v in winner.pipeline[-1].get_params().items() if v is not None},
        "threshold": winner.oof_threshold,
        "selection_rule": leaderboard.rule,
        "cv_metrics": winner.cv,
        "holdout_metrics": winner.holdout_metrics,
        "leaderboard": leaderboard.rows(),
        "feature_names": feature_names(winner.pipeline),
        "input_columns": spec.input_columns,
        "quality": quality.summary(),
        "cleaning": asdict(cleaning),
        "model_file": MODEL_FILE,
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "lightgbm": lightgbm.__version__,
            "pandas": pd.__version__,
        },
    }
