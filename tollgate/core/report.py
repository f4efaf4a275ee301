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
from tollgate.core.policy import MOST_ACTED_SHARE, check_targets
from tollgate.core.quality import QualityResult
from tollgate.core.split import TrainHoldout
from tollgate.core.tournament import CandidateResult, Leaderboard
from tollgate.store.models import MODEL_FILE
from tollgate.store.runs import RunPaths

WELL_CALIBRATED_ECE = 0.05


@dataclass(frozen=True)
class ReportResult:
    """The report stage's result: where the report is."""

    html: Path
    markdown: Path


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


def policy_table(winner: CandidateResult, spec: DatasetSpec) -> pd.DataFrame:
    """The policy's operating point on the holdout beside acting on nobody, a random draw and everyone."""
    outcome, policy = winner.holdout_policy, spec.decision
    assert outcome is not None and policy is not None
    base_rate = outcome.positives / outcome.rows if outcome.rows else 0.0
    rows = [
        ("the policy (" + winner.name + ")", outcome.acted, outcome.precision, outcome.recall, outcome.net_value),
        ("nobody", 0, None, 0.0, outcome.net_value_nobody),
        (
            f"a random draw of {outcome.acted:,} (expected)",
            outcome.acted,
            base_rate,
            outcome.acted / outcome.rows,
            outcome.net_value_random,
        ),
        ("everyone", outcome.rows, base_rate, 1.0, outcome.net_value_everyone),
    ]
    return pd.DataFrame(
        [
            {
                "act on": name,
                "records": f"{acted:,}",
                "share": f"{acted / outcome.rows:.1%}" if outcome.rows else "—",
                "within capacity": "yes"
                if acted <= outcome.capacity
                else f"no ({acted / max(outcome.capacity, 1):.0f}×)",
                "precision": "—" if precision is None else f"{precision:.3f}",
                "recall": f"{recall:.3f}",
                "lift": "—" if precision is None or not base_rate else f"{precision / base_rate:.2f}",
                "net value $": f"{value:,.0f}",
            }
            for name, acted, precision, recall, value in rows
        ]
    )


def targets_table(winner: CandidateResult, spec: DatasetSpec) -> pd.DataFrame:
    outcome, policy = winner.holdout_policy, spec.decision
    assert outcome is not None and policy is not None
    checks = check_targets(outcome, winner.holdout_metrics["roc_auc"], policy)
    return pd.DataFrame(
        [
            {
                "target": c.metric,
                "needs": f"> {c.target:.2f}",
                "at the operating point": f"{c.value:.3f}",
                "met": "yes" if c.met else "NO",
            }
            for c in checks
        ],
        columns=["target", "needs", "at the operating point", "met"],
    )


def policy_lines(winner: CandidateResult, spec: DatasetSpec) -> list[str]:
    """The report's lead: whom the policy acts on, what it is worth, against what, and what it cannot do."""
    outcome, policy = winner.holdout_policy, spec.decision
    if outcome is None or policy is None:
        return []
    lines = [
        f"- **Decision policy**: act on records in order of expected value (p × {policy.success_rate:.0%} × "
        f"${policy.value:,.0f} − ${policy.action_cost:,.0f}), none below break-even (p ≥ {policy.break_even:.3f}), "
        f"at most {policy.capacity.describe()}.",
        f"- **On the holdout** ({outcome.rows:,} records, capacity {outcome.capacity:,}): the policy acts on "
        f"{outcome.acted:,} ({outcome.acted_share:.1%}), precision {outcome.precision:.3f} (lift {outcome.lift:.2f}), "
        f"recall {outcome.recall:.3f}; net value **${outcome.net_value:,.0f}** against $0 for nobody and "
        f"${outcome.net_value_random:,.0f} for a random draw of the same size.",
    ]
    everyone = outcome.net_value_everyone
    if everyone > outcome.net_value:
        lines.append(
            f"- **Capacity binds**: acting on everyone would be worth ${everyone:,.0f}, more than the policy, but "
            f"needs {outcome.rows:,} actions, {outcome.rows / max(outcome.capacity, 1):.0f}× the capacity. "
            f"An average record is worth acting on (${everyone / max(outcome.rows, 1):,.2f} each): more capacity pays."
        )
    else:
        lines.append(f"- Acting on everyone would be worth ${everyone:,.0f}: the policy beats it.")
    if outcome.acted_share > MOST_ACTED_SHARE:
        lines.append(
            f"- **Warning**: the policy acts on {outcome.acted_share:.0%} of the records: a model adds little "
            "when nearly everyone is acted on."
        )
    checks = check_targets(outcome, winner.holdout_metrics["roc_auc"], policy)
    if checks:
        lines.append(
            "- **Targets at the operating point**: "
            + "; ".join(f"{c.metric} {c.value:.3f} vs > {c.target:.2f} {'met' if c.met else 'NOT met'}" for c in checks)
            + "."
        )
    return lines


