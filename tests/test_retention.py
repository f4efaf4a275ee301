"""The retention rule: champions are kept for ever; of the rest, the newest runs and rejected models."""

from __future__ import annotations

import bentoml
import pytest

from tollgate.config.settings import Settings
from tollgate.store.retention import apply_retention


def stored(name: str) -> str:
    with bentoml.models.create(name) as model:
        pass  # an empty model is enough to be stored
    return str(model.tag)


def test_old_rejected_models_and_runs_go_champions_stay(tmp_path):
    """Check the oldest rejected models and non-champion run folders beyond the counts are removed, and the
    champion's and previous champion's model and run are kept whatever their age."""
    settings = Settings(artifacts_dir=tmp_path, keep_runs=2, keep_rejected_models=1)
    runs = [f"2026010{day}T000000Z-aaaaaa" for day in range(1, 8)]
    for run in runs:
        (tmp_path / "churn" / "runs" / run).mkdir(parents=True)
    tags = [stored("tollgate-retention-test") for _ in range(4)]
    registry = {
        "champion": {"tag": tags[3], "run_id": runs[6]},
        "previous": [{"tag": tags[0], "run_id": runs[0]}],
        "history": [
            {"decision": "promoted", "challenger": tags[0]},
            {"decision": "rejected", "challenger": tags[1]},
            {"decision": "rejected", "challenger": tags[2]},
            {"decision": "promoted", "challenger": tags[3]},
        ],
    }
    kept = apply_retention("churn", registry, settings, current_run=runs[5])

    assert kept.models_removed == [tags[1]]  # the older rejected one; the newest rejected stays
    with pytest.raises(bentoml.exceptions.NotFound):
        bentoml.models.get(tags[1])
    assert {str(bentoml.models.get(tag).tag) for tag in (tags[0], tags[2], tags[3])} == {tags[0], tags[2], tags[3]}
    assert kept.runs_removed == runs[1:3]  # of runs 1–4 (not champions', not the current), the newest two stay
    left = sorted(path.name for path in (tmp_path / "churn" / "runs").iterdir())
    assert left == [runs[0], runs[3], runs[4], runs[5], runs[6]]
    assert apply_retention("churn", registry, settings, current_run=runs[5]).models_removed == []
