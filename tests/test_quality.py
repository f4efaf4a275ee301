"""The Great Expectations gate: critical failures stop the run with expectations named."""

import pytest

from tasks.quality import QualityGateFailed, load_suite, quality_gate, validate
from tasks.run import start_run
from tollgate.core.ingest import BATCH_COLUMN, BatchFile, RawData

pytestmark = pytest.mark.usefixtures("prefect_api")  # the gate publishes a Prefect artifact


def _raw(frame) -> RawData:
    """One month's batch, as ingest would hand it over."""
    batch = BatchFile("2026-01.csv", "2026-01", len(frame), "0" * 64, tuple(frame.columns))
    return RawData(frame=frame.assign(**{BATCH_COLUMN: "2026-01"}), files=[batch], holdout_month=None)


def _gate(raw, spec, settings, run):
    return quality_gate.fn(validate.fn(raw, spec, settings), raw, spec, settings, run)


def _drop_contract(frame):
    return frame.drop(columns=["contract"])


def _one_class(frame):
    return frame.assign(churn="No")


def _tenure_40pct_null(frame):
    frame = frame.copy()
    frame.loc[frame.sample(frac=0.4, random_state=0).index, "tenure_months"] = None
    return frame


def _text_in_charges(frame):
    return frame.assign(monthly_charges="call billing")


@pytest.mark.parametrize(
    "corrupt, expected",
    [
        (_drop_contract, "expect_column_to_exist(contract)"),
        (_one_class, "expect_column_mean_to_be_between(churn)"),
        (_tenure_40pct_null, "expect_column_values_to_not_be_null(tenure_months)"),
        (_text_in_charges, "expect_column_values_to_not_be_null(monthly_charges)"),
    ],
    ids=["required-column-dropped", "target-one-class", "40pct-nulls-key-column", "text-in-numeric"],
)
def test_corrupted_batch_stops_at_the_gate(churn_batch, churn_spec, settings, corrupt, expected):
    """Check that each corruption fails a critical expectation named in the error and the result."""
    run = start_run.fn(churn_spec, settings)
    with pytest.raises(QualityGateFailed) as error:
        _gate(_raw(corrupt(churn_batch)), churn_spec, settings, run)
    result = error.value.result
    assert not result.success and expected in result.critical_failed
    assert (run.dir / "data_docs" / "index.html").is_file()
    assert "FAILED" in (run.dir / "data_quality.md").read_text()


def test_a_missing_column_is_reported_as_the_root_cause_first(churn_batch, churn_spec, settings):
    """Check a dropped column is the first thing the gate says, and the expectations that fail because of it are
    said after, as its consequences (they were listed before it)."""
    run = start_run.fn(churn_spec, settings)
    with pytest.raises(QualityGateFailed) as error:
        _gate(_raw(_drop_contract(churn_batch)), churn_spec, settings, run)
    lines = str(error.value).splitlines()
    assert "1 of them at the root" in lines[0]
    assert lines[1] == "  - column contract is missing (expect_column_to_exist)"
    assert (
        lines[2].startswith("  - and, because contract is missing, ")
        and "expect_column_values_to_be_in_set" in lines[2]
    )
    markdown = (run.dir / "data_quality.md").read_text()
    assert markdown.index("expect_column_to_exist") < markdown.index("follows from: contract is missing")


def test_warning_defects_pass_and_are_reported(churn_batch, churn_spec, settings):
    """Check that a batch with only warning-level defects passes, with the defects listed."""
    run = start_run.fn(churn_spec, settings)
    result = _gate(_raw(churn_batch), churn_spec, settings, run)
    assert result.success and result.critical_failed == []
    assert "expect_column_values_to_be_unique(customer_id)" in result.warnings
    assert "expect_column_values_to_be_in_set(contract)" in result.warnings
    assert "expect_column_values_to_be_between(monthly_charges)" in result.warnings


def test_analyst_report_contents(churn_batch, churn_spec, settings):
    """Check Data Docs HTML, the column profile and the target rate by segment."""
    run = start_run.fn(churn_spec, settings)
    result = _gate(_raw(churn_batch), churn_spec, settings, run)
    docs = run.dir / "data_docs"
    assert (docs / "index.html").is_file() and list((docs / "validations").rglob("*.html"))
    profile = {row["column"]: row for row in result.profile}
    assert profile["total_charges"]["missing_pct"] > 0 and profile["tenure_months"]["max"] <= 72
    contract = {row["value"]: row["target_rate"] for row in result.segments["contract"]}
    assert contract["Month-to-month"] > contract["Two year"]
    assert "0-2 months" in {row["value"] for row in result.segments["tenure_bucket"]}
    markdown = (run.dir / "data_quality.md").read_text()
    assert "## Column profile" in markdown and "## Target rate by contract" in markdown
    assert (run.dir / "data_quality.png").stat().st_size > 10_000 and "data_quality.png" in markdown


def test_security_batch_passes(security_batch, security_spec, settings):
    """Check the security suite on a generated month: warnings only."""
    run = start_run.fn(security_spec, settings)
    result = _gate(_raw(security_batch), security_spec, settings, run)
    assert result.success and result.warnings


@pytest.mark.parametrize("name", ["churn", "security"])
def test_every_expectation_has_a_severity_and_a_reason(name, settings):
    """Check that the versioned suites load in GE and every expectation says why it exists."""
    suite = load_suite(settings.expectations_dir / f"{name}.json")
    assert len(suite.expectations) > 20
    for expectation in suite.expectations:
        assert str(getattr(expectation.severity, "value", expectation.severity)) in {"critical", "warning"}
        assert expectation.meta.get("notes")


def test_severity_levels_are_both_used(settings):
    """Check that the suite mixes critical and warning checks on the same column (loose vs strict)."""
    suite = load_suite(settings.expectations_dir / "churn.json")
    severities = {str(e.severity.value) for e in suite.expectations if getattr(e, "column", None) == "monthly_charges"}
    assert severities == {"critical", "warning"}


def test_categorical_values_reach_the_data_docs_defused():
    """Check ingest's categorical columns get their markup defused for GE's Data Docs, once per category, and that a
    category which defuses into another one present ('<a>' beside '‹a›') is defused value by value, not lost."""
    import pandas as pd

    from tasks.quality import _defused
    from tollgate.core.render import defuse_markup

    frame = pd.DataFrame(
        {
            "plain": pd.Categorical(["x", "y", "x"]),
            "tagged": pd.Categorical(["<img src=x>", "ok", None]),
            "clash": pd.Categorical(["<a>", defuse_markup("<a>"), "b"]),
        }
    )
    defused = _defused(frame)
    assert list(defused["plain"]) == ["x", "y", "x"]
    assert list(defused["tagged"].astype(object).fillna("")) == [defuse_markup("<img src=x>"), "ok", ""]
    assert isinstance(defused["tagged"].dtype, pd.CategoricalDtype)
    assert list(defused["clash"]) == [defuse_markup("<a>"), defuse_markup("<a>"), "b"]
    assert not any("<" in str(value) for column in defused for value in defused[column])
    assert list(frame["tagged"].astype(object).fillna("")) == ["<img src=x>", "ok", ""]  # the input is untouched
