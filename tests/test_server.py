"""The command's temporary Prefect server, started before anything else is imported (``flows.server``)."""

from __future__ import annotations

import json
import urllib.request

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows import server as early
from flows.cli import prefect_api


def test_no_early_server_for_an_import_a_help_request_or_a_url_in_the_environment(monkeypatch):
    """Check no server is started when the flow's module is imported rather than run, when the command was asked for
    help, or when ``PREFECT_API_URL`` is in the environment."""
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    early.start_prefect_server_early("flows.retrain", [])
    early.start_prefect_server_early("__main__", ["--dataset", "churn", "--help"])
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    early.start_prefect_server_early("__main__", ["--dataset", "churn"])
    assert early.early_server() is None


def test_a_url_prefect_reads_from_elsewhere_stops_the_early_server_unused(monkeypatch):
    """Check that one server is started however often it is asked for, and that when Prefect's settings name an API
    the environment did not (a profile, a .env file), it is stopped unused and the command talks to that API."""
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    early.start_prefect_server_early("__main__", ["--dataset", "churn"])
    early.start_prefect_server_early("__main__", ["--dataset", "churn"])
    assert len(early._early) == 1
    server = early._early[0]
    assert server.process.poll() is None
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}), prefect_api() as url:
        assert url == "http://127.0.0.1:9/api"
    assert server.process.wait(timeout=10) is not None
    assert early.early_server() is None


@pytest.mark.integration
def test_the_early_server_is_warmed_with_read_only_queries_and_ends_when_stopped(tmp_path, monkeypatch):
    """Check a temporary server (real ``uvicorn``, a Prefect home of its own) answers its warm-up queries once it is
    up, that the warm-up wrote nothing (no flow, no run), and that ``stop`` ends it."""
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    server = early.TemporaryServer()
    try:
        assert server.warmed.wait(timeout=120), "the warm-up queries were not answered"
        assert all(early._answers(f"{server.url}{path}", {"limit": 1}) for path in early.WARM_UP)
        count = urllib.request.Request(
            f"{server.url}/flows/count", data=b"{}", headers={"Content-Type": "application/json"}
        )
        with early._DIRECT.open(count) as response:
            assert json.loads(response.read()) == 0
    finally:
        server.stop()
    assert server.process.poll() is not None
