"""Call lists and alert queues: a period's records ranked by expected value, cut at capacity, each with the
reasons it is on the list in words; and, once the period's labels arrive, what acting on the list realised."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from tollgate.config.spec import DatasetSpec, DecisionPolicy
from tollgate.core.explain import Explainer
from tollgate.core.policy import act_on, expected_value
from tollgate.core.render import markdown_table

REASONS = 3
LIST_COLUMNS = ["rank", "id", "probability", "expected_value", "reasons", "recommendation"]


class CallListError(ValueError):
    """A batch that cannot be turned into a list (no policy, no ids), or labels that cannot be joined."""


def require_policy(spec: DatasetSpec) -> DecisionPolicy:
    if spec.decision is None:
        raise CallListError(f"spec '{spec.name}' has no decision section: no capacity to cut a list at")
    if spec.id_column is None:
        raise CallListError(f"spec '{spec.name}' has no id_column: a list must name whom to act on")
    return spec.decision


def _owners(names: list[str], spec: DatasetSpec) -> list[str]:
    """The column each encoded feature comes from: itself, or the categorical column it one-hot encodes."""
    categorical = sorted([*spec.columns.categorical, *spec.derived_categorical], key=len, reverse=True)
    owners = []
    for name in names:
        owner = next((c for c in categorical if name.startswith(f"{c}_")), name)
        owners.append(owner)
    return owners


def _words(column: str, value: Any, contribution: float) -> str:
    if isinstance(value, str):
        shown = f"{column} is {value}"
    elif isinstance(value, int | float | np.integer | np.floating) and not pd.isna(value):
        shown = f"{column} = {float(value):,.4g}"
    else:
        shown = f"{column} unknown" if column != "anomaly_score" else column
    return f"{shown} ({contribution:+.2f})"


def reasons_in_words(
    pipeline: Pipeline, explainer: Explainer, frame: pd.DataFrame, spec: DatasetSpec, top: int = REASONS
) -> list[str]:
    """Each record's strongest reasons to act, in words: the columns whose SHAP contributions (summed over a
    categorical column's one-hot features, in log-odds) push its risk up most, with the record's values."""
    if frame.empty:
        return []
    contributions = pd.DataFrame(explainer.values(frame), columns=explainer.names)
    by_column = contributions.T.groupby(_owners(explainer.names, spec), sort=False).sum().T
    values = pipeline.named_steps["features"].transform(frame) if "features" in pipeline.named_steps else frame
    result = []
    for position, row in enumerate(by_column.itertuples(index=False, name=None)):
        series = pd.Series(row, index=by_column.columns).sort_values(ascending=False)
        strongest = series[series > 0].head(top)
        record = values.iloc[position]
        result.append(
            "; ".join(_words(str(column), record.get(column), float(weight)) for column, weight in strongest.items())
            or "no single strong reason: a sum of small ones"
        )
    return result


@dataclass(frozen=True)
class CallList:
    """One period's list: who to act on, in order, and what it is expected to be worth."""

    dataset: str
    period: str
    model_tag: str
    scored: int
    capacity: int
    worth_acting: int  # records with a positive expected value (before the capacity cut)
    listed: int
    predicted_net_value: float
    random_draw_value: float  # expected value of acting on as many records drawn at random
    table: pd.DataFrame
    positions: np.ndarray  # the listed records' positions in the scored batch, in list order

    def summary(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if key not in ("table", "positions")}


def build_call_list(
    ids: pd.Series,
    probability: np.ndarray,
    spec: DatasetSpec,
    period: str,
    model_tag: str,
    reasons: list[str] | None = None,
) -> CallList:
    """Rank by expected value, keep none below zero, cut at capacity (the count for one period, or the share
    of the records scored); ``reasons`` (one per record acted on, in list order) may be filled in later."""
    policy = require_policy(spec)
    n = len(probability)
    capacity = policy.capacity.for_rows(n)
    acted = act_on(probability, policy, capacity)
    order = np.flatnonzero(acted)[np.argsort(-probability[acted], kind="stable")]
    values = expected_value(probability, spec.costs)
    high = probability[order] >= spec.serving.high_risk_probability
    advice = spec.serving.recommendations
    table = pd.DataFrame(
        {
            "rank": np.arange(1, len(order) + 1),
            "id": ids.to_numpy()[order],
            "probability": np.round(probability[order], 4),
            "expected_value": np.round(values[order], 2),
            "reasons": reasons if reasons is not None else [""] * len(order),
            "recommendation": np.where(high, advice.high, advice.medium),
        },
        columns=LIST_COLUMNS,
    )
    per_record = float(values.mean()) if n else 0.0
    return CallList(
        dataset=spec.name,
        period=period,
        model_tag=model_tag,
        scored=n,
        capacity=capacity,
        worth_acting=int((values > 0).sum()),
        listed=len(order),
        predicted_net_value=round(float(values[order].sum()), 2),
        random_draw_value=round(len(order) * per_record, 2),
        table=table,
        positions=order,
    )


