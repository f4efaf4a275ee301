"""Cleaning: deterministic repairs, each counted; no row leaves without a reason."""

import numpy as np
import pandas as pd
import pytest

from tollgate.config.spec import ReadOptions
from tollgate.core.clean import _parse_number, clean_frame, clean_record, parse_numeric


def _record(**overrides) -> dict:
    record = {
        "customer_id": "0001-AAAAA",
        "gender": "Female",
        "senior_citizen": "0",
        "partner": "Yes",
        "dependents": "No",
        "tenure_months": "12",
        "phone_service": "Yes",
        "multiple_lines": "No",
        "internet_service": "DSL",
        "online_security": "No",
        "online_backup": "Yes",
        "device_protection": "No",
        "tech_support": "No",
        "streaming_tv": "No",
        "streaming_movies": "No",
        "contract": "One year",
        "paperless_billing": "Yes",
        "payment_method": "Mailed check",
        "monthly_charges": "55.20",
        "total_charges": "662.40",
        "churn": "No",
    }
    return {**record, **overrides}


@pytest.mark.parametrize(
    "text, expected, repaired, unparseable",
    [
        ("1,234.50", 1234.5, 1, 0),
        (" 70.35 ", 70.35, 0, 0),
        ("$12", 12.0, 1, 0),
        ("abc", np.nan, 0, 1),
        (" ", np.nan, 0, 0),
        (None, np.nan, 0, 0),
    ],
)
def test_parse_numeric(text, expected, repaired, unparseable):
    """Check lenient number parsing and its repair/unparseable counts."""
    values, needed_repair, bad = parse_numeric(pd.Series([text], dtype=object))
    np.testing.assert_equal(values.iloc[0], expected)
    assert (needed_repair, bad) == (repaired, unparseable)


@pytest.mark.parametrize(
    "read, text, expected",
    [
        ({}, "265,1", np.nan),  # a decimal comma under the default decimal point: not 2651.0
        ({}, "1.234,50", np.nan),  # not 1.2345
        ({}, "1,234", 1234.0),  # grouped by threes: thousands
        ({}, "12,34,567", np.nan),  # not a grouping of threes
        ({}, "-1.5e3", -1500.0),
        ({"separator": ";", "decimal": ",", "thousands": "."}, "265,1", 265.1),
        ({"separator": ";", "decimal": ",", "thousands": "."}, "1.234,50", 1234.5),
        ({"separator": ";", "decimal": ",", "thousands": "."}, "1.5", np.nan),  # neither grouping nor a decimal
        ({"separator": ";", "decimal": ",", "thousands": "."}, "€ 12", 12.0),
        ({"separator": ";", "decimal": ",", "thousands": " "}, "12 345,6", 12345.6),
    ],
)
def test_numbers_are_read_in_the_specs_format_only(read, text, expected):
    """Check a number is read only in the spec's format (``read:``); anything else is missing and counted,
    never guessed (decimal commas were silently read as thousands separators)."""
    options = ReadOptions(**read)
    values, _, unparseable = parse_numeric(pd.Series([text], dtype=object), options)
    np.testing.assert_equal(values.iloc[0], expected)
    assert unparseable == int(np.isnan(expected))
    np.testing.assert_equal(_parse_number(text, options), expected)  # the service's per-record path agrees


def test_read_options_refuse_a_mark_used_twice():
    """Check the spec refuses the same character as decimal and thousands mark, or as separator and decimal."""
    with pytest.raises(ValueError, match="must differ"):
        ReadOptions(decimal=",", thousands=",")
    with pytest.raises(ValueError, match="separator ';'"):
        ReadOptions(decimal=",", thousands=".")


