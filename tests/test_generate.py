"""The sample-data generator: reproducible, with real-life signal and real-life defects."""

import pandas as pd

from tollgate.core.clean import clean_frame
from tollgate.synth.generate import generate, make_batch


def test_same_seed_same_batch():
    """Check that a batch is reproducible from its seed and differs with another seed."""
    first = make_batch("churn", "2026-01", 0, 12, 300, seed=1)
    pd.testing.assert_frame_equal(first, make_batch("churn", "2026-01", 0, 12, 300, seed=1))
    assert not first.equals(make_batch("churn", "2026-01", 0, 12, 300, seed=2))


def test_churn_signal_is_realistic(churn_spec):
    """Check the churn signal: month-to-month 2–3.5× two-year, new customers > 50 %, fiber above DSL."""
    frame = clean_frame(make_batch("churn", "2026-01", 0, 12, 20000, seed=3), churn_spec).frame
    by_contract = frame.groupby("contract")["churn"].mean()
    assert 2.0 <= by_contract["Month-to-month"] / by_contract["Two year"] <= 3.5
    assert frame.loc[frame["tenure_months"] < 3, "churn"].mean() > 0.5
    by_internet = frame.groupby("internet_service")["churn"].mean()
    assert by_internet["Fiber optic"] > by_internet["DSL"]


def test_security_attacks_show_in_their_columns(security_spec):
    """Check that attacks stand out in failed logins, ports and bytes out."""
    frame = clean_frame(make_batch("security", "2026-01", 0, 12, 20000, seed=3), security_spec).frame
    attack, normal = frame[frame["is_attack"] == 1], frame[frame["is_attack"] == 0]
    assert 0.02 < frame["is_attack"].mean() < 0.1
    for column in ("failed_logins", "unique_ports", "bytes_out"):
        assert attack[column].quantile(0.9) > 5 * normal[column].quantile(0.9), column


def test_batches_carry_the_defects_of_real_exports(churn_batch):
    """Check for duplicated ids, blank totals, messy casing, text numbers and bad charges."""
    assert churn_batch["customer_id"].duplicated().any()
    assert (churn_batch["total_charges"] == " ").any()
    assert churn_batch["contract"].astype(str).str.contains(r"^\s|\s$|MONTH", regex=True).any()
    assert churn_batch["total_charges"].astype(str).str.contains(",").any()
    charges = pd.to_numeric(churn_batch["monthly_charges"], errors="coerce")
    assert ((charges < 0) | (charges > 1000)).any()


def test_generate_writes_monthly_files_and_keeps_existing(tmp_path):
    """Check the YYYY-MM.csv layout and that existing batches are not overwritten."""
    written = generate(tmp_path, ["churn"], months=2, rows=50, progress=False)
    assert [p.name for p in written] == ["2025-11.csv", "2025-12.csv"]
    assert generate(tmp_path, ["churn"], months=2, rows=50, progress=False) == []
