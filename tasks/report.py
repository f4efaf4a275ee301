"""The run's report and saved model: what an ML lead reads before signing off.

Writes into ``artifacts/<dataset>/runs/<run-id>/``: ``model.joblib``, ``metadata.json``,
``leaderboard.csv``, ``plots/*.png``, ``report.md`` and a self-contained ``report.html``; publishes
a leaderboard table and a summary markdown artifact to Prefect; returns the run's JSON summary.
"""

from __future__ import annotations

import base64
import html
import platform
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import joblib
import lightgbm
import pandas as pd
import sklearn
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from tasks import plots
from tasks.clean import CleaningReport
from tasks.explain import Explanation
from tasks.features import feature_names
from tasks.ingest import RawData
from tasks.quality import QualityResult, markdown_table
from tasks.run import TIMEOUTS, RunPaths, artifact_key, write_json_atomic
from tasks.spec import DatasetSpec
from tasks.split import TrainHoldout
from tasks.tournament import Leaderboard

WELL_CALIBRATED_ECE = 0.05


def run_summary(spec: DatasetSpec, run: RunPaths, status: str, raw: RawData | None = None,
                quality: QualityResult | None = None, rows_clean: int | None = None, **extra) -> dict:
    """The one-line JSON the CLI prints last; later stages add keys."""
    return {
        "dataset": spec.name,
        "run_id": run.run_id,
        "status": status,
        "rows_in": raw.rows if raw is not None else None,
        "rows_clean": rows_clean,
        "quality": quality.summary() if quality is not None else None,
        "report_dir": str(run.dir),
        "data_docs": quality.data_docs if quality is not None else None,
        **extra,
    }


def winner_summary(leaderboard: Leaderboard) -> dict:
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


def _make_plots(run: RunPaths, spec: DatasetSpec, split: TrainHoldout, leaderboard: Leaderboard,
                explanation: Explanation) -> dict[str, Path]:
    folder = run.dir / "plots"
    folder.mkdir(exist_ok=True)
    train_target = split.train[spec.target.column]
    holdout_target = split.holdout[spec.target.column]
    winner = leaderboard.winner
    return {
        "Target distribution": plots.target_distribution(train_target, holdout_target, spec, folder / "target.png"),
        "Model comparison": plots.model_comparison(leaderboard, folder / "comparison.png"),
        "ROC curves": plots.roc_curves(leaderboard, holdout_target, folder / "roc.png"),
        "Precision-recall curves": plots.pr_curves(leaderboard, holdout_target, folder / "pr.png"),
        "Cost vs threshold": plots.cost_vs_threshold(leaderboard, spec, folder / "cost_threshold.png"),
        "Confusion matrix at the tuned threshold": plots.confusion_heatmap(
            winner.holdout_metrics["at_threshold"], spec, winner.name, folder / "confusion.png"),
        "Calibration": plots.calibration(leaderboard, holdout_target, folder / "calibration.png"),
        "Feature importance": plots.feature_importance(explanation, winner.name, folder / "importance.png"),
    }


def _decision_table(winner) -> pd.DataFrame:
    rows = []
    for label, report in (("0.5", winner.holdout_metrics["at_0_5"]),
                          (f"tuned {winner.oof_threshold:.3f}", winner.holdout_metrics["at_threshold"])):
        rows.append({"threshold": label, "TP": report["tp"], "FP": report["fp"], "FN": report["fn"],
                     "TN": report["tn"], "precision": round(report["precision"], 3),
                     "recall": round(report["recall"], 3), "accuracy": round(report["accuracy"], 3),
                     "expected cost $": f"{report['expected_cost']:,.0f}",
                     "value vs doing nothing $": f"{report['value_vs_nothing']:,.0f}"})
    return pd.DataFrame(rows)


def _summary_markdown(spec: DatasetSpec, run: RunPaths, split: TrainHoldout, leaderboard: Leaderboard,
                      explanation: Explanation, quality: QualityResult, cleaning: CleaningReport) -> str:
    winner = leaderboard.winner
    summary = winner_summary(leaderboard)
    ece = winner.holdout_metrics["calibration_error"]
    calibrated = "well calibrated" if ece <= WELL_CALIBRATED_ECE else "not well calibrated: read with care"
    drivers = ", ".join(f"`{name}`" for name in explanation.shap_mean_abs["feature"].head(5))
    quality_line = ("passed" if quality.success else "FAILED") + f", {len(quality.warnings)} warning(s) repaired by cleaning"
    return "\n".join([
        f"# {spec.name}: {winner.name} wins (run {run.run_id})",
        "",
        f"- **Data**: {split.describe()}; quality gate {quality_line}; "
        f"{sum(cleaning.rows_dropped.values()):,} rows dropped and counted, {cleaning.total_repaired:,} values repaired.",
        f"- **Selection rule**: {leaderboard.rule}.",
        f"- **Winner**: {winner.name}: CV ROC-AUC {winner.cv['roc_auc']['mean']:.4f} ± {winner.cv['roc_auc']['std']:.4f}; "
        f"holdout ROC-AUC {summary['test_roc_auc']:.4f}, PR-AUC {summary['test_pr_auc']:.4f}.",
        f"- **Threshold**: {summary['threshold']:.3f}, tuned on out-of-fold training predictions to minimise expected "
        f"cost (FN ${spec.costs.false_negative:,.0f}, FP ${spec.costs.false_positive:,.0f}, "
        f"TP ${spec.costs.true_positive:,.0f}). On the holdout it costs ${summary['expected_cost']:,.0f} "
        f"against ${summary['expected_cost_at_0_5']:,.0f} at 0.5 and "
        f"${winner.holdout_metrics['at_threshold']['cost_of_doing_nothing']:,.0f} for doing nothing.",
        f"- **Calibration**: expected calibration error {ece:.3f} on the holdout, Brier "
        f"{winner.holdout_metrics['brier']:.4f}: {calibrated}.",
        f"- **Top drivers** (mean |SHAP|): {drivers}.",
    ])


