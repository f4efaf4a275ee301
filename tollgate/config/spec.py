"""Dataset specs: everything a stage needs to know about a dataset, loaded once and passed down.

A new dataset is a new YAML file under ``data/specs/`` plus an expectation suite; no stage in
``tasks/`` names a column of its own.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tollgate.config.settings import Settings


class SpecError(ValueError):
    """A dataset spec that cannot be used; the message names the offending key."""


YAML_BOOLEAN_HINT = (
    " (unquoted yes, no, on, off, true and false are booleans in YAML): quote it as the data writes it, "
    'e.g. "Yes" or "No"'
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Strict):
    column: str
    positive: str | int = Field(description="the positive label (with others_are_positive: the name answers use)")
    negative: str | int
    others_are_positive: bool = Field(
        default=False, description="every label but `negative` is positive (e.g. 23 attack kinds against 'normal')"
    )
    kind_column: str | None = Field(
        default=None, description="cleaning keeps the original label here (which kind of positive a row is)"
    )

    @field_validator("positive", "negative", mode="before")
    @classmethod
    def _not_a_yaml_boolean(cls, value: object) -> object:
        """``positive: Yes`` is the boolean True in YAML, which would pass as the label 1 and match nothing."""
        if isinstance(value, bool):
            raise ValueError(f"YAML read an unquoted label as the boolean {value}{YAML_BOOLEAN_HINT}")
        return value


class NumericColumn(_Strict):
    """A numeric input; values outside [min, max] are invalid and become missing in cleaning."""

    min: float | None = None
    max: float | None = None
    integer: bool = False


class Columns(_Strict):
    numeric: dict[str, NumericColumn] = Field(default_factory=dict)
    categorical: dict[str, list[str]] = Field(default_factory=dict)
    extra: list[str] = Field(default_factory=list, description="kept for lineage, never a feature")


class ReadOptions(_Strict):
    """How the dataset's CSV files are written: many exports use ``;`` between fields and ``,`` as the
    decimal mark. Numbers are read only in this one format; a value that does not fit it (``265,1``
    with the default decimal point) becomes missing and is counted, never guessed."""

    separator: str = Field(default=",", min_length=1, max_length=1, description="between fields")
    decimal: Literal[".", ","] = Field(default=".", description="the decimal mark inside numbers")
    thousands: Literal[",", ".", " ", "'", ""] = Field(default=",", description="digit grouping ('' for none)")
    encoding: str = Field(default="utf-8", description="the files' text encoding, e.g. latin-1 or cp1252")
    quote: str = Field(default='"', min_length=1, max_length=1)

    @model_validator(mode="after")
    def _marks_differ(self) -> ReadOptions:
        if self.decimal == self.thousands:
            raise ValueError(f"decimal and thousands marks are both {self.decimal!r}; they must differ")
        if self.separator == self.decimal:
            raise ValueError(f"separator and decimal mark are both {self.decimal!r}; use separator ';' (or '\\t')")
        return self


DEFAULT_READ = ReadOptions()


class Split(_Strict):
    strategy: Literal["time", "stratified", "file"] = "time"
    train_window_months: int = Field(default=6, ge=1)
    holdout_fraction: float = Field(default=0.2, gt=0, lt=1)
    holdout_file: str | None = Field(
        default=None, description="strategy file: the file (by name) held out; every other file trains"
    )
    seed: int = 42

    @model_validator(mode="after")
    def _file_strategy_names_a_file(self) -> Split:
        if self.strategy == "file" and not self.holdout_file:
            raise ValueError("strategy 'file' needs holdout_file (the name of the file to hold out)")
        return self


class Costs(_Strict):
    false_negative: float = Field(ge=0)
    false_positive: float = Field(ge=0)
    true_positive: float = Field(default=0.0, ge=0)
    rationale: str = ""


class Capacity(_Strict):
    """The most actions a period allows: a share of the records scored in it, or a count.

    A count needs ``period_records`` (how many records a period usually holds), so holdout figures and
    single-record serving can turn it into a share; a scored batch is cut at the count itself."""

    share: float | None = Field(default=None, gt=0, le=1, description="share of a period's records")
    count: int | None = Field(default=None, ge=1, description="actions per period")
    period_records: int | None = Field(default=None, ge=1, description="records a period usually holds")
    period: str = Field(default="month", description="what a period is, in words (month, day)")

    @model_validator(mode="after")
    def _one_measure(self) -> Capacity:
        if (self.share is None) == (self.count is None):
            raise ValueError("give exactly one of share or count")
        if self.count is not None and self.period_records is None:
            raise ValueError("a count needs period_records (how many records a period holds)")
        return self

    @property
    def as_share(self) -> float:
        """The capacity as a share of a period's records."""
        if self.share is not None:
            return self.share
        assert self.count is not None and self.period_records is not None
        return min(1.0, self.count / self.period_records)

    def for_rows(self, rows: int) -> int:
        """The most actions among ``rows`` records: the count for one period, else the share of them."""
        if self.count is not None:
            return min(rows, self.count)
        return self.for_sample(rows)

    def for_sample(self, rows: int) -> int:
        """The most actions among ``rows`` records drawn from several periods (holdout, out-of-fold): the share."""
        return int(np.floor(self.as_share * rows + 1e-9))

    def describe(self) -> str:
        if self.count is not None:
            return f"{self.count:,} per {self.period} (of ~{self.period_records:,} records, {self.as_share:.1%})"
        return f"{self.as_share:.1%} of the records scored per {self.period}"


