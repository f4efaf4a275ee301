"""A bad day for the flow's command line, for real: kill -9 in each stage, a slow server start, SIGTERM, a
truncated registry, tampered models and bentos.

Each run is ``python -m flows.retrain`` in its own session, starting its own Prefect server as a user's
would; afterwards no process of that session may be left, and the registry and store must be as good
as before.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import bentoml
import httpx
import psutil
import pytest
import yaml

from tests.integration.processes import Server, free_port
from tollgate.config.settings import PROJECT_ROOT
from tollgate.store.models import MODEL_FILE, model_name, verify_model
from tollgate.store.registry import RegistryError, last_good_path, read_registry, rollback

STAGE_MARKERS = {
    "ingest": "ingest: reading",
    "validate": "validate: ",
    "tournament": "-fold cross-validation on",
    "package": "package: saving",
    "promote": "promote: ",
}


@pytest.fixture
def served_artifacts(churn_champion, tmp_path) -> Path:
    """A copy of the session champion's artifacts (its registry names it), without the run cache."""
    artifacts = tmp_path / "artifacts"
    shutil.copytree(churn_champion["artifacts"], artifacts, ignore=shutil.ignore_patterns(".cache"))
    return artifacts


def _command_line(artifacts: Path, data: Path, **extra: str) -> tuple[subprocess.Popen, Path]:
    """The command line in a session of its own: its stdout (the JSON line) piped, its log (stderr) to a file."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_API")}
    environment |= {"TOLLGATE_ARTIFACTS_DIR": str(artifacts), "PREFECT_LOGGING_LEVEL": "INFO", **extra}
    log = artifacts.parent / f"command-{time.monotonic_ns()}.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "flows.retrain", "--dataset", "churn", "--data", str(data)],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    return process, log


def _wait_for(marker: str, log: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    """Until the command's log shows ``marker`` (a stage starting)."""
    deadline = time.monotonic() + timeout
    while marker not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker in log.read_text(), log.read_text()[-3000:]


def _session_processes(session: int) -> list[psutil.Process]:
    alive = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == session and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            continue
    return alive


