"""Call lists and alert queues from the real score flow, and their realised outcomes, on real champions."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from flows.monitor import monitor
from flows.retrain import retrain
from flows.score import realise, score
from tollgate.config.settings import Settings
from tollgate.config.spec import resolve_spec
from tollgate.core.ingest import BATCH_COLUMN
from tollgate.store.models import champion_tag

REASON = re.compile(r"^[a-z_]+( is .+| = [-0-9.,e+]+| unknown)? \([+]\d+\.\d\d\)$")


def check_list(result: dict, spec_columns: set[str]) -> pd.DataFrame:
    """A list no longer than capacity, sorted by expected value (none below zero), ranked 1…n, with reasons
    in words that name the spec's columns."""
    table = pd.read_csv(result["list"], keep_default_na=False)
    assert list(table.columns) == ["rank", "id", "probability", "expected_value", "reasons", "recommendation"]
    assert 0 < len(table) == result["listed"] <= result["capacity"]
    assert table["expected_value"].is_monotonic_decreasing and (table["expected_value"] > 0).all()
    assert table["rank"].tolist() == list(range(1, len(table) + 1)) and table["id"].is_unique
    for reasons in table["reasons"]:
        parts = reasons.split("; ")
        assert 1 <= len(parts) <= 3, reasons
        for part in parts:
            assert REASON.match(part), part
            assert part.split(" ")[0] in spec_columns, part
    return table


def test_churn_call_list_is_cut_at_capacity_and_realised_against_the_labels(
    churn_champion, monthly_batches, monkeypatch
):
    """Check this month's list for the retention team, then what it realised once the month's labels arrived,
    and that the monitor reads that outcome for the serving champion."""
    monkeypatch.setenv("TOLLGATE_ARTIFACTS_DIR", str(churn_champion["artifacts"]))
    month = sorted((monthly_batches / "churn").glob("*.csv"))[-1]
    result = score(dataset="churn", data=str(month))
    # the serving champion (other tests may have promoted a challenger into this registry)
    assert result["period"] == month.stem and result["model_tag"] == champion_tag("churn", Settings())
    assert result["capacity"] == int(0.08 * result["scored"] + 1e-9)
    assert result["predicted_net_value"] > result["random_draw_value"]
    spec = resolve_spec("churn", None, Settings())
    columns = {*spec.input_columns, *spec.derived_numeric, *spec.derived_categorical}
    table = check_list(result, columns)
    raw_ids = set(pd.read_csv(month, dtype=str)["customer_id"].str.strip())
    assert set(table["id"].astype(str)) <= raw_ids

    outcome = realise(dataset="churn", period=result["period"], data=str(month))
    assert outcome["listed"] == len(table) and 0 < outcome["labelled"] <= len(table)
    assert outcome["net_value"] == outcome["caught"] * 720 - outcome["labelled"] * 50
    assert 0 <= outcome["precision"] <= 1 and outcome["positives"] > outcome["caught"]
    assert Path(result["list"]).with_name(f"{result['period']}.outcome.json").is_file()

    checked = monitor(dataset="churn", log_dir=str(month.parent / "no-log"), retrain_on_drift=False)
    assert checked["realised"]["period"] == result["period"]
    assert checked["realised_shortfall"] == outcome["shortfall"]


def test_security_alert_queue_holds_a_days_triage_capacity(monthly_batches, tmp_path, monkeypatch):
    """Check a day's sessions (about 170) become a queue of at most the analysts' 10 alerts, highest expected
    value first, with reasons, and that a list for a spec without ids is refused by name."""
    monkeypatch.setenv("TOLLGATE_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    retrain(dataset="security", data=str(monthly_batches / "security"))
    month = sorted((monthly_batches / "security").glob("*.csv"))[-1]
    day = tmp_path / "sessions-2026-02-14.csv"
    pd.read_csv(month, dtype=str).sample(170, random_state=1).to_csv(day, index=False)
    result = score(dataset="security", data=str(day), period="2026-02-14")
    assert result["scored"] <= 170 and result["capacity"] == 10
    spec = resolve_spec("security", None, Settings())
    columns = {*spec.input_columns, *spec.derived_numeric, *spec.derived_categorical, "anomaly_score"}
    check_list(result, columns)
    assert BATCH_COLUMN not in pd.read_csv(result["list"]).columns

    state = score(dataset="security", data=str(tmp_path / "missing.csv"), return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match="missing.csv"):
        state.result()