class DecisionPolicy(_Strict):
    """Whom to act on: records in order of expected value ``p × success_rate × value − action_cost``,
    never one whose expected value is below zero, never more than capacity."""

    value: float = Field(gt=0, description="what one positive caught is worth when the action saves it ($)")
    success_rate: float = Field(gt=0, le=1, description="share of caught positives the action actually saves")
    action_cost: float = Field(ge=0, description="what one action costs, whoever receives it ($)")
    capacity: Capacity
    targets: dict[Literal["recall", "precision", "f1", "roc_auc"], float] = Field(
        default_factory=dict, description="the team's targets at the operating point: met or not, in the report"
    )
    value_drop_tolerance: float = Field(
        default=0.25, gt=0, lt=1, description="realised value below predicted by more than this share: retrain"
    )
    rationale: str = ""

    @property
    def saved_value(self) -> float:
        """What acting on one positive is worth on average: success rate × value."""
        return self.success_rate * self.value

    @property
    def break_even(self) -> float:
        """The probability at which acting is worth exactly its cost."""
        return min(1.0, self.action_cost / self.saved_value)

    def costs(self) -> Costs:
        """The same economics as costs against acting on nobody: a missed positive loses the saved value,
        every action costs its price."""
        return Costs(
            false_negative=self.saved_value,
            false_positive=self.action_cost,
            true_positive=self.action_cost,
            rationale=self.rationale,
        )


class Promotion(_Strict):
    metric: Literal["net_value", "expected_cost", "roc_auc", "pr_auc"] = "expected_cost"
    min_gain: float = 0.0
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    floors: dict[str, float] = Field(default_factory=lambda: {"roc_auc": 0.70})
    min_compared_rows: int = Field(
        default=200, ge=10, description="fewer holdout rows that neither model trained on: no comparison, rejected"
    )


class RatioFeature(_Strict):
    """numerator / (sum of denominators + offset); missing where the denominator is zero."""

    kind: Literal["ratio"]
    name: str
    numerator: str
    denominator: list[str]
    offset: float = 0.0


class LogFeature(_Strict):
    """log1p of a non-negative amount (bytes, charges): tames long tails."""

    kind: Literal["log"]
    name: str
    column: str


class CountEqualFeature(_Strict):
    """How many of ``columns`` equal ``value`` (e.g. the number of services a customer has)."""

    kind: Literal["count_equal"]
    name: str
    columns: list[str]
    value: str


class BucketFeature(_Strict):
    """A categorical bucket of a numeric column: edges are left-closed bin starts."""

    kind: Literal["bucket"]
    name: str
    column: str
    edges: list[float]
    labels: list[str]

    @model_validator(mode="after")
    def _labels_match_edges(self) -> BucketFeature:
        if len(self.labels) != len(self.edges):
            raise ValueError(f"bucket '{self.name}': {len(self.edges)} edges need as many labels")
        if list(self.edges) != sorted(self.edges):
            raise ValueError(f"bucket '{self.name}': edges must increase")
        return self


