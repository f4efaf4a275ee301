"""Dataset specs load into one pydantic model; bad specs are refused with the key named."""

from pathlib import Path

import pytest
import yaml

from tollgate.config.settings import Settings
from tollgate.config.spec import SpecError, load_spec, resolve_spec


def _write_spec(tmp_path: Path, spec: dict) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


@pytest.fixture
def churn_dict(churn_spec) -> dict:
    return yaml.safe_load(Path(churn_spec.source_path).read_text())


def test_sample_specs_load(churn_spec, security_spec):
    """Check that both shipped specs load with their decision policies, derived costs and rename maps."""
    assert churn_spec.target.positive == "Yes"
    assert churn_spec.decision.capacity.as_share == 0.08 and churn_spec.decision.value == 2400
    # costs follow from the policy: a missed churner loses 30 % × $2,400, every offer costs $50
    assert churn_spec.costs.false_negative == 720 and churn_spec.costs.false_positive == 50
    assert churn_spec.rename["tenure"] == "tenure_months"
    assert security_spec.costs.false_negative > 100 * security_spec.costs.false_positive
    assert "src_ip" not in security_spec.input_columns
    assert churn_spec.derived_categorical == ["tenure_bucket"]


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda s: s["decision"].update(valu=10), "decision.valu"),
        (lambda s: s["decision"].update(action_cost=-1), "decision.action_cost"),
        (lambda s: s.update(id_column=["a", "b"]), "id_column"),
        (lambda s: s["split"].update(strategy="file"), "split: Value error, strategy 'file' needs holdout_file"),
        (lambda s: s["split"].update(strategy="random"), "split.strategy"),
        (lambda s: s["features"].append({"kind": "log", "name": "x", "column": "no_such_column"}), "no_such_column"),
        (lambda s: s["features"].append({"kind": "sqrt", "name": "x", "column": "tenure_months"}), "features.4"),
        (lambda s: s["quality"].update(segment_columns=["nope"]), "nope"),
    ],
)
def test_invalid_spec_names_the_key(tmp_path, churn_dict, edit, key):
    """Check that an invalid spec raises SpecError whose message names the bad key."""
    edit(churn_dict)
    with pytest.raises(SpecError, match=key.replace(".", r"\.")):
        load_spec(_write_spec(tmp_path, churn_dict))


def test_nsl_kdd_spec_reads_the_shared_data_in_place(security_spec):
    """Check the NSL-KDD spec: no id column, any label but normal is positive, KDDTest+ held out."""
    spec = resolve_spec("nsl_kdd", None, Settings())
    assert spec.id_column is None and spec.id_columns == [] and spec.target.others_are_positive
    assert spec.split.strategy == "file" and spec.split.holdout_file == "KDDTest+.csv"
    assert (spec.raw_path(Settings()) / "KDDTrain+.csv").is_file()
    assert "difficulty" not in spec.input_columns and len(spec.input_columns) == 41
    # the SOC's economics without a capacity policy: a missed intrusion's cost, an analyst's hour
    assert (spec.costs.false_negative, spec.costs.false_positive) == (
        security_spec.decision.value,
        security_spec.decision.action_cost,
    )
    assert spec.decision is None


def test_unknown_dataset_lists_known_ones():
    """Check that asking for an unknown dataset says which ones exist."""
    with pytest.raises(SpecError, match="unknown dataset 'nope'.*churn"):
        resolve_spec("nope", None, Settings())


def test_suite_path_is_relative_to_the_spec(tmp_path, churn_dict):
    """Check that a user's spec finds its own expectation suite beside it."""
    churn_dict["quality"]["suite"] = "suites/mine.json"
    spec = load_spec(_write_spec(tmp_path, churn_dict))
    assert spec.suite_path(Settings()) == (tmp_path / "suites" / "mine.json").resolve()


def test_a_decision_policy_is_validated_and_sets_the_costs(churn_dict, tmp_path):
    """The policy's costs are derived; costs that disagree, two capacity measures, or a count without the
    records a period holds are refused with the key named."""
    spec = load_spec(_write_spec(tmp_path, churn_dict))
    assert spec.decision.break_even == pytest.approx(50 / 720)
    assert spec.costs.true_positive == 50

    for edit, message in [
        ({"costs": {"false_negative": 2400, "false_positive": 50}}, "costs disagree with decision"),
        ({"decision": {**churn_dict["decision"], "capacity": {"share": 0.08, "count": 5}}}, "exactly one"),
        ({"decision": {**churn_dict["decision"], "capacity": {"count": 5}}}, "period_records"),
        ({"decision": {**churn_dict["decision"], "success_rate": 1.5}}, "decision.success_rate"),
    ]:
        with pytest.raises(SpecError, match=message):
            load_spec(_write_spec(tmp_path, {**churn_dict, **edit}))
    without = {key: value for key, value in churn_dict.items() if key != "decision"}
    without["promotion"] = {**churn_dict["promotion"], "metric": "net_value"}
    with pytest.raises(SpecError, match="net_value needs a decision"):
        load_spec(_write_spec(tmp_path, {**without, "costs": {"false_negative": 1, "false_positive": 1}}))


def test_yaml_booleans_and_numbers_are_named_as_such(tmp_path, churn_dict):
    """Check unquoted Yes/No (booleans in YAML) and 408 (a number) are errors that say so, and an unquoted
    ``positive: Yes`` is never taken as the label 1."""
    spec = {**churn_dict, "target": {**churn_dict["target"], "positive": True}}
    spec["columns"] = {**spec["columns"], "categorical": {**spec["columns"]["categorical"], "area": [408, 415]}}
    path = tmp_path / "trap.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    message = str(raised.value)
    assert "target.positive" in message and "the boolean True" in message and 'e.g. "Yes"' in message
    assert "columns.categorical.area.0" in message and 'YAML read 408 as a number: quote it ("408")' in message
