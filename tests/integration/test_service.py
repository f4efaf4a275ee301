"""The prediction service over HTTP: a real `bentoml serve` subprocess on a free loopback port.

The models are trained by the real flow (in this process, on the session's Prefect API) into the
session's own BentoML store; each server is started from the repo root exactly as a user would.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.retrain import retrain
from tests.integration.processes import Server, free_port
from tollgate.config.settings import PROJECT_ROOT
from tollgate.config.spec import load_spec
from tollgate.core.batch import arrow_stream
from tollgate.core.clean import clean_frame
from tollgate.core.schema import request_records
from tollgate.store.registry import read_registry

API_KEY = "s3cret-test-key"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
MAX_BODY_BYTES = 400_000
LOG_MAX_BYTES = 40_000
ANSWER_KEYS = {
    "prediction",
    "probability",
    "threshold",
    "risk_level",
    "recommendation",
    "expected_value",
    "percentile",
    "model_version",
}


@pytest.fixture(scope="module")
def trained(churn_champion, monthly_batches, tmp_path_factory) -> dict[str, dict]:
    """Both datasets trained and packaged by the real flow (churn: the session's champion; security here, with
    its bento), with holdout rows to send."""
    artifacts = tmp_path_factory.mktemp("service-artifacts")
    summaries = {"churn": churn_champion["summary"]}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOLLGATE_ARTIFACTS_DIR", str(artifacts))
        patch.setenv("TOLLGATE_BUILD_BENTO", "true")  # test_the_built_bento_serves_its_own_model serves it
        summaries["security"] = retrain(dataset="security", data=str(monthly_batches / "security"))
    models = {}
    for dataset, summary in summaries.items():
        spec = load_spec(PROJECT_ROOT / "data" / "specs" / f"{dataset}.yaml")
        raw = pd.read_csv(
            monthly_batches / dataset / f"{summary['holdout_month']}.csv", dtype=str, keep_default_na=False
        )
        holdout = clean_frame(raw.rename(columns=spec.rename), spec).frame
        models[dataset] = {
            "summary": summary,
            "spec": spec,
            "holdout": holdout,
            "records": request_records(holdout, spec),
            "pipeline": joblib.load(summary["model_path"]),
        }
    return models


@pytest.fixture(scope="module")
def churn_server(trained, tmp_path_factory):
    logs = tmp_path_factory.mktemp("churn-serve") / "predictions"
    server = Server(
        "service.service:Tollgate",
        {
            "TOLLGATE_DATASET": "churn",
            "TOLLGATE_MODEL_TAG": trained["churn"]["summary"]["model_tag"],
            "TOLLGATE_API_KEY": API_KEY,
            "TOLLGATE_PREDICTION_LOG_DIR": str(logs),
            "TOLLGATE_PREDICTION_LOG_MAX_BYTES": str(LOG_MAX_BYTES),
            "TOLLGATE_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        },
    )
    try:
        yield server.wait_ready()
    finally:
        server.stop()


@pytest.fixture
def client(churn_server):
    with httpx.Client(base_url=churn_server.url, headers={"X-API-Key": API_KEY}, timeout=60) as http:
        yield http


def test_predict_answers_like_the_pipeline(client, trained):
    """Check /predict gives the Pipeline's probability (1e-9) and the decision at the tuned threshold."""
    churn = trained["churn"]
    expected = churn["pipeline"].predict_proba(churn["holdout"][churn["spec"].input_columns])[:, 1]
    threshold = churn["summary"]["winner"]["threshold"]
    for record, probability in list(zip(churn["records"], expected, strict=False))[:40]:
        response = client.post("/predict", json=record, headers={"X-Request-ID": "call-42"})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert set(answer) == ANSWER_KEYS and response.headers["x-request-id"] == "call-42"
        assert abs(answer["probability"] - probability) < 1e-9
        assert answer["threshold"] == threshold
        assert answer["prediction"] == ("Yes" if probability >= threshold else "No")
        level = "High" if probability >= max(threshold, 0.5) else "Medium" if probability >= threshold else "Low"
        assert answer["risk_level"] == level and answer["recommendation"]
        assert answer["model_version"] == churn["summary"]["model_tag"].split(":")[1]
        # the expected value of acting (p × 30 % × $2,400 − $50) and where the record sits among training scores
        assert answer["expected_value"] == pytest.approx(probability * 720 - 50, abs=0.01)
        assert 0 <= answer["percentile"] <= 100
        assert (answer["percentile"] >= 92) == (probability >= threshold) or abs(probability - threshold) < 0.01


