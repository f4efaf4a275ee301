"""The quality gate's verdict, independent of the validator: outcomes per expectation and batch, a profile of
every column, the target rate by segment, and the analysts' markdown.

A ``critical`` failure makes the gate raise ``QualityGateFailed`` before any training; ``warning`` failures
are reported and repaired by cleaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from tollgate.config.spec import BucketFeature, DatasetSpec
from tollgate.core.clean import clean_frame, missing_as, parse_numeric
from tollgate.core.features import SpecFeatures
from tollgate.core.ingest import RawData
from tollgate.core.render import markdown_table

COLUMN_EXISTS = "expect_column_to_exist"


class QualityGateFailed(RuntimeError):
    """Critical expectations failed; the message names each expectation and column."""

    def __init__(self, result: QualityResult):
        self.result = result
        failures = result.failures("critical")
        causes = [entry for entry in failures if not entry["because"]]
        lines = [f"  - {_cause(entry)}" for entry in causes]
        for column in dict.fromkeys(entry["because"] for entry in failures if entry["because"]):
            following = [entry["expectation"] for entry in failures if entry["because"] == column]
            lines.append(f"  - and, because {column} is missing, {len(following)} more: {', '.join(following)}")
        super().__init__(
            f"quality gate failed for '{result.dataset}': {len(failures)} critical expectation(s) failed, "
            f"{len(causes)} of them at the root:\n" + "\n".join(lines) + f"\nData Docs: {result.data_docs}"
        )

    def __reduce__(self) -> tuple[type[QualityGateFailed], tuple[QualityResult]]:
        return type(self), (self.result,)  # rebuilt from its result when a flow's final state carries it


def _cause(entry: dict[str, Any]) -> str:
    if entry["expectation"] == COLUMN_EXISTS:
        where = entry["label"].partition(" @ ")[2]
        return f"column {entry['column']} is missing" + (f" in {where}" if where else "") + f" ({COLUMN_EXISTS})"
    return f"{entry['label']}: observed {entry['observed']}" if entry["observed"] else entry["label"]


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str | None
    severity: str
    success: bool
    observed: str
    notes: str = ""
    batch: str = ""
    unexpected_pct: float | None = None


@dataclass(frozen=True)
class QualityResult:
    dataset: str
    suite: str
    outcomes: list[ExpectationOutcome]
    data_docs: str
    report_dir: str = ""
    profile: list[dict[str, Any]] = field(default_factory=list)
    segments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def failures(self, severity: str | None = None) -> list[dict[str, Any]]:
        """Failed expectations grouped across batches: one entry per expectation and column, root causes first.

        A missing column comes first; the expectations on it that then fail name it in ``because`` and come
        last (they follow from it), after every failure with a cause of its own."""
        grouped: dict[tuple[Any, ...], dict[str, Any]] = {}
        batches = sorted({o.batch for o in self.outcomes})
        for outcome in self.outcomes:
            if outcome.success or (severity and (outcome.severity == "critical") != (severity == "critical")):
                continue
            key = (outcome.severity, outcome.expectation, outcome.column)
            entry = grouped.setdefault(
                key,
                {
                    "severity": outcome.severity,
                    "expectation": outcome.expectation,
                    "column": outcome.column,
                    "batches": [],
                    "observed": [],
                    "why": outcome.notes,
                },
            )
            entry["batches"].append(outcome.batch)
            entry["observed"].append(outcome)
        for entry in grouped.values():
            worst = max(entry.pop("observed"), key=lambda o: o.unexpected_pct or 0.0)
            prefix = f"worst ({worst.batch}): " if len(entry["batches"]) > 1 else ""
            entry["observed"] = prefix + worst.observed
            name = f"{entry['expectation']}({entry['column']})" if entry["column"] else entry["expectation"]
            every_batch = entry["batches"] == batches
            entry["label"] = name if every_batch else f"{name} @ {', '.join(entry['batches'])}"
        missing = {o.column for o in self.outcomes if o.expectation == COLUMN_EXISTS and not o.success}
        for entry in grouped.values():
            entry["because"] = (
                entry["column"] if entry["column"] in missing and entry["expectation"] != COLUMN_EXISTS else ""
            )
        rank = {COLUMN_EXISTS: 0}
        return sorted(
            grouped.values(),
            key=lambda e: (bool(e["because"]), rank.get(e["expectation"], 1), e["severity"] != "critical"),
        )

    @property
    def critical_failed(self) -> list[str]:
        return [entry["label"] for entry in self.failures("critical")]

    @property
    def warnings(self) -> list[str]:
        return [entry["label"] for entry in self.failures("warning")]

    @property
    def success(self) -> bool:
        return not self.critical_failed

    def summary(self) -> dict[str, Any]:
        return {"success": self.success, "critical_failed": self.critical_failed, "warnings": self.warnings}


@dataclass(frozen=True)
class BatchVerdict:
    """What the gate said of one batch, in plain words."""

    batch: str
    rows: int | None
    critical_failed: int
    warnings: int
    missing_columns: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.critical_failed == 0

    @property
    def words(self) -> str:
        warned = f"{self.warnings} warning{'s' * (self.warnings != 1)}"
        if not self.passed:
            failed = f"{self.critical_failed} critical failure{'s' * (self.critical_failed != 1)}"
            cause = f"{', '.join(self.missing_columns)} missing; " if self.missing_columns else ""
            return f"Stopped at the gate: {cause}{failed}" + (f" and {warned}" if self.warnings else "")
        if self.warnings:
            return f"Passed with {warned}, repaired by cleaning"
        return "Passed: every expectation met"


def batch_verdicts(result: QualityResult, raw: RawData) -> list[BatchVerdict]:
    """The gate's verdict per batch (month, file, or sample of raw log lines), in the order they were read."""
    rows = {batch.label: batch.rows for batch in raw.files if batch.columns}
    labels = list(dict.fromkeys(o.batch for o in result.outcomes))
    verdicts = []
    for label in labels:
        failed = [o for o in result.outcomes if o.batch == label and not o.success]
        critical = sum(o.severity == "critical" for o in failed)
        name = label or (raw.files[0].label if raw.files else result.dataset)
        missing = tuple(o.column for o in failed if o.expectation == COLUMN_EXISTS and o.column)
        verdicts.append(BatchVerdict(name, rows.get(name), critical, len(failed) - critical, missing))
    return verdicts


