"""The explain stage: global importance and SHAP summaries for the tournament's winner."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.run import MEASURED, TIMEOUTS
from tollgate.config.spec import DatasetSpec
from tollgate.core.explain import GlobalExplanation, explain_model
from tollgate.core.tournament import Leaderboard


@task(name="explain", cache_policy=NO_CACHE, timeout_seconds=TIMEOUTS["explain"], **MEASURED)
def explain(
    leaderboard: Leaderboard, train: pd.DataFrame, holdout: pd.DataFrame, spec: DatasetSpec
) -> GlobalExplanation:
    """Permutation importance on the holdout and SHAP summaries for the winner."""
    explanation = explain_model(leaderboard.winner.pipeline, train, holdout, spec)
    print("top drivers: " + ", ".join(explanation.shap_mean_abs["feature"].head(5)))
    return explanation