def threshold_rule(threshold: float, spec: DatasetSpec) -> str:
    """How the single-record threshold was set, in words (the service's /metadata says the same)."""
    if spec.decision is None:
        return (
            f"{threshold:.4f}: the lowest expected cost on out-of-fold training predictions (FN "
            f"${spec.costs.false_negative:,.0f}, FP ${spec.costs.false_positive:,.0f}, "
            f"TP ${spec.costs.true_positive:,.0f})"
        )
    policy = spec.decision
    which = "break-even" if threshold <= policy.break_even + 1e-9 else "capacity"
    return (
        f"{threshold:.4f} = the larger of the break-even probability {policy.break_even:.4f} (acting pays above it) "
        f"and the out-of-fold training score at the capacity quantile ({1 - policy.capacity.as_share:.1%}); "
        f"here the {which} bound"
    )


def threshold_line(winner: CandidateResult, spec: DatasetSpec) -> str:
    at_threshold, at_half = winner.holdout_metrics["at_threshold"], winner.holdout_metrics["at_0_5"]
    if spec.decision is not None:
        flagged = at_threshold["tp"] + at_threshold["fp"]
        return (
            f"- **Threshold for one record at a time** (the service's answer while on the phone): "
            f"{threshold_rule(winner.oof_threshold, spec)}. On the holdout {flagged:,} records "
            f"({flagged / max(sum(at_threshold[k] for k in ('tp', 'fp', 'fn', 'tn')), 1):.1%}) score at or above it, "
            f"precision {at_threshold['precision']:.3f}."
        )
    return (
        f"- **Threshold for one record at a time**: {threshold_rule(winner.oof_threshold, spec)}. On the holdout "
        f"it costs ${at_threshold['expected_cost']:,.0f} against ${at_half['expected_cost']:,.0f}"
        f" at 0.5 and ${at_threshold['cost_of_doing_nothing']:,.0f} for doing nothing."
    )


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
            *policy_lines(winner, spec),
            f"- **Selection rule**: {leaderboard.rule}"
            + (f"; a statistical tie at the top: {leaderboard.tie}." if leaderboard.tie else "."),
            f"- **Winner**: {winner.name}: "
            f"CV ROC-AUC {winner.cv['roc_auc']['mean']:.4f} ± {winner.cv['roc_auc']['std']:.4f}; "
            f"holdout ROC-AUC {summary['test_roc_auc']:.4f}, PR-AUC {summary['test_pr_auc']:.4f}; "
            + (winner.fit_note or f"fitted on all {winner.fit_rows:,} training rows")
            + (
                "; the other candidates were fitted on the cross-validation sample (the leaderboard's fit_rows)"
                if any(result.fit_note for result in leaderboard.results[1:])
                else ""
            )
            + ".",
            threshold_line(winner, spec),
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
    """What the model is and where it came from: saved in the run folder and inside the packaged model."""
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
        "fit_rows": winner.fit_rows,
        "fit_note": winner.fit_note,
        "holdout_rows": len(split.holdout),
        "algorithm": winner.estimator,
        "estimator_class": type(winner.pipeline[-1]).__name__,
        "hyperparameters": {k: v for k, v in winner.pipeline[-1].get_params().items() if v is not None},
        "threshold": winner.oof_threshold,
        "selection_rule": leaderboard.rule,
        "selection_tie": leaderboard.tie or None,
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
