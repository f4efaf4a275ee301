"""The validate and quality-gate stages: each batch against the dataset's versioned Great Expectations suite.

``validate`` runs the suite on every batch (and a sample of raw log lines) in an ephemeral GE context and
builds Data Docs; ``quality-gate`` publishes them with the analysts' markdown, JSON and picture in the run
folder and raises ``QualityGateFailed`` on any critical failure, before any training.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.data_docs import make_offline, mark_verdicts
from tasks.plots import plot_quality
from tasks.run import (
    MEASURED,
    TIMEOUTS,
    artifact_key,
    digest,
    input_cache,
    publish_link,
    publish_markdown,
    write_markdown,
)
from tollgate.config.settings import Settings
from tollgate.config.spec import DatasetSpec
from tollgate.core.clean import typed_view
from tollgate.core.ingest import RawData
from tollgate.core.quality import (
    ExpectationOutcome,
    QualityGateFailed,
    QualityResult,
    batch_verdicts,
    profile_columns,
    render_markdown,
    target_rate_by_segment,
)
from tollgate.core.render import defuse_markup, html_report
from tollgate.store.files import write_json_atomic, write_text_atomic
from tollgate.store.runs import RunPaths

DOCS_SITE = "tollgate"
DATA_DOCS_FORMAT = 2
"""Part of the validation's cache key: raise it when what ``evaluate_quality`` writes changes (2: offline Data
Docs with the gate's verdicts), so a cached validation is not reused with Data Docs of the old form."""


def load_suite(path: Path):
    """The versioned suite file, as a GE ExpectationSuite (severities included)."""
    from great_expectations.core import ExpectationSuite  # GE takes seconds to import: only when validating

    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise FileNotFoundError(f"expectation suite not found: {path}") from error
    return ExpectationSuite(**payload)


def _observed(result: dict, exception: dict | None) -> str:
    if exception and exception.get("raised_exception"):
        message = (exception.get("exception_message") or "error").splitlines()[0]
        return f"error: {message[:160]}"
    if "observed_value" in result:
        value = result["observed_value"]
        return f"{value:.4g}" if isinstance(value, float) else str(value)
    if "unexpected_percent" in result and result["unexpected_percent"] is not None:
        sample = [v for v in result.get("partial_unexpected_list") or [] if v == v and v is not None]
        shown = ", ".join(repr(v) for v in list(dict.fromkeys(sample))[:3])
        return f"{result['unexpected_percent']:.2f}% unexpected" + (f" (e.g. {shown})" if shown else "")
    return ""


def run_suite(
    batches: dict[str, pd.DataFrame],
    suite_path: Path,
    docs_dir: Path,
    extra: dict[str, tuple[pd.DataFrame, Path]] | None = None,
) -> list[ExpectationOutcome]:
    """Validate each batch with GE in an ephemeral context and build Data Docs into ``docs_dir``.

    Batches are validated one by one so that a column missing from one month is named as such,
    and row-count and target-rate bounds apply per month. ``extra`` adds frames checked by a suite
    of their own (e.g. a sample of raw log lines). Outcomes name their batch when there is more
    than one.
    """
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    for site in list(context.variables.data_docs_sites or {}):
        context.delete_data_docs_site(site)
    context.add_data_docs_site(
        site_name=DOCS_SITE,
        site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        },
    )
    asset = context.data_sources.add_pandas("batches").add_dataframe_asset("raw")
    batch_definition = asset.add_batch_definition_whole_dataframe("whole")
    plan = [(defuse_markup(label), _defused(frame), suite_path) for label, frame in batches.items()]
    plan += [(defuse_markup(label), _defused(frame), path) for label, (frame, path) in (extra or {}).items()]
    checkpoints = {}
    for path in dict.fromkeys(path for _, _, path in plan):
        suite = context.suites.add(load_suite(path))
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{suite.name}-gate", data=batch_definition, suite=suite)
        )
        checkpoints[path] = context.checkpoints.add(
            gx.Checkpoint(name=f"{suite.name}-checkpoint", validation_definitions=[validation], result_format="SUMMARY")
        )
    outcomes = []
    validated_at = datetime.now(UTC)
    for label, frame, path in plan:
        run_id = gx.RunIdentifier(run_name=label, run_time=validated_at)
        run = checkpoints[path].run(batch_parameters={"dataframe": frame}, run_id=run_id)
        for validation_result in run.run_results.values():
            for item in validation_result.results:
                config = item.expectation_config
                severity = getattr(config.severity, "value", config.severity) or "critical"
                outcomes.append(
                    ExpectationOutcome(
                        expectation=config.type,
                        column=config.kwargs.get("column"),
                        severity=str(severity),
                        success=bool(item.success),
                        observed=_observed(item.result or {}, item.exception_info),
                        notes=str((config.meta or {}).get("notes", "")),
                        batch=label if len(plan) > 1 else "",
                        unexpected_pct=(item.result or {}).get("unexpected_percent"),
                    )
                )
    context.build_data_docs(site_names=[DOCS_SITE])
    return outcomes


