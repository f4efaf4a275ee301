"""Monitoring: PSI/KS drift of logged traffic against the training reference."""

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from tollgate.core.clean import clean_frame
from tollgate.core.drift import drift_markdown, drift_report, newest_time, psi, reference_profile, since
from tollgate.core.retrain_rule import retrain_request
from tollgate.core.schema import request_records
from tollgate.store.prediction_log import read_prediction_log


def _log(records: list[dict], decision_rate: float, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "inputs": records,
            "model_version": "v1",
            "decision": np.where(rng.random(len(records)) < decision_rate, "Yes", "No"),
            "latency_ms": rng.uniform(0.1, 2.0, len(records)),
        }
    )


@pytest.fixture(scope="module")
def halves(churn_spec):
    from tollgate.synth.generate import make_batch

    frame = clean_frame(make_batch("churn", "2026-01", 0, 12, 3000, 11), churn_spec).frame
    return frame.iloc[:1500].reset_index(drop=True), frame.iloc[1500:].reset_index(drop=True)


def test_psi_is_zero_for_equal_shares_and_grows_with_shift():
    """Check PSI's basic behaviour, empty bins included."""
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0
    assert 0 < psi([0.5, 0.5], [0.6, 0.4]) < psi([0.5, 0.5], [0.9, 0.1])
    assert np.isfinite(psi([0.5, 0.5, 0.0], [0.4, 0.4, 0.2]))


def test_traffic_like_training_is_not_drift(churn_spec, halves):
    """Check the other half of the same month raises no alarm."""
    train, traffic = halves
    reference = reference_profile(train, churn_spec, 0.6, seed=1)
    report = drift_report(_log(request_records(traffic, churn_spec), 0.6), reference, churn_spec, "v1")
    assert not report.drifted and report.reasons == [] and report.predictions == len(traffic)
    assert max(f.psi for f in report.features) < churn_spec.monitoring.psi_threshold
    assert report.latency_p50_ms < report.latency_p99_ms


def test_shifted_traffic_is_drift_naming_the_inputs(churn_spec, halves):
    """Check shifted tenure and contract mix, and a changed positive rate, are each named."""
    train, traffic = halves
    reference = reference_profile(train, churn_spec, 0.6, seed=1)
    shifted = traffic.assign(tenure_months=traffic["tenure_months"].clip(upper=70) + 48, contract="Month-to-month")
    report = drift_report(_log(request_records(shifted, churn_spec), 0.95), reference, churn_spec, "v1")
    assert report.drifted
    drifted = {f.feature for f in report.features if f.drifted}
    assert {"tenure_months", "contract"} <= drifted
    tenure = next(f for f in report.features if f.feature == "tenure_months")
    assert tenure.ks_pvalue < 1e-6
    assert any("predicted-positive rate" in reason for reason in report.reasons)
    assert "DRIFT" in drift_markdown(report)


def test_too_few_predictions_give_no_verdict(churn_spec, halves):
    """Check a nearly empty log is reported as such rather than judged."""
    train, traffic = halves
    report = drift_report(
        _log(request_records(traffic.head(5), churn_spec), 0.5),
        reference_profile(train, churn_spec, 0.5, 1),
        churn_spec,
        "v1",
    )
    assert not report.drifted and report.features == []
    assert report.reasons == ["no verdict: 5 predictions since the champion's promotion, monitoring needs 200"]


def test_the_window_is_the_lines_after_the_last_check():
    """Check only lines logged after the last verdict's newest line are read again."""
    log = pd.DataFrame({"time": ["2026-11-01T10:00:00.000+00:00", "2026-11-02T10:00:00.000+00:00"], "x": [1, 2]})
    assert list(since(log, None)["x"]) == [1, 2]
    assert list(since(log, newest_time(log.head(1)))["x"]) == [2]
    assert since(log, newest_time(log)).empty


NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
WEEK = timedelta(days=7)


