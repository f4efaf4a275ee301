"""Quality gate: validate each batch against the dataset's versioned Great Expectations suite.

Every expectation carries a GE severity. A ``critical`` failure raises ``QualityGateFailed`` before
any training; ``warning`` failures are reported and repaired by cleaning. Analysts get GE's Data
Docs HTML and a Prefect markdown artifact with a profile of every column.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from tasks.clean import clean_frame, parse_numeric, typed_view
from tasks.features import SpecFeatures
from tasks.ingest import RawData
from tasks.run import TIMEOUTS, RunPaths, artifact_key, digest, input_cache, write_json_atomic
from tasks.settings import Settings
from tasks.spec import BucketFeature, DatasetSpec

DOCS_SITE = "tollgate"


class QualityGateFailed(RuntimeError):
    """Critical expectations failed; the message names each expectation and column."""

    def __init__(self, result: "QualityResult"):
        self.result = result
        failed = "\n".join(f"  - {name}" for name in result.critical_failed)
        super().__init__(
            f"quality gate failed for '{result.dataset}': {len(result.critical_failed)} critical "
            f"expectation(s) failed:\n{failed}\nData Docs: {result.data_docs}"
        )


@dataclass
class ExpectationOutcome:
    expectation: str
    column: str | None
    severity: str
    success: bool
    observed: str
    notes: str = ""
    batch: str = ""
    unexpected_pct: float | None = None



@dataclass
class QualityResult:
    dataset: str
    suite: str
    outcomes: list[ExpectationOutcome]
    data_docs: str
    report_dir: str = ""
    profile: list[dict] = field(default_factory=list)
    segments: dict[str, list[dict]] = field(default_factory=dict)

    def failures(self, severity: str | None = None) -> list[dict]:
        """Failed expectations grouped across batches: one entry per expectation and column."""
        grouped: dict[tuple, dict] = {}
        batches = sorted({o.batch for o in self.outcomes})
        for outcome in self.outcomes:
            if outcome.success or (severity and (outcome.severity == "critical") != (severity == "critical")):
                continue
            key = (outcome.severity, outcome.expectation, outcome.column)
            entry = grouped.setdefault(key, {"severity": outcome.severity, "expectation": outcome.expectation,
                                             "column": outcome.column, "batches": [], "observed": [],
                                             "why": outcome.notes})
            entry["batches"].append(outcome.batch)
            entry["observed"].append(outcome)
        for entry in grouped.values():
            worst = max(entry.pop("observed"), key=lambda o: o.unexpected_pct or 0.0)
            prefix = f"worst ({worst.batch}): " if len(entry["batches"]) > 1 else ""
            entry["observed"] = prefix + worst.observed
            name = f"{entry['expectation']}({entry['column']})" if entry["column"] else entry["expectation"]
            every_batch = entry["batches"] == batches
            entry["label"] = name if every_batch else f"{name} @ {', '.join(entry['batches'])}"
        return list(grouped.values())

    @property
    def critical_failed(self) -> list[str]:
        return [entry["label"] for entry in self.failures("critical")]

    @property
    def warnings(self) -> list[str]:
        return [entry["label"] for entry in self.failures("warning")]

    @property
    def success(self) -> bool:
        return not self.critical_failed

    def summary(self) -> dict:
        return {"success": self.success, "critical_failed": self.critical_failed, "warnings": self.warnings}


def load_suite(path: Path):
    """The versioned suite file, as a GE ExpectationSuite (severities included)."""
    from great_expectations.core import ExpectationSuite

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


def run_suite(batches: dict[str, pd.DataFrame], suite_path: Path, docs_dir: Path,
              extra: dict[str, tuple[pd.DataFrame, Path]] | None = None) -> list[ExpectationOutcome]:
    """Validate each batch with GE in an ephemeral context and build Data Docs into ``docs_dir``.

    Batches are validated one by one so that a column missing from one month is named as such,
    and row-count and target-rate bounds apply per month. ``extra`` adds frames checked by a suite
    of their own (e.g. a sample of raw log lines). Outcomes name their batch when there is more
    than one.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
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
    plan = [(label, frame, suite_path) for label, frame in batches.items()]
    plan += [(label, frame, path) for label, (frame, path) in (extra or {}).items()]
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
    validated_at = datetime.now(timezone.utc)
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


