"""A single-file retrain after a re-export: the champion is never compared on rows it trained on."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from flows.retrain import retrain
from tests.conftest import TELCO_CSV
from tests.integration.conftest import SHIPPED_SPECS, fast_spec
from tollgate.config.settings import Settings
from tollgate.synth.generate import Defects, make_batch

# A random forest grown to single-row leaves: near-perfect on the rows it trained on, weaker on new ones.
MEMORISER = {
    "name": "memoriser",
    "estimator": "random_forest",
    "params": {"n_estimators": 30, "min_samples_leaf": 1, "max_features": 2},
}
LOGISTIC = {"name": "logistic_regression", "estimator": "logistic_regression", "params": {"C": 0.5, "max_iter": 2000}}


@pytest.mark.slow
def test_a_reexport_excludes_the_champions_training_rows_and_the_better_challenger_wins(tmp_path, monkeypatch):
    """Check a champion trained on the Telco export is compared only on holdout rows it never saw once the
    export comes back shuffled with 2,000 new customers, and that the better challenger is promoted."""
    monkeypatch.setenv("TOLLGATE_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    spec = fast_spec(SHIPPED_SPECS / "churn.yaml", Settings())
    (tmp_path / "memoriser.yaml").write_text(
        yaml.safe_dump({**spec, "tournament": {**spec["tournament"], "candidates": [MEMORISER]}})
    )
    (tmp_path / "churn.yaml").write_text(
        yaml.safe_dump({**spec, "tournament": {**spec["tournament"], "candidates": [LOGISTIC]}})
    )
    first = retrain(spec=str(tmp_path / "memoriser.yaml"), data=str(TELCO_CSV))
    assert first["promotion"]["decision"] == "promoted"

    telco = pd.read_csv(TELCO_CSV, dtype=str, keep_default_na=False)
    new_customers = make_batch("churn", "2026-11", 11, 12, 2000, seed=5, defects=Defects(0, 0, 0, 0, 0))
    new_customers = new_customers.rename(columns={new: old for old, new in spec["rename"].items()})
    reexport = pd.concat([telco, new_customers[telco.columns].astype(str)]).sample(frac=1, random_state=11)
    reexport.to_csv(tmp_path / "reexport.csv", index=False)
    second = retrain(spec=str(tmp_path / "churn.yaml"), data=str(tmp_path / "reexport.csv"))

    promotion = second["promotion"]
    holdout_rows = int(second["holdout"].split(" training rows, ")[1].split(" ")[0].replace(",", ""))
    assert promotion["excluded_rows"] > 0 and promotion["compared_rows"] + promotion["excluded_rows"] == holdout_rows
    assert promotion["decision"] == "promoted" and promotion["ci_low"] > 0, promotion["reason"]
    markdown = (Path(second["report_dir"]) / "promotion.md").read_text()
    assert f"{promotion['excluded_rows']:,} rows the champion trained on were left out" in markdown