@pytest.mark.parametrize("stage", list(STAGE_MARKERS))
def test_kill_9_in_any_stage_leaves_no_process_and_a_valid_registry(stage, served_artifacts, monthly_batches):
    """Check that SIGKILL to the command line in each stage leaves no process of its session (its Prefect
    server and any bento build end with it), the registry as it was (or validly replaced), and nothing in
    the store that does not verify (`:latest` included)."""
    registry = served_artifacts / "churn" / "registry.json"
    before = registry.read_bytes()
    command, log = _command_line(served_artifacts, monthly_batches / "churn", TOLLGATE_BUILD_BENTO="true")
    _wait_for(STAGE_MARKERS[stage], log, command)
    assert len(_session_processes(command.pid)) >= 2  # the command line and its Prefect server
    os.kill(command.pid, signal.SIGKILL)
    command.communicate()
    deadline = time.monotonic() + 30
    while _session_processes(command.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _session_processes(command.pid) == []
    after, earlier = read_registry(registry), json.loads(before)
    # As it was, or with this run's decision added whole (a kill just after promote's one atomic write).
    assert after["history"][: len(earlier["history"])] == earlier["history"]
    assert registry.read_bytes() == before or len(after["history"]) == len(earlier["history"]) + 1
    verify_model(after["champion"]["tag"], recorded=after["champion"]["sha256"])
    for model in bentoml.models.list(model_name("churn")):
        verify_model(str(model.tag))  # nothing unverified entered the store
    verify_model(f"{model_name('churn')}:latest")


def test_a_server_that_does_not_start_in_time_still_ends_with_the_json_line(
    served_artifacts, monthly_batches, tmp_path
):
    """Check a Prefect server slower than PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS gives exit 1 and the
    JSON line naming the setting (it exited 1 with no line at all). The server starts while the stages import
    (~3 s) and is waited for up to the timeout counted from its start; a new Prefect home (its database created
    and migrated first) keeps it from answering within that."""
    command, _ = _command_line(
        served_artifacts,
        monthly_batches / "churn",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1",
        PREFECT_HOME=str(tmp_path / "new-prefect-home"),
    )
    output, _ = command.communicate(timeout=120)
    summary = json.loads(output.strip().splitlines()[-1])
    assert command.returncode == 1 and summary["status"] == "failed"
    assert "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in summary["error"]
    assert _session_processes(command.pid) == []


def test_sigterm_ends_the_run_with_its_json_line(served_artifacts, monthly_batches):
    """Check SIGTERM mid-run prints the failed JSON line, exits 143 and leaves no process behind."""
    command, log = _command_line(served_artifacts, monthly_batches / "churn")
    _wait_for(STAGE_MARKERS["tournament"], log, command)
    command.send_signal(signal.SIGTERM)
    output, _ = command.communicate(timeout=60)
    summary = json.loads(output.strip().splitlines()[-1])  # the last line on stdout
    assert command.returncode == 143 and summary == {**summary, "status": "failed"}
    assert "SIGTERM" in summary["error"]
    time.sleep(2)
    assert _session_processes(command.pid) == []


def test_a_truncated_registry_is_read_from_its_last_good_copy(served_artifacts):
    """Check a registry cut short is read from registry.json.last-good (with a warning), and that with both
    unreadable every reader (rollback, `bentoml serve`) names the file instead of a bare JSONDecodeError."""
    registry = served_artifacts / "churn" / "registry.json"
    good = read_registry(registry)
    last_good_path(registry).write_text(registry.read_text())  # what every write leaves beside it
    registry.write_text(registry.read_text()[:120])
    assert read_registry(registry) == good
    last_good_path(registry).write_text("{")
    with pytest.raises(RegistryError, match="registry.json is not valid JSON.*last good copy"):
        read_registry(registry)
    with pytest.raises(RegistryError, match="registry.json"):
        rollback(registry)
    served = subprocess.run(
        [sys.executable, "-m", "bentoml", "serve", "service.service:Tollgate", "--port", str(free_port())],
        cwd=PROJECT_ROOT,
        env={**os.environ, "TOLLGATE_DATASET": "churn", "TOLLGATE_ARTIFACTS_DIR": str(served_artifacts)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert served.returncode != 0 and f"registry {registry} is not valid JSON" in served.stderr


def _tampered_copy(tag: str, store: Path) -> Path:
    """A BentoML store holding a copy of ``tag`` whose pickle is replaced and its recorded checksum updated
    to match: what an attacker with write access to the store would do."""
    name, version = tag.split(":")
    source = Path(os.environ["BENTOML_HOME"]) / "models" / name / version
    target = store / "models" / name / version
    shutil.copytree(source, target)
    (store / "models" / name / "latest").write_text(version)
    model_file = target / MODEL_FILE
    model_file.write_bytes(model_file.read_bytes() + b"\0")  # the payload: any other pickle
    info = yaml.safe_load((target / "model.yaml").read_text())
    from tollgate.store.files import sha256_file

    info["metadata"]["sha256"][MODEL_FILE] = sha256_file(model_file)
    (target / "model.yaml").write_text(yaml.safe_dump(info))
    return store


def test_a_pickle_replaced_with_its_checksum_is_refused(churn_champion, tmp_path):
    """Check `bentoml serve` refuses a model whose pickle and recorded checksum were both changed (it ran the
    new pickle): the signature no longer matches."""
    tag = churn_champion["summary"]["model_tag"]
    store = _tampered_copy(tag, tmp_path / "bentoml")
    served = subprocess.run(
        [sys.executable, "-m", "bentoml", "serve", "service.service:Tollgate", "--port", str(free_port())],
        cwd=PROJECT_ROOT,
        env={**os.environ, "BENTOML_HOME": str(store), "TOLLGATE_DATASET": "churn", "TOLLGATE_MODEL_TAG": tag},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert served.returncode != 0
    assert "ModelIntegrityError" in served.stderr and "do not match their signature" in served.stderr


def test_a_changed_bento_is_not_imported(churn_champion, tmp_path):
    """Check the champion's exported bento imports into a fresh store (`python -m service.import_bento`) only
    unchanged: a byte changed in the file (its source or its model) is refused with the reason, and
    nothing is imported."""
    champion = read_registry(churn_champion["artifacts"] / "churn" / "registry.json")["champion"]
    exported = Path(champion["bento_path"])
    assert champion["bento_sha256"] and champion["sha256"]
    changed = tmp_path / exported.name
    payload = bytearray(exported.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    changed.write_bytes(bytes(payload))
    shutil.copy(exported.with_name(exported.name + ".sig"), changed.with_name(changed.name + ".sig"))
    fresh = {**os.environ, "BENTOML_HOME": str(tmp_path / "fresh-store")}

    def import_file(path: Path) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "service.import_bento", str(path)]
        return subprocess.run(command, cwd=PROJECT_ROOT, env=fresh, capture_output=True, text=True, timeout=120)

    refused = import_file(changed)
    assert refused.returncode == 1 and "signed as" in refused.stderr, refused.stderr
    assert not list((tmp_path / "fresh-store").glob("bentos/*/*"))
    imported = import_file(exported)
    assert imported.returncode == 0 and champion["bento_tag"] in imported.stdout, imported.stderr
    assert list((tmp_path / "fresh-store").glob("bentos/*/*"))


def test_a_registry_gone_bad_under_a_running_service_keeps_it_serving(served_artifacts, tmp_path):
    """Check the hot-swap watcher survives a registry that becomes unreadable (both copies): it says so on
    every check and the served champion keeps answering."""
    registry = served_artifacts / "churn" / "registry.json"
    server = Server(
        "service.service:Tollgate",
        {
            "TOLLGATE_DATASET": "churn",
            "TOLLGATE_ARTIFACTS_DIR": str(served_artifacts),
            "TOLLGATE_RELOAD_SECONDS": "0.5",
            "TOLLGATE_WORKERS": "1",
            "TOLLGATE_PREDICTION_LOG_DIR": str(tmp_path / "predictions"),
        },
        inherit_tollgate=False,
    )
    try:
        server.wait_ready()
        example = httpx.get(f"{server.url}/metadata", timeout=30).json()["input_schema"]["example"]
        for damaged in (registry, last_good_path(registry)):
            damaged.write_text("{")
        time.sleep(3)
        assert httpx.post(f"{server.url}/predict", json=example, timeout=30).status_code == 200
        assert server.output.read_text().count("is not valid JSON") >= 2  # checked, and checked again
    finally:
        server.stop()