def profile_columns(frame: pd.DataFrame, typed: pd.DataFrame, spec: DatasetSpec) -> list[dict]:
    """Missing %, distinct values, min/max and unparseable text of every spec column."""
    rows = []
    for column in [*spec.id_columns, *spec.input_columns, spec.target.column]:
        if column not in frame:
            rows.append({"column": column, "missing_pct": None, "distinct": None, "min": None,
                         "max": None, "unparseable": None, "note": "column missing"})
            continue
        values = typed[column]
        numeric = column in spec.columns.numeric or column == spec.target.column
        unparseable = parse_numeric(frame[column])[2] if column in spec.columns.numeric else 0
        rows.append({
            "column": column,
            "missing_pct": round(100 * float(values.isna().mean()), 2),
            "distinct": int(values.nunique(dropna=True)),
            "min": float(values.min()) if numeric and values.notna().any() else None,
            "max": float(values.max()) if numeric and values.notna().any() else None,
            "unparseable": int(unparseable),
            "note": "",
        })
    return rows


def _category_order(spec: DatasetSpec, column: str) -> dict[str, int]:
    """The spec's own order of a column's values (bucket labels run low to high)."""
    labels = spec.columns.categorical.get(column, [])
    for feature in spec.features:
        if feature.name == column and isinstance(feature, BucketFeature):
            labels = feature.labels
    return {label: position for position, label in enumerate(labels)}


def target_rate_by_segment(frame: pd.DataFrame, spec: DatasetSpec) -> dict[str, list[dict]]:
    """Target rate per value of each of the spec's segment columns, after cleaning's repairs."""
    if spec.target.column not in frame or not spec.quality.segment_columns:
        return {}
    try:
        repaired = clean_frame(frame, spec, require_target=False).frame
        enriched = SpecFeatures(spec.features).transform(repaired)
    except (KeyError, ValueError, TypeError):
        return {}
    segments = {}
    for column in spec.quality.segment_columns:
        if column not in enriched:
            continue
        table = (
            enriched.groupby(enriched[column].fillna("(missing)"), observed=True)[spec.target.column]
            .agg(rows="size", target_rate="mean")
            .reset_index()
            .rename(columns={column: "value"})
        )
        table["target_rate"] = table["target_rate"].round(4)
        order = _category_order(spec, column)
        table = table.sort_values("value", key=lambda v: v.map(lambda x: order.get(x, len(order))), kind="stable")
        segments[column] = table.to_dict(orient="records")
    return segments


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    header = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join("| " + " | ".join("" if r.get(c) is None else str(r.get(c)) for c in columns) + " |\n" for r in rows)
    return header + body


def render_markdown(result: QualityResult, raw: RawData) -> str:
    status = "PASSED" if result.success else "FAILED (critical)"
    failures = result.failures()
    batches = list(dict.fromkeys(batch.label for batch in raw.files))
    lines = [
        f"# Data quality: {result.dataset} — {status}",
        "",
        f"{raw.rows:,} rows from {len(batches)} batch(es) ({', '.join(batches)}); "
        f"input SHA-256 `{raw.sha256[:16]}…`.",
        f"{len(result.outcomes)} expectation results: {len(result.critical_failed)} critical failures, "
        f"{len(result.warnings)} warnings. Data Docs: `{result.data_docs}`",
        "",
        "## Failed expectations" if failures else "## All expectations passed",
        "",
    ]
    if failures:
        lines.append(markdown_table(
            [{**entry, "batches": "all" if entry["batches"] == sorted({o.batch for o in result.outcomes})
              else ", ".join(entry["batches"]) or "all",
              "observed": entry["observed"].replace("|", "/")}
             for entry in sorted(failures, key=lambda e: (e["severity"] != "critical", e["column"] or ""))],
            ["severity", "expectation", "column", "batches", "observed", "why"],
        ))
    passed = [o for o in result.outcomes if o.success]
    lines += [f"{len(passed)} expectation results passed; every result is in Data Docs and `data_quality.json`.",
              "", "## Column profile", "",
              markdown_table(result.profile, ["column", "missing_pct", "distinct", "min", "max", "unparseable", "note"])]
    for column, rows in result.segments.items():
        lines += ["", f"## Target rate by {column}", "", markdown_table(rows, ["value", "rows", "target_rate"])]
    for month, report in raw.parse_reports.items():
        lines += ["", f"## Raw log lines, {month}", "",
                  f"{report['lines']:,} lines read, {report['parsed']:,} usable events ({report['parse_rate']:.2%}), "
                  f"{report['duplicates_dropped']:,} repeated deliveries dropped; events from "
                  f"{report['first_event_utc']} to {report['last_event_utc']} (UTC).", ""]
        if report["unusable_by_kind"]:
            lines.append(markdown_table(
                [{"kind": kind, "lines": count,
                  "example": "`" + report["samples"].get(kind, [""])[0][:120].replace("|", "/").replace("`", "'") + "`"}
                 for kind, count in sorted(report["unusable_by_kind"].items(), key=lambda item: -item[1])],
                ["kind", "lines", "example"]))
    return "\n".join(lines)