class OutsideRangeFeature(_Strict):
    """1 when ``column`` lies outside [low, high) (e.g. a login outside office hours), else 0."""

    kind: Literal["outside_range"]
    name: str
    column: str
    low: float
    high: float


FeatureDef = Annotated[
    RatioFeature | LogFeature | CountEqualFeature | BucketFeature | OutsideRangeFeature,
    Field(discriminator="kind"),
]


ENSEMBLE_NAME = "ensemble"
ESTIMATOR_NAMES = Literal["logistic_regression", "random_forest", "lightgbm", "hist_gradient_boosting"]


class Candidate(_Strict):
    """One entrant of the model tournament: an estimator after the shared preprocessing."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    estimator: ESTIMATOR_NAMES
    params: dict[str, float | int | str | bool | None] = Field(default_factory=dict)


def default_candidates() -> list[Candidate]:
    return [
        Candidate(name="logistic_regression", estimator="logistic_regression", params={"C": 1.0, "max_iter": 2000}),
        Candidate(
            name="random_forest",
            estimator="random_forest",
            params={"n_estimators": 200, "min_samples_leaf": 5, "max_samples": 0.5},
        ),
        Candidate(
            name="lightgbm", estimator="lightgbm", params={"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31}
        ),
        Candidate(
            name="hist_gradient_boosting",
            estimator="hist_gradient_boosting",
            params={"max_iter": 300, "learning_rate": 0.05, "early_stopping": False},
        ),
    ]


class ParamRange(_Strict):
    """One hyperparameter's search range: numbers between low and high (on a log scale, whole numbers), or a
    list of choices."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: list[float | int | str | bool | None] | None = None

    @model_validator(mode="after")
    def _range_or_choices(self) -> ParamRange:
        if self.choices is not None:
            if not self.choices or self.low is not None or self.high is not None:
                raise ValueError("give either choices (a non-empty list) or low and high")
            return self
        if self.low is None or self.high is None or not self.low < self.high:
            raise ValueError("give low < high (or choices)")
        if self.log and self.low <= 0:
            raise ValueError("a log scale needs low > 0")
        return self


class Search(_Strict):
    """A time-budgeted hyperparameter search per candidate family, on the tournament's CV folds (Optuna's TPE
    sampler, seeded; trials doing worse than the median after a fold are pruned). Each candidate's own params are
    its first trial and stay fixed unless its space names them."""

    budget_seconds: float = Field(
        gt=0, description="wall-clock seconds for the whole search: the families search side by side within it"
    )
    trials: int | None = Field(
        default=None,
        ge=1,
        description="at most this many trials per family (with a budget never reached, the "
        "search is reproducible: same seed, same trials, same leaderboard)",
    )
    spaces: dict[str, dict[str, ParamRange]] = Field(
        default_factory=dict, description="per candidate name, its search space (default: one per estimator)"
    )
    pruning: bool = True
    objective: Literal["log_loss", "roc_auc", "selection"] = Field(
        default="log_loss",
        description="what a family's trials are compared on: out-of-fold log loss (a proper score, smooth, and "
        "it rewards the calibrated probabilities a decision policy prices), mean CV ROC-AUC, or the selection "
        "rule's own figure (noisy when it counts a few records at capacity: the best of many trials then "
        "flatters itself)",
    )


class Ensemble(_Strict):
    """An extra candidate: the average log-odds of the best families that speak log-odds (logistic regression,
    LightGBM, HistGradientBoosting), from their out-of-fold predictions on the same folds. It wins only when the
    selection rule ranks it first, like any candidate."""

    members: int = Field(default=3, ge=2, le=3, description="how many of the best log-odds families it averages")


