"""The suite generator writes GE 1.x suites in the shipped shape; the NSL-KDD suite is its output."""

import json

from tasks.quality import load_suite
from tollgate.config.settings import Settings
from tollgate.config.spec import resolve_spec
from tollgate.config.suite import main, suite_from_spec


def test_generated_suite_loads_in_great_expectations(security_spec, tmp_path):
    """Check every spec column gets its critical check and warning twin, and GE accepts the suite."""
    suite = suite_from_spec(security_spec, (0.01, 0.5), (100, 1000))
    kinds = {(e["type"], e["kwargs"].get("column"), e["severity"]) for e in suite["expectations"]}
    for column in security_spec.columns.numeric:
        assert {
            ("expect_column_values_to_be_between", column, "critical"),
            ("expect_column_values_to_be_between", column, "warning"),
        } <= kinds
    assert ("expect_column_values_to_be_unique", "session_id", "critical") in kinds
    assert ("expect_column_mean_to_be_between", "is_attack", "critical") in kinds
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(suite))
    assert len(load_suite(path).expectations) == len(suite["expectations"])


def test_shipped_nsl_kdd_suite_matches_its_spec(capsys):
    """Check expectations/nsl_kdd.json is what `python -m tollgate.config.suite` writes for the NSL-KDD spec."""
    spec = resolve_spec("nsl_kdd", None, Settings())
    assert main(["--spec", str(spec.source_path), "--target-rate", "0.2", "0.8"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(spec.suite_path(Settings()).read_text())
