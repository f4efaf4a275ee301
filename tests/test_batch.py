"""Batches as columns: every body shape reaches the same columns, held to one record's rules and messages."""

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tollgate.core.batch import (
    BatchRejected,
    TooManyRows,
    arrow_stream,
    batch_from_arrow,
    batch_from_body,
    read_table,
)
from tollgate.core.clean import clean_checked_columns, clean_frame
from tollgate.core.schema import record_problems, request_records


@pytest.fixture(scope="module")
def records(churn_spec, churn_batch) -> list[dict]:
    frame = clean_frame(churn_batch, churn_spec).frame
    ids = frame["customer_id"].tolist()
    return [{"customer_id": id_, **record} for id_, record in zip(ids, request_records(frame, churn_spec), strict=True)]


def _problems(body, spec) -> list[tuple]:
    with pytest.raises(BatchRejected) as rejected:
        batch_from_body(body, spec, 10_000)
    return rejected.value.problems


def test_every_bad_value_of_a_batch_gets_the_message_one_record_gets(churn_spec, records):
    """Check a batch whose records share their fields (the column-wise path) names each bad value, located by row,
    with the message /predict gives that record: text and booleans in numbers, out of range, a fraction in an
    integer, an integer beyond 64 bits, NaN (the standard parser's literal), a number in a category, a long id."""
    bad = [dict(record) for record in records[:12]]
    bad[1]["tenure_months"] = "12"
    bad[2]["monthly_charges"] = True
    bad[3]["tenure_months"] = -4
    bad[4]["tenure_months"] = 1.5
    bad[5]["total_charges"] = 2**70
    bad[6]["monthly_charges"] = float("nan")
    bad[7]["contract"] = 3
    bad[8]["customer_id"] = "x" * 300
    bad[9]["gender"] = ["Female"]
    expected = [(row, *problem) for row, record in enumerate(bad) for problem in record_problems(record, churn_spec)]
    assert len(expected) == 9
    assert sorted(_problems(bad, churn_spec)) == sorted(expected)


def test_records_with_differing_fields_are_judged_record_by_record(churn_spec, records):
    """Check a missing field, an unknown one and a non-object get /predict's messages at their rows."""
    bad = [dict(record) for record in records[:4]]
    del bad[1]["tenure_months"]
    bad[2]["favourite_colour"] = "blue"
    bad[3] = "not a record"
    problems = _problems(bad, churn_spec)
    assert {(row, field, kind) for row, field, kind, _ in problems} == {
        (1, "tenure_months", "missing"),
        (2, "favourite_colour", "extra_forbidden"),
        (3, "", "record_type"),
    }


def test_ids_are_optional_per_batch_and_integers_are_taken_as_text(churn_spec, records):
    """Check a batch where only some records carry an id, or carry it as an integer, is accepted as /predict
    accepts each record (the id logged as text)."""
    mixed = [dict(record) for record in records[:3]]
    del mixed[0]["customer_id"]
    mixed[1]["customer_id"] = 7
    batch = batch_from_body(mixed, churn_spec, 10)
    assert list(batch.received["customer_id"]) == [None, "7", records[2]["customer_id"]]


def test_columns_and_arrow_bodies_give_the_batch_records_give(churn_spec, records):
    """Check columnar JSON, an Arrow stream, an Arrow file and Parquet all give the records' batch: the same
    numbers, the same cleaned categories and cleaning report, the same logged ids."""
    sample = [dict(record) for record in records[:50]]
    sample[0]["contract"], sample[1]["gender"], sample[2]["payment_method"] = " one year ", "", None
    sample[3]["monthly_charges"] = None
    reference = batch_from_body(sample, churn_spec, 100)
    cleaned = clean_checked_columns(reference, churn_spec)
    table = pa.Table.from_pylist(sample)
    parquet, arrow_file = io.BytesIO(), pa.BufferOutputStream()
    pq.write_table(table, parquet)
    with pa.ipc.new_file(arrow_file, table.schema) as writer:
        writer.write_table(table)
    columnar = json.loads(json.dumps({"columns": {name: [r[name] for r in sample] for name in sample[0]}}))
    bodies = {
        "columns": batch_from_body(columnar, churn_spec, 100),
        "arrow stream": batch_from_arrow(
            read_table(arrow_stream(sample), "application/vnd.apache.arrow.stream", 100), churn_spec
        ),
        "arrow file": batch_from_arrow(
            read_table(arrow_file.getvalue().to_pybytes(), "application/vnd.apache.arrow.file", 100), churn_spec
        ),
        "parquet": batch_from_arrow(read_table(parquet.getvalue(), "application/vnd.apache.parquet", 100), churn_spec),
    }
    for shape, batch in bodies.items():
        assert batch.rows == 50, shape
        for column, numbers in reference.numbers.items():
            np.testing.assert_array_equal(batch.numbers[column], numbers, err_msg=f"{shape}: {column}")
        again = clean_checked_columns(batch, churn_spec)
        for column in churn_spec.columns.categorical:
            assert list(again.column(column).astype(str)) == list(cleaned.column(column).astype(str)), (shape, column)
        assert again.report.values_repaired == cleaned.report.values_repaired, shape
        assert list(batch.received["customer_id"]) == [r["customer_id"] for r in sample], shape


