"""Every figure the stages write (model report, data quality, drift, anomaly): labelled, titled, readable at
a glance. Each returns its PNG path. Only stages import this module: the library never draws."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

from tollgate.config.spec import DatasetSpec  # noqa: E402
from tollgate.core.explain import GlobalExplanation  # noqa: E402
from tollgate.core.fairness import FairnessReport  # noqa: E402
from tollgate.core.policy import value_curve  # noqa: E402
from tollgate.core.quality import QualityResult  # noqa: E402
from tollgate.core.threshold import GRID, cost_curve  # noqa: E402
from tollgate.core.tournament import Leaderboard  # noqa: E402

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def target_distribution(train_target: pd.Series, holdout_target: pd.Series, spec: DatasetSpec, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(6, 4))
    labels = [f"{spec.target.negative} (0)", f"{spec.target.positive} (1)"]
    width = 0.38
    for offset, (name, target) in zip(
        (-width / 2, width / 2), (("training", train_target), ("holdout", holdout_target)), strict=False
    ):
        counts = target.value_counts().reindex([0, 1], fill_value=0)
        bars = axis.bar(np.arange(2) + offset, counts.values, width, label=f"{name} ({len(target):,} rows)")
        axis.bar_label(bars, labels=[f"{c:,}\n{c / max(len(target), 1):.1%}" for c in counts.values], fontsize=8)
    axis.set_xticks(range(2), labels)
    axis.set_ylabel("rows")
    axis.set_title(f"Target distribution: {spec.target.column}")
    axis.legend()
    axis.set_ylim(0, axis.get_ylim()[1] * 1.15)
    return _save(figure, path)


def confusion_heatmap(report_at_threshold: dict, spec: DatasetSpec, model: str, path: Path) -> Path:
    counts = np.array(
        [[report_at_threshold["tn"], report_at_threshold["fp"]], [report_at_threshold["fn"], report_at_threshold["tp"]]]
    )
    unit = np.array([[0.0, spec.costs.false_positive], [spec.costs.false_negative, spec.costs.true_positive]])
    figure, axis = plt.subplots(figsize=(6, 5))
    image = axis.imshow(counts, cmap="Blues")
    for (i, j), count in np.ndenumerate(counts):
        dollars = count * unit[i, j]
        axis.text(
            j,
            i,
            f"{count:,}\n${dollars:,.0f}" + (f"\n(${unit[i, j]:,.0f} each)" if unit[i, j] else ""),
            ha="center",
            va="center",
            fontsize=10,
            color="white" if count > counts.max() / 2 else "black",
        )
    axis.set_xticks([0, 1], ["predicted 0", "predicted 1"])
    axis.set_yticks([0, 1], ["actual 0", "actual 1"])
    figure.colorbar(image, ax=axis, label="rows")
    axis.set_title(
        f"{model} on the holdout at threshold {report_at_threshold['threshold']:.3f}\n"
        f"expected cost ${report_at_threshold['expected_cost']:,.0f}"
    )
    return _save(figure, path)


def roc_curves(leaderboard: Leaderboard, holdout_target: pd.Series, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(6, 5))
    for colour, result in zip(COLOURS, leaderboard.results, strict=False):
        fpr, tpr, _ = roc_curve(holdout_target, result.holdout_probability)
        axis.plot(fpr, tpr, color=colour, label=f"{result.name} (AUC {result.holdout_metrics['roc_auc']:.3f})")
    axis.plot([0, 1], [0, 1], "k--", linewidth=0.8, label="chance")
    axis.set_xlabel("false positive rate")
    axis.set_ylabel("true positive rate (recall)")
    axis.set_title("ROC curves on the holdout")
    axis.legend(loc="lower right", fontsize=8)
    return _save(figure, path)


def pr_curves(leaderboard: Leaderboard, holdout_target: pd.Series, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(6, 5))
    for colour, result in zip(COLOURS, leaderboard.results, strict=False):
        precision, recall, _ = precision_recall_curve(holdout_target, result.holdout_probability)
        axis.plot(recall, precision, color=colour, label=f"{result.name} (AP {result.holdout_metrics['pr_auc']:.3f})")
    axis.axhline(holdout_target.mean(), color="k", linestyle="--", linewidth=0.8, label="base rate")
    axis.set_xlabel("recall")
    axis.set_ylabel("precision")
    axis.set_title("Precision-recall curves on the holdout")
    axis.legend(loc="upper right", fontsize=8)
    return _save(figure, path)


def feature_importance(explanation: GlobalExplanation, model: str, path: Path, top: int = 15) -> Path:
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 5.5))
    shap_top = explanation.shap_mean_abs.head(top).iloc[::-1]
    left.barh(shap_top["feature"], shap_top["mean_abs_shap"], color="#1f77b4")
    left.set_xlabel("mean |SHAP| (log-odds)")
    left.set_title(f"Top {top} features by SHAP ({model})")
    permutation = explanation.permutation.head(top).iloc[::-1]
    right.barh(permutation["feature"], permutation["importance"], xerr=permutation["std"], color="#ff7f0e")
    right.set_xlabel("drop in holdout ROC-AUC when shuffled")
    right.set_title(f"Top {top} input columns by permutation importance")
    for axis in (left, right):
        axis.tick_params(axis="y", labelsize=8)
    return _save(figure, path)


def model_comparison(leaderboard: Leaderboard, path: Path) -> Path:
    rows = pd.DataFrame(leaderboard.rows())
    metrics = [
        ("cv_roc_auc", "CV ROC-AUC"),
        ("test_roc_auc", "holdout ROC-AUC"),
        ("cv_pr_auc", "CV PR-AUC"),
        ("test_pr_auc", "holdout PR-AUC"),
    ]
    figure, axis = plt.subplots(figsize=(9, 4.8))
    width = 0.8 / len(metrics)
    positions = np.arange(len(rows))
    for k, (column, label) in enumerate(metrics):
        bars = axis.bar(positions + (k - 1.5) * width, rows[column], width, label=label, color=COLOURS[k])
        axis.bar_label(bars, fmt="%.3f", fontsize=7, rotation=90, padding=2)
    axis.set_xticks(positions, [f"#{r} {m}" for r, m in zip(rows["rank"], rows["model"], strict=False)])
    axis.set_ylim(0, 1.12)
    axis.set_ylabel("score")
    axis.set_title("Model comparison (ranked by the selection rule)")
    axis.legend(ncol=4, fontsize=8, loc="upper center")
    return _save(figure, path)


def cost_vs_threshold(leaderboard: Leaderboard, spec: DatasetSpec, path: Path) -> Path:
    winner = leaderboard.winner
    curve = cost_curve(winner.oof_target, winner.oof_probability, spec.costs)
    figure, axis = plt.subplots(figsize=(7, 4.5))
    axis.plot(GRID, curve / 1000, color="#1f77b4", label=f"{winner.name} (out-of-fold)")
    axis.axvline(
        winner.oof_threshold,
        color="#2ca02c",
        linestyle="--",
        label=f"tuned {winner.oof_threshold:.3f}: ${winner.oof_expected_cost:,.0f}",
    )
    axis.axvline(0.5, color="#d62728", linestyle=":", label=f"0.5: ${winner.oof_cost_at_0_5:,.0f}")
    axis.set_xlabel("decision threshold (act when probability ≥ threshold)")
    axis.set_ylabel("expected cost on training rows, $ thousands")
    axis.set_title(
        f"Cost vs threshold (FN ${spec.costs.false_negative:,.0f}, FP ${spec.costs.false_positive:,.0f}, "
        f"TP ${spec.costs.true_positive:,.0f})"
    )
    axis.legend(fontsize=8)
    return _save(figure, path)


def value_vs_actions(leaderboard: Leaderboard, holdout_target: pd.Series, spec: DatasetSpec, path: Path) -> Path:
    """Net value of acting on the top k holdout records, per model, with capacity and the baselines marked."""
    policy = spec.decision
    assert policy is not None
    figure, axis = plt.subplots(figsize=(8, 5))
    y = holdout_target.to_numpy()
    n = len(y)
    for colour, result in zip(COLOURS, leaderboard.results, strict=False):
        k, value = value_curve(y, result.holdout_probability, policy)
        axis.plot(k, value / 1000, color=colour, lw=2.2 if result is leaderboard.winner else 1.1, label=result.name)
    per_record = y.mean() * policy.saved_value - policy.action_cost
    axis.plot([0, n], [0, n * per_record / 1000], color="grey", ls="--", label="random draw of k (expected)")
    axis.scatter([n], [n * per_record / 1000], color="black", zorder=5, label="everyone")
    axis.axhline(0, color="black", lw=0.8, label="nobody")
    winner = leaderboard.winner.holdout_policy
    if winner is not None:
        axis.axvline(winner.capacity, color="red", ls=":", label=f"capacity ({winner.capacity:,})")
        axis.scatter([winner.acted], [winner.net_value / 1000], color="red", zorder=6, label="the policy")
    axis.set_xlabel("records acted on (highest probability first)")
    axis.set_ylabel("net value vs acting on nobody ($ thousands)")
    axis.set_title(f"Value vs actions on the holdout ({n:,} records)")
    axis.legend(fontsize=8)
    return _save(figure, path)


def calibration(leaderboard: Leaderboard, holdout_target: pd.Series, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(6, 5))
    for colour, result in zip(COLOURS, leaderboard.results, strict=False):
        observed, predicted = calibration_curve(
            holdout_target, result.holdout_probability, n_bins=10, strategy="quantile"
        )
        axis.plot(
            predicted,
            observed,
            marker="o",
            markersize=3,
            color=colour,
            label=f"{result.name} (ECE {result.holdout_metrics['calibration_error']:.3f})",
        )
    axis.plot([0, 1], [0, 1], "k--", linewidth=0.8, label="perfectly calibrated")
    axis.set_xlabel("predicted probability")
    axis.set_ylabel("observed positive rate")
    axis.set_title("Calibration on the holdout")
    axis.legend(fontsize=8)
    return _save(figure, path)


def search_curves(leaderboard: Leaderboard, path: Path) -> Path:
    """Each searched family's best objective so far against the search's seconds; pruned and failed trials
    counted in the legend."""
    figure, axis = plt.subplots(figsize=(7, 4.5))
    searched = [result for result in leaderboard.results if result.search is not None]
    for colour, result in zip(COLOURS, searched, strict=False):
        trace = result.search
        curve = trace.best_so_far()
        pruned = sum(trial.state == "pruned" for trial in trace.trials)
        axis.step(
            [seconds for seconds, _ in curve],
            [value for _, value in curve],
            where="post",
            marker="o",
            markersize=3,
            color=colour,
            label=f"{result.name}: {len(trace.trials)} trials, {pruned} pruned",
        )
    if searched:
        trace = searched[0].search
        axis.axvline(trace.budget_seconds, color="k", linestyle="--", linewidth=0.8, label="budget")
        axis.set_ylabel(f"best {trace.objective} so far")
    axis.set_xlabel("seconds since the search started")
    axis.set_title("Hyperparameter search, per family (first trial: the spec's configuration)")
    axis.legend(fontsize=8)
    return _save(figure, path)


def slices(report: FairnessReport, protected: list[str], path: Path) -> Path:
    """One panel per sliced column: per value, the share acted on and the recall (bars), the observed positive
    rate and the mean predicted probability (calibration, markers); protected columns' titles carry their gaps."""
    columns = list(dict.fromkeys(row.column for row in report.slices))
    figure, axes = plt.subplots(1, len(columns), figsize=(max(6, 3.6 * len(columns)), 4.4), squeeze=False, sharey=True)
    for axis, column in zip(axes[0], columns, strict=True):
        rows = [row for row in report.slices if row.column == column]
        x = np.arange(len(rows))
        axis.bar(x - 0.2, [row.acted_share for row in rows], 0.4, color=COLOURS[0], label="share acted on")
        axis.bar(
            x + 0.2, [row.recall or 0.0 for row in rows], 0.4, color=COLOURS[1], label="recall (positives acted on)"
        )
        axis.plot(x, [row.positive_rate for row in rows], "ko", markersize=5, label="observed positive rate")
        axis.plot(x, [row.mean_probability for row in rows], "kx", markersize=7, label="mean predicted probability")
        axis.set_xticks(x, [f"{row.value}\n({row.rows:,})" for row in rows], fontsize=7, rotation=20)
        gaps = [gap for gap in report.gaps if gap.attribute == column and gap.gap is not None]
        title = column + (" (protected)" if column in protected else "")
        for gap in gaps:
            short = "parity" if gap.measure == "demographic_parity" else "opportunity"
            mark = " ✗" if gap.exceeded else ""
            title += f"\n{short} gap {gap.gap:.3f} [{gap.ci_low:.3f}–{gap.ci_high:.3f}]{mark}"
        axis.set_title(title, fontsize=9)
        axis.set_ylim(0, 1.05)
    axes[0][0].set_ylabel("share")
    axes[0][0].legend(fontsize=7, loc="upper left")
    figure.suptitle(f"The winner's decisions on the holdout, by group, at {report.operating_point}", fontsize=10)
    return _save(figure, path)