def test_repairs_are_applied_and_counted(churn_spec):
    """Check casing, whitespace, text numbers, bad ranges and target spelling are fixed and counted."""
    frame = pd.DataFrame(
        [
            _record(customer_id="1", contract=" one YEAR", churn=" yes"),
            _record(customer_id="2", total_charges="1,234.50", partner="YES "),
            _record(customer_id="3", monthly_charges="-29.85", tenure_months="0", total_charges=" "),
            _record(customer_id="4", monthly_charges="99999", internet_service="Satellite"),
        ]
    )
    result = clean_frame(frame, churn_spec)
    cleaned, report = result.frame, result.report
    assert list(cleaned["contract"][:1]) == ["One year"] and cleaned["partner"][1] == "Yes"
    assert list(cleaned["churn"]) == [1, 0, 0, 0]
    assert cleaned["total_charges"][1] == 1234.5 and np.isnan(cleaned["total_charges"][2])
    assert cleaned["monthly_charges"][2:].isna().all()
    assert cleaned["internet_service"][3] == "Satellite"  # unknown categories are kept, and counted
    repaired = report.values_repaired
    assert repaired["case_fixed"] == {"contract": 1, "partner": 1}
    assert repaired["number_text_repaired"] == {"total_charges": 1}
    assert repaired["out_of_range_to_missing"] == {"monthly_charges": 2}
    assert repaired["blank_to_missing"] == {"total_charges": 1}
    assert repaired["unknown_category_kept"] == {"internet_service": 1}


def test_dropped_rows_are_counted_by_reason(churn_spec):
    """Check that duplicates keep the later row and rows without a target are dropped, both counted."""
    frame = pd.DataFrame(
        [
            _record(customer_id="1", contract="Month-to-month"),
            _record(customer_id="1", contract="Two year"),
            _record(customer_id="2", churn="maybe"),
            _record(customer_id="3", churn=None),
            _record(customer_id="4"),
        ]
    )
    result = clean_frame(frame, churn_spec)
    assert result.report.rows_dropped == {
        "missing or unknown target (churn)": 2,
        "duplicate customer_id (later row kept)": 1,
    }
    assert result.frame.loc[result.frame["customer_id"] == "1", "contract"].tolist() == ["Two year"]


def test_no_row_is_lost_without_a_count(churn_batch, churn_spec):
    """Check on a real messy batch that rows in = rows out + rows dropped by reason."""
    report = clean_frame(churn_batch, churn_spec).report
    assert report.rows_in == report.rows_out + sum(report.rows_dropped.values())
    assert report.rows_dropped and report.total_repaired > 0


def test_cleaning_is_deterministic(churn_batch, churn_spec):
    """Check that cleaning the same batch twice gives the same frame."""
    pd.testing.assert_frame_equal(
        clean_frame(churn_batch, churn_spec).frame, clean_frame(churn_batch, churn_spec).frame
    )


def test_single_request_without_target(churn_spec):
    """Check that the same function cleans one API record, which carries no target."""
    record = _record(contract="TWO YEAR ", monthly_charges=" 80.5")
    record.pop("churn")
    cleaned = clean_frame(pd.DataFrame([record]), churn_spec, require_target=False).frame
    assert cleaned.loc[0, "contract"] == "Two year" and cleaned.loc[0, "monthly_charges"] == 80.5
    with pytest.raises(KeyError, match="churn"):
        clean_frame(pd.DataFrame([record]), churn_spec)


def test_missing_is_always_nan(churn_spec):
    """Check that None, blanks and NaN all become NaN, which the model's imputers recognise."""
    frame = pd.DataFrame(
        [
            _record(customer_id="1", partner=None),
            _record(customer_id="2", partner="  "),
            _record(customer_id="3", partner=np.nan),
        ]
    )
    partner = clean_frame(frame, churn_spec).frame["partner"]
    assert partner.isna().all() and all(isinstance(v, float) for v in partner)


@pytest.mark.parametrize("dataset", ["churn", "security"])
def test_clean_record_equals_clean_frame_row_by_row(dataset, churn_spec, security_spec, churn_batch, security_batch):
    """Check the service's per-record cleaning gives exactly clean_frame's values on every row of a
    defect-laden batch (text numbers, padding, odd casing, out-of-range values, blanks)."""
    spec, batch = (churn_spec, churn_batch) if dataset == "churn" else (security_spec, security_batch)
    raw = batch[spec.input_columns].astype(object)
    expected = clean_frame(raw, spec, require_target=False).frame
    for position, record in enumerate(raw.to_dict(orient="records")):
        cleaned = clean_record(record, spec)
        for column in spec.input_columns:
            want, got = expected.at[position, column], cleaned[column]
            assert (pd.isna(want) and pd.isna(got)) or want == got, (position, column, record[column], want, got)


