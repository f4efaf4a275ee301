"""The service under hostile and unlucky input: a real `bentoml serve` of the session's churn champion.

A fuzzer (schemathesis, fixed seed) and the hand-made requests that once answered 500 must all get a
4xx naming what is wrong; unknown paths must not grow memory; a prediction log that cannot be written
must show in /readyz and /metrics while answers keep coming.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.generation import GenerationMode

from tests.integration.processes import Server
from tollgate.store.prediction_log import read_prediction_log

API_KEY = "fuzz-key"
FUZZ_EXAMPLES = 300  # per operation and generation mode
BODY_TIMEOUT_SECONDS = 2


@pytest.fixture(scope="module")
def server(churn_champion, tmp_path_factory):
    logs = tmp_path_factory.mktemp("hardening") / "predictions"
    served = Server(
        "service.service:Tollgate",
        {
            "TOLLGATE_DATASET": "churn",
            "TOLLGATE_MODEL_TAG": churn_champion["summary"]["model_tag"],
            "TOLLGATE_API_KEY": API_KEY,
            "TOLLGATE_PREDICTION_LOG_DIR": str(logs),
            "TOLLGATE_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_SECONDS),
        },
    )
    try:
        yield served.wait_ready()
    finally:
        served.stop()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, headers={"X-API-Key": API_KEY}, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def record(client) -> dict:
    return dict(client.get("/metadata").json()["input_schema"]["example"])


def _fuzz(operation, mode: GenerationMode, url: str, session: requests.Session) -> tuple[Counter[int], list[str]]:
    """Send ``FUZZ_EXAMPLES`` generated requests (fixed seed) to one operation: their statuses, and every 5xx."""
    statuses: Counter[int] = Counter()
    server_errors: list[str] = []

    @settings(
        max_examples=FUZZ_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case):
        response = case.call(base_url=url, session=session, headers={"X-API-Key": API_KEY})
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            server_errors.append(f"{case.as_curl_command():.400} → {response.text:.300}")

    send()
    return statuses, server_errors


def test_fuzzed_requests_never_get_a_server_error(server):
    """Check schemathesis' valid and invalid requests to every API (300 of each, fixed seed) get no 5xx."""
    schema = schemathesis.openapi.from_url(f"{server.url}/docs.json")
    posts = [operation for result in schema.get_all_operations() if (operation := result.ok()).method.upper() == "POST"]
    assert {operation.path for operation in posts} == {"/predict", "/predict_batch", "/explain"}
    results = {}
    with requests.Session() as session:
        for operation, mode in itertools.product(posts, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):
            results[(operation.path, mode.value)] = _fuzz(operation, mode, server.url, session)
    server_errors = [error for _, errors in results.values() for error in errors]
    assert not server_errors, server_errors[:5]
    for (path, mode), (statuses, _) in results.items():
        assert sum(statuses.values()) >= FUZZ_EXAMPLES * 0.9, (path, mode, statuses)  # really sent
        if mode == "negative":
            assert statuses[400] > 0, (path, statuses)  # invalid requests were refused ...
        else:
            assert statuses[200] > 0, (path, statuses)  # ... and valid ones scored


def _assert_named_client_error(response: httpx.Response, status: int, *located: object) -> list[dict]:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["error"], str) and isinstance(body["detail"], list) and body["detail"]
    assert all({"type", "loc", "msg"} <= set(problem) for problem in body["detail"])
    if located:
        assert [list(problem["loc"]) for problem in body["detail"]] == [list(located)], body
    return body["detail"]


def test_an_id_beyond_64_bits_is_scored_and_logged_as_text(client, record, server):
    """Check an integer id of 31 digits gets 200 on /predict and in a batch, logged as its digits (it was a
    500 after scoring: the log's JSON encoder refused it and the line was lost)."""
    big = 10**30
    single = client.post("/predict", json={**record, "customer_id": big}, headers={"X-Request-ID": "big-id"})
    batch = client.post("/predict_batch", json=[record, {**record, "customer_id": big}])
    assert single.status_code == 200 and batch.status_code == 200, (single.text, batch.text)
    lines = read_prediction_log(Path(server.output).parent / "predictions").frame.to_dict(orient="records")
    assert next(line for line in lines if line["request_id"] == "big-id")["inputs"]["customer_id"] == str(big)
    assert sum(line["inputs"].get("customer_id") == str(big) for line in lines) == 2  # a batch line holds its rows


