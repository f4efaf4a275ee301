"""Tollgate's prediction service: one BentoML service class, the dataset chosen by ``TOLLGATE_DATASET``.

    TOLLGATE_DATASET=churn bentoml serve service.service:Tollgate      # from the repo root

Thin by design: validate (the request model is generated from the model's own spec; batches column by
column, ``tollgate.core.batch``) → clean (the same rules as training: ``clean_record``, and per distinct
value for batches) → score (the fast path: one record's plan on plain floats, a batch encoded as arrays)
→ decide (the cost-tuned threshold) → log (one JSON line per prediction, one per batch).
"""

from __future__ import annotations

import gc
import io
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
import bentoml
import bentoml._internal.server as bentoml_server
import numpy as np
import orjson
import pandas as pd
import polars as pl
import pydantic_core
import yaml
from fastapi import FastAPI
from pydantic import BaseModel, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from starlette.requests import Request
from starlette.responses import Response
from threadpoolctl import ThreadpoolController

from service.guard import RequestGuard, Routes, bound_request_metrics, parse_json, problem
from tollgate.config.settings import Settings
from tollgate.config.spec import DatasetSpec
from tollgate.core.batch import (
    TABLE_MEDIA_TYPES,
    BatchRejected,
    Problem,
    TooManyRows,
    batch_from_arrow,
    batch_from_body,
    read_table,
)
from tollgate.core.clean import clean_checked_columns, clean_record
from tollgate.core.decision import RISK_LEVELS, Decisions, decide, decide_many
from tollgate.core.explain import Explainer
from tollgate.core.fastpath import FastScorer
from tollgate.core.policy import expected_value, percentiles
from tollgate.core.schema import raise_problems, record_model
from tollgate.store.models import (
    PackagedModel,
    champion_tag,
    load_packaged_model,
    read_serving_record,
    registry_checksums,
    verify_model,
)
from tollgate.store.prediction_log import PredictionLog, batch_entry, prediction_entries
from tollgate.store.registry import RegistryError, champion_entry, registry_path


def _bento_envs() -> dict[str, str]:
    """Inside a built bento (``<bento>/src/service/service.py``), the envs recorded at build time
    name the model it was built for; ``bentoml serve <bento>`` does not export them itself."""
    bento_yaml = Path(__file__).resolve().parents[2] / "bento.yaml"
    if not bento_yaml.is_file():
        return {}
    return {entry["name"]: entry["value"] for entry in yaml.safe_load(bento_yaml.read_text()).get("envs") or []}


def _champion() -> tuple[Settings, str, DatasetSpec, dict]:
    """The model this service serves and the spec it was trained with (read from the store)."""
    for name, value in _bento_envs().items():
        os.environ.setdefault(name, value)
    settings = Settings()
    tag = champion_tag(settings.dataset, settings)
    try:
        stored = bentoml.models.get(tag)
    except bentoml.exceptions.NotFound:
        raise RuntimeError(
            f"no model '{tag}' in the BentoML store; train one first "
            f"(make run, or python -m flows.retrain --dataset {settings.dataset})"
        ) from None
    # A tampered or unsigned model stops `bentoml serve` here, before it listens or loads a pickle.
    verify_model(str(stored.tag), settings, registry_checksums(settings.dataset, str(stored.tag), settings))
    serving = read_serving_record(str(stored.tag))
    return settings, str(stored.tag), DatasetSpec(**serving["spec"]), serving


logger = logging.getLogger("tollgate.service")


def spans_only_when_traced() -> None:
    """BentoML's OpenTelemetry middleware records a span per request even with tracing off (sample rate 0, no
    exporter: its sampler always records, for request ids), and in 1.4 those spans were never freed: a worker
    grew ~5 kB a request (20 MB per 4,000) and each full garbage collection walked them all. With tracing not
    configured the middleware is told to skip every path; configure ``tracing`` in BentoML's settings to trace."""
    from bentoml._internal.configuration.containers import BentoMLContainer
    from opentelemetry.util.http import ExcludeList

    if not BentoMLContainer.tracing.sample_rate.get() and not BentoMLContainer.tracing.exporter_type.get():
        BentoMLContainer.tracing_excluded_urls.set(ExcludeList([".*"]))


spans_only_when_traced()


