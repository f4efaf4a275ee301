"""The tournament stages: one Prefect task run per candidate (``.map``, so a Dask runner can spread them),
the ranking by the spec's rule, then the winner's final fit on every training row when CV used a sample."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.run import MEASURED
from tollgate.config.spec import Candidate, DatasetSpec
from tollgate.core.ensemble import rank_with_ensemble
from tollgate.core.search import entrant
from tollgate.core.split import TrainHoldout
from tollgate.core.tournament import CandidateResult, Leaderboard, fit_winner


@task(name="cross-validate-candidate", cache_policy=NO_CACHE, task_run_name="candidate-{candidate.name}", **MEASURED)
def run_candidate(candidate: Candidate, split: TrainHoldout, spec: DatasetSpec) -> CandidateResult:
    """k-fold CV on the training split, then one fit on all of it and one look at the holdout."""
    search = spec.tournament.search
    how = (
        f"hyperparameter search within {search.budget_seconds:g} s"
        + (f" (at most {search.trials} trials)" if search.trials else "")
        + ", each trial "
        if search is not None
        else ""
    )
    print(
        f"{candidate.name}: {how}{spec.tournament.cv_folds}-fold cross-validation on {len(split.train):,} training rows"
    )
    return entrant(candidate, split, spec)


@task(name="select-winner", cache_policy=NO_CACHE)
def select_winner(results: list[CandidateResult], split: TrainHoldout, spec: DatasetSpec) -> Leaderboard:
    """Rank candidates, the best families' ensemble among them, by the spec's metric, on training (out-of-fold)
    evidence only."""
    leaderboard = rank_with_ensemble(results, split, spec)
    print(f"winner: {leaderboard.winner.name} (rule: {leaderboard.rule})")
    if leaderboard.tie:
        print(f"a tie at the top: {leaderboard.tie}")
    return leaderboard


@task(name="final-fit", cache_policy=NO_CACHE, **MEASURED)
def final_fit(
    leaderboard: Leaderboard, split: TrainHoldout, spec: DatasetSpec, partition_rows: int | None = None
) -> Leaderboard:
    """The winner fitted on every training row (capped for estimators that do not scale) when CV used a sample; on a
    Dask cluster, a LightGBM winner too large for one worker over the workers (``TOLLGATE_DASK_PARTITION_ROWS``)."""
    return fit_winner(leaderboard, split, spec, partition_rows)
