"""A batch of records as columns, from whichever body a bulk caller sends, checked column by column.

Three shapes reach the same columns: a JSON array of records (what ``/predict`` takes, many times), columnar
JSON (``{"columns": {"tenure_months": [1, 2], …}}``) and an Arrow table (an Arrow IPC stream or a Parquet
file). Each is held to the rules of one record (``schema.record_problems``) with its messages, located by row:
a vectorised pass finds the rows that may break a rule and only those are judged one by one, by the same
functions that judge a single record, so a message never differs between ``/predict`` and a batch.

What comes out is a ``Batch``: every column the service logs, as received (ids as text), and the numbers as
float arrays (missing as NaN) ready for cleaning and scoring.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tollgate.config.spec import DatasetSpec
from tollgate.core.schema import (
    LARGEST_INTEGER,
    MAX_ID_LENGTH,
    batch_problems,
    batch_with_spec_names,
    category_problem,
    doubled_field_problem,
    identifier_problem,
    identifier_text,
    number_problem,
    source_names,
    unknown_field_problem,
)

Problem = tuple[int | None, str, str, str]
"""(row index or None, field, error type, message), as ``schema.batch_problems`` gives them."""

RECORDS_OR_COLUMNS = 'the body must be a JSON array of records, or {"columns": {"<field>": [values, ...], ...}}'


TABLE_MEDIA_TYPES = {
    "application/vnd.apache.arrow.stream": "an Arrow IPC stream",
    "application/vnd.apache.arrow.file": "an Arrow IPC file",
    "application/vnd.apache.parquet": "a Parquet file",
    "application/x-parquet": "a Parquet file",
}
"""Binary bodies a batch may come in, by Content-Type, and what each must be."""


class TooManyRows(Exception):
    """A batch beyond the rows one request may carry."""


class BatchRejected(ValueError):
    """A batch that breaks the request schema: every problem, each located by row and field."""

    def __init__(self, problems: list[Problem]):
        super().__init__(f"{len(problems)} problem(s) in the batch")
        self.problems = problems


@dataclass(frozen=True)
class Batch:
    """A checked batch: ``received`` holds every logged column as sent (ids as text; lists, tuples or arrays),
    ``numbers`` the numeric inputs as float arrays (NaN for missing) and ``categories`` each category column
    as codes (-1 for missing) into its distinct values as sent: cleaning and encoding work per distinct value."""

    received: dict[str, Sequence[Any] | np.ndarray]
    numbers: dict[str, np.ndarray]
    categories: dict[str, tuple[np.ndarray, list[str]]]
    rows: int


@dataclass(frozen=True)
class Coded:
    """A text column already factorised (Arrow's dictionary encoding): codes (-1 for null) into distinct values."""

    codes: np.ndarray
    distinct: list[Any]

    def __len__(self) -> int:
        return len(self.codes)

    def values(self) -> np.ndarray:
        """The column as an object array, None for null."""
        values: np.ndarray = np.array([*self.distinct, None], dtype=object)[self.codes]
        return values


def logged_columns(spec: DatasetSpec) -> list[str]:
    """The columns a batch carries into the prediction log: ids, inputs, extras."""
    return [*spec.id_columns, *spec.input_columns, *spec.columns.extra]


def _optional_columns(spec: DatasetSpec) -> list[str]:
    return [*spec.id_columns, *spec.columns.extra]


def batch_from_body(body: Any, spec: DatasetSpec, max_rows: int) -> Batch:
    """A parsed JSON body as a batch: an array of records or ``{"columns": {...}}``; ``TooManyRows`` past
    ``max_rows``."""
    if isinstance(body, list):
        _at_most(len(body), max_rows)
        return batch_from_records(body, spec)
    if isinstance(body, dict) and "columns" in body:
        extra = sorted(set(body) - {"columns"})
        if extra:
            raise BatchRejected([(None, extra[0], "extra_forbidden", f"{extra[0]} is not accepted beside 'columns'")])
        return batch_from_columns(body["columns"], spec, max_rows)
    raise BatchRejected([(None, "", "list_type", RECORDS_OR_COLUMNS)])


def batch_from_records(records: list[Any], spec: DatasetSpec) -> Batch:
    """A JSON array of records as a batch (source column names accepted, as for one record)."""
    columns = _transposed(records, spec)
    if columns is None:
        records = batch_with_spec_names(records, spec)
        columns = _transposed(records, spec)
    if columns is None:  # fields differ between records, or a record is not an object: judged record by record
        problems = batch_problems(records, spec)
        if problems:
            raise BatchRejected(problems)
        columns = {column: [record.get(column) for record in records] for column in logged_columns(spec)}
    return _checked(columns, len(records), spec)


def _transposed(records: list[Any], spec: DatasetSpec) -> dict[str, Sequence[Any]] | None:
    """The records' columns (tuples) when every record is an object with the same fields, every input among
    them and no field the spec does not name; None otherwise."""
    if not records:
        return {column: () for column in spec.input_columns}
    first = records[0]
    if not isinstance(first, dict):
        return None
    names = list(first)  # in the records' own order: looking fields up in it is twice as fast
    if not set(spec.input_columns) <= first.keys() <= {*spec.input_columns, *_optional_columns(spec)}:
        return None
    getter = itemgetter(*names)
    try:
        rows = list(map(getter, records))  # a missing field raises KeyError, a non-object TypeError
    except (KeyError, TypeError):
        return None
    if sum(map(len, records)) != len(names) * len(records):  # another field, or optional ones differ
        return None
    if len(names) == 1:
        return {names[0]: rows}
    return dict(zip(names, zip(*rows, strict=True), strict=True))


def read_table(body: bytes, media_type: str, max_rows: int) -> pa.Table:
    """The Arrow table in a body of one of ``TABLE_MEDIA_TYPES``; ``TooManyRows`` past ``max_rows``, counted
    before a compressed body is expanded."""
    kind = TABLE_MEDIA_TYPES[media_type]
    try:
        if "Parquet" in kind:
            parquet = pq.ParquetFile(pa.BufferReader(body))
            _at_most(parquet.metadata.num_rows, max_rows)
            return parquet.read()
        if "stream" in kind:
            reader = pa.ipc.open_stream(body)
            parts = iter(reader)
        else:
            reader = pa.ipc.open_file(pa.BufferReader(body))
            parts = (reader.get_batch(index) for index in range(reader.num_record_batches))
        batches, rows = [], 0
        for part in parts:  # counted batch by batch: a compressed stream is not expanded past the limit
            rows += part.num_rows
            _at_most(rows, max_rows)
            batches.append(part)
        return pa.Table.from_batches(batches, schema=reader.schema)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise BatchRejected([(None, "", "body_unreadable", f"the body is not {kind}: {error}")]) from None


def arrow_stream(records: list[dict[str, Any]]) -> bytes:
    """Records as the Arrow IPC stream body ``/predict_batch`` reads (``application/vnd.apache.arrow.stream``)."""
    table = pa.Table.from_pylist(records)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _at_most(rows: int, max_rows: int) -> None:
    if rows > max_rows:
        raise TooManyRows(f"more than {max_rows:,} rows in one request; send them in several")


def batch_from_columns(columns: Any, spec: DatasetSpec, max_rows: int) -> Batch:
    """Columnar JSON (``{"field": [values, ...], ...}``) as a batch; ``TooManyRows`` past ``max_rows``."""
    if not isinstance(columns, dict) or not all(isinstance(values, list) for values in columns.values()):
        raise BatchRejected([(None, "columns", "dict_type", "columns must map each field to a JSON array of values")])
    columns = _named(columns, spec)
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        counts = ", ".join(f"{name}: {len(values)}" for name, values in columns.items())
        raise BatchRejected([(None, "columns", "length_mismatch", f"every column must be as long; got {counts}")])
    rows = lengths.pop() if lengths else 0
    _at_most(rows, max_rows)
    return _checked(columns, rows, spec)


def batch_from_arrow(table: pa.Table, spec: DatasetSpec) -> Batch:
    """An Arrow table (from an IPC stream or a Parquet file) as a batch. Numbers must be integer or floating
    columns, categories text; a null is a missing value, a NaN or infinity in a number is refused as in JSON."""
    columns: dict[str, Any] = _named({name: table.column(name) for name in table.column_names}, spec)
    problems: list[Problem] = []
    converted: dict[str, Any] = {}
    optional = set(_optional_columns(spec))
    for name, column in columns.items():
        kind = column.type
        if pa.types.is_dictionary(kind):
            column, kind = column.cast(kind.value_type), kind.value_type
        if name in spec.columns.numeric:
            if not (
                pa.types.is_integer(kind)
                or pa.types.is_floating(kind)
                or pa.types.is_decimal(kind)
                or pa.types.is_null(kind)
            ):
                problems.append(_column_type_problem(name, kind, number_problem(name, "", spec.columns.numeric[name])))
                continue
            if pa.types.is_unsigned_integer(kind) and (pc.max(column).as_py() or 0) > LARGEST_INTEGER:
                problems.append((None, name, "number_too_large", f"{name} holds integers beyond 64-bit signed ones"))
                continue
            nulls = column.is_null().to_numpy(zero_copy_only=False)
            numbers = column.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(float, copy=True)
            numbers[nulls] = np.nan
            wrong = np.flatnonzero(~nulls & ~np.isfinite(numbers))  # NaN or infinity sent as a number
            problems += [(int(row), name, "finite_number", f"{name} must be a finite number") for row in wrong]
            converted[name] = numbers
        elif name in spec.columns.categorical and (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            encoded = column.combine_chunks().dictionary_encode()  # Arrow's hashing: no Python string per row
            converted[name] = Coded(
                encoded.indices.fill_null(-1).to_numpy().astype(np.intp), encoded.dictionary.to_pylist()
            )
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
            converted[name] = column.to_numpy(zero_copy_only=False).astype(object, copy=False)
        elif name in optional and pa.types.is_integer(kind):
            converted[name] = np.array(column.to_pylist(), dtype=object)
        else:
            judged = (
                category_problem(name, 0, spec.columns.categorical[name])
                if name in spec.columns.categorical
                else identifier_problem(name, 0.5)
            )
            problems.append(_column_type_problem(name, kind, judged))
    if problems:
        raise BatchRejected(problems)
    return _checked(converted, table.num_rows, spec)


def _column_type_problem(name: str, kind: pa.DataType, problem: tuple[str, str] | None) -> Problem:
    error_type, message = problem or ("type", f"{name} has the wrong type")
    return (None, name, error_type, f"{message} (the column is {kind})")


def _named(columns: dict[str, Any], spec: DatasetSpec) -> dict[str, Any]:
    """Columns under the spec's names (source names accepted), refusing unknown, doubled and missing ones."""
    sources = source_names(spec)
    allowed = {*spec.input_columns, *_optional_columns(spec)}
    problems: list[Problem] = []
    named: dict[str, Any] = {}
    for name, values in columns.items():
        if name in sources and sources[name] in columns:
            problems.append((None, name, *doubled_field_problem(name, sources[name])))
        elif sources.get(name, name) not in allowed:
            problems.append((None, name, *unknown_field_problem(name, spec)))
        else:
            named[sources.get(name, name)] = values
    for column in spec.input_columns:
        if column not in named and not any(problem[1] == column for problem in problems):
            problems.append((None, column, "missing", f"{column} is required (a column of nulls if it is unknown)"))
    if problems:
        raise BatchRejected(problems)
    return named


def _checked(columns: dict[str, Any], rows: int, spec: DatasetSpec) -> Batch:
    """The batch, or ``BatchRejected`` with every value that breaks a rule (row by row, record-major)."""
    problems: list[Problem] = []
    numbers: dict[str, np.ndarray] = {}
    suspects: np.ndarray | None  # the rows to judge one by one
    for column, rule in spec.columns.numeric.items():
        values = columns[column]
        parsed, suspects = _as_numbers(values)
        if parsed is not None:
            wrong = _out_of_rule(parsed, rule)  # NaN (a null) breaks no rule
            suspects = np.flatnonzero(wrong) if wrong.any() else None
            numbers[column] = parsed
        problems += _judged(values, suspects, column, partial(number_problem, column, rule=rule))
    categories: dict[str, tuple[np.ndarray, list[str]]] = {}
    for column, known in spec.columns.categorical.items():
        values = columns[column]
        factorized = _text_factorized(values)
        if factorized is not None:
            categories[column] = factorized
            continue
        suspects = _not_of_types(values, (str, type(None)))
        problems += _judged(values, suspects, column, partial(category_problem, column, categories=known))
    received: dict[str, Any] = {
        column: values.values() if isinstance(values := columns[column], Coded) else values
        for column in spec.input_columns
    }
    for column in _optional_columns(spec):
        if column not in columns:
            continue
        values = columns[column]
        if _not_of_types(values, (str, type(None))) is not None:  # integers (taken as text) or wrong types
            suspects = np.arange(len(values))
        elif max(map(len, filter(None, values)), default=0) > MAX_ID_LENGTH:
            suspects = np.flatnonzero([value is not None and len(value) > MAX_ID_LENGTH for value in values])
        else:
            suspects = None
        problems += _judged(values, suspects, column, partial(identifier_problem, column))
        received[column] = values if suspects is None else [None if v is None else identifier_text(v) for v in values]
    if problems:
        raise BatchRejected(sorted(problems, key=lambda problem: problem[0] or 0))
    ordered = {column: received[column] for column in logged_columns(spec) if column in received}
    return Batch(received=ordered, numbers=numbers, categories=categories, rows=rows)


def _as_numbers(values: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(float array with NaN for missing, None) for a column of numbers and nulls; (None, every row, to be
    judged one by one) when a value is not a plain number."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return values, None
    every_row = np.arange(len(values))
    kinds = set(map(type, values))
    if not kinds <= {int, float, type(None)}:
        return None, every_row  # text, a boolean, an object
    try:
        parsed = np.array(values, dtype=float)
    except OverflowError:
        return None, every_row  # an integer beyond any float
    if int in kinds and (np.abs(parsed) >= 2.0**63).any():
        return None, every_row  # an integer beyond 64 bits
    missing = np.isnan(parsed)
    if float in kinds and missing.sum() != values.count(None):
        return None, every_row  # a NaN literal (the standard parser's), which is not a null
    if not np.isfinite(parsed[~missing]).all():
        return None, every_row  # an infinity
    return parsed, None


def _text_factorized(values: Any) -> tuple[np.ndarray, list[str]] | None:
    """(codes with -1 for null, distinct values) of a column of text and nulls; None when another value is in
    it (a number, a boolean, an object, a NaN literal), for the rows to be judged one by one."""
    if isinstance(values, Coded):
        return values.codes, values.distinct  # Arrow's text: every distinct value is a string
    array = values if isinstance(values, np.ndarray) else np.fromiter(values, dtype=object, count=len(values))
    try:
        codes, distinct = pd.factorize(array, use_na_sentinel=True)
    except TypeError:  # an unhashable value: an array or object
        return None
    distinct_values = distinct.tolist()
    if not all(type(value) is str for value in distinct_values):
        return None
    nulls = int(np.count_nonzero(codes < 0))
    if nulls and nulls != array.tolist().count(None):  # a NaN is not a null
        return None
    return codes, distinct_values


def _out_of_rule(numbers: np.ndarray, rule: Any) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        wrong = np.zeros(len(numbers), dtype=bool)
        if rule.min is not None:
            wrong |= numbers < rule.min
        if rule.max is not None:
            wrong |= numbers > rule.max
        if rule.integer:
            wrong |= numbers % 1 != 0
    return wrong


def _not_of_types(values: Any, types: tuple[type, ...]) -> np.ndarray | None:
    """Rows whose value is of none of ``types`` (None when there are none)."""
    if set(map(type, values)) <= set(types):
        return None
    return np.flatnonzero([type(value) not in types for value in values])


def _judged(
    values: Any, suspects: np.ndarray | None, column: str, judge: Callable[[Any], tuple[str, str] | None]
) -> list[Problem]:
    """The problems of the ``suspects`` rows, each judged by the single-record rule (None: not a problem)."""
    if suspects is None:
        return []
    problems = []
    for row in suspects.tolist():
        value = values[row]
        if value is None or (isinstance(value, float) and np.isnan(value) and isinstance(values, np.ndarray)):
            continue  # a null (Arrow's are NaN here after their own check)
        problem = judge(value)
        if problem is not None:
            problems.append((row, column, *problem))
    return problems