def profile_columns(frame: pd.DataFrame, typed: pd.DataFrame, spec: DatasetSpec) -> list[dict[str, Any]]:
    """Missing %, distinct values, min/max and unparseable text of every spec column."""
    rows: list[dict[str, Any]] = []
    for column in [*spec.id_columns, *spec.input_columns, spec.target.column]:
        if column not in frame:
            rows.append(
                {
                    "column": column,
                    "missing_pct": None,
                    "distinct": None,
                    "min": None,
                    "max": None,
                    "unparseable": None,
                    "note": "column missing",
                }
            )
            continue
        values = typed[column]
        numeric = column in spec.columns.numeric or column == spec.target.column
        unparseable = parse_numeric(frame[column], spec.read)[2] if column in spec.columns.numeric else 0
        rows.append(
            {
                "column": column,
                "missing_pct": round(100 * float(values.isna().mean()), 2),
                "distinct": int(values.nunique(dropna=True)),
                "min": float(values.min()) if numeric and values.notna().any() else None,
                "max": float(values.max()) if numeric and values.notna().any() else None,
                "unparseable": int(unparseable),
                "note": "",
            }
        )
    return rows


def _category_order(spec: DatasetSpec, column: str) -> dict[str, int]:
    """The spec's own order of a column's values (bucket labels run low to high)."""
    labels = spec.columns.categorical.get(column, [])
    for feature in spec.features:
        if feature.name == column and isinstance(feature, BucketFeature):
            labels = feature.labels
    return {label: position for position, label in enumerate(labels)}


