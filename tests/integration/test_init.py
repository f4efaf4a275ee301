"""A new dataset in minutes: `tollgate init` on a ';'-separated export with decimal commas drafts a spec that
runs the real flow to a promoted model, with every number read as written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.command import main
from flows.retrain import retrain
from tests.test_draft import european_export


def test_an_initialised_european_export_runs_to_a_promoted_model(tmp_path, monkeypatch):
    """Check init's draft of a ';' / '1.234,50' file, unedited, passes the gate, trains and is promoted, and
    the run read the charges exactly (no '265,1' → 2651 or missing)."""
    monkeypatch.setenv("TOLLGATE_SPECS_DIR", str(tmp_path / "specs"))
    monkeypatch.setenv("TOLLGATE_EXPECTATIONS_DIR", str(tmp_path / "expectations"))
    monkeypatch.setenv("TOLLGATE_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    truth = european_export(tmp_path / "export.csv", rows=2000)
    assert main(["init", "--data", str(tmp_path / "export.csv"), "--target", "Churn", "--name", "acme"]) == 0

    summary = retrain(dataset="acme")

    assert summary["quality"]["success"] and summary["promotion"]["decision"] == "promoted", summary
    quality = json.loads((Path(summary["report_dir"]) / "data_quality.json").read_text())
    profile = {row["column"]: row for row in quality["profile"]}
    for column in ("monthly_charges", "total_charges"):
        assert profile[column]["unparseable"] == 0
        assert profile[column]["max"] == pytest.approx(truth[column].max())
        assert profile[column]["min"] == pytest.approx(truth[column].min())