def test_predict_batch_scores_every_record_in_order(client, trained):
    """Check /predict_batch returns one answer per record, in order, equal to the Pipeline's."""
    churn = trained["churn"]
    expected = churn["pipeline"].predict_proba(churn["holdout"][churn["spec"].input_columns])[:, 1]
    response = client.post("/predict_batch", json=churn["records"])
    assert response.status_code == 200, response.text
    answers = response.json()
    assert len(answers) == len(churn["records"]) and set(answers[0]) == ANSWER_KEYS
    np.testing.assert_allclose([a["probability"] for a in answers], expected, rtol=0, atol=1e-9)


def test_bulk_bodies_get_the_answers_json_records_get(client, trained):
    """Check the same records as columnar JSON, an Arrow IPC stream and a Parquet file get the answers the JSON
    records get, an Arrow answer (on Accept) holds them column by column, and /docs.json documents the bodies."""
    records = trained["churn"]["records"][:200]
    expected = client.post("/predict_batch", json=records).json()
    columns = {"columns": {name: [record[name] for record in records] for name in records[0]}}
    assert client.post("/predict_batch", json=columns).json() == expected
    stream = arrow_stream(records)
    parquet = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records), parquet)
    for media_type, body in ((ARROW_STREAM, stream), ("application/vnd.apache.parquet", parquet.getvalue())):
        answer = client.post("/predict_batch", content=body, headers={"Content-Type": media_type})
        assert answer.status_code == 200, answer.text
        assert answer.json() == expected, media_type
    answer = client.post(
        "/predict_batch", content=stream, headers={"Content-Type": ARROW_STREAM, "Accept": ARROW_STREAM}
    )
    assert answer.headers["content-type"] == ARROW_STREAM
    assert pa.ipc.open_stream(answer.content).read_all().to_pylist() == expected
    documented = client.get("/docs.json").json()["paths"]["/predict_batch"]["post"]["requestBody"]["content"]
    assert {"application/json", ARROW_STREAM, "application/vnd.apache.parquet"} <= set(documented)


def test_bulk_bodies_that_cannot_be_used_are_client_errors_naming_why(client, trained):
    """Check a body that is not what its Content-Type says, a type no endpoint reads, a column of the wrong type
    and a bad value in a column each get a 4xx naming the body, the header, the column or the row."""
    records = trained["churn"]["records"][:5]
    unreadable = client.post("/predict_batch", content=b"PAR1 not really", headers={"Content-Type": ARROW_STREAM})
    assert unreadable.status_code == 400 and unreadable.json()["detail"][0]["type"] == "body_unreadable"
    csv = client.post("/predict_batch", content=b"a,b\n1,2\n", headers={"Content-Type": "text/csv"})
    assert csv.status_code == 415 and ARROW_STREAM in csv.json()["error"]
    as_text = [{**record, "tenure_months": str(record["tenure_months"])} for record in records]
    wrong_type = client.post("/predict_batch", content=arrow_stream(as_text), headers={"Content-Type": ARROW_STREAM})
    assert wrong_type.status_code == 400 and wrong_type.json()["detail"][0]["loc"] == ["tenure_months"]
    columns = {name: [record[name] for record in records] for name in records[0]}
    columns["tenure_months"][3] = -1
    bad_value = client.post("/predict_batch", json={"columns": columns})
    assert bad_value.status_code == 400 and bad_value.json()["detail"][0]["loc"] == [3, "tenure_months"]