@pytest.mark.parametrize(
    "column, value, expected",
    [
        ("tenure_months", " 42 ", 42.0),
        ("total_charges", "1,200.5", 1200.5),
        ("total_charges", "$7", 7.0),
        ("tenure_months", True, np.nan),
        ("tenure_months", "", np.nan),
        ("tenure_months", None, np.nan),
        ("tenure_months", -3, np.nan),
        ("tenure_months", 12.5, np.nan),
        ("tenure_months", 121, np.nan),
    ],
)
def test_clean_record_numbers(churn_spec, column, value, expected):
    """Check one request's numbers are repaired or made missing like a batch's (tenure: integer 0–120)."""
    cleaned = clean_record(_record(**{column: value}), churn_spec)
    np.testing.assert_equal(cleaned[column], expected)


def test_clean_record_categories(churn_spec):
    """Check case and padding are fixed to the spec's spelling and unknown categories are kept."""
    cleaned = clean_record(_record(contract=" month-TO-month ", internet_service="Satellite", gender=" "), churn_spec)
    assert cleaned["contract"] == "Month-to-month" and cleaned["internet_service"] == "Satellite"
    assert np.isnan(cleaned["gender"])


def test_any_other_label_is_positive_and_no_id_means_no_dedupe():
    """Check NSL-KDD's target (every label but 'normal' is an attack) and that identical connections
    are kept when the spec declares no id column."""
    from tollgate.config.settings import Settings
    from tollgate.config.spec import resolve_spec

    spec = resolve_spec("nsl_kdd", None, Settings())
    row = {column: "0" for column in spec.columns.numeric} | {
        "protocol_type": "tcp",
        "service": "http",
        "flag": "SF",
        "difficulty": "21",
    }
    labels = ["normal", "neptune", " Normal", "guess_passwd", "", None, "smurf", "normal"]
    frame = pd.DataFrame([{**row, "label": label} for label in labels])
    result = clean_frame(frame, spec)
    assert result.frame["label"].tolist() == [0, 1, 0, 1, 1, 0]
    assert result.report.rows_dropped == {"missing or unknown target (label)": 2}


def test_a_checked_batch_is_cleaned_as_clean_frame_cleans_it(churn_spec, churn_batch):
    """Check the service's batch cleaning (numbers already numbers, text per distinct value) gives clean_frame's
    frame and report on a batch of request records with untrimmed, blank, mis-cased and unknown categories."""
    from tollgate.core.batch import batch_from_records
    from tollgate.core.clean import clean_checked_columns
    from tollgate.core.schema import request_records

    records = request_records(clean_frame(churn_batch, churn_spec).frame, churn_spec)
    records[0]["contract"], records[1]["gender"], records[2]["partner"] = " one year ", "", "Maybe"
    records[3]["internet_service"], records[4]["payment_method"] = "FIBER OPTIC", None
    frame = pd.DataFrame(records, columns=churn_spec.input_columns)
    expected = clean_frame(frame, churn_spec, require_target=False)
    checked = clean_checked_columns(batch_from_records(records, churn_spec), churn_spec)
    pd.testing.assert_frame_equal(checked.frame(churn_spec.input_columns), expected.frame)
    assert checked.report.values_repaired == expected.report.values_repaired


@pytest.mark.parametrize("dataset", ["churn", "security"])
def test_a_columnar_batch_is_cleaned_as_its_text_is(
    dataset, tmp_path, churn_spec, security_spec, churn_batch, security_batch
):
    """Check that ingest's compact frame (categoricals and Arrow text, no object per value) cleans to the same
    values and the same counts as the same file read as Python strings, and that the cleaned frame keeps its
    categories as codes."""
    from tollgate.core.ingest import read_batch

    spec, batch = (churn_spec, churn_batch) if dataset == "churn" else (security_spec, security_batch)
    path = tmp_path / "2026-01.csv"
    batch.to_csv(path, index=False)
    as_text = pd.read_csv(path, dtype=str)
    columnar = read_batch(path)
    assert not any(dtype == np.dtype(object) for dtype in columnar.dtypes)  # no Python object per value
    expected, got = clean_frame(as_text, spec), clean_frame(columnar, spec)
    assert got.report == expected.report
    assert list(got.frame.columns) == list(expected.frame.columns)
    for column in expected.frame.columns:
        want = expected.frame[column].astype(object).where(expected.frame[column].notna(), None).tolist()
        have = got.frame[column].astype(object).where(got.frame[column].notna(), None).tolist()
        assert have == want, column
    categorical = [c for c in spec.columns.categorical if c in got.frame]
    assert categorical and all(isinstance(got.frame[c].dtype, pd.CategoricalDtype) for c in categorical)