@pytest.mark.parametrize("path", ["/predict", "/predict_batch", "/explain"])
@pytest.mark.parametrize("field", ["tenure_months", "monthly_charges"])
def test_a_400_digit_number_is_a_client_error_naming_the_field(client, record, path, field):
    """Check an integer too large for a float gets 400 naming the field (an OverflowError was a 500)."""
    body = {**record, field: 10**400}
    response = client.post(path, json=[body] if path == "/predict_batch" else body)
    _assert_named_client_error(response, 400, *([0, field] if path == "/predict_batch" else [field]))


@pytest.mark.parametrize("path", ["/predict", "/predict_batch", "/explain"])
@pytest.mark.parametrize(
    "raw",
    [b"{", b"\x00", b"[\xff\xfe]", b"[" * 1000 + b"]" * 1000, b"[" + b"9" * 5000 + b"]", b'{"a": 1e400}'],
    ids=["unclosed", "nul", "not-utf8", "nested-1000", "5000-digits", "float-overflow"],
)
def test_malformed_json_is_a_client_error_on_every_endpoint(client, path, raw):
    """Check broken JSON gets the same 400 from every endpoint (/predict_batch answered these with 500)."""
    response = client.post(path, content=raw, headers={"Content-Type": "application/json"})
    _assert_named_client_error(response, 400)


@pytest.mark.parametrize("media_type", ["multipart/form-data", "multipart/form-data; boundary=x", "application/xml"])
def test_a_body_that_is_not_json_gets_415_naming_the_header(client, record, media_type):
    """Check a JSON body sent as multipart (BentoML's form parser answered 500) is refused with 415."""
    response = client.post("/predict", content=json.dumps(record), headers={"Content-Type": media_type})
    _assert_named_client_error(response, 415, "header", "Content-Type")


@pytest.mark.parametrize("top_k", ["²", "0", "51", "x", "-1", "1.5"])
def test_a_bad_top_k_is_a_client_error(client, record, top_k):
    """Check ``?top_k=²`` (a digit to str.isdigit, not to int) and other bad values get 400 naming top_k."""
    response = client.post("/explain", params={"top_k": top_k}, json=record)
    _assert_named_client_error(response, 400, "top_k")


