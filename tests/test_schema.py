"""The request schema generated from the spec: every problem named, valid records untouched."""

import math

import pytest
from pydantic import ValidationError

from tollgate.core.schema import (
    batch_problems,
    batch_with_spec_names,
    record_model,
    record_problems,
    with_spec_names,
)


def _record(**overrides) -> dict:
    record = {
        "senior_citizen": 0,
        "tenure_months": 12,
        "monthly_charges": 55.2,
        "total_charges": 662.4,
        "gender": "Female",
        "partner": "Yes",
        "dependents": "No",
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
    }
    return {**record, **overrides}


def _messages(spec, record) -> dict[str, str]:
    return {field: message for field, _, message in record_problems(record, spec)}


def test_a_valid_record_has_no_problems(churn_spec):
    """Check a complete record (nulls allowed, id optional, unknown category) passes as it is."""
    record = _record(total_charges=None, contract="Three year", customer_id="7590-VHVEG", tenure_months=12.0)
    assert record_problems(record, churn_spec) == []
    assert record_model(churn_spec).model_validate(record).model_dump()["contract"] == "Three year"


def test_every_missing_field_is_listed(churn_spec):
    """Check all missing fields are named at once, not the first only."""
    record = _record()
    for column in ("tenure_months", "contract", "gender"):
        del record[column]
    messages = _messages(churn_spec, record)
    assert set(messages) == {"tenure_months", "contract", "gender"}
    assert messages["contract"].startswith("contract is required")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("tenure_months", "12", "tenure_months must be an integer"),
        ("tenure_months", 12.5, "tenure_months must be an integer"),
        ("tenure_months", True, "tenure_months must be an integer"),
        ("monthly_charges", "55.2", "monthly_charges must be a number"),
        ("monthly_charges", math.nan, "monthly_charges must be a finite number"),
        ("monthly_charges", math.inf, "monthly_charges must be a finite number"),
        ("tenure_months", -1, "tenure_months must be at least 0"),
        ("senior_citizen", 2, "senior_citizen must be at most 1"),
        ("contract", 3, "contract must be a string, e.g. 'Month-to-month'"),
        ("customer_id", 1.5, "customer_id must be a string"),
    ],
)
def test_wrong_values_are_named_with_what_was_expected(churn_spec, field, value, message):
    """Check each wrong type, non-finite number and out-of-range value gets its own clear message."""
    assert _messages(churn_spec, _record(**{field: value})) == {field: message}


def test_unknown_fields_and_non_objects_are_refused(churn_spec):
    """Check extra fields are refused by name and a non-object body is refused as a whole."""
    assert _messages(churn_spec, _record(promo_code="X")) == {
        "promo_code": "promo_code is not a field of a churn record"
    }
    assert list(_messages(churn_spec, [1, 2])) == [""]


def test_the_model_raises_one_error_per_problem(churn_spec):
    """Check the pydantic model (what BentoML validates with) reports each problem with its location."""
    Model = record_model(churn_spec)
    with pytest.raises(ValidationError) as raised:
        Model.model_validate_json('{"tenure_months": "abc", "surprise": 1}')
    errors = {error["loc"][0]: error["msg"] for error in raised.value.errors()}
    assert errors["tenure_months"] == "tenure_months must be an integer"
    assert errors["surprise"] == "surprise is not a field of a churn record"
    assert len(errors) == len(churn_spec.input_columns) + 1  # 18 missing, one wrong, one extra
    assert Model.__name__ == "ChurnRecord"


def test_security_records_follow_the_security_spec(security_spec):
    """Check the same generator serves the other dataset: its counts must be non-negative integers."""
    messages = _messages(security_spec, {"failed_logins": -3, "src_ip": "10.0.0.1"})
    assert messages["failed_logins"] == "failed_logins must be at least 0" and "src_ip" not in messages
    assert "protocol" in messages


def test_the_source_files_column_names_are_accepted_too(churn_spec):
    """Check a record in the Telco export's own names (the spec's rename map) is read under the spec's names,
    alone or in a batch, and one that sends both names of a field is told so."""
    source_of = {new: old for old, new in churn_spec.rename.items()}
    telco = {source_of.get(key, key): value for key, value in _record(customer_id="7590-VHVEG").items()}
    assert "TotalCharges" in telco and "gender" in telco  # the export's own names, as it writes them
    model = record_model(churn_spec)
    assert (
        model.model_validate(telco).model_dump() == model.model_validate(_record(customer_id="7590-VHVEG")).model_dump()
    )
    assert batch_problems(batch_with_spec_names([telco, _record()], churn_spec), churn_spec) == []
    both = {**_record(), "MonthlyCharges": 55.2}
    assert _messages(churn_spec, with_spec_names(both, churn_spec)) == {
        "MonthlyCharges": "MonthlyCharges is monthly_charges under its source name: send one of the two"
    }