def test_columnar_bodies_name_what_is_wrong_with_a_column(churn_spec, records):
    """Check unknown, missing and doubled columns, arrays of different lengths and a bad value in a column."""
    columns = {name: [r[name] for r in records[:3]] for name in records[0]}
    unknown = {**columns, "favourite_colour": ["a", "b", "c"]}
    assert [p[1:3] for p in _problems({"columns": unknown}, churn_spec)] == [("favourite_colour", "extra_forbidden")]
    missing = {name: values for name, values in columns.items() if name != "contract"}
    assert [p[1:3] for p in _problems({"columns": missing}, churn_spec)] == [("contract", "missing")]
    doubled = {**columns, "MonthlyCharges": columns["monthly_charges"]}
    assert [p[1:3] for p in _problems({"columns": doubled}, churn_spec)] == [("MonthlyCharges", "duplicate_field")]
    short = {**columns, "tenure_months": columns["tenure_months"][:2]}
    assert [p[2] for p in _problems({"columns": short}, churn_spec)] == ["length_mismatch"]
    wrong = {**columns, "tenure_months": [1, "two", 3]}
    assert _problems({"columns": wrong}, churn_spec) == [
        (1, "tenure_months", "int_type", "tenure_months must be an integer")
    ]
    assert [p[2] for p in _problems({"rows": []}, churn_spec)] == ["list_type"]


def test_arrow_columns_of_the_wrong_type_and_non_finite_numbers_are_named(churn_spec, records):
    """Check an Arrow column of text where a number goes, or of numbers where a category goes, is named with its
    type; a NaN or infinity is refused where a null is a missing value."""
    table = pa.Table.from_pylist(records[:3])
    as_text = table.set_column(
        table.schema.get_field_index("tenure_months"), "tenure_months", pa.array(["1", "2", "3"])
    )
    [(row, field, kind, message)] = _arrow_problems(as_text, churn_spec)
    assert (row, field, kind) == (None, "tenure_months", "int_type") and "(the column is string)" in message
    as_number = table.set_column(table.schema.get_field_index("contract"), "contract", pa.array([1, 2, 3]))
    assert [p[1:3] for p in _arrow_problems(as_number, churn_spec)] == [("contract", "string_type")]
    charges = pa.array([1.0, float("nan"), None])
    non_finite = table.set_column(table.schema.get_field_index("monthly_charges"), "monthly_charges", charges)
    assert _arrow_problems(non_finite, churn_spec) == [
        (1, "monthly_charges", "finite_number", "monthly_charges must be a finite number")
    ]


def _arrow_problems(table: pa.Table, spec) -> list[tuple]:
    with pytest.raises(BatchRejected) as rejected:
        batch_from_arrow(table, spec)
    return rejected.value.problems


def test_unreadable_and_oversized_bodies(churn_spec, records):
    """Check a body that is not what its Content-Type says is one located problem, and rows past the limit are
    refused before a compressed body is expanded (Parquet's row count is read from its footer)."""
    with pytest.raises(BatchRejected) as rejected:
        read_table(b"not parquet", "application/vnd.apache.parquet", 10)
    assert rejected.value.problems[0][2] == "body_unreadable"
    assert "not a Parquet file" in rejected.value.problems[0][3]
    compressed = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records[:1] * 5000), compressed, compression="zstd")
    with pytest.raises(TooManyRows, match="more than 1,000 rows"):
        read_table(compressed.getvalue(), "application/vnd.apache.parquet", 1000)
    with pytest.raises(TooManyRows):
        read_table(arrow_stream(records[:1] * 20), "application/vnd.apache.arrow.stream", 10)
    with pytest.raises(TooManyRows):
        batch_from_body(records[:11], churn_spec, 10)
