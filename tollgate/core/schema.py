"""The request schema for one record, generated from the spec: what the service accepts.

Every problem in a record is reported at once, each naming its field and what was expected
(``tenure_months must be an integer``), so a caller can fix a request in one go. Keys must all
be present; ``null`` says a value is unknown and is imputed like a missing value in training.
Categories the model never saw are accepted (the encoder ignores them). Ids and extra columns are
strings (an integer id is taken as its decimal text), at most ``MAX_ID_LENGTH`` characters.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from tollgate.config.spec import DatasetSpec, NumericColumn

MAX_ID_LENGTH = 256
LARGEST_INTEGER = 2**63 - 1  # an integer field holds a 64-bit integer, as the model's features do


def source_names(spec: DatasetSpec) -> dict[str, str]:
    """The source file's column names a record may use instead of the spec's (the spec's rename map)."""
    fields = {*spec.input_columns, *spec.id_columns, *spec.columns.extra}
    return {old: new for old, new in spec.rename.items() if new in fields and old not in fields}


def with_spec_names(record: Any, spec: DatasetSpec) -> Any:
    """``record`` with any source column name (``TotalCharges``) under the spec's name (``total_charges``); a
    record that sends both names of a field is left as it is, for ``record_problems`` to name."""
    sources = source_names(spec)
    if not isinstance(record, dict) or not sources.keys() & record.keys():
        return record
    if any(sources[key] in record for key in sources.keys() & record.keys()):
        return record
    return {sources.get(key, key): value for key, value in record.items()}


def batch_with_spec_names(records: Any, spec: DatasetSpec) -> Any:
    """A batch with every record's source names under the spec's names (the same list when none uses them)."""
    sources = source_names(spec).keys()
    if (
        not isinstance(records, list)
        or not sources
        or not any(isinstance(record, dict) and sources & record.keys() for record in records)
    ):
        return records
    return [with_spec_names(record, spec) for record in records]


def record_problems(data: Any, spec: DatasetSpec) -> list[tuple[str, str, str]]:
    """Every problem of one raw record as (field, error type, message); empty when it is valid."""
    if not isinstance(data, dict):
        return [("", "record_type", f"a record must be a JSON object with the fields {spec.input_columns}")]
    problems = []
    sources = source_names(spec)
    missing = [column for column in spec.input_columns if column not in data]
    for column in missing:
        problems.append((column, "missing", f"{column} is required (send null if it is unknown)"))
    optional = {*spec.id_columns, *spec.columns.extra}
    for column in data:
        if column in sources and sources[column] in data:
            problems.append((column, *doubled_field_problem(column, sources[column])))
        elif column not in spec.input_columns and column not in optional:
            problems.append((column, *unknown_field_problem(column, spec)))
    for column, rule in spec.columns.numeric.items():
        if column in data and data[column] is not None:
            problem = number_problem(column, data[column], rule)
            if problem:
                problems.append((column, *problem))
    for column, categories in spec.columns.categorical.items():
        problem = category_problem(column, data.get(column), categories)
        if problem:
            problems.append((column, *problem))
    for column in optional:
        problem = identifier_problem(column, data.get(column))
        if problem:
            problems.append((column, *problem))
    return problems


def doubled_field_problem(source_name: str, spec_name: str) -> tuple[str, str]:
    """(error type, message) for a field sent under both its source name and the spec's."""
    return "duplicate_field", f"{source_name} is {spec_name} under its source name: send one of the two"


def unknown_field_problem(name: str, spec: DatasetSpec) -> tuple[str, str]:
    """(error type, message) for a field the spec does not name."""
    return "extra_forbidden", f"{name} is not a field of a {spec.name} record"


def category_problem(column: str, value: Any, categories: list[str]) -> tuple[str, str] | None:
    """(error type, message) when ``value`` cannot be a category of ``column`` (text or null); else None."""
    if value is not None and not isinstance(value, str):
        return "string_type", f"{column} must be a string, e.g. {categories[0]!r}"
    return None


def identifier_problem(column: str, value: Any) -> tuple[str, str] | None:
    """(error type, message) when ``value`` cannot be an id or extra column's value (text, an integer or null)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return "string_type", f"{column} must be a string"
    if _id_too_long(value):
        return "string_too_long", f"{column} must be at most {MAX_ID_LENGTH} characters"
    return None


def identifier_text(value: str | int) -> str:
    """An id as the text it is logged and listed as (an integer id is its decimal digits)."""
    return value if isinstance(value, str) else str(value)


def _id_too_long(value: str | int) -> bool:
    return len(value) > MAX_ID_LENGTH if isinstance(value, str) else abs(value) >= 10**MAX_ID_LENGTH


def number_problem(column: str, value: Any, rule: NumericColumn) -> tuple[str, str] | None:
    """(error type, message) when ``value`` (not null) breaks ``column``'s rule; else None."""
    kind = "an integer" if rule.integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ("int_type" if rule.integer else "float_type"), f"{column} must be {kind}"
    if isinstance(value, int) and abs(value) > LARGEST_INTEGER:  # float(value) may not even exist
        return "number_too_large", f"{column} must be between {-LARGEST_INTEGER:,} and {LARGEST_INTEGER:,}"
    if not math.isfinite(value):
        return "finite_number", f"{column} must be a finite number"
    if rule.integer and value % 1 != 0:
        return "int_type", f"{column} must be an integer"
    if rule.min is not None and value < rule.min:
        return "greater_than_equal", f"{column} must be at least {rule.min:g}"
    if rule.max is not None and value > rule.max:
        return "less_than_equal", f"{column} must be at most {rule.max:g}"
    return None


def record_model(spec: DatasetSpec, example: dict[str, Any] | None = None) -> type[BaseModel]:
    """A pydantic model of one record (named e.g. ``ChurnRecord``) that reports every problem at once."""
    title = f"{spec.name.replace('-', ' ').title().replace(' ', '')}Record"
    also = {new: f" Also accepted as {old!r}, the source file's name." for old, new in source_names(spec).items()}
    fields: dict[str, Any] = {}
    for column, rule in spec.columns.numeric.items():
        kind = int if rule.integer else float
        fields[column] = (kind | None, Field(..., ge=rule.min, le=rule.max, description=also.get(column, "").strip()))
    for column, categories in spec.columns.categorical.items():
        fields[column] = (
            str | None,
            Field(
                ...,
                description=f"known values: {', '.join(categories)}; others are accepted and ignored by the "
                f"encoder.{also.get(column, '')}",
            ),
        )
    optional = [*spec.id_columns, *spec.columns.extra]
    for column in optional:
        fields[column] = (
            str | None,
            Field(
                None,
                max_length=MAX_ID_LENGTH,
                description="kept in the prediction log, not a feature (an integer is taken as its text)."
                + also.get(column, ""),
            ),
        )

    def check(cls: type[BaseModel], data: Any) -> Any:
        data = with_spec_names(data, spec)
        raise_problems(title, [(None, field, kind, message) for field, kind, message in record_problems(data, spec)])
        return _ids_as_text(data, optional)

    config = ConfigDict(extra="forbid", title=title, json_schema_extra={"example": example} if example else None)
    return create_model(
        title,
        __config__=config,
        __validators__={"check_record": model_validator(mode="before")(check)},  # type: ignore[dict-item]
        **fields,
    )


def batch_problems(records: Any, spec: DatasetSpec) -> list[tuple[int | None, str, str, str]]:
    """Every problem of a list of records as (index, field, error type, message).

    A column-wise check clears a valid batch in a few microseconds a record; only a batch that
    fails it is walked record by record for the messages.
    """
    if not isinstance(records, list):
        return [(None, "", "list_type", "the body must be a JSON array of records")]
    if _batch_is_valid(records, spec):
        return []
    return [
        (index, field, kind, message)
        for index, record in enumerate(records)
        for field, kind, message in record_problems(record, spec)
    ]


def _batch_is_valid(records: list[Any], spec: DatasetSpec) -> bool:
    required = set(spec.input_columns)
    allowed = required | {*spec.id_columns, *spec.columns.extra}
    if not all(type(record) is dict and required <= record.keys() <= allowed for record in records):
        return False
    for column, rule in spec.columns.numeric.items():
        values = [record[column] for record in records]
        if not {type(value) for value in values} <= {int, float, type(None)}:
            return False
        if any(type(value) is int and abs(value) > LARGEST_INTEGER for value in values):
            return False
        numbers = np.array(values, dtype=float)  # None → NaN
        present = numbers[~np.isnan(numbers)]
        if len(present) != sum(value is not None for value in values) or not np.isfinite(present).all():
            return False  # a NaN sent as a number, or an infinity
        if (rule.min is not None and (present < rule.min).any()) or (
            rule.max is not None and (present > rule.max).any()
        ):
            return False
        if rule.integer and (present % 1 != 0).any():
            return False
    for column in spec.columns.categorical:
        if not {type(record[column]) for record in records} <= {str, type(None)}:
            return False
    for column in allowed - required:
        values = [record.get(column) for record in records]
        if not {type(value) for value in values} <= {str, int, type(None)}:
            return False
        if any(value is not None and _id_too_long(value) for value in values):
            return False
    return True


def _ids_as_text(record: dict[str, Any], optional: list[str]) -> dict[str, Any]:
    present = [column for column in optional if record.get(column) is not None]
    return {**record, **{column: identifier_text(record[column]) for column in present}}


def raise_problems(title: str, problems: list[tuple[Any, ...]]) -> None:
    """Raise one pydantic ``ValidationError`` with an entry per problem (BentoML answers it with 400)."""
    if problems:
        raise ValidationError.from_exception_data(
            title,
            [
                InitErrorDetails(
                    type=PydanticCustomError(kind, message),
                    loc=tuple(part for part in (index, field) if part not in (None, "")),
                    input=None,
                )
                for index, field, kind, message in problems
            ],
        )


def request_records(frame: pd.DataFrame, spec: DatasetSpec) -> list[dict[str, Any]]:
    """Cleaned rows as a client sends them: ``None`` for missing, integers as integers."""
    records = []
    for row in frame[spec.input_columns].to_dict(orient="records"):
        record: dict[str, Any] = {}
        for key, value in row.items():
            column = str(key)
            rule = spec.columns.numeric.get(column)
            if pd.isna(value):
                record[column] = None
            elif rule is not None:
                record[column] = int(value) if rule.integer else float(value)
            else:
                record[column] = value
        records.append(record)
    return records
