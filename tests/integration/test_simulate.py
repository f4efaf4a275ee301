"""The month-by-month simulation, end to end on small generated months."""

from __future__ import annotations

import json

import pytest

from flows.simulate import simulate


def test_simulation_replays_months_in_order(monthly_batches, tmp_path):
    """Check each month is retrained and decided, the champion serves the next month into a log,
    monitoring judges it, and the table has a row per month with the champion's metrics."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOLLGATE_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
        patch.setenv("TOLLGATE_RAW_DATA_DIR", str(monthly_batches))
        result = simulate(dataset="churn", months=2)
    rows = result["months"]
    assert [row["holdout"] for row in rows] == ["2026-01", "2026-02"]
    assert rows[0]["decision"] == "promoted" and rows[1]["decision"] in ("promoted", "rejected")
    assert rows[0]["served_month"] == "2026-02" and rows[0]["flagged"] > 0 and rows[0]["drift"] in ("yes", "no")
    assert rows[1]["served_month"] == "—"  # no month after the last one to serve
    # the champion's list for the served month, realised against that month's labels
    assert rows[0]["listed"] > 0 and isinstance(rows[0]["realised_value"], int)
    assert 0 <= rows[0]["realised_precision"] <= 1 and rows[1]["realised_value"] == "—"
    lists = tmp_path / "artifacts" / "simulation" / "churn" / "lists"
    assert (lists / "2026-02.csv").is_file() and (lists / "2026-02.outcome.json").is_file()
    assert all(0.7 <= row["champion_roc_auc"] <= 1 for row in rows)
    assert len(result["table"].strip().splitlines()) == 4 and "| holdout |" in result["table"]  # header, rule, 2 months
    logged = list((tmp_path / "artifacts" / "simulation" / "churn" / "predictions").glob("predictions-w*.jsonl"))
    assert logged and json.loads(logged[0].read_text().splitlines()[0])["endpoint"] == "replay"
    assert not (tmp_path / "artifacts" / "churn").exists()  # the production registry is never touched
    assert (tmp_path / "artifacts" / "simulation" / "churn" / "registry.json").is_file()
