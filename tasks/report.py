"""The report stage: what an ML lead reads before signing off.

Writes into ``artifacts/<dataset>/runs/<run-id>/``: ``leaderboard.csv``, ``plots/*.png``, ``report.md`` and a
self-contained ``report.html``; publishes a leaderboard table and a summary markdown artifact to Prefect. The model
and its ``metadata.json`` are saved by the package stage, while the report is drawn.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks import plots
from tasks.run import MEASURED, artifact_key, publish_markdown, publish_table, write_markdown
from tollgate.config.spec import DatasetSpec
from tollgate.core.clean import CleaningReport
from tollgate.core.explain import GlobalExplanation
from tollgate.core.fairness import FairnessReport
from tollgate.core.quality import QualityResult
from tollgate.core.render import html_report, markdown_table
from tollgate.core.report import (
    ReportResult,
    decision_table,
    policy_table,
    summary_markdown,
    targets_table,
)
from tollgate.core.search import search_table
from tollgate.core.split import TrainHoldout
from tollgate.core.tournament import Leaderboard
from tollgate.store.runs import RunPaths


def _make_plots(
    run: RunPaths, spec: DatasetSpec, split: TrainHoldout, leaderboard: Leaderboard, explanation: GlobalExplanation
) -> dict[str, Path]:
    folder = run.dir / "plots"
    folder.mkdir(exist_ok=True)
    train_target = split.train[spec.target.column]
    holdout_target = split.holdout[spec.target.column]
    winner = leaderboard.winner
    leading = (
        {"Value vs actions": plots.value_vs_actions(leaderboard, holdout_target, spec, folder / "value.png")}
        if spec.decision is not None
        else {}
    )
    return {
        **leading,
        "Target distribution": plots.target_distribution(train_target, holdout_target, spec, folder / "target.png"),
        "Model comparison": plots.model_comparison(leaderboard, folder / "comparison.png"),
        "ROC curves": plots.roc_curves(leaderboard, holdout_target, folder / "roc.png"),
        "Precision-recall curves": plots.pr_curves(leaderboard, holdout_target, folder / "pr.png"),
        "Cost vs threshold": plots.cost_vs_threshold(leaderboard, spec, folder / "cost_threshold.png"),
        "Confusion matrix at the tuned threshold": plots.confusion_heatmap(
            winner.holdout_metrics["at_threshold"], spec, winner.name, folder / "confusion.png"
        ),
        "Calibration": plots.calibration(leaderboard, holdout_target, folder / "calibration.png"),
        "Feature importance": plots.feature_importance(explanation, winner.name, folder / "importance.png"),
    }


def _search_tables(leaderboard: Leaderboard) -> dict[str, pd.DataFrame]:
    searched = search_table(leaderboard.results)
    if searched.empty:
        return {}
    winner = leaderboard.winner
    chosen = pd.DataFrame([{"parameter": name, "value": value} for name, value in sorted(winner.params.items())])
    return {
        "Hyperparameter search (each family's best configuration entered the leaderboard)": searched,
        f"The winner's configuration ({winner.name})": chosen,
    }


def _fairness_tables(fairness: FairnessReport) -> dict[str, pd.DataFrame]:
    tables = {}
    if fairness.gaps:
        heading = f"Gaps between protected groups at {fairness.operating_point} ({fairness.confidence:.0%} intervals)"
        tables[heading] = pd.DataFrame(fairness.gap_rows())
    if fairness.slices:
        tables["The winner's holdout decisions by segment and protected group"] = pd.DataFrame(fairness.slice_rows())
    return tables


@task(name="report", cache_policy=NO_CACHE, **MEASURED)
def write_report(
    run: RunPaths,
    spec: DatasetSpec,
    quality: QualityResult,
    cleaning: CleaningReport,
    split: TrainHoldout,
    leaderboard: Leaderboard,
    explanation: GlobalExplanation,
    fairness: FairnessReport,
) -> ReportResult:
    """Write the winner's plots and reports into the run folder; publish the Prefect artifacts."""
    winner = leaderboard.winner
    leaderboard_rows = leaderboard.rows()
    pd.DataFrame(leaderboard_rows).to_csv(run.dir / "leaderboard.csv", index=False)

    figures = _make_plots(run, spec, split, leaderboard, explanation)
    if any(result.search is not None for result in leaderboard.results):
        figures["Hyperparameter search"] = plots.search_curves(leaderboard, run.dir / "plots" / "search.png")
    if fairness.slices:
        figures["Decisions by segment and protected group"] = plots.slices(
            fairness, spec.fairness.protected, run.dir / "plots" / "slices.png"
        )
    summary = summary_markdown(spec, run, split, leaderboard, explanation, quality, cleaning)
    policy_tables = (
        {
            "The decision policy on the holdout, against the alternatives": policy_table(winner, spec),
            "The team's targets at the operating point": targets_table(winner, spec),
        }
        if spec.decision is not None
        else {}
    )
    tables = {
        **policy_tables,
        "Leaderboard": pd.DataFrame(leaderboard_rows),
        **_search_tables(leaderboard),
        **_fairness_tables(fairness),
        "Decisions on the holdout": decision_table(winner),
        "Cross-validation of the winner, fold by fold": pd.DataFrame(winner.fold_metrics).round(4),
        "Permutation importance (holdout)": explanation.permutation.head(15).round(4),
        "Mean |SHAP| by feature": explanation.shap_mean_abs.head(15).round(4),
    }
    markdown_report = "\n\n".join(
        [summary]
        + [
            f"## {heading}\n\n{markdown_table(table.to_dict('records'), list(table.columns))}"
            for heading, table in tables.items()
        ]
        + [f"## {heading}\n\n![{heading}]({path.relative_to(run.dir)})" for heading, path in figures.items()]
    )
    write_markdown(run.dir / "report.md", markdown_report)
    (run.dir / "report.html").write_text(
        html_report(f"Tollgate {spec.name} run {run.run_id}", summary, tables, figures), encoding="utf-8"
    )
    publish_table(
        key=artifact_key(spec.name, "leaderboard"),
        rows=leaderboard_rows,
        description=f"{spec.name} model tournament, run {run.run_id}",
    )
    publish_markdown(
        key=artifact_key(spec.name, "model-summary"),
        markdown=summary,
        description=f"{spec.name} winner, threshold and drivers, run {run.run_id}",
    )
    print(f"report: {run.dir / 'report.html'}")
    return ReportResult(html=run.dir / "report.html", markdown=run.dir / "report.md")
