"""The analysts' pages in a real browser with the network off: the quality report, the Data Docs it links to
(their list was empty offline: it is built by scripts from CDNs), and the drift report."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from tasks.quality import QualityGateFailed, quality_gate, validate
from tasks.run import start_run
from tests.conftest import SEED
from tests.integration.browser import rendered_dom
from tollgate.config.settings import Settings
from tollgate.config.spec import resolve_spec
from tollgate.core.ingest import BATCH_COLUMN, BatchFile, RawData
from tollgate.synth.generate import make_batch


def two_months(without_contract: str) -> RawData:
    """January as exported (defects that cleaning repairs), February without its contract column."""
    frames, files = [], []
    for index, month in enumerate(("2026-01", "2026-02")):
        frame = make_batch("churn", month, index, 12, 600, SEED)
        if month == without_contract:
            frame = frame.drop(columns=["contract"])
        files.append(BatchFile(f"{month}.csv", month, len(frame), "0" * 64, tuple(frame.columns)))
        frames.append(frame.assign(**{BATCH_COLUMN: month}))
    return RawData(frame=pd.concat(frames, ignore_index=True), files=files, holdout_month="2026-02")


def test_the_quality_report_and_data_docs_open_offline_with_each_batchs_verdict(churn_spec, settings):
    """Check, in Chromium with no network, that the run's data_quality.html leads with each batch's verdict, and
    that the Data Docs index it links to lists both validations with the gate's verdict (a batch with only
    warnings passed; GE called it Failed), as does the validation page."""
    run = start_run.fn(churn_spec, settings)
    raw = two_months(without_contract="2026-02")
    with pytest.raises(QualityGateFailed):
        quality_gate.fn(validate.fn(raw, churn_spec, settings), raw, churn_spec, settings, run)

    report = rendered_dom((run.dir / "data_quality.html").as_uri(), budget_ms=1000)
    assert "Verdict per batch" in report
    table = report.replace("\n", "")
    assert re.search(r"<td>2026-01</td><td>6\d\d</td><td>Passed with \d+ warnings, repaired by cleaning</td>", table)
    assert re.search(r"<td>2026-02</td><td>6\d\d</td><td>Stopped at the gate: contract missing; 3 critical", table)
    assert 'href="data_docs/index.html"' in report

    index = rendered_dom((run.dir / "data_docs" / "index.html").as_uri())
    rows = index.split("<tbody>")[1].split("</tbody>")[0]
    assert rows.count("<tr") == 2 and "2026-01" in rows and "2026-02" in rows
    assert "Passed with " in rows and "repaired by cleaning" in rows and "Stopped at the gate" in rows
    january = next((run.dir / "data_docs" / "validations").rglob("2026-01/*/*.html"))
    assert "Passed with " in rendered_dom(january.as_uri(), budget_ms=1000)


def test_the_drift_report_shows_its_tables_offline(churn_champion, monthly_batches, tmp_path, monkeypatch):
    """Check drift.html, opened in Chromium with no network, has real tables (it showed raw `| … |` text)."""
    from flows.monitor import monitor
    from tasks.simulate import replay_traffic

    monkeypatch.setenv("TOLLGATE_ARTIFACTS_DIR", str(churn_champion["artifacts"]))
    monkeypatch.setenv("TOLLGATE_RAW_DATA_DIR", str(monthly_batches))
    monkeypatch.setenv("TOLLGATE_PREDICTION_LOG_DIR", str(tmp_path / "predictions"))
    settings = Settings()
    month = sorted((monthly_batches / "churn").glob("*.csv"))[-1].stem
    replay_traffic.fn(resolve_spec("churn", None, settings), settings, month, tmp_path / "predictions")
    result = monitor(dataset="churn", retrain_on_drift=False)

    page = rendered_dom(Path(result["report"]).as_uri(), budget_ms=1000)
    assert page.count("<table") >= 1 and "<th>" in page and "| --- |" not in page and "|---|" not in page