def drift_bars(features: list, threshold: float, path: Path) -> Path:
    """PSI per input against the champion's training data, the drift threshold marked."""
    ordered = sorted(features, key=lambda f: f.psi)
    figure, axis = plt.subplots(figsize=(7, max(3, 0.3 * len(ordered) + 1)))
    axis.barh(
        [f.feature for f in ordered],
        [f.psi for f in ordered],
        color=["#d62728" if f.drifted else "#1f77b4" for f in ordered],
    )
    axis.axvline(threshold, color="black", linestyle="--", label=f"drift threshold {threshold:g}")
    axis.set_xlabel("population stability index (PSI)")
    axis.set_title("Input drift: logged traffic vs training data")
    axis.legend(loc="lower right")
    return _save(figure, path)


def anomaly_ranks(results: list, top_share: float, path: Path) -> Path:
    """Per attack kind, the share of normal holdout rows scoring above each of its rows (log scale, box per
    kind): right of the alarm line means inside the top ``top_share`` of normal traffic."""
    floor = 1e-4  # rows above every normal row are drawn here
    figure, axis = plt.subplots(figsize=(9, 1.4 + 0.55 * max(len(results), 1)))
    results = sorted(results, key=lambda r: r.median_normal_percentile)
    if results:
        boxes = axis.boxplot(
            [100 * np.maximum(1 - r.normal_percentiles, floor) for r in results],
            orientation="horizontal",
            patch_artist=True,
            widths=0.6,
            medianprops={"color": "black"},
        )
        for box, result in zip(boxes["boxes"], results, strict=False):
            box.set_facecolor(COLOURS[0] if result.in_training else COLOURS[1])
        axis.set_yticks(
            range(1, len(results) + 1),
            [f"{r.kind} ({r.holdout_rows}, {'held out' if r.in_training else 'never seen'})" for r in results],
        )
        for row, result in enumerate(results, start=1):
            axis.annotate(
                f"{result.share_in_top_1pct:.0%} in top {top_share:.0%}",
                (100 * floor, row),
                xytext=(6, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
                annotation_clip=False,
            )
    axis.axvline(100 * top_share, color=COLOURS[3], linestyle="--")
    axis.text(
        100 * top_share,
        1.005,
        f"alarm line: top {top_share:.0%} of normal traffic",
        color=COLOURS[3],
        fontsize=8,
        ha="center",
        va="bottom",
        transform=axis.get_xaxis_transform(),
    )
    axis.set_xscale("log")
    axis.set_xlim(100, 100 * floor)
    axis.set_xticks([100, 10, 1, 0.1, 100 * floor], ["100 %", "10 %", "1 %", "0.1 %", "above all"])
    axis.set_xlabel("normal holdout rows scoring higher (log scale; stranger to the right)")
    axis.set_title(
        "Anomaly score on attack kinds the detector never saw (blue: held out of training; orange: never in training)",
        fontsize=9,
        pad=16,
    )
    return _save(figure, path)


def plot_quality(result: QualityResult, path: Path) -> Path:
    """One picture for analysts: missing % per column, and the target rate by each segment."""
    panels = 1 + len(result.segments)
    figure, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 5.5), squeeze=False)
    profile = [row for row in result.profile if row["missing_pct"] is not None]
    missing_axis = axes[0][0]
    columns = [row["column"] for row in profile][::-1]
    missing = [row["missing_pct"] for row in profile][::-1]
    colours = ["#c0392b" if value >= 10 else "#e67e22" if value > 0 else "#95a5a6" for value in missing]
    missing_axis.barh(columns, missing, color=colours)
    missing_axis.set_title("Missing or unparseable values, % of rows")
    missing_axis.set_xlabel("% missing")
    missing_axis.tick_params(axis="y", labelsize=8)
    for axis, (column, rows) in zip(axes[0][1:], result.segments.items(), strict=False):
        labels = [str(row["value"]) for row in rows]
        rates = [100 * row["target_rate"] for row in rows]
        bars = axis.bar(labels, rates, color="#2e86c1")
        axis.bar_label(
            bars,
            labels=[f"{rate:.1f}%\n(n={row['rows']:,})" for rate, row in zip(rates, rows, strict=False)],
            fontsize=8,
        )
        axis.set_title(f"Target rate by {column}")
        axis.set_ylabel("% positive")
        axis.set_ylim(0, max(rates + [1]) * 1.25)
        axis.tick_params(axis="x", labelrotation=30, labelsize=8)
    status = "passed" if result.success else "FAILED"
    figure.suptitle(
        f"Data quality — {result.dataset} ({status}: {len(result.critical_failed)} critical, "
        f"{len(result.warnings)} warnings)",
        fontsize=13,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