def target_rate_by_segment(frame: pd.DataFrame, spec: DatasetSpec) -> dict[str, list[dict[str, Any]]]:
    """Target rate per value of each of the spec's segment columns, after cleaning's repairs."""
    if spec.target.column not in frame or not spec.quality.segment_columns:
        return {}
    try:
        repaired = clean_frame(frame, spec, require_target=False).frame
        enriched = SpecFeatures(spec.features).transform(repaired)
    except (KeyError, ValueError, TypeError):
        return {}
    segments: dict[str, list[dict[str, Any]]] = {}
    for column in spec.quality.segment_columns:
        if column not in enriched:
            continue
        table = (
            enriched.groupby(missing_as(enriched[column], "(missing)"), observed=True)[spec.target.column]
            .agg(rows="size", target_rate="mean")
            .reset_index()
            .rename(columns={column: "value"})
        )
        table["target_rate"] = table["target_rate"].round(4)
        order = _category_order(spec, column)
        rank = {value: order.get(value, len(order)) for value in table["value"]}
        table = table.sort_values("value", key=lambda values: values.map(rank), kind="stable")
        segments[column] = [{str(key): value for key, value in row.items()} for row in table.to_dict(orient="records")]
    return segments


def render_markdown(result: QualityResult, raw: RawData, data_docs_link: str | None = None) -> str:
    """The analysts' page: the verdict per batch first, then what failed (root causes first), the profile and
    the target rate by segment. ``data_docs_link`` is a relative link to the Data Docs; else their path."""
    status = "PASSED" if result.success else "FAILED (critical)"
    failures = result.failures()
    batches = list(dict.fromkeys(batch.label for batch in raw.files))
    docs = (
        f"[Data Docs]({data_docs_link}) (every expectation, per batch)"
        if data_docs_link
        else (f"Data Docs: `{result.data_docs}`")
    )
    verdicts = [
        {"batch": v.batch, "rows": f"{v.rows:,}" if v.rows is not None else "", "verdict": v.words}
        for v in batch_verdicts(result, raw)
    ]
    lines = [
        f"# Data quality: {result.dataset} — {status}",
        "",
        f"{raw.rows:,} rows from {len(batches)} batch(es) ({', '.join(batches)}); input SHA-256 `{raw.sha256[:16]}…`.",
        f"{len(result.outcomes)} expectation results: {len(result.critical_failed)} critical failures, "
        f"{len(result.warnings)} warnings. {docs}",
        "",
        "## Verdict per batch",
        "",
        "A critical failure stops the run before training; a warning is reported and repaired by cleaning.",
        "",
        markdown_table(verdicts, ["batch", "rows", "verdict"]),
        "## Failed expectations" if failures else "## All expectations passed",
        "",
    ]
    if failures:
        lines.append(
            markdown_table(
                [
                    {
                        **entry,
                        "batches": "all"
                        if entry["batches"] == sorted({o.batch for o in result.outcomes})
                        else ", ".join(entry["batches"]) or "all",
                        "observed": entry["observed"].replace("|", "/"),
                        "why": f"follows from: {entry['because']} is missing" if entry["because"] else entry["why"],
                    }
                    for entry in failures
                ],
                ["severity", "expectation", "column", "batches", "observed", "why"],
            )
        )
    passed = [o for o in result.outcomes if o.success]
    lines += [
        f"{len(passed)} expectation results passed; every result is in Data Docs and `data_quality.json`.",
        "",
        "## Column profile",
        "",
        markdown_table(result.profile, ["column", "missing_pct", "distinct", "min", "max", "unparseable", "note"]),
    ]
    for column, rows in result.segments.items():
        lines += ["", f"## Target rate by {column}", "", markdown_table(rows, ["value", "rows", "target_rate"])]
    for month, report in raw.parse_reports.items():
        lines += [
            "",
            f"## Raw log lines, {month}",
            "",
            f"{report['lines']:,} lines read, {report['parsed']:,} usable events ({report['parse_rate']:.2%}), "
            f"{report['duplicates_dropped']:,} repeated deliveries dropped; events from "
            f"{report['first_event_utc']} to {report['last_event_utc']} (UTC).",
            "",
        ]
        if report["unusable_by_kind"]:
            lines.append(
                markdown_table(
                    [
                        {
                            "kind": kind,
                            "lines": count,
                            "example": "`"
                            + report["samples"].get(kind, [""])[0][:120].replace("|", "/").replace("`", "'")
                            + "`",
                        }
                        for kind, count in sorted(report["unusable_by_kind"].items(), key=lambda item: -item[1])
                    ],
                    ["kind", "lines", "example"],
                )
            )
    return "\n".join(lines)