@pytest.mark.parametrize(
    ("reasons", "last", "available", "holdout", "requested", "says"),
    [
        ([], None, "new", "2026-11", False, "no reason to retrain"),
        (["PSI 0.4 on tenure"], NOW - timedelta(days=2), "new", "2026-11", False, "cooling down until 2026-11-29"),
        (["PSI 0.4 on tenure"], None, "champion", "2026-10", False, "exactly the champion's own input"),
        (["PSI 0.4 on tenure"], None, "new", "2026-10", False, "no labelled batch is newer than"),
        (["PSI 0.4 on tenure"], None, None, None, False, "no labelled data"),
        (["PSI 0.4 on tenure"], NOW - timedelta(days=8), "new", "2026-11", True, "PSI 0.4 on tenure"),
        (["PSI 0.4 on tenure"], None, "re-export", None, True, "PSI 0.4 on tenure"),
    ],
    ids=["no-reason", "cooldown", "same-input", "no-new-month", "no-data", "after-cooldown", "new-export"],
)
def test_the_retrain_rule(reasons, last, available, holdout, requested, says):
    """Check a retrain is asked for only with a reason, outside the cooldown, on input that is not the
    champion's own and (for monthly batches) a month past the champion's holdout."""
    decision = retrain_request(reasons, NOW, last, WEEK, "champion", "2026-10", available, holdout)
    assert decision.requested is requested and says in decision.reason


def test_the_log_reader_takes_every_worker_and_rotated_file(tmp_path):
    """Check lines from all workers and rotations are read, filtered by model version."""
    for name, version in (
        ("predictions-w1.jsonl", "a"),
        ("predictions-w1.jsonl.1", "a"),
        ("predictions-w2.jsonl", "b"),
    ):
        (tmp_path / name).write_text(json.dumps({"model_version": version, "inputs": {}}) + "\n")
    assert len(read_prediction_log(tmp_path).frame) == 3 and len(read_prediction_log(tmp_path, "a").frame) == 2


def test_a_line_cut_short_is_counted_not_fatal(tmp_path):
    """Check a half-written line (a full disk, a killed worker) is counted and the rest is read."""
    whole = json.dumps({"model_version": "a", "inputs": {}})
    (tmp_path / "predictions-w1.jsonl").write_text(whole + "\n" + whole[:17] + "\n" + whole + "\n")
    logged = read_prediction_log(tmp_path)
    assert len(logged.frame) == 2 and logged.unreadable_lines == 1


def test_a_batch_is_one_line_read_back_as_one_row_per_prediction(tmp_path):
    """Check a batch written as one columnar line comes back as a row per prediction, beside single lines, and
    that a write that fails counts every prediction of the batch as lost."""
    from tollgate.store.prediction_log import PredictionLog, batch_entry, prediction_entries

    log = PredictionLog(tmp_path, 1)
    single = prediction_entries(
        "r1",
        "predict",
        [{"tenure": 3}],
        [{"model_version": "v1", "probability": 0.9, "prediction": "Yes", "risk_level": "High"}],
        1.0,
    )
    batch = batch_entry(
        "r2",
        "predict_batch",
        {"tenure": [1, None]},
        {"probability": [0.1, 0.2], "decision": ["No", "No"], "risk_level": ["Low", "Low"]},
        "v1",
        2.0,
    )
    assert log.write(single) == 0 and log.write([batch]) == 0
    assert len((tmp_path / "predictions-w1.jsonl").read_text().splitlines()) == 2
    logged = read_prediction_log(tmp_path, "v1")
    assert logged.unreadable_lines == 0 and list(logged.frame["request_id"]) == ["r1", "r2", "r2"]
    assert list(logged.frame["inputs"]) == [{"tenure": 3}, {"tenure": 1}, {"tenure": None}]
    assert list(logged.frame["probability"]) == [0.9, 0.1, 0.2] and list(logged.frame["index"]) == [0, 0, 1]
    (tmp_path / "blocked").write_text("a file where the log's folder should be")
    assert PredictionLog(tmp_path / "blocked" / "log", 1).write([batch]) == 2