def _defused(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with no ``<``/``>`` in a column name or text value: GE's Data Docs put both into their pages
    unescaped (a value ``<img src=x onerror=…>`` ran in analysts' browsers). Values without them are the
    same objects; validation outcomes do not change (see ``defuse_markup``)."""
    renamed = {column: defuse_markup(str(column)) for column in frame.columns if any(c in str(column) for c in "<>")}
    defused = frame.rename(columns=renamed) if renamed else frame
    for column in defused.columns:
        values = defused[column]
        if isinstance(values.dtype, pd.CategoricalDtype):  # ingest's categoricals: their distinct values, once
            distinct = list(values.cat.categories)
            safe = [defuse_markup(value) if isinstance(value, str) else value for value in distinct]
            if safe == distinct:
                continue
            if defused is frame:
                defused = frame.copy()
            if len(set(safe)) == len(safe):
                defused[column] = values.cat.rename_categories(safe)
                continue
            # '<a>' beside '‹a›' would be one category after defusing: value by value instead
            values = defused[column] = values.astype(object)
        if values.dtype != object and not pd.api.types.is_string_dtype(values):
            continue
        if values.dtype == object:
            marked = values.map(lambda value: isinstance(value, str) and ("<" in value or ">" in value)).astype(bool)
        else:  # Arrow text: vectorised
            marked = values.str.contains("[<>]", regex=True).fillna(False).astype(bool)
        if marked.any():
            if defused is frame:
                defused = frame.copy()
            defused.loc[marked, column] = values[marked].map(defuse_markup)
    return defused


def evaluate_quality(raw: RawData, spec: DatasetSpec, suite_path: Path, docs_dir: Path) -> QualityResult:
    """Run the suite on the typed view of the raw data and profile it; raises nothing."""
    typed = typed_view(raw.frame, spec)
    batches = raw.batches(typed)  # the same typed values, each batch's own columns
    extra = {}
    if raw.line_samples and spec.raw_logs is not None:
        raw_suite = spec.raw_logs_suite_path()
        extra = {f"raw lines {label}": (sample, raw_suite) for label, sample in raw.line_samples.items()}
    outcomes = run_suite(batches, suite_path, docs_dir, extra)
    result = QualityResult(
        dataset=spec.name,
        suite=str(suite_path),
        outcomes=outcomes,
        data_docs=str(docs_dir / "index.html"),
        report_dir=str(docs_dir.parent),
        profile=profile_columns(raw.frame, typed, spec),
        segments=target_rate_by_segment(raw.frame, spec),
    )
    remote = make_offline(docs_dir)
    if remote:
        print(f"validate: Data Docs still load {len(remote)} file(s) from the network: {remote[:3]}")
    mark_verdicts(docs_dir, batch_verdicts(result, raw))
    return result


def validation_input_hash(parameters: dict[str, Any]) -> str:
    """What a validation depends on: the raw bytes (with renames), the suite file and the spec."""
    raw, spec, settings = parameters["raw"], parameters["spec"], parameters["settings"]
    suite = spec.suite_path(settings)
    raw_suite = spec.raw_logs_suite_path() if raw.line_samples else None
    return digest(
        "validate",
        DATA_DOCS_FORMAT,
        raw.sha256,
        sorted(raw.renamed.items()),
        suite.read_text(encoding="utf-8"),
        raw_suite.read_text(encoding="utf-8") if raw_suite else "",
        spec.content_sha256,
    )


@task(name="validate", timeout_seconds=TIMEOUTS["validate"], **input_cache(validation_input_hash), **MEASURED)
def validate(raw: RawData, spec: DatasetSpec, settings: Settings) -> QualityResult:
    """Run the suite on every batch; its Data Docs go to a folder named by the input hash.

    The result (pass or fail) is reused (Prefect cache) for the same bytes, suite and spec.
    """
    key = validation_input_hash({"raw": raw, "spec": spec, "settings": settings})
    print(f"validate: {len(raw.batches())} batch(es) against {spec.suite_path(settings).name}")
    docs_dir = settings.dataset_artifacts(spec.name) / "quality" / key[:16] / "data_docs"
    if docs_dir.exists():
        shutil.rmtree(docs_dir)
    return evaluate_quality(raw, spec, spec.suite_path(settings), docs_dir)


@task(name="quality-gate", cache_policy=NO_CACHE, **MEASURED)
def quality_gate(
    validation: QualityResult, raw: RawData, spec: DatasetSpec, settings: Settings, run: RunPaths
) -> QualityResult:
    """Publish the validation in the run folder (Data Docs, markdown, JSON), then stop on critical failures."""
    report_dir = run.dir
    source_docs = Path(validation.data_docs).parent
    if source_docs.is_dir():
        shutil.copytree(source_docs, report_dir / "data_docs", dirs_exist_ok=True)
        result = replace(validation, data_docs=str(report_dir / "data_docs" / "index.html"), report_dir=str(report_dir))
    else:  # the cached Data Docs were deleted: validate again straight into the run folder
        print(f"quality gate: Data Docs of the cached validation are gone ({source_docs}); validating again")
        result = evaluate_quality(raw, spec, spec.suite_path(settings), report_dir / "data_docs")
    picture = plot_quality(result, report_dir / "data_quality.png")
    page = render_markdown(result, raw, data_docs_link="data_docs/index.html")
    write_markdown(report_dir / "data_quality.md", f"{page}\n\n![data quality]({picture.name})\n")
    report_html = report_dir / "data_quality.html"
    write_text_atomic(
        report_html, html_report(f"Data quality: {spec.name}", page, {}, {"Expectations by column": picture})
    )
    markdown = render_markdown(result, raw)
    write_json_atomic(
        report_dir / "data_quality.json",
        {
            **result.summary(),
            "outcomes": [asdict(o) for o in result.outcomes],
            "profile": result.profile,
            "segments": result.segments,
            "raw_logs": raw.parse_reports,
        },
    )
    publish_markdown(
        key=artifact_key(spec.name, "data-quality"),
        markdown=f"{markdown}\n\nThe whole report, for a browser with no network: `{report_html}`",
        description=f"Data quality gate for {spec.name}",
    )
    publish_link(
        key=artifact_key(spec.name, "data-quality-report"),
        link=report_html.resolve().as_uri(),
        link_text="Data-quality report (one self-contained HTML file; links to the offline Data Docs)",
        description=f"{spec.name}: {'passed' if result.success else 'stopped at'} the quality gate",
    )
    print(
        f"quality gate: {len(result.critical_failed)} critical failed, {len(result.warnings)} warnings; "
        f"Data Docs at {result.data_docs}"
    )
    if not result.success:
        raise QualityGateFailed(result)
    return result