class Tournament(_Strict):
    cv_folds: int = Field(default=5, ge=2, le=20)
    cv_max_rows: int = Field(
        default=200_000,
        ge=1000,
        description="cross-validate on a seeded stratified sample of at most this many "
        "training rows; the final fit always uses them all",
    )
    candidates: list[Candidate] = Field(default_factory=default_candidates, min_length=1)
    search: Search | None = Field(default=None, description="tune each candidate within a time budget")
    ensemble: Ensemble | None = Field(
        default_factory=Ensemble, description="enter the best families' log-odds average as a candidate (null: don't)"
    )
    anomaly_feature: bool = Field(default=False, description="add an IsolationForest score as a feature")
    novelty_by: str | None = Field(
        default=None,
        description="column naming each positive's kind: the anomaly score is reported per kind held out of training",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> Tournament:
        names = [candidate.name for candidate in self.candidates]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"tournament.candidates names repeat: {duplicated}")
        if self.ensemble is not None and ENSEMBLE_NAME in names:
            raise ValueError(
                f"tournament.candidates: '{ENSEMBLE_NAME}' names the ensemble candidate; rename yours "
                "or set tournament.ensemble: null"
            )
        unknown = sorted(set(self.search.spaces) - set(names)) if self.search is not None else []
        if unknown:
            raise ValueError(f"tournament.search.spaces names no candidate: {unknown} (candidates: {names})")
        return self


class Quality(_Strict):
    suite: str | None = Field(default=None, description="path relative to the spec file")
    segment_columns: list[str] = Field(default_factory=list)


GAP_MEASURES = Literal["demographic_parity", "equal_opportunity"]


class Fairness(_Strict):
    """How the policy treats groups: the holdout's figures per group of each protected attribute, and the gaps
    the gate refuses a challenger beyond.

    Demographic parity compares the share of each group acted on; equal opportunity, the share of each group's
    positives acted on (recall). A gap is the highest group's share minus the lowest's."""

    protected: list[str] = Field(
        default_factory=list, description="columns whose groups the policy should treat alike (gender, age band)"
    )
    max_gap: dict[GAP_MEASURES, float] = Field(
        default_factory=dict, description="the largest gap a challenger may show on the holdout; beyond: refused"
    )
    min_group_rows: int = Field(
        default=30,
        ge=1,
        description="groups with fewer rows (positives, for equal opportunity) are shown, not compared",
    )
    confidence: float = Field(default=0.95, gt=0.5, lt=1, description="the gaps' bootstrap interval")

    @field_validator("max_gap")
    @classmethod
    def _gaps_are_shares(cls, bounds: dict[str, float]) -> dict[str, float]:
        outside = {name: bound for name, bound in bounds.items() if not 0 < bound <= 1}
        if outside:
            raise ValueError(f"a gap is a difference of two shares, in (0, 1]: {outside}")
        return bounds


class Recommendations(_Strict):
    high: str = "Act now: the model is more sure than not."
    medium: str = "Act: above the cost-tuned threshold."
    low: str = "No action needed."


class Serving(_Strict):
    """How the service turns a probability into words for the person on the other end."""

    high_risk_probability: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="High at or above this (and the threshold); Medium from the threshold up; Low below it",
    )
    recommendations: Recommendations = Field(default_factory=Recommendations)
    explain_top_k: int = Field(default=5, ge=1, le=50)


class Monitoring(_Strict):
    """When logged traffic has drifted far enough from the training data to retrain."""

    psi_threshold: float = Field(default=0.2, gt=0, description="PSI above this on any input is drift")
    positive_rate_change: float = Field(
        default=0.10, gt=0, lt=1, description="absolute change of the predicted-positive rate that is drift"
    )
    min_predictions: int = Field(
        default=200, ge=1, description="fewer predictions since the last verdict: no verdict (the window grows)"
    )
    cooldown_days: float = Field(
        default=7, ge=0, description="after a retrain request, none again for this long, whatever drifts"
    )


class Lookup(_Strict):
    """A session column derived from a raw field: exact values first, then substrings, else default."""

    source: str
    values: dict[str, str] = Field(default_factory=dict)
    contains: dict[str, str] = Field(default_factory=dict, description="substring → value, first match wins")
    default: str | None = None


class Aggregation(_Strict):
    """How one session column is computed from the session's events."""

    how: Literal["count", "sum", "nunique", "span_seconds", "first_hour", "mode"]
    field: str | None = None
    where: dict[str, str] = Field(default_factory=dict, description="only events whose field equals the value")

    @model_validator(mode="after")
    def _needs_field(self) -> Aggregation:
        if self.how in ("sum", "nunique", "mode") and not self.field:
            raise ValueError(f"aggregation '{self.how}' needs a field")
        return self