def settle_heap() -> None:
    """Move everything loaded so far (the model, SHAP's background, BentoML, pandas) out of the garbage
    collector's reach: every ~1,000 requests a full collection walked it all and stalled an answer for
    100–150 ms. Objects made after this are collected as usual, but young collections come every
    ``YOUNG_COLLECTION_EVERY`` allocations instead of 700: a request's objects die by reference count (a 5,000-
    record batch makes ~10,000 containers, which 700 collected ~14 times each request, walking them for nothing)."""
    gc.unfreeze()  # after a hot swap, the old model's objects are collectable again
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, older, oldest)


YOUNG_COLLECTION_EVERY = 20_000


OPENMP = ThreadpoolController()
"""LightGBM and HistGradientBoosting score batches single-threaded here: the service runs a worker per core,
and a worker's OpenMP team competing with the other worker (and with single records) for two cores slowed a
one-record LightGBM answer from 0.2 ms to 5–7 ms. Single records use one thread through the fast path."""
SETTINGS, MODEL_TAG, SPEC, MODEL_METADATA = _champion()
Record = record_model(SPEC, MODEL_METADATA.get("input_schema", {}).get("example"))

ARROW_STREAM = "application/vnd.apache.arrow.stream"


def _batch_openapi() -> dict[str, Any]:
    """/predict_batch's request body in the OpenAPI document: the record schema as an array or as columns, and
    the Arrow and Parquet media types (batches are checked column by column, not by a per-record validator)."""
    record = Record.model_json_schema()
    columns = {
        "type": "object",
        "title": f"{Record.__name__} columns",
        "required": ["columns"],
        "additionalProperties": False,
        "properties": {
            "columns": {
                "type": "object",
                "description": "each field's values in record order, every array as long",
                "required": list(SPEC.input_columns),
                "additionalProperties": False,
                "properties": {name: {"type": "array", "items": field} for name, field in record["properties"].items()},
            }
        },
    }
    tables = {
        media_type: {"schema": {"type": "string", "format": "binary", "description": f"{described}, a column a field"}}
        for media_type, described in TABLE_MEDIA_TYPES.items()
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"oneOf": [{"type": "array", "items": record}, columns]}},
                **tables,
            },
        },
        "responses": {
            "200": {
                "content": {
                    ARROW_STREAM: {
                        "schema": {
                            "type": "string",
                            "format": "binary",
                            "description": f"the answers as an Arrow IPC stream, with 'Accept: {ARROW_STREAM}'",
                        }
                    }
                }
            },
            "400": {
                "description": "a problem in the batch, each located by row and field",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
            "413": {
                "description": f"a body over TOLLGATE_MAX_BODY_BYTES or more than {SETTINGS.max_batch_rows:,} rows",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
    }


BATCH_OPENAPI = _batch_openapi()


class UnusableJSON(ValueError):
    """A JSON body no parser can take (broken syntax, not UTF-8, nested too deep)."""


def _parsed_batch(body: bytes) -> Any:
    """A batch's JSON body, parsed once, by pydantic's parser: a string repeated across records (a category) is one
    object, hashed once when the column is factorised (the whole batch path 14.4 → 12.9 ms for 5,000 records), and
    an integer beyond 64 bits stays an integer (orjson reads it as a float: an id of 31 digits became a float). Its
    refusals are explained by ``parse_json``, as for every other endpoint."""
    if not body.strip():
        return {}
    try:
        return pydantic_core.from_json(body)
    except ValueError:
        parsed, trouble = parse_json(body, limit_depth=False)  # the batch checks never walk into a value
        if trouble is not None:
            raise UnusableJSON(trouble) from None
        return parsed


unknown_categories = bentoml.metrics.Counter(
    name="tollgate_unknown_category_total",
    documentation="Request values of a categorical field the model never saw (encoded as all zeros)",
    labelnames=["dataset", "field"],
)
decisions = bentoml.metrics.Counter(
    name="tollgate_decisions_total",
    documentation="Predictions by risk level",
    labelnames=["dataset", "risk_level"],
)
log_lines_lost = bentoml.metrics.Counter(
    name="tollgate_prediction_log_lines_lost_total",
    documentation="Predictions answered whose log line could not be written (disk full, folder gone)",
    labelnames=["dataset"],
)
unknown_paths = bentoml.metrics.Counter(
    name="tollgate_unknown_path_requests_total",
    documentation="Requests to paths the service does not serve (answered 404, one series for all)",
    labelnames=["dataset"],
)


class Prediction(BaseModel):
    prediction: str | int = Field(description="the label acted on: the positive label at or above the threshold")
    probability: float = Field(description="probability of the positive label")
    threshold: float = Field(description="the decision threshold (/metadata says how it was set)")
    risk_level: Literal["High", "Medium", "Low"]
    recommendation: str
    expected_value: float = Field(description="expected dollars of acting on this record rather than not")
    percentile: float | None = Field(description="share of training records scored below this one, in percent")
    model_version: str


class Contribution(BaseModel):
    feature: str
    contribution: float = Field(description="log-odds; positive pushes towards the positive label")


class Explanation(Prediction):
    contributions: list[Contribution]


@dataclass(frozen=True)
class Served:
    """A verified model with its compiled scorer and explainer: what one request uses, start to end."""

    model: PackagedModel
    scorer: FastScorer
    explainer: Explainer
    quantiles: np.ndarray | None  # training scores a record's percentile is read from (None: not recorded)

    @classmethod
    def load(cls, tag: str, recorded: dict[str, str] | None) -> Served:
        """Verify (signature, files, and ``recorded``: the registry's record of them) and load the model ``tag``."""
        model = load_packaged_model(tag, SETTINGS, recorded)
        recorded = model.metadata.get("score_quantiles")
        return cls(
            model,
            FastScorer.compile(model.pipeline),
            Explainer(model.pipeline, model.background),
            np.asarray(recorded, dtype=float) if recorded else None,
        )

    def percentiles(self, probabilities: np.ndarray) -> np.ndarray | None:
        """Each probability's percentile among training scores (None when they were not recorded)."""
        return None if self.quantiles is None else percentiles(probabilities, self.quantiles)


METADATA_PATH = "/metadata"
BATCH_PATH = "/predict_batch"
# Routes BentoML's API decorator does not fit: /metadata, and /predict_batch, which reads its body once itself (JSON
# records, columnar JSON or an Arrow table) instead of through BentoML's JSON and pydantic layers (a 5,000-row
# body was parsed twice, ~40 % of a worker's time).
http_app = FastAPI(title="Tollgate", docs_url=None, redoc_url=None, openapi_url=None)


# envs reach the workers and travel with a built bento. The model tag is pinned only when it was
# given (as packaging does for each bento): from source, the service follows the registry.
_ENVS = [{"name": "TOLLGATE_DATASET", "value": SPEC.name}]
if SETTINGS.model_tag:
    _ENVS.append({"name": "TOLLGATE_MODEL_TAG", "value": MODEL_TAG})


@bentoml.service(name=f"tollgate-{SPEC.name}", traffic={"timeout": 60}, workers=SETTINGS.workers, envs=_ENVS)
@bentoml.asgi_app(http_app, path="/")
class Tollgate:
    model_ref = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        # Refuses to start (ModelIntegrityError) if any model file changed since it was verified.
        tag = str(self.model_ref.tag)
        self.served = Served.load(tag, registry_checksums(SETTINGS.dataset, tag, SETTINGS))
        self.spec = self.served.model.spec
        self._rejected_tags: set[str] = set()
        self._batch_limiter: anyio.CapacityLimiter | None = None
        if SETTINGS.model_tag is None and SETTINGS.reload_seconds > 0:
            registry = registry_path(self.spec.name, SETTINGS)
            threading.Thread(
                target=self._follow_registry, args=(registry,), daemon=True, name="tollgate-registry-watch"
            ).start()
        self.log = PredictionLog(
            SETTINGS.prediction_logs(self.spec.name),
            bentoml.server_context.worker_index or 1,
            SETTINGS.prediction_log_max_bytes,
            SETTINGS.prediction_log_backups,
        )
        self.known = {column: set(values) for column, values in self.spec.columns.categorical.items()}
        settle_heap()

    def __is_ready__(self) -> bool:
        """Not ready (``/readyz`` 503) while predictions cannot be logged: answers would go unmonitored."""
        return self.log.health().writable

    def _follow_registry(self, registry: Path) -> None:
        """Swap in a newly promoted champion without a restart: load and verify it beside the
        serving one, then replace one reference (requests in flight keep the model they started with)."""
        while True:
            time.sleep(SETTINGS.reload_seconds)
            try:
                champion = champion_entry(registry)
            except (OSError, ValueError, RegistryError) as error:  # read again next time; the served model stays
                logger.warning("registry %s unreadable: %s", registry, error)
                continue
            tag = champion["tag"] if champion else None
            if tag is None or tag == self.served.model.tag or tag in self._rejected_tags:
                continue
            try:
                candidate = Served.load(tag, champion.get("sha256"))
                if candidate.model.spec.input_columns != self.spec.input_columns:
                    raise ValueError("its input columns differ from the served request schema; restart to serve it")
            except Exception as error:  # keep serving the verified model we have
                self._rejected_tags.add(tag)
                logger.error("not switching to champion %s: %s", tag, error)
                continue
            previous, self.served = self.served.model.tag, candidate
            del candidate
            settle_heap()  # the old model's cycles freed, the new one's frozen: one collection now, not one per 1,000
            logger.info("now serving champion %s (was %s)", tag, previous)

    def _decision(self, served: Served, probability: float) -> dict:
        decision = decide(probability, served.model.threshold, self.spec)
        decisions.labels(dataset=self.spec.name, risk_level=decision.risk_level).inc()
        return {
            "prediction": decision.prediction,
            "probability": probability,
            "threshold": served.model.threshold,
            "risk_level": decision.risk_level,
            "recommendation": decision.recommendation,
            "expected_value": round(float(expected_value(probability, self.spec.costs)), 2),
            "percentile": None if (ranks := served.percentiles(np.array([probability]))) is None else float(ranks[0]),
            "model_version": served.model.version,
        }

    def _count_unknown(self, cleaned: dict) -> None:
        for column, known in self.known.items():
            value = cleaned.get(column)
            if isinstance(value, str) and value not in known:
                unknown_categories.labels(dataset=self.spec.name, field=column).inc()

    @staticmethod
    def _request_id(ctx: bentoml.Context) -> str:
        """The caller's X-Request-ID (at most 128 characters), else a new one; echoed back."""
        request_id = (ctx.request.headers.get("x-request-id") or "")[:128] or uuid.uuid4().hex
        ctx.response.headers["x-request-id"] = request_id
        return request_id

    def _log(
        self, ctx: bentoml.Context, endpoint: str, inputs: list[dict], answers: list[dict], started: float
    ) -> None:
        """Append the request's lines; a line that cannot be written is counted, never fails the answer."""
        request_id = self._request_id(ctx)
        self._write_log(
            prediction_entries(request_id, endpoint, inputs, answers, (time.perf_counter() - started) * 1000)
        )

    def _write_log(self, entries: list[dict[str, Any]]) -> None:
        """Append log lines; predictions whose line cannot be written are counted, never fail the answer."""
        lost = self.log.write(entries)
        if lost:
            log_lines_lost.labels(dataset=self.spec.name).inc(lost)

    @bentoml.api(route="/predict")
    async def predict(self, record: Record, /, ctx: bentoml.Context) -> Prediction:
        """Score one record: the decision at the cost-tuned threshold, its risk level and what to do."""
        started = time.perf_counter()
        served = self.served
        inputs = record.model_dump()
        cleaned = clean_record(inputs, self.spec)
        self._count_unknown(cleaned)
        answer = self._decision(served, served.scorer.predict_proba(cleaned))
        self._log(ctx, "predict", [inputs], [answer], started)
        return Prediction(**answer)

    @http_app.post(
        BATCH_PATH,
        response_model=list[Prediction],
        summary="Score many records at once",
        openapi_extra=BATCH_OPENAPI,
    )
    async def predict_batch(self, request: Request) -> Response:
        """Score a batch: a JSON array of records, columnar JSON (``{"columns": {"<field>": [values]}}``), or an
        Arrow table (``application/vnd.apache.arrow.stream`` / ``.file``, ``application/vnd.apache.parquet``).

        Checked column by column with /predict's rules and messages (located by row), cleaned per distinct value
        and encoded as arrays (``FastScorer.predict_proba_many``, equal to the Pipeline). The answer is a JSON
        array, one answer per record in order; send ``Accept: application/vnd.apache.arrow.stream`` for an Arrow
        table of the same columns. The batch is one line of the prediction log, column by column.
        """
        started = time.perf_counter()
        request_id = (request.headers.get("x-request-id") or "")[:128] or uuid.uuid4().hex
        # Not ``request.body()``: it joins the body with Starlette's closing empty chunk, a copy of every byte.
        chunks = [chunk async for chunk in request.stream() if chunk]
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        media_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        arrow_answer = ARROW_STREAM in request.headers.get("accept", "")
        try:
            # One batch at a time per worker (a worker per core): batches interleaved by the GIL evicted each
            # other's rows from the cache and each cost twice its CPU time; queued, they do not.
            content, answer_type = await anyio.to_thread.run_sync(
                self._score_batch, body, media_type, arrow_answer, request_id, started, limiter=self._batch_slot()
            )
        except BatchRejected as rejected:
            return _rejected(f"{Record.__name__} list", rejected.problems, request_id)
        except TooManyRows as error:
            return _error(413, problem(str(error), "too_many_rows"), request_id)
        except UnusableJSON as error:
            return _error(400, problem(f"the body is not usable JSON: {error}", "json_invalid"), request_id)
        return Response(content, media_type=answer_type, headers={"x-request-id": request_id})

    def _batch_slot(self) -> anyio.CapacityLimiter:
        if self._batch_limiter is None:  # made in the worker's event loop, on first use
            self._batch_limiter = anyio.CapacityLimiter(1)
        return self._batch_limiter

    def _score_batch(
        self, body: bytes, media_type: str, arrow_answer: bool, request_id: str, started: float
    ) -> tuple[bytes, str]:
        served = self.served  # the whole batch is scored by the model it started with, whatever a swap does
        if media_type in TABLE_MEDIA_TYPES:
            batch = batch_from_arrow(read_table(body, media_type, SETTINGS.max_batch_rows), self.spec)
        else:
            batch = batch_from_body(_parsed_batch(body), self.spec, SETTINGS.max_batch_rows)
        cleaned = clean_checked_columns(batch, self.spec)
        # the cleaning report already counts the categories it kept without knowing them
        for column, unknown in cleaned.report.values_repaired.get("unknown_category_kept", {}).items():
            unknown_categories.labels(dataset=self.spec.name, field=column).inc(unknown)
        with OPENMP.limit(limits=1, user_api="openmp"):  # a worker per core: no OpenMP team to fight the other
            probabilities = served.scorer.predict_proba_many(cleaned)
        decided = decide_many(probabilities, served.model.threshold, self.spec)
        for level, count in decided.counts().items():
            decisions.labels(dataset=self.spec.name, risk_level=level).inc(count)
        answers = _answers(probabilities, decided, served, self.spec)
        entry = batch_entry(
            request_id,
            "predict_batch",
            {column: _loggable(values) for column, values in batch.received.items()},
            {
                "probability": probabilities,
                "decision": np.array(decided.labels, dtype=object)[decided.act.astype(np.intp)].tolist(),
                "risk_level": np.array(RISK_LEVELS, dtype=object)[decided.level].tolist(),
            },
            served.model.version,
            (time.perf_counter() - started) * 1000,
        )
        self._write_log([entry])
        if arrow_answer:
            stream = io.BytesIO()
            answers.write_ipc_stream(stream)
            return stream.getvalue(), ARROW_STREAM
        return answers.write_json().encode(), "application/json"

    @bentoml.api(route="/explain")
    def explain(self, record: Record, /, ctx: bentoml.Context) -> Explanation:
        """Score one record and say which features pushed it up or down (SHAP, log-odds); ``?top_k=N``."""
        started = time.perf_counter()
        top_k = _top_k(ctx, self.spec.serving.explain_top_k)
        served = self.served
        inputs = record.model_dump()
        cleaned = clean_record(inputs, self.spec)
        self._count_unknown(cleaned)
        answer = self._decision(served, served.scorer.predict_proba(cleaned))
        frame = pd.DataFrame([{column: cleaned.get(column, np.nan) for column in self.spec.input_columns}])
        contributions = served.explainer.top_contributions(frame, top_k)[0]
        self._log(ctx, "explain", [inputs], [answer], started)
        return Explanation(**answer, contributions=contributions)

    @http_app.get(METADATA_PATH)
    def metadata(self) -> dict:
        """What is being served: version, metrics, threshold, costs and the request schema."""
        served = self.served
        info = served.model.metadata
        return {
            "dataset": self.spec.name,
            "model_tag": served.model.tag,
            "model_version": served.model.version,
            "run_id": info.get("run_id"),
            "algorithm": info.get("algorithm"),
            "threshold": served.model.threshold,
            "threshold_rule": info.get("threshold_rule", "cost-tuned on out-of-fold training predictions"),
            "decision_policy": self.spec.decision.model_dump() if self.spec.decision else None,
            "holdout_month": info.get("holdout_month"),
            "holdout_metrics": info.get("holdout_metrics"),
            "cv_roc_auc": info.get("cv_metrics", {}).get("roc_auc", {}).get("mean"),
            "input_sha256": info.get("input_sha256"),
            "model_sha256": info.get("sha256", {}),
            "costs": self.spec.costs.model_dump(),
            "risk_levels": {
                "High": f"probability >= max(threshold, {self.spec.serving.high_risk_probability})",
                "Medium": "threshold <= probability < High",
                "Low": "probability < threshold",
            },
            "feature_names": list(served.scorer.feature_names),
            "input_schema": Record.model_json_schema(),
        }


def _error(status: int, body: dict, request_id: str) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers={"x-request-id": request_id}
    )


def _rejected(title: str, problems: list[Problem], request_id: str) -> Response:
    """400 with every problem, in the shape BentoML gives a record's validation errors."""
    try:
        raise_problems(title, problems)
    except ValidationError as error:
        body = {
            "error": f"{error.error_count()} validation error for {error.title}",
            "detail": error.errors(include_context=False, include_input=False, include_url=False),
        }
        return _error(400, body, request_id)
    raise AssertionError("a rejected batch names at least one problem")


def _loggable(values: Any) -> Any:
    """A received column as the log's JSON serialiser takes it (it writes float arrays itself, not objects)."""
    return values.tolist() if isinstance(values, np.ndarray) and values.dtype == object else values


def _repeated(value: Any, dtype: pl.DataType, rows: int) -> pl.Series:
    """One value ``rows`` times, without polars' query engine (``pl.repeat`` runs one and waits on its thread pool:
    13 % of a batch's time in a busy worker)."""
    return pl.Series([value], dtype=dtype).new_from_index(0, rows)


def _answers(probabilities: np.ndarray, decided: Decisions, served: Served, spec: DatasetSpec) -> pl.DataFrame:
    """A batch's answers as columns (what /predict answers, one row per record), written out by polars: a
    5,000-row answer as 5,000 dicts cost 2.4 ms, as columns 0.4 ms (floats written exactly: they read back equal)."""
    rows = len(probabilities)
    ranks = served.percentiles(probabilities)
    return pl.DataFrame(
        {
            "prediction": pl.Series(decided.labels).gather(decided.act.astype(np.uint32)),
            "probability": probabilities,
            "threshold": np.full(rows, served.model.threshold),
            "risk_level": pl.Series(RISK_LEVELS).gather(decided.level),
            "recommendation": pl.Series(decided.advice).gather(decided.level),
            "expected_value": np.round(expected_value(probabilities, spec.costs), 2),
            "percentile": ranks if ranks is not None else _repeated(None, pl.Float64, rows),
            "model_version": _repeated(served.model.version, pl.String, rows),
        }
    )


def _top_k(ctx: bentoml.Context, default: int) -> int:
    raw = ctx.request.query_params.get("top_k")
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 50:  # isdigit alone takes '²'
        raise ValidationError.from_exception_data(
            "query",
            [
                InitErrorDetails(
                    type=PydanticCustomError("top_k", "top_k must be an integer from 1 to 50"),
                    loc=("top_k",),
                    input=raw,
                )
            ],
        )
    return int(raw)


ROUTES = Routes.of(
    api=[*(api.route for api in Tollgate.apis.values()), BATCH_PATH],
    other=[METADATA_PATH],
    static_folder=Path(bentoml_server.__file__).parent / "static_content",
)
bound_request_metrics(ROUTES, count_unknown=lambda: unknown_paths.labels(dataset=SPEC.name).inc())
Tollgate.add_asgi_middleware(
    RequestGuard,
    routes=ROUTES,
    api_key=SETTINGS.api_key,
    max_body_bytes=SETTINGS.max_body_bytes,
    body_timeout_seconds=SETTINGS.body_timeout_seconds,
    bulk={BATCH_PATH: frozenset(TABLE_MEDIA_TYPES)},
    info={
        "title": f"Tollgate {SPEC.name} risk model",
        "version": MODEL_TAG.split(":")[-1],
        "description": (
            f"{SPEC.description or SPEC.name}. Serves {MODEL_TAG}: /predict scores one record, /predict_batch a JSON "
            "array, /explain adds the top signed SHAP contributions, /metadata says what is served and how its "
            "threshold was set. Every error is {error, detail: [{type, loc, msg}]}."
        ),
    },
)
