"""Ingest: which batches a run reads, the rename map, and the lineage hash."""

import pandas as pd
import pytest

from tollgate.config.spec import ReadOptions
from tollgate.core.clean import parse_numeric
from tollgate.core.ingest import BATCH_COLUMN, IngestError, plan_batches, read_batch, read_input
from tollgate.store.files import file_sha256


@pytest.fixture
def month_dir(tmp_path):
    for month in ["2026-01", "2026-02", "2026-03", "2026-04"]:
        pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_csv(tmp_path / f"{month}.csv", index=False)
    return tmp_path


def test_plan_holds_out_the_latest_month_and_trains_on_the_window(month_dir):
    """Check that month M is the holdout and the `window` months before it train."""
    paths, holdout = plan_batches(month_dir, None, window=2)
    assert holdout == "2026-04"
    assert [p.stem for p in paths] == ["2026-02", "2026-03", "2026-04"]
    paths, holdout = plan_batches(month_dir, "2026-02", window=6)
    assert [p.stem for p in paths] == ["2026-01", "2026-02"] and holdout == "2026-02"


@pytest.mark.parametrize(
    "month, message",
    [("2027-01", "no batch for month 2027-01"), ("2026-01", "no earlier batches")],
)
def test_plan_rejects_months_it_cannot_use(month_dir, month, message):
    """Check that an unusable --month gets a clear error."""
    with pytest.raises(IngestError, match=message):
        plan_batches(month_dir, month, window=6)


def test_plan_errors_on_missing_data(tmp_path):
    """Check that a missing path is named in the error."""
    with pytest.raises(IngestError, match="data not found"):
        plan_batches(tmp_path / "nowhere", None, window=6)


def test_ingest_renames_the_ibm_export(churn_spec, settings, tmp_path):
    """Check that the Telco export's columns map onto the spec's names with only the rename map."""
    from tests.conftest import TELCO_CSV

    raw = read_input(churn_spec, settings, TELCO_CSV)
    assert raw.rows == 7043 and raw.holdout_month is None
    assert set(churn_spec.required_columns) <= set(raw.frame.columns)
    assert raw.frame.loc[raw.frame["total_charges"] == " "].shape[0] == 11
    assert raw.files[0].sha256 == file_sha256(TELCO_CSV)


def test_input_hash_changes_with_one_byte(month_dir, churn_spec, settings):
    """Check that the lineage hash is stable and sensitive to any change of the raw bytes."""
    first = read_input(churn_spec, settings, month_dir).sha256
    assert read_input(churn_spec, settings, month_dir).sha256 == first
    path = month_dir / "2026-03.csv"
    path.write_text(path.read_text().replace("x", "z"))
    assert read_input(churn_spec, settings, month_dir).sha256 != first


def test_ingest_reads_parquet_and_tags_months(tmp_path, churn_spec, settings):
    """Check that Parquet batches are read and each row carries its month."""
    for month in ["2026-01", "2026-02"]:
        pd.DataFrame({"customerID": ["a", "b"], "tenure": [1, 2]}).to_parquet(tmp_path / f"{month}.parquet")
    raw = read_input(churn_spec, settings, tmp_path)
    assert list(raw.frame[BATCH_COLUMN]) == ["2026-01", "2026-01", "2026-02", "2026-02"]
    assert {"customer_id", "tenure_months"} <= set(raw.frame.columns)


def test_file_strategy_holds_out_the_named_file(tmp_path, security_spec):
    """Check split strategy 'file': the named file is the holdout, every other file trains, and a
    name that matches no file is an error listing the files read."""
    from tollgate.core.split import split_rows

    frame = pd.DataFrame({"is_attack": [0, 1, 0, 1, 0, 1], BATCH_COLUMN: ["a.csv"] * 4 + ["b.csv"] * 2})
    spec = security_spec.model_copy(
        update={"split": security_spec.split.model_copy(update={"strategy": "file", "holdout_file": "b.csv"})}
    )
    split = split_rows(frame, spec, None)
    assert len(split.train) == 4 and len(split.holdout) == 2 and split.describe().endswith("(file b.csv)")
    wrong = spec.model_copy(update={"split": spec.split.model_copy(update={"holdout_file": "c.csv"})})
    with pytest.raises(ValueError, match=r"holdout_file 'c.csv'.*\['a.csv', 'b.csv'\]"):
        split_rows(frame, wrong, None)


def test_a_semicolon_file_read_with_commas_names_the_option_to_set(tmp_path):
    """Check a `;`-separated export read with the default separator stops with the option to set, not with
    dozens of failed expectations."""
    path = tmp_path / "2026-01.csv"
    path.write_text("id;tenure;charges\n1;3;265,1\n2;5;1.234,50\n", encoding="utf-8")
    with pytest.raises(IngestError, match=r"read.separator to ';'.*read.decimal"):
        read_batch(path)


def test_a_semicolon_file_with_decimal_commas_is_read_with_the_specs_options(tmp_path):
    """Check ``read: {separator: ';', decimal: ',', thousands: '.', encoding: latin-1}`` reads the file's
    fields and numbers as written."""
    path = tmp_path / "2026-01.csv"
    path.write_bytes("id;ville;charges\n1;Besançon;265,1\n2;Nîmes;1.234,50\n".encode("latin-1"))
    options = ReadOptions(separator=";", decimal=",", thousands=".", encoding="latin-1")
    frame = read_batch(path, options)
    assert list(frame.columns) == ["id", "ville", "charges"] and frame["ville"].tolist() == ["Besançon", "Nîmes"]
    assert parse_numeric(frame["charges"], options)[0].tolist() == [265.1, 1234.5]
    with pytest.raises(IngestError, match="read.encoding"):
        read_batch(path, ReadOptions(separator=";", decimal=",", thousands="."))


def test_uneven_rows_and_repeated_names_are_read_as_pandas_read_them(tmp_path):
    """Check the Arrow reader loses nothing pandas kept: a repeated header name becomes ``name.1`` (both columns
    kept), a row cut short is padded with missing values, and a row with too many fields stops the read naming
    its line."""
    repeated = tmp_path / "repeated.csv"
    repeated.write_text("a,b,a\n1,2,3\n4,5,6\n", encoding="utf-8")
    frame = read_batch(repeated)
    assert list(frame.columns) == ["a", "b", "a.1"] and frame["a.1"].astype(str).tolist() == ["3", "6"]
    short = tmp_path / "short.csv"
    short.write_text("a,b,c\n1,2,3\n4,5\n", encoding="utf-8")
    frame = read_batch(short)
    assert frame["a"].astype(str).tolist() == ["1", "4"] and frame["c"].isna().tolist() == [False, True]
    long = tmp_path / "long.csv"
    long.write_text("a,b,c\n1,2,3\n4,5,6,7\n", encoding="utf-8")
    with pytest.raises(IngestError, match="line 3, saw 4"):
        read_batch(long)
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(IngestError, match="empty.csv"):
        read_batch(empty)
