"""Ingest and validation results are reused (Prefect cache) for the same input bytes, and only then."""

from __future__ import annotations

import shutil
from pathlib import Path

from prefect import flow

from tasks.ingest import ingest
from tasks.quality import quality_gate, validate
from tasks.run import cached, start_run


@flow(name="ingest-and-validate")
def ingest_and_validate(spec, settings, data: str) -> dict:
    """The retrain flow's first stages, wired as the flow wires them; returns each task's state."""
    ingest_state = cached(ingest, settings)(spec, settings, data, return_state=True)
    raw = ingest_state.result()
    validate_state = cached(validate, settings)(raw, spec, settings, return_state=True)
    run = start_run(spec, settings)
    quality = quality_gate(validate_state.result(), raw, spec, settings, run)
    return {"ingest": ingest_state.name, "validate": validate_state.name, "raw": raw, "quality": quality, "run": run}


def test_same_bytes_reuse_ingest_and_validation(monthly_batches, churn_spec, settings, tmp_path):
    """Check that a second run on the same files is served from the cache, a changed file is not,
    and every run folder still gets its own Data Docs."""
    data = tmp_path / "churn"
    shutil.copytree(monthly_batches / "churn", data)

    first = ingest_and_validate(churn_spec, settings, str(data))
    assert (first["ingest"], first["validate"]) == ("Completed", "Completed")

    second = ingest_and_validate(churn_spec, settings, str(data))
    assert (second["ingest"], second["validate"]) == ("Cached", "Cached")
    assert second["raw"].sha256 == first["raw"].sha256
    assert second["raw"].frame.equals(first["raw"].frame)
    assert second["quality"].outcomes == first["quality"].outcomes
    assert second["run"].dir != first["run"].dir
    for result in (first, second):
        docs = Path(result["quality"].data_docs)
        assert docs == result["run"].dir / "data_docs" / "index.html" and docs.is_file()
        assert list((docs.parent / "validations").rglob("*.html"))

    latest = sorted(data.iterdir())[-1]
    latest.write_text(latest.read_text().replace("Month-to-month", "Two year", 1))
    third = ingest_and_validate(churn_spec, settings, str(data))
    assert (third["ingest"], third["validate"]) == ("Completed", "Completed")
    assert third["raw"].sha256 != first["raw"].sha256


def test_deleted_cached_data_docs_are_rebuilt(monthly_batches, churn_spec, settings):
    """Check that a cached validation whose Data Docs folder was removed is validated again."""
    data = str(monthly_batches / "churn")
    ingest_and_validate(churn_spec, settings, data)
    shutil.rmtree(settings.dataset_artifacts("churn") / "quality")
    again = ingest_and_validate(churn_spec, settings, data)
    assert again["validate"] == "Cached"
    assert Path(again["quality"].data_docs).is_file()