def test_a_body_shorter_than_its_content_length_times_out_with_408(server, record):
    """Check a request declaring more bytes than it sends is answered 408 after the body timeout (it hung)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        head = (
            f"POST /predict HTTP/1.1\r\nHost: test\r\nX-API-Key: {API_KEY}\r\n"
            "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
        )
        connection.sendall(head.encode() + json.dumps(record)[:40].encode())
        started = time.monotonic()
        answer = connection.recv(4096).decode()
        head_part, _, body = answer.partition("\r\n\r\n")
        declared = int(head_part.lower().split("content-length:")[1].split("\r\n")[0])
        while len(body.encode()) < declared:  # the body may come in a packet of its own
            more = connection.recv(4096).decode()
            if not more:
                break
            body += more
        answer = f"{head_part}\r\n\r\n{body}"
    assert answer.startswith("HTTP/1.1 408"), answer
    assert time.monotonic() - started < BODY_TIMEOUT_SECONDS + 10
    assert "Content-Length" in answer


def test_the_published_error_schema_is_what_errors_look_like(client):
    """Check /docs.json documents ``detail`` as a list of located problems, the guard's statuses, the API-key
    scheme on the APIs that need it, and the service's own title and version (it was `tollgate-churn:dev`,
    version None)."""
    document = client.get("/docs.json").json()
    assert document["components"]["schemas"]["InvalidArgument"]["properties"]["detail"]["type"] == "array"
    for path in ("/predict", "/predict_batch", "/explain"):
        assert {"400", "401", "408", "413", "415"} <= set(document["paths"][path]["post"]["responses"])
        assert document["paths"][path]["post"]["security"] == [{"apiKey": []}, {"bearer": []}]
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    assert document["info"]["title"] == "Tollgate churn risk model"
    assert document["info"]["version"] == client.get("/metadata").json()["model_version"]
    assert "security" not in document["paths"]["/readyz"]["get"]
    _assert_named_client_error(client.post("/predict", json={}), 400)


def _worker_memory(server: Server) -> int:
    processes = [psutil.Process(server.process.pid), *psutil.Process(server.process.pid).children(recursive=True)]
    return sum(process.memory_info().rss for process in processes)


def test_unknown_paths_are_404_and_do_not_grow_metrics_or_memory(server):
    """Check 10,000 unauthenticated requests to distinct made-up paths are 404s that add no metrics series
    (each one added a series: /metrics grew 0.4 → 44.6 MB, each worker +120–140 MB)."""

    def probe(start: int) -> Counter[int]:
        statuses: Counter[int] = Counter()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for index in range(start, start + 2_500):
                statuses[http.get(f"/scan/{index}/admin.php").status_code] += 1
        return statuses

    metrics_before = len(httpx.get(f"{server.url}/metrics").content)
    memory_before = _worker_memory(server)
    with ThreadPoolExecutor(4) as pool:
        statuses = sum(pool.map(probe, range(0, 10_000, 2_500)), Counter())
    metrics_after = httpx.get(f"{server.url}/metrics").text
    assert statuses == Counter({404: 10_000})
    assert "/scan/" not in metrics_after
    assert len(metrics_after.encode()) - metrics_before < 5_000
    assert _worker_memory(server) - memory_before < 30 * 1024 * 1024
    assert 'tollgate_unknown_path_requests_total{dataset="churn"}' in metrics_after


def test_concurrent_clients_reach_both_workers(client, record, server):
    """Check both workers answer when several clients call at once (one keep-alive connection stays with the
    worker that accepted it; the README says so)."""
    folder = Path(server.output).parent / "predictions"
    before = {path.name: path.read_bytes().count(b"\n") for path in folder.glob("predictions-w*.jsonl")}

    def calls(_: int) -> None:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": API_KEY}, timeout=60) as http:
            for _ in range(40):
                assert http.post("/predict", json=record).status_code == 200

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(calls, range(8)))
    after = {path.name: path.read_bytes().count(b"\n") for path in folder.glob("predictions-w*.jsonl")}
    grew = {name for name, lines in after.items() if lines > before.get(name, 0)}
    assert grew == {"predictions-w1.jsonl", "predictions-w2.jsonl"}, (before, after)


def test_a_full_disk_keeps_answering_and_shows_in_readyz_and_metrics(churn_champion, tmp_path):
    """Check that with the log on a full device (/dev/full) predictions still answer 200, /readyz says 503,
    /metrics counts every lost line, and a writable log makes the service ready again."""
    logs = tmp_path / "predictions"
    logs.mkdir()
    (logs / "predictions-w1.jsonl").symlink_to("/dev/full")
    served = Server(
        "service.service:Tollgate",
        {
            "TOLLGATE_DATASET": "churn",
            "TOLLGATE_MODEL_TAG": churn_champion["summary"]["model_tag"],
            "TOLLGATE_PREDICTION_LOG_DIR": str(logs),
            "TOLLGATE_WORKERS": "1",
        },
    )
    try:
        served.wait_ready()
        with httpx.Client(base_url=served.url, timeout=60) as http:
            example = http.get("/metadata").json()["input_schema"]["example"]
            answers = [http.post("/predict", json=example).status_code for _ in range(50)]
            assert answers == [200] * 50
            assert http.get("/readyz").status_code == 503
            lost = [
                line for line in http.get("/metrics").text.splitlines() if line.startswith("tollgate_prediction_log_")
            ]
            assert lost and float(lost[0].split()[-1]) == 50, lost
            os.unlink(logs / "predictions-w1.jsonl")
            assert http.post("/predict", json=example).status_code == 200
            assert http.get("/readyz").status_code == 200
            assert len((logs / "predictions-w1.jsonl").read_text().splitlines()) == 1
    finally:
        served.stop()
    assert "No space left on device" in served.output.read_text()