def test_the_source_files_column_names_get_the_same_answers(client, trained):
    """Check records in the source export's names (the spec's rename map: TotalCharges, customerID) are
    answered exactly as the same records in the spec's names, on /predict and /predict_batch."""
    churn = trained["churn"]
    source_of = {new: old for old, new in churn["spec"].rename.items()}
    renamed = [{source_of.get(key, key): value for key, value in record.items()} for record in churn["records"][:20]]
    assert "TotalCharges" in renamed[0]
    expected = client.post("/predict_batch", json=churn["records"][:20]).json()
    assert client.post("/predict_batch", json=renamed).json() == expected
    single = client.post("/predict", json=renamed[0])
    assert single.status_code == 200, single.text
    assert single.json()["probability"] == expected[0]["probability"]


def test_concurrent_batches_are_batched_without_mixing_answers(client, trained):
    """Check concurrent /predict_batch calls (queued one at a time in each worker) each get their own answers."""
    records = trained["churn"]["records"]
    chunks = [records[i : i + 7] for i in range(0, 70, 7)]
    results: dict[int, list] = {}

    def call(index: int) -> None:
        results[index] = client.post("/predict_batch", json=chunks[index]).json()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(chunks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    single = client.post("/predict_batch", json=records[:70]).json()
    # Not bit-for-bit: a linear model's matrix product may round differently in a batch of 7 and of 70 (~1e-17);
    # answers swapped between requests would differ by far more than 1e-12.
    batched = [a["probability"] for i in range(len(chunks)) for a in results[i]]
    np.testing.assert_allclose(batched, [a["probability"] for a in single], rtol=0, atol=1e-12)


def test_explain_gives_signed_top_contributions(client, trained):
    """Check /explain returns the prediction plus top-k signed contributions; ?top_k is honoured."""
    record = trained["churn"]["records"][0]
    answer = client.post("/explain", json=record).json()
    assert set(answer) >= ANSWER_KEYS and len(answer["contributions"]) == 5
    magnitudes = [abs(c["contribution"]) for c in answer["contributions"]]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert any(c["contribution"] < 0 for c in answer["contributions"]) or any(
        c["contribution"] > 0 for c in answer["contributions"]
    )
    assert len(client.post("/explain?top_k=3", json=record).json()["contributions"]) == 3
    bad = client.post("/explain?top_k=zero", json=record)
    assert bad.status_code == 400 and "top_k must be an integer" in bad.text


def test_metadata_describes_the_served_model(client, trained):
    """Check /metadata names the version, threshold, metrics, checksum and the request schema."""
    churn = trained["churn"]
    metadata = client.get("/metadata").json()
    assert metadata["model_tag"] == churn["summary"]["model_tag"]
    assert metadata["threshold"] == churn["summary"]["winner"]["threshold"]
    assert "break-even" in metadata["threshold_rule"] and "capacity" in metadata["threshold_rule"]
    assert metadata["decision_policy"]["capacity"]["share"] == 0.08
    assert metadata["model_sha256"]["model.joblib"] == churn["summary"]["model_sha256"]
    assert metadata["holdout_metrics"]["roc_auc"] == pytest.approx(churn["summary"]["winner"]["test_roc_auc"], abs=1e-4)
    assert metadata["cv_roc_auc"] == pytest.approx(churn["summary"]["winner"]["cv_roc_auc"], abs=1e-4)
    assert set(metadata["input_schema"]["properties"]) >= set(churn["spec"].input_columns)
    assert metadata["input_schema"]["properties"]["tenure_months"]["anyOf"][0] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 120,
    }


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"contract": None}, "contract", "contract is required"),  # None here: the key is removed
        ({"tenure_months": "twelve"}, "tenure_months", "tenure_months must be an integer"),
        ({"tenure_months": 7.5}, "tenure_months", "tenure_months must be an integer"),
        ({"tenure_months": -4}, "tenure_months", "tenure_months must be at least 0"),
        ({"monthly_charges": "55"}, "monthly_charges", "monthly_charges must be a number"),
        ({"gender": 1}, "gender", "gender must be a string"),
        ({"promo": "x"}, "promo", "promo is not a field of a churn record"),
    ],
)
def test_bad_records_get_400_naming_the_field(client, trained, changes, field, message):
    """Check each kind of bad record gets a 400 whose detail names the field and what was expected."""
    record = {**trained["churn"]["records"][0], **changes}
    record = {key: value for key, value in record.items() if not (key == "contract" and value is None)}
    response = client.post("/predict", json=record)
    assert response.status_code == 400
    assert [(error["loc"], error["msg"][: len(message)]) for error in response.json()["detail"]] == [([field], message)]