class RawLogs(_Strict):
    """Raw event logs → one row per session (``key`` × ``window_minutes``) with the spec's columns."""

    key: str = Field(description="the raw field sessions are per, e.g. src_ip")
    time: str = "timestamp"
    window_minutes: int = Field(default=60, ge=1, le=24 * 60)
    lateness_minutes: int = Field(
        default=60,
        ge=0,
        le=7 * 24 * 60,
        description="how far behind the newest lines of the other files an event may arrive "
        "before its session is final (later ones are counted as late_event)",
    )
    text_fields: list[str] = Field(description="required raw fields read as text")
    integer_fields: list[str] = Field(default_factory=list, description="required raw fields that must be integers")
    syslog_keys: dict[str, str] = Field(default_factory=dict, description="syslog key=value key → raw field")
    lookups: dict[str, Lookup] = Field(default_factory=dict)
    sessions: dict[str, Aggregation]
    labels_file: str = Field(default="ground_truth.csv", description="attacking sessions (session_id, …) per month")
    label_kind_column: str | None = Field(default="attack_kind", description="what kind of positive a label row is")
    negative_kind: str = Field(default="normal", description="the kind of a session the labels do not list")
    suite: str = Field(description="expectations on a sample of the raw lines (path relative to the spec)")

    @property
    def fields(self) -> list[str]:
        return [self.time, *self.text_fields, *self.integer_fields]