def html_report(title: str, summary_markdown: str, tables: dict[str, pd.DataFrame], figures: dict[str, Path]) -> str:
    import markdown

    sections = [markdown.markdown(summary_markdown)]
    for heading, table in tables.items():
        sections.append(f"<h2>{html.escape(heading)}</h2>" + table.to_html(index=False, border=0, classes="table"))
    for heading, path in figures.items():
        encoded = base64.b64encode(path.read_bytes()).decode("ascii")
        sections.append(f"<h2>{html.escape(heading)}</h2><img alt='{html.escape(heading)}' "
                        f"src='data:image/png;base64,{encoded}'>")
    style = ("body{font-family:system-ui,sans-serif;max-width:1250px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px}"
             "th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}h2{margin-top:1.6em}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(sections)}</body></html>")


@task(name="report", cache_policy=NO_CACHE, timeout_seconds=TIMEOUTS["report"])
def write_report(run: RunPaths, spec: DatasetSpec, raw: RawData, quality: QualityResult, cleaning: CleaningReport,
                 split: TrainHoldout, leaderboard: Leaderboard, explanation: Explanation) -> dict:
    """Save the winning pipeline, its metadata, plots and reports; return the run summary."""
    winner = leaderboard.winner
    joblib.dump(winner.pipeline, run.model_path)
    leaderboard_rows = leaderboard.rows()
    pd.DataFrame(leaderboard_rows).to_csv(run.dir / "leaderboard.csv", index=False)

    figures = _make_plots(run, spec, split, leaderboard, explanation)
    summary_markdown = _summary_markdown(spec, run, split, leaderboard, explanation, quality, cleaning)
    tables = {
        "Leaderboard": pd.DataFrame(leaderboard_rows),
        "Decisions on the holdout": _decision_table(winner),
        "Cross-validation of the winner, fold by fold": pd.DataFrame(winner.fold_metrics).round(4),
        "Permutation importance (holdout)": explanation.permutation.head(15).round(4),
        "Mean |SHAP| by feature": explanation.shap_mean_abs.head(15).round(4),
    }
    markdown_report = "\n\n".join(
        [summary_markdown]
        + [f"## {heading}\n\n{markdown_table(table.to_dict('records'), list(table.columns))}"
           for heading, table in tables.items()]
        + [f"## {heading}\n\n![{heading}]({path.relative_to(run.dir)})" for heading, path in figures.items()])
    (run.dir / "report.md").write_text(markdown_report, encoding="utf-8")
    (run.dir / "report.html").write_text(
        html_report(f"Tollgate {spec.name} run {run.run_id}", summary_markdown, tables, figures), encoding="utf-8")

    metadata = {
        "version": run.run_id,
        "run_id": run.run_id,
        "dataset": spec.name,
        "trained_at": datetime.now(timezone.utc).isoformat(),
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
        "leaderboard": leaderboard_rows,
        "feature_names": feature_names(winner.pipeline),
        "input_columns": spec.input_columns,
        "quality": quality.summary(),
        "cleaning": asdict(cleaning),
        "model_file": run.model_path.name,
        "versions": {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
                     "lightgbm": lightgbm.__version__, "pandas": pd.__version__},
    }
    write_json_atomic(run.dir / "metadata.json", metadata)
    create_table_artifact(key=artifact_key(spec.name, "leaderboard"), table=leaderboard_rows,
                          description=f"{spec.name} model tournament, run {run.run_id}")
    create_markdown_artifact(key=artifact_key(spec.name, "model-summary"), markdown=summary_markdown,
                             description=f"{spec.name} winner, threshold and drivers, run {run.run_id}")
    print(f"report: {run.dir / 'report.html'}")
    return run_summary(
        spec, run, "completed", raw=raw, quality=quality, rows_clean=cleaning.rows_out,
        input_sha256=raw.sha256, holdout_month=split.holdout_month, holdout=split.describe(),
        cleaning={"rows_dropped": cleaning.rows_dropped, "values_repaired": cleaning.total_repaired},
        leaderboard=leaderboard_rows, winner=winner_summary(leaderboard),
        report=str(run.dir / "report.html"), model_path=str(run.model_path),
    )