@dataclass(frozen=True)
class RealisedOutcome:
    """What acting on a period's list realised once its labels arrived, against what was predicted."""

    dataset: str
    period: str
    model_tag: str
    listed: int
    labelled: int  # listed records whose label arrived
    caught: int
    positives: int  # positives among all the period's labelled records
    precision: float
    recall: float
    net_value: float
    predicted_net_value: float  # the expected value of the labelled listed records
    predicted_precision: float
    value_ratio: float | None  # realised / predicted net value
    tolerance: float
    shortfall: bool  # realised value below predicted by more than the tolerance: a reason to retrain

    def summary(self) -> dict[str, Any]:
        return asdict(self)


def realised_outcome(
    listed: pd.DataFrame, labels: pd.DataFrame, spec: DatasetSpec, period: str, model_tag: str
) -> RealisedOutcome:
    """Join the period's labels (id, target) to its list by id: realised precision, recall and net value."""
    policy = require_policy(spec)
    id_column, target = spec.id_column, spec.target.column
    if labels[id_column].duplicated().any():
        labels = labels.drop_duplicates(id_column, keep="last")
    truth = labels.set_index(labels[id_column].astype(str))[target]
    matched = listed.assign(id=listed["id"].astype(str)).join(truth.rename("_label"), on="id", how="inner")
    caught = int(matched["_label"].astype(bool).sum())
    positives = int(truth.astype(bool).sum())
    acted = len(matched)
    net = caught * policy.saved_value - acted * policy.action_cost
    predicted = float(matched["expected_value"].sum())
    ratio = net / predicted if predicted > 0 else None
    return RealisedOutcome(
        dataset=spec.name,
        period=period,
        model_tag=model_tag,
        listed=len(listed),
        labelled=acted,
        caught=caught,
        positives=positives,
        precision=caught / acted if acted else 0.0,
        recall=caught / positives if positives else 0.0,
        net_value=round(net, 2),
        predicted_net_value=round(predicted, 2),
        predicted_precision=round(float(matched["probability"].mean()), 4) if acted else 0.0,
        value_ratio=round(ratio, 4) if ratio is not None else None,
        tolerance=policy.value_drop_tolerance,
        shortfall=ratio is not None and ratio < 1 - policy.value_drop_tolerance,
    )


def list_markdown(call_list: CallList, spec: DatasetSpec, top: int = 20) -> str:
    policy = require_policy(spec)
    head = call_list.table.head(top)
    cells = [{c: str(record[c]).replace("|", "/") for c in LIST_COLUMNS} for record in head.to_dict("records")]
    return (
        f"# {spec.name}: list for {call_list.period}\n\n"
        f"Scored {call_list.scored:,} records with {call_list.model_tag}; {call_list.worth_acting:,} are worth acting "
        f"on (expected value > 0); capacity {call_list.capacity:,} ({policy.capacity.describe()}); "
        f"listed **{call_list.listed:,}**, predicted net value **${call_list.predicted_net_value:,.0f}** "
        f"against ${call_list.random_draw_value:,.0f} for as many drawn at random.\n\n"
        f"Top {len(head)}:\n\n" + markdown_table(cells, LIST_COLUMNS)
    )


def outcome_markdown(outcome: RealisedOutcome) -> str:
    verdict = (
        f"**below prediction by more than {outcome.tolerance:.0%}: a reason to retrain**"
        if outcome.shortfall
        else "within tolerance"
    )
    ratio = f"{outcome.value_ratio:.0%} of predicted" if outcome.value_ratio is not None else "no prediction to compare"
    return (
        f"# {outcome.dataset}: realised outcome of the {outcome.period} list\n\n"
        f"- Listed {outcome.listed:,}; labels arrived for {outcome.labelled:,}.\n"
        f"- Realised precision {outcome.precision:.3f} (predicted {outcome.predicted_precision:.3f}); "
        f"recall {outcome.recall:.3f} of the period's {outcome.positives:,} positives.\n"
        f"- Realised net value **${outcome.net_value:,.0f}** against ${outcome.predicted_net_value:,.0f} "
        f"predicted ({ratio}): {verdict}."
    )