def test_every_missing_field_is_listed(client):
    """Check an empty object lists every one of the spec's fields as missing, in one response."""
    response = client.post("/predict", json={})
    assert response.status_code == 400
    missing = {error["loc"][0] for error in response.json()["detail"] if error["type"] == "missing"}
    assert len(missing) == 19


@pytest.mark.parametrize("raw", ['{"tenure_months": NaN}', '{"monthly_charges": Infinity}', "{not json", "[1, 2]", ""])
def test_malformed_bodies_are_client_errors(client, raw):
    """Check NaN/inf literals, broken JSON, non-objects and empty bodies are 400, never 500."""
    response = client.post("/predict", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text


def test_one_bad_record_in_a_batch_is_named_by_position(client, trained):
    """Check a batch with one bad record is refused with that record's index and field."""
    records = [dict(r) for r in trained["churn"]["records"][:5]]
    records[3]["tenure_months"] = -1
    response = client.post("/predict_batch", json=records)
    assert response.status_code == 400
    assert [error["loc"][-2:] for error in response.json()["detail"]] == [[3, "tenure_months"]]


def test_unknown_categories_are_accepted_and_counted(client, trained, churn_server):
    """Check an unseen category scores (the encoder ignores it) and shows in the Prometheus metric."""

    def counted() -> float:
        text = httpx.get(f"{churn_server.url}/metrics").text
        lines = [
            line
            for line in text.splitlines()
            if line.startswith("tollgate_unknown_category_total") and 'field="contract"' in line
        ]
        return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0

    before = counted()
    record = dict(trained["churn"]["records"][0], contract="Three year")
    assert client.post("/predict", json=record).status_code == 200
    assert counted() == before + 1


@pytest.mark.parametrize("path", ["/predict", "/predict_batch", "/explain"])
def test_api_key_is_required(churn_server, trained, path):
    """Check predict/explain need the key (401 without or with a wrong one); Bearer works too."""
    body = trained["churn"]["records"][0]
    body = [body] if path == "/predict_batch" else body
    assert httpx.post(churn_server.url + path, json=body).status_code == 401
    assert httpx.post(churn_server.url + path, json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    ok = httpx.post(churn_server.url + path, json=body, headers={"Authorization": f"Bearer {API_KEY}"})
    assert ok.status_code == 200


def test_health_metrics_and_docs_stay_open_but_metadata_does_not(churn_server):
    """Check /healthz, /readyz, /metrics and the OpenAPI docs need no key; /metadata does."""
    for path in ("/healthz", "/readyz", "/metrics", "/docs.json"):
        assert httpx.get(churn_server.url + path).status_code == 200, path
    assert "/predict" in httpx.get(churn_server.url + "/docs.json").json()["paths"]
    assert httpx.get(churn_server.url + "/metadata").status_code == 401


def test_oversized_bodies_get_413(client, trained):
    """Check a body over the limit is refused with 413, whether its length is declared or chunked."""
    records = trained["churn"]["records"]
    big = json.dumps(records * (MAX_BODY_BYTES // len(json.dumps(records)) + 1)).encode()
    assert len(big) > MAX_BODY_BYTES
    declared = client.post("/predict_batch", content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413 and "larger than" in declared.json()["error"]

    def chunks():
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    chunked = client.post("/predict_batch", content=chunks(), headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413


def test_prediction_log_has_a_line_per_prediction_and_rotates(client, trained, churn_server):
    """Check every prediction is logged as one JSON line with its inputs and decision; files rotate."""
    log_dir = Path(churn_server.output).parent / "predictions"
    record = trained["churn"]["records"][1]
    response = client.post("/predict", json=record, headers={"X-Request-ID": "log-check"})
    assert response.status_code == 200
    for _ in range(100):  # enough lines to pass the 40 kB rotation size
        client.post("/predict", json=record)
    files = sorted(log_dir.glob("predictions-w*.jsonl*"))  # one file per worker, plus rotated ones
    assert any(path.suffix == ".1" for path in files), files  # rotated at least once
    lines = [json.loads(line) for path in files for line in path.read_text().splitlines()]
    entry = next(line for line in lines if line["request_id"] == "log-check")
    assert entry["inputs"] == {**record, "customer_id": None}
    assert entry["probability"] == response.json()["probability"]
    assert entry["decision"] == response.json()["prediction"] and entry["latency_ms"] > 0
    assert {"time", "model_version", "endpoint", "risk_level"} <= set(entry)


def test_security_model_is_served_from_its_own_spec(trained, tmp_path):
    """Check the service serves the security model: session records in, attack decisions out."""
    security = trained["security"]
    server = Server(
        "service.service:Tollgate",
        {
            "TOLLGATE_DATASET": "security",
            "TOLLGATE_MODEL_TAG": security["summary"]["model_tag"],
            "TOLLGATE_PREDICTION_LOG_DIR": str(tmp_path / "predictions"),
        },
    )
    try:
        server.wait_ready()
        expected = security["pipeline"].predict_proba(security["holdout"][security["spec"].input_columns])[:, 1]
        record = dict(security["records"][0], src_ip="10.1.2.3")
        answer = httpx.post(f"{server.url}/predict", json=record).json()
        assert set(answer) == ANSWER_KEYS and abs(answer["probability"] - expected[0]) < 1e-9
        assert answer["prediction"] in (0, 1)
        batch = httpx.post(f"{server.url}/predict_batch", json=security["records"], timeout=60).json()
        np.testing.assert_allclose([a["probability"] for a in batch], expected, rtol=0, atol=1e-9)
        explained = httpx.post(f"{server.url}/explain", json=record).json()
        assert len(explained["contributions"]) == 5
        refused = httpx.post(f"{server.url}/predict", json=dict(record, failed_logins=-2))
        assert refused.status_code == 400 and "failed_logins must be at least 0" in refused.text
        assert httpx.get(f"{server.url}/metadata").json()["dataset"] == "security"
    finally:
        server.stop()


def test_the_built_bento_serves_its_own_model(trained, tmp_path):
    """Check `bentoml serve <bento>` (no Tollgate settings but the signing key) serves the model it was built for."""
    security = trained["security"]
    server = Server(
        security["summary"]["bento_tag"],
        {"TOLLGATE_PREDICTION_LOG_DIR": str(tmp_path / "predictions")},
        cwd=tmp_path,
        inherit_tollgate=False,
    )
    try:
        server.wait_ready()
        metadata = httpx.get(f"{server.url}/metadata").json()
        assert metadata["dataset"] == "security" and metadata["model_tag"] == security["summary"]["model_tag"]
    finally:
        server.stop()


def test_the_bento_carries_locked_serving_requirements_only(trained):
    """Check the built bento installs pyproject's `serving` extra, every package pinned to the version installed
    here (scikit-learn unpickles the Pipeline it pickled), neither Prefect nor Great Expectations, only the
    library and the service as code, and a Dockerfile with LightGBM's OpenMP runtime."""
    from importlib import metadata

    import bentoml
    from packaging.requirements import Requirement

    from tollgate.store.models import serving_requirements

    bento = Path(bentoml.bentos.get(trained["security"]["summary"]["bento_tag"]).path)
    lines = (bento / "env" / "python" / "requirements.txt").read_text().lower().splitlines()
    pinned = dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))
    assert "prefect" not in pinned and "great-expectations" not in pinned
    for requirement in map(Requirement, serving_requirements()):
        assert pinned[requirement.name.lower()] == metadata.version(requirement.name), requirement.name
    assert pinned["scikit-learn"] == metadata.version("scikit-learn") and len(pinned) > 50
    assert "libgomp1" in (bento / "env" / "docker" / "Dockerfile").read_text()
    code = {path.relative_to(bento / "src").parts[0] for path in (bento / "src").rglob("*.py")}
    assert code == {"service", "tollgate"}


def test_a_tampered_model_is_refused_at_start(trained, tmp_path):
    """Check `bentoml serve` exits with an integrity error when a model file changed after packaging."""
    tag = trained["churn"]["summary"]["model_tag"]
    name, version = tag.split(":")
    store = Path(os.environ["BENTOML_HOME"])
    copy = tmp_path / "bentoml"
    shutil.copytree(store / "models" / name / version, copy / "models" / name / version)
    with open(copy / "models" / name / version / "model.joblib", "ab") as model_file:
        model_file.write(b"\0")
    env = {**os.environ, "BENTOML_HOME": str(copy), "TOLLGATE_DATASET": "churn", "TOLLGATE_MODEL_TAG": tag}
    result = subprocess.run(
        [sys.executable, "-m", "bentoml", "serve", "service.service:Tollgate", "--port", str(free_port())],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "ModelIntegrityError" in result.stderr and "refusing to load it" in result.stderr


def test_bare_bentoml_serve_at_the_root_serves_the_champion(churn_champion, trained, tmp_path):
    """Check `bentoml serve` with no arguments at the repository root (pyproject's [tool.bentoml.build]) serves
    the registry's churn champion and answers /predict."""
    server = Server(
        None,
        {
            "TOLLGATE_ARTIFACTS_DIR": str(churn_champion["artifacts"]),
            "TOLLGATE_PREDICTION_LOG_DIR": str(tmp_path / "predictions"),
        },
        inherit_tollgate=False,
    )
    try:
        server.wait_ready()
        response = httpx.post(f"{server.url}/predict", json=trained["churn"]["records"][0], timeout=30)
        assert response.status_code == 200, response.text
        champion = read_registry(churn_champion["artifacts"] / "churn" / "registry.json")["champion"]["tag"]
        assert response.json()["model_version"] == champion.split(":")[1]  # the promotion tests may replace it
    finally:
        server.stop()


def test_a_lightgbm_champion_answers_exactly_under_mixed_single_and_batch_traffic(monthly_batches, tmp_path):
    """Check a served LightGBM model (single records through the fast path, one thread; batches single-threaded
    in each worker) answers single records and batches arriving together exactly as its Pipeline does: the
    thread limits change no answer (their latency is in benchmarks/serve_bench.py --mixed)."""
    import yaml

    from tests.integration.conftest import SHIPPED_SPECS, fast_spec
    from tollgate.config.settings import Settings

    spec_file = tmp_path / "churn.yaml"
    spec = fast_spec(SHIPPED_SPECS / "churn.yaml", Settings())
    lightgbm = [c for c in spec["tournament"]["candidates"] if c["estimator"] == "lightgbm"]
    spec_file.write_text(yaml.safe_dump({**spec, "tournament": {**spec["tournament"], "candidates": lightgbm}}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOLLGATE_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
        summary = retrain(spec=str(spec_file), data=str(monthly_batches / "churn"))
    assert summary["winner"]["model"] == "lightgbm"
    churn = load_spec(spec_file)
    raw = pd.read_csv(monthly_batches / "churn" / f"{summary['holdout_month']}.csv", dtype=str, keep_default_na=False)
    holdout = clean_frame(raw.rename(columns=churn.rename), churn).frame
    records = request_records(holdout, churn)
    expected = joblib.load(summary["model_path"]).predict_proba(holdout[churn.input_columns])[:, 1]
    server = Server(
        "service.service:Tollgate",
        {
            "TOLLGATE_DATASET": "churn",
            "TOLLGATE_MODEL_TAG": summary["model_tag"],
            "TOLLGATE_PREDICTION_LOG_DIR": str(tmp_path / "log"),
        },
    )
    try:
        server.wait_ready()
        batches: list[list[float]] = []

        def send_batches() -> None:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                for _ in range(6):
                    batches.append([a["probability"] for a in http.post("/predict_batch", json=records).json()])

        sender = threading.Thread(target=send_batches)
        sender.start()
        with httpx.Client(base_url=server.url, timeout=60) as http:
            singles = [http.post("/predict", json=records[i % len(records)]).json()["probability"] for i in range(150)]
        sender.join()
        np.testing.assert_allclose(singles, [expected[i % len(records)] for i in range(150)], rtol=0, atol=1e-9)
        assert len(batches) == 6
        for probabilities in batches:
            np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-9)
    finally:
        server.stop()
