"""The promote stage: challenger and champion scored on the same fresh holdout, the pure rule applied under
the registry lock, the registry re-pointed last in one atomic write (a run that fails or is killed leaves
the champion exactly as it was)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, replace

import bentoml
import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.run import MEASURED, TIMEOUTS, artifact_key, publish_markdown, write_markdown
from tollgate.config.settings import Settings
from tollgate.config.spec import DatasetSpec
from tollgate.core.fairness import FairnessReport
from tollgate.core.features import features_and_target, positive_probability
from tollgate.core.ingest import RawData
from tollgate.core.promotion import (
    PromotionDecision,
    PromotionResult,
    holdout_score,
    paired_bootstrap,
    promotion_markdown,
    should_promote,
    too_few_rows,
    unseen_rows,
)
from tollgate.core.split import TrainHoldout, row_keys
from tollgate.core.tournament import Leaderboard
from tollgate.store.bento_builder import BentoBuilder
from tollgate.store.files import write_json_atomic
from tollgate.store.models import (
    ModelIntegrityError,
    PackageResult,
    build_bento,
    discard_bento,
    export_bento,
    load_packaged_model,
    read_trained_rows,
)
from tollgate.store.registry import locked_registry, now, registry_path
from tollgate.store.runs import RunPaths


@task(name="start-bento-builder", cache_policy=NO_CACHE)
def start_bento_builder(settings: Settings) -> BentoBuilder | None:
    """Start the process a promoted model's bento would be built in, so that its start (the interpreter, BentoML and
    the service's libraries: ~2 s) overlaps the explanations and the report; it builds nothing unless the promote
    stage promotes. None when bentos are not built (``TOLLGATE_BUILD_BENTO=false``)."""
    if not settings.build_bento:
        return None
    builder = BentoBuilder.start()
    print(f"bento builder started (pid {builder.process.pid}): it builds only if the model is promoted")
    return builder


@task(name="promote", cache_policy=NO_CACHE, timeout_seconds=TIMEOUTS["promote"], **MEASURED)
def promote(
    run: RunPaths,
    spec: DatasetSpec,
    raw: RawData,
    split: TrainHoldout,
    leaderboard: Leaderboard,
    package: PackageResult,
    settings: Settings,
    fairness: FairnessReport,
    builder: BentoBuilder | None = None,
    before_commit: Callable[[], object] = lambda: None,
) -> PromotionResult:
    """Score challenger and champion on the same holdout, decide, and re-point the registry if promoted (its bento
    built in ``builder``, started earlier, or in a process started then); ``builder`` ends either way.

    ``before_commit`` waits for the run's stages still running beside this one (the report, drawn while the bento
    builds); it is called under the lock after the decision and the bento, before anything is written: if it
    raises, the registry stays as it was and the bento is deleted again."""
    print(f"promote: {package.model_tag} against the registry's champion on {len(split.holdout):,} holdout rows")
    y_all = features_and_target(split.holdout, spec)[1].to_numpy()
    winner = leaderboard.winner
    keys = row_keys(split.holdout, spec)
    path = registry_path(spec.name, settings)
    with locked_registry(path) as registry, builder or nullcontext():
        current = registry.get("champion")
        champion = comparison = None
        unverifiable = None
        unseen = np.ones(len(y_all), dtype=bool)
        if current is not None:
            try:  # signature, files and the checksums recorded at its promotion
                champion_model = load_packaged_model(current["tag"], settings, current.get("sha256"))
                unseen = unseen_rows(keys, read_trained_rows(current["tag"], settings))
            except (ModelIntegrityError, bentoml.exceptions.NotFound) as error:
                # The service refuses to serve it too: judge the challenger as a first champion, and say so.
                unverifiable, current = f"the champion {current['tag']} cannot be served ({error})", None
                print(f"promotion: {unverifiable}")
        refusal = too_few_rows(y_all[unseen], spec.promotion) if current is not None else None
        if refusal is not None:
            challenger = holdout_score(package.model_tag, y_all, winner.holdout_probability, winner.oof_threshold, spec)
            decision = PromotionDecision(
                "rejected",
                f"no fair comparison: {refusal} once the {int((~unseen).sum()):,} rows the champion trained on "
                "are left out",
                current["tag"] if current else None,
                challenger.tag,
            )
        else:
            y_true = y_all[unseen]
            challenger_probability = winner.holdout_probability[unseen]  # scored once, in the tournament
            challenger = holdout_score(package.model_tag, y_true, challenger_probability, winner.oof_threshold, spec)
            if current is not None:
                champion_probability = positive_probability(
                    champion_model.pipeline, split.holdout.loc[unseen, list(champion_model.pipeline.feature_names_in_)]
                )
                champion = holdout_score(current["tag"], y_true, champion_probability, champion_model.threshold, spec)
                comparison = paired_bootstrap(
                    y_true,
                    challenger_probability,
                    champion_probability,
                    (challenger.threshold, champion.threshold),
                    spec,
                )
            decision = should_promote(challenger, champion, comparison, spec.promotion, fairness.refusal())
        decision = replace(decision, compared_rows=int(unseen.sum()), excluded_rows=int((~unseen).sum()))
        if unverifiable:
            decision = replace(decision, reason=f"{decision.reason}; {unverifiable}")
        record = {
            "at": now(),
            "run_id": run.run_id,
            **asdict(decision),
            "metric": spec.promotion.metric,
            "holdout_month": split.holdout_month,
            "challenger_metrics": asdict(challenger),
            "champion_metrics": asdict(champion) if champion else None,
            "fairness": fairness.summary(),
        }
        bento_tag = bento_path = bento_sha256 = None
        if decision.decision == "promoted":
            # Built for the promoted model only (a rejected challenger's bento was 22 s for nothing); a failed
            # build raises here, before the registry is written, so the champion stays as it was.
            bento_tag = (
                build_bento(spec.name, package.model_tag, run.run_id.lower(), settings, builder)
                if settings.build_bento
                else None
            )
            bento_path, bento_sha256 = (
                export_bento(bento_tag, settings.dataset_artifacts(spec.name) / "bentos", settings)
                if bento_tag
                else (None, None)
            )
        try:
            before_commit()
        except BaseException:
            if bento_tag:  # built for a run that failed: nothing will point at it
                discard_bento(bento_tag, bento_path)
            raise
        if decision.decision == "promoted":
            if current is not None:
                registry.setdefault("previous", []).append(current)
            registry["champion"] = {
                "tag": challenger.tag,
                "bento_tag": bento_tag,
                "bento_path": str(bento_path) if bento_path else None,
                "run_id": run.run_id,
                "algorithm": winner.estimator,
                "threshold": winner.oof_threshold,
                "holdout_month": split.holdout_month,
                "input_sha256": raw.sha256,
                "sha256": package.checksums,  # what the service, monitor and rollback check it against
                "bento_sha256": bento_sha256,
                "metrics": asdict(challenger),
                "promoted_at": now(),
            }
        registry.setdefault("history", []).append(record)
        registry["dataset"] = spec.name
    markdown = promotion_markdown(spec, decision, challenger, champion, split.holdout_month)
    write_markdown(run.dir / "promotion.md", markdown)
    write_json_atomic(run.dir / "promotion.json", record)
    publish_markdown(
        key=artifact_key(spec.name, "promotion"),
        markdown=markdown,
        description=f"{spec.name} champion/challenger decision, run {run.run_id}",
    )
    print(f"promotion: {decision.decision} — {decision.reason}")
    if bento_tag:
        print(f"bento {bento_tag} built; serve it with: TOLLGATE_DATASET={spec.name} bentoml serve")
    elif builder is not None:
        print("bento builder ended without a build: the challenger was not promoted")
    return PromotionResult(decision=decision, record=record, registry=str(path), bento_tag=bento_tag)
