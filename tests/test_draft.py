"""`tollgate init`'s drafting: how a file is written, what each column is, the target and its rate."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from flows.command import main
from tollgate.config.spec import load_spec
from tollgate.core.clean import parse_numeric
from tollgate.core.draft import DraftError, column_name, draft_spec, sniff
from tollgate.synth.generate import Defects, make_batch


def decimal_comma(value: object) -> str:
    """1234.5 → '1.234,50': how a German or French spreadsheet exports a number."""
    if pd.isna(value):
        return ""
    return f"{value:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")


def european_export(path, rows: int = 1500, seed: int = 3) -> pd.DataFrame:
    """A churn export written with ';' between fields, decimal commas, '.' grouping thousands and the source
    system's own column names; returns the numbers as they really are."""
    frame = make_batch("churn", "2026-01", 0, 12, rows, seed, defects=Defects(0, 0, 0, 0, 0))
    truth = frame[["monthly_charges", "total_charges"]].apply(pd.to_numeric, errors="coerce")
    written = frame.assign(**{column: truth[column].map(decimal_comma) for column in truth})
    written = written.rename(columns={"customer_id": "Customer ID", "total_charges": "TotalCharges", "churn": "Churn"})
    written.to_csv(path, sep=";", index=False)
    return truth


def test_sniff_reads_semicolons_decimal_commas_and_thousands_dots(tmp_path):
    """Check a ';' file with '1.234,50' numbers is sniffed as such, with the evidence said."""
    european_export(tmp_path / "export.csv")
    sniffed = sniff(tmp_path / "export.csv")
    assert (sniffed.read.separator, sniffed.read.decimal, sniffed.read.thousands) == (";", ",", ".")
    assert any("decimal comma" in line for line in sniffed.evidence)


def test_sniff_keeps_point_decimals_and_finds_cp1252(tmp_path):
    """Check a tab-separated cp1252 file with point decimals is read as such (a comma is not a decimal mark
    when nothing says so)."""
    (tmp_path / "export.tsv.csv").write_bytes(
        "name\tprice\tgood\nCaf\xe9\t3.50\tyes\nTh\xe9\t2.75\tno\n".encode("cp1252")
    )
    read = sniff(tmp_path / "export.tsv.csv").read
    assert (read.separator, read.decimal, read.encoding) == ("\t", ".", "cp1252")


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("customerID", "customer_id"),
        ("Monthly Charges (€)", "monthly_charges"),
        ("SeniorCitizen", "senior_citizen"),
        ("2nd line", "c_2nd_line"),
        ("HTTPStatus", "http_status"),
    ],
)
def test_column_names_become_spec_names(source, name):
    """Check source headers become snake_case spec names (the rename map keeps the source's)."""
    assert column_name(source) == name


def test_draft_declares_ids_numbers_categories_ranges_and_the_target(tmp_path):
    """Check the draft of a European export: the id found, numbers read in the file's format with a margin
    around the real range, categories complete, the source names mapped, the target's positive label."""
    truth = european_export(tmp_path / "export.csv")
    draft = draft_spec(tmp_path / "export.csv", "Churn", "export", tmp_path / "specs", tmp_path / "suite.json")
    spec = draft.spec
    assert spec["id_column"] == "customer_id" and spec["rename"]["Customer ID"] == "customer_id"
    assert spec["read"] == {"separator": ";", "decimal": ",", "thousands": "."}
    assert spec["target"] == {"column": "churn", "positive": "Yes", "negative": "No"}
    total = spec["columns"]["numeric"]["total_charges"]
    assert total["min"] == 0 and truth["total_charges"].max() < total["max"] < 2 * truth["total_charges"].max()
    assert spec["columns"]["numeric"]["senior_citizen"] == {"min": 0, "max": 1, "integer": True}
    assert sorted(spec["columns"]["categorical"]["contract"]) == ["Month-to-month", "One year", "Two year"]
    low, high = draft.target_rate
    assert 0 < low < 0.25 < high < 1


def test_draft_keeps_free_text_out_of_the_features(tmp_path):
    """Check a column of mostly distinct text is lineage (extra), never a 1,000-value category."""
    frame = pd.DataFrame(
        {
            "note": [f"call {i % 600}" for i in range(1000)],
            "amount": [str(i % 50) for i in range(1000)],
            "label": ["bad" if i % 4 == 0 else "good" for i in range(1000)],
        }
    )
    frame.to_csv(tmp_path / "notes.csv", index=False)
    spec = draft_spec(tmp_path / "notes.csv", "label", "notes", tmp_path, tmp_path / "s.json").spec
    assert spec["columns"]["extra"] == ["note"] and "amount" in spec["columns"]["numeric"]
    assert spec["target"]["positive"] == "bad"  # the rarer label when no word says which


@pytest.mark.parametrize(
    ("labels", "options", "says"),
    [
        (["a"] * 10, {}, "nothing to learn"),
        (["a", "b", "c"] * 10, {}, "name the negative one with --negative"),
        (["a", "b"] * 10, {"positive": "z"}, "--positive 'z' is not a label"),
    ],
)
def test_draft_refuses_a_target_it_cannot_use(tmp_path, labels, options, says):
    """Check a target with one label, several without a named negative, or an unknown label is a clear error."""
    pd.DataFrame({"x": range(len(labels)), "y": labels}).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DraftError, match=says):
        draft_spec(tmp_path / "d.csv", "y", "d", tmp_path, tmp_path / "s.json", **options)


def test_init_writes_a_spec_that_loads_and_a_suite_and_never_overwrites(tmp_path, monkeypatch, capsys):
    """Check `tollgate init` writes both files, the spec loads and reads the numbers right, and a second init
    of the same name is refused without --force."""
    monkeypatch.setenv("TOLLGATE_SPECS_DIR", str(tmp_path / "specs"))
    monkeypatch.setenv("TOLLGATE_EXPECTATIONS_DIR", str(tmp_path / "expectations"))
    truth = european_export(tmp_path / "export.csv")
    assert main(["init", "--data", str(tmp_path / "export.csv"), "--target", "Churn"]) == 0
    spec = load_spec(tmp_path / "specs" / "export.yaml")
    suite = json.loads((tmp_path / "expectations" / "export.json").read_text())
    assert spec.suite_path(None) == (tmp_path / "expectations" / "export.json").resolve()  # type: ignore[arg-type]
    assert any(e["type"] == "expect_column_mean_to_be_between" for e in suite["expectations"])
    raw = pd.read_csv(tmp_path / "export.csv", sep=";", dtype=str)
    parsed = parse_numeric(raw["TotalCharges"], spec.read)[0]
    assert parsed.max() == pytest.approx(truth["total_charges"].max())
    assert main(["init", "--data", str(tmp_path / "export.csv"), "--target", "Churn"]) == 2
    assert "already exist" in capsys.readouterr().err
