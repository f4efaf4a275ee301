"""The scoring stages: a period's records scored by the serving champion, ranked by expected value and cut
at capacity into a call list or alert queue; and, once the period's labels arrive, the list's realised
outcome. The ranking and the words are the library's (``tollgate.core.calllist``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.run import IO_RETRIES, TIMEOUTS, artifact_key, publish_markdown, publish_table
from tollgate.config.settings import Settings
from tollgate.config.spec import DatasetSpec
from tollgate.core.calllist import (
    CallList,
    RealisedOutcome,
    build_call_list,
    list_markdown,
    outcome_markdown,
    realised_outcome,
    reasons_in_words,
    require_policy,
)
from tollgate.core.clean import CleanData, clean_frame
from tollgate.core.explain import Explainer
from tollgate.core.features import positive_probability
from tollgate.core.ingest import IngestError, month_of, read_batch
from tollgate.store.lists import lists_dir, read_call_list, write_call_list, write_outcome
from tollgate.store.models import PackagedModel, champion_tag, load_packaged_model

TOP_ROWS_SHOWN = 20


def latest_batch(spec: DatasetSpec, settings: Settings) -> Path:
    """The newest monthly batch in the dataset's raw folder: this month's records."""
    folder = spec.raw_path(settings)
    batches = sorted(p for p in folder.glob("*") if month_of(p))
    if not batches:
        raise IngestError(f"no monthly batches (YYYY-MM.csv/.parquet) in {folder}; pass --data")
    return batches[-1]


@task(name="load-serving-champion", cache_policy=NO_CACHE, **IO_RETRIES)
def load_champion(dataset: str, settings: Settings) -> PackagedModel:
    """The model the service serves (registry champion, or TOLLGATE_MODEL_TAG), checksums verified."""
    model = load_packaged_model(champion_tag(dataset, settings))
    require_policy(model.spec)
    print(f"scoring with {model.tag}")
    return model


@task(name="read-period", cache_policy=NO_CACHE, **IO_RETRIES)
def read_period(path: Path, spec: DatasetSpec, labelled: bool) -> CleanData:
    """A period's records, cleaned by the training rules (every dropped row counted). Unlabelled scoring
    ignores a label column if the file has one; outcomes need it."""
    if not path.is_file():
        raise IngestError(f"{path}: no such file (the period's records, CSV or Parquet)")
    frame = read_batch(path, spec.read).rename(columns=spec.rename)
    if labelled and spec.target.column not in frame:
        raise IngestError(f"{path} has no '{spec.target.column}' column: no labels to realise the list with")
    if not labelled:
        frame = frame.drop(columns=[spec.target.column], errors="ignore")
    cleaned = clean_frame(frame, spec, require_target=labelled)
    dropped = cleaned.report.rows_dropped
    print(
        f"{path}: {len(frame):,} records read, {len(cleaned.frame):,} kept"
        + (f", dropped {dropped}" if dropped else "")
    )
    return cleaned


@task(name="rank-and-cut", cache_policy=NO_CACHE, timeout_seconds=TIMEOUTS["report"])
def make_list(model: PackagedModel, records: CleanData, period: str) -> CallList:
    """Score, rank by expected value, cut at capacity, and give each listed record its reasons in words."""
    spec = model.spec
    frame = records.frame
    probability = positive_probability(model.pipeline, frame[spec.input_columns])
    call_list = build_call_list(frame[spec.id_column], probability, spec, period, model.tag)
    listed = frame.iloc[call_list.positions][spec.input_columns].reset_index(drop=True)
    words = reasons_in_words(model.pipeline, Explainer(model.pipeline, model.background), listed, spec)
    call_list = replace(call_list, table=call_list.table.assign(reasons=words))
    print(
        f"{period}: {call_list.listed:,} of {call_list.scored:,} listed (capacity {call_list.capacity:,}, "
        f"{call_list.worth_acting:,} worth acting on); predicted net value ${call_list.predicted_net_value:,.0f}"
    )
    return call_list


@task(name="publish-list", cache_policy=NO_CACHE, **IO_RETRIES)
def publish_list(call_list: CallList, spec: DatasetSpec, settings: Settings) -> Path:
    """Write ``lists/<period>.csv`` (and its summary); publish the top rows as a Prefect table."""
    path = write_call_list(call_list, lists_dir(spec.name, settings))
    publish_table(
        key=artifact_key(spec.name, "call-list"),
        rows=call_list.table.head(TOP_ROWS_SHOWN).to_dict("records"),
        description=f"{spec.name}: the top {TOP_ROWS_SHOWN} of the {call_list.period} list ({call_list.listed:,} "
        f"listed of {call_list.scored:,} scored); the whole list is {path}",
    )
    publish_markdown(
        key=artifact_key(spec.name, "call-list-summary"),
        markdown=list_markdown(call_list, spec),
        description=f"{spec.name} list for {call_list.period}",
    )
    print(f"list: {path}")
    return path


@task(name="realise-outcome", cache_policy=NO_CACHE, **IO_RETRIES)
def record_outcome(spec: DatasetSpec, settings: Settings, period: str, labels: CleanData) -> RealisedOutcome:
    """Join the period's labels to its list; write ``lists/<period>.outcome.json`` and a markdown artifact."""
    folder = lists_dir(spec.name, settings)
    listed, summary = read_call_list(folder, period)
    outcome = realised_outcome(listed, labels.frame, spec, period, summary["model_tag"])
    write_outcome(outcome, folder)
    publish_markdown(
        key=artifact_key(spec.name, "realised-outcome"),
        markdown=outcome_markdown(outcome),
        description=f"{spec.name}: what the {period} list realised",
    )
    print(
        f"{period}: realised precision {outcome.precision:.3f}, net value ${outcome.net_value:,.0f} "
        f"vs ${outcome.predicted_net_value:,.0f} predicted" + (" — SHORTFALL" if outcome.shortfall else "")
    )
    return outcome
