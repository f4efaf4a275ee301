"""Monitoring that means something: a window since the last check, no retrain without labels the champion has
not seen, a cooldown after a request, and the request as a Prefect event."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from flows.monitor import monitor
from tasks.simulate import replay_traffic
from tests.conftest import SEED
from tollgate.config.settings import Settings
from tollgate.config.spec import resolve_spec
from tollgate.synth.generate import make_batch


def drifted_traffic(folder: Path, month: str, index: int) -> None:
    """A month of churn customers whose tenure is four years longer and who all have monthly contracts."""
    batch = make_batch("churn", month, index, 12, 600, SEED)
    tenure = batch["tenure_months"].astype(float).clip(upper=60) + 48
    batch.assign(tenure_months=tenure.astype(int).astype(str), contract="Month-to-month").to_csv(
        folder / f"{month}.csv", index=False
    )


def test_drift_asks_for_a_retrain_only_with_new_labels_and_once_per_cooldown(
    churn_champion, monthly_batches, tmp_path, monkeypatch
):
    """Check, against the session's champion: drifted traffic with no month newer than the champion's is not a
    retrain; a second check with no new traffic has an empty window; once a new labelled month lands, the event
    is emitted and (no deployment here) the flow retrains; more drift the next day is within the cooldown."""
    artifacts = tmp_path / "artifacts"
    shutil.copytree(churn_champion["artifacts"], artifacts, ignore=shutil.ignore_patterns("monitoring"))
    raw, traffic, log = tmp_path / "raw", tmp_path / "traffic", tmp_path / "predictions"
    shutil.copytree(monthly_batches / "churn", raw / "churn")
    (traffic / "churn").mkdir(parents=True)
    monkeypatch.setenv("TOLLGATE_ARTIFACTS_DIR", str(artifacts))
    monkeypatch.setenv("TOLLGATE_PREDICTION_LOG_DIR", str(log))
    spec = resolve_spec("churn", None, Settings())

    def serve_drifted(month: str, index: int) -> None:
        drifted_traffic(traffic / "churn", month, index)
        monkeypatch.setenv("TOLLGATE_RAW_DATA_DIR", str(traffic))
        replay_traffic.fn(spec, Settings(), month, log)
        monkeypatch.setenv("TOLLGATE_RAW_DATA_DIR", str(raw))

    serve_drifted("2026-09", 8)
    first = monitor(dataset="churn")
    assert first["drifted"] and first["predictions"] >= 500 and first["retrain"] is None
    assert "exactly the champion's own input: wait for new labels" in first["retrain_decision"]["reason"]
    state = json.loads((artifacts / "churn" / "monitoring" / "state.json").read_text())
    assert state["checked_until"] and "retrain_requested_at" not in state

    second = monitor(dataset="churn")
    assert second["predictions"] == 0 and not second["drifted"] and second["window_since"] == state["checked_until"]
    assert "since the last check" in Path(second["report"]).read_text()

    make_batch("churn", "2026-03", 4, 12, 500, SEED).to_csv(raw / "churn" / "2026-03.csv", index=False)
    serve_drifted("2026-10", 9)
    third = monitor(dataset="churn")
    assert third["retrain_decision"]["requested"] and third["retrain"]["how"] == "subflow"
    assert third["retrain"]["run"]["holdout_month"] == "2026-03"

    serve_drifted("2026-11", 10)
    fourth = monitor(dataset="churn")
    assert not fourth["retrain_decision"]["requested"] and fourth["retrain"] is None
    assert "cooling down until" in fourth["retrain_decision"]["reason"]