class DatasetSpec(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    description: str = ""
    id_column: str | None = Field(default=None, description="unique row id; duplicates of it are dropped")
    target: Target
    columns: Columns
    rename: dict[str, str] = Field(default_factory=dict)
    read: ReadOptions = Field(default_factory=ReadOptions)
    split: Split = Field(default_factory=Split)
    costs: Costs
    decision: DecisionPolicy | None = Field(
        default=None, description="value, success rate, action cost and capacity; replaces costs"
    )
    promotion: Promotion = Field(default_factory=Promotion)
    features: list[FeatureDef] = Field(default_factory=list)
    tournament: Tournament = Field(default_factory=Tournament)
    quality: Quality = Field(default_factory=Quality)
    fairness: Fairness = Field(default_factory=Fairness)
    serving: Serving = Field(default_factory=Serving)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    raw_dir: str | None = Field(default=None, description="monthly batches; default data/raw/<name>")
    raw_logs: RawLogs | None = Field(default=None, description="how to build this table from raw event logs")
    source_path: Path | None = Field(default=None, exclude=True)
    content_sha256: str = Field(default="", exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _costs_from_decision(cls, raw: object) -> object:
        """With a decision policy the costs follow from it (and must agree with it when also given)."""
        if not isinstance(raw, dict) or raw.get("decision") is None:
            return raw
        decision = raw["decision"]
        try:
            policy = decision if isinstance(decision, DecisionPolicy) else DecisionPolicy.model_validate(decision)
        except ValidationError:  # reported under decision.<key> by the field's own validation
            return {**raw, "costs": raw.get("costs") or {"false_negative": 0, "false_positive": 0}}
        derived = policy.costs()
        given = raw.get("costs")
        if given is not None:
            given_costs = given if isinstance(given, Costs) else Costs(**given)
            if given_costs.model_dump(exclude={"rationale"}) != derived.model_dump(exclude={"rationale"}):
                raise ValueError(
                    "costs disagree with decision (a decision policy sets them: false_negative = "
                    "success_rate × value, false_positive = true_positive = action_cost); drop costs"
                )
            return raw
        return {**raw, "costs": derived}

    @model_validator(mode="after")
    def _references_exist(self) -> DatasetSpec:
        known = set(self.input_columns) | {self.target.column} | ({self.id_column} if self.id_column else set())
        for feature in self.features:
            used = _columns_used_by(feature)
            missing = [name for name in used if name not in known]
            if missing:
                raise ValueError(f"features.{feature.name} uses undeclared column(s) {missing}")
            known.add(feature.name)
        for column in self.quality.segment_columns:
            if column not in known:
                raise ValueError(f"quality.segment_columns names undeclared column '{column}'")
        for column in self.fairness.protected:
            if column not in known:
                raise ValueError(f"fairness.protected names undeclared column '{column}'")
        if self.fairness.max_gap and not self.fairness.protected:
            raise ValueError("fairness.max_gap bounds gaps between groups: name the protected columns too")
        if self.raw_logs is not None:
            missing = [c for c in self.input_columns if c not in self.raw_logs.sessions]
            if missing:
                raise ValueError(f"raw_logs.sessions does not build input column(s) {missing}")
        if self.promotion.metric == "net_value" and self.decision is None:
            raise ValueError("promotion.metric net_value needs a decision section")
        overlap = set(self.columns.numeric) & set(self.columns.categorical)
        if overlap:
            raise ValueError(f"columns {sorted(overlap)} are declared both numeric and categorical")
        return self

    @property
    def input_columns(self) -> list[str]:
        """Raw model inputs, in a stable order: numeric first, then categorical."""
        return [*self.columns.numeric, *self.columns.categorical]

    @property
    def required_columns(self) -> list[str]:
        return [*self.id_columns, *self.input_columns, self.target.column]

    @property
    def id_columns(self) -> list[str]:
        """The id column as a list: empty when the data has none."""
        return [self.id_column] if self.id_column else []

    @property
    def derived_numeric(self) -> list[str]:
        return [f.name for f in self.features if not isinstance(f, BucketFeature)]

    @property
    def derived_categorical(self) -> list[str]:
        return [f.name for f in self.features if isinstance(f, BucketFeature)]

    def suite_path(self, settings: Settings) -> Path:
        if self.quality.suite and self.source_path is not None:
            return (self.source_path.parent / self.quality.suite).resolve()
        return settings.expectations_dir / f"{self.name}.json"

    def raw_logs_suite_path(self) -> Path:
        if self.raw_logs is None or self.source_path is None:
            raise SpecError(f"spec '{self.name}' has no raw_logs section")
        return (self.source_path.parent / self.raw_logs.suite).resolve()

    def raw_path(self, settings: Settings) -> Path:
        if self.raw_dir and self.source_path is not None:
            return (self.source_path.parent / self.raw_dir).resolve()
        return settings.raw_data_dir / self.name


def _columns_used_by(feature: FeatureDef) -> list[str]:
    if isinstance(feature, RatioFeature):
        return [feature.numerator, *feature.denominator]
    if isinstance(feature, CountEqualFeature):
        return list(feature.columns)
    return [feature.column]


def _format_validation_error(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        lines.append(f"  {key}: {problem['msg']}{_yaml_trap(problem)}")
    return "\n".join(lines)


def _yaml_trap(problem: Any) -> str:
    """Why a value that looks like text in the file is not text: YAML read it as a boolean or a number."""
    value = problem.get("input")
    if not str(problem.get("type", "")).startswith("string"):
        return ""
    if isinstance(value, bool):
        return f"; YAML read an unquoted word as the boolean {value}{YAML_BOOLEAN_HINT}"
    if isinstance(value, int | float):
        return f'; YAML read {value!r} as a number: quote it ("{value}") to keep it as text'
    return ""


def load_spec(path: str | Path) -> DatasetSpec:
    """Read and validate a spec file; raise ``SpecError`` naming each bad key."""
    spec_path = Path(path)
    if not spec_path.is_file():
        raise SpecError(f"spec file not found: {spec_path}")
    text = spec_path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SpecError(f"{spec_path}: not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise SpecError(f"{spec_path}: expected a mapping of keys at the top level")
    try:
        return DatasetSpec(
            **raw,
            source_path=spec_path.resolve(),
            content_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        )
    except ValidationError as error:
        raise SpecError(f"{spec_path}: invalid spec\n{_format_validation_error(error)}") from error


def resolve_spec(dataset: str | None, spec_path: str | Path | None, settings: Settings) -> DatasetSpec:
    """A spec given by path wins; otherwise the named dataset's spec under ``data/specs``."""
    if spec_path is not None:
        return load_spec(spec_path)
    if not dataset:
        raise SpecError("name a dataset (--dataset) or a spec file (--spec)")
    candidate = settings.specs_dir / f"{dataset}.yaml"
    if not candidate.is_file():
        known = sorted(p.stem for p in settings.specs_dir.glob("*.yaml"))
        raise SpecError(f"unknown dataset '{dataset}'; known: {known}")
    return load_spec(candidate)