def plot_quality(result: QualityResult, path: Path) -> Path:
    """One picture for analysts: missing % per column, and the target rate by each segment."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    for axis, (column, rows) in zip(axes[0][1:], result.segments.items()):
        labels = [str(row["value"]) for row in rows]
        rates = [100 * row["target_rate"] for row in rows]
        bars = axis.bar(labels, rates, color="#2e86c1")
        axis.bar_label(bars, labels=[f"{rate:.1f}%\n(n={row['rows']:,})" for rate, row in zip(rates, rows)],
                       fontsize=8)
        axis.set_title(f"Target rate by {column}")
        axis.set_ylabel("% positive")
        axis.set_ylim(0, max(rates + [1]) * 1.25)
        axis.tick_params(axis="x", labelrotation=30, labelsize=8)
    status = "passed" if result.success else "FAILED"
    figure.suptitle(f"Data quality — {result.dataset} ({status}: {len(result.critical_failed)} critical, "
                    f"{len(result.warnings)} warnings)", fontsize=13)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def evaluate_quality(raw: RawData, spec: DatasetSpec, suite_path: Path, docs_dir: Path) -> QualityResult:
    """Run the suite on the typed view of the raw data and profile it; raises nothing."""
    typed = typed_view(raw.frame, spec)
    batches = {label: typed_view(frame, spec) for label, frame in raw.batches().items()}
    extra = {}
    if raw.line_samples and spec.raw_logs is not None:
        raw_suite = spec.raw_logs_suite_path()
        extra = {f"raw lines {label}": (sample, raw_suite) for label, sample in raw.line_samples.items()}
    outcomes = run_suite(batches, suite_path, docs_dir, extra)
    return QualityResult(
        dataset=spec.name,
        suite=str(suite_path),
        outcomes=outcomes,
        data_docs=str(docs_dir / "index.html"),
        report_dir=str(docs_dir.parent),
        profile=profile_columns(raw.frame, typed, spec),
        segments=target_rate_by_segment(raw.frame, spec),
    )


def validation_input_hash(parameters: dict) -> str:
    """What a validation depends on: the raw bytes (with renames), the suite file and the spec."""
    raw, spec, settings = parameters["raw"], parameters["spec"], parameters["settings"]
    suite = spec.suite_path(settings)
    raw_suite = spec.raw_logs_suite_path() if raw.line_samples else None
    return digest("validate", raw.sha256, sorted(raw.renamed.items()), suite.read_text(encoding="utf-8"),
                  raw_suite.read_text(encoding="utf-8") if raw_suite else "", spec.content_sha256)


@task(name="validate", timeout_seconds=TIMEOUTS["validate"], **input_cache(validation_input_hash))
def validate(raw: RawData, spec: DatasetSpec, settings: Settings) -> QualityResult:
    """Run the suite on every batch; its Data Docs go to a folder named by the input hash.

    The result (pass or fail) is reused (Prefect cache) for the same bytes, suite and spec.
    """
    key = validation_input_hash({"raw": raw, "spec": spec, "settings": settings})
    docs_dir = settings.dataset_artifacts(spec.name) / "quality" / key[:16] / "data_docs"
    if docs_dir.exists():
        shutil.rmtree(docs_dir)
    return evaluate_quality(raw, spec, spec.suite_path(settings), docs_dir)


@task(name="quality-gate", cache_policy=NO_CACHE)
def quality_gate(validation: QualityResult, raw: RawData, spec: DatasetSpec, settings: Settings,
                 run: RunPaths) -> QualityResult:
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
    markdown = render_markdown(result, raw)
    (report_dir / "data_quality.md").write_text(f"{markdown}\n\n![data quality]({picture.name})\n", encoding="utf-8")
    write_json_atomic(report_dir / "data_quality.json",
                      {**result.summary(), "outcomes": [asdict(o) for o in result.outcomes],
                       "profile": result.profile, "segments": result.segments, "raw_logs": raw.parse_reports})
    create_markdown_artifact(key=artifact_key(spec.name, "data-quality"), markdown=markdown,
                             description=f"Data quality gate for {spec.name}")
    print(f"quality gate: {len(result.critical_failed)} critical failed, {len(result.warnings)} warnings; "
          f"Data Docs at {result.data_docs}")
    if not result.success:
        raise QualityGateFailed(result)
    return result
