"""The monthly retrain flow: ingest → validate → quality gate → clean → split → tournament → final fit → explain
→ fairness → package → promote (a bento for a promoted model) → retention, with the report and the anomaly report
drawn beside package and promote (the registry is written only once they are done); the JSON summary is built from
their results at the end.

    python -m flows.retrain --dataset churn [--month 2026-10]
    python -m flows.retrain --spec my.yaml --data my.csv
    python -m flows.retrain --dataset security --raw data/raw_logs/security/2026-03/   # from raw event logs
    python -m flows.retrain --dataset security --task-runner dask   # on a temporary local Dask cluster
    TOLLGATE_DASK_ADDRESS=tcp://scheduler:8786 python -m flows.retrain   # on an existing Dask cluster

Human progress goes to the log; the last line on stdout is one JSON summary of the run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flows.server import start_prefect_server_early

start_prefect_server_early(__name__)  # run as a command: its temporary server boots while all below is imported

from prefect import flow, unmapped  # noqa: E402
from prefect.context import FlowRunContext  # noqa: E402
from prefect.futures import PrefectFuture  # noqa: E402
from prefect.runtime import flow_run  # noqa: E402
from prefect.states import Completed, Failed  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402

from flows.cli import exit_now, run_and_report  # noqa: E402
from tasks.anomaly import anomaly_report  # noqa: E402
from tasks.clean import clean  # noqa: E402
from tasks.explain import explain  # noqa: E402
from tasks.fairness import evaluate_slices  # noqa: E402
from tasks.ingest import ingest  # noqa: E402
from tasks.package import package_model  # noqa: E402
from tasks.promote import promote, start_bento_builder  # noqa: E402
from tasks.quality import quality_gate, validate  # noqa: E402
from tasks.report import write_report  # noqa: E402
from tasks.retention import retain  # noqa: E402
from tasks.run import TIMEOUTS, cached, load_dataset_spec, start_run  # noqa: E402
from tasks.split import split_train_holdout  # noqa: E402
from tasks.tournament import final_fit, run_candidate, select_winner  # noqa: E402
from tollgate.config.settings import Settings  # noqa: E402
from tollgate.core.quality import QualityGateFailed  # noqa: E402
from tollgate.core.summary import run_summary  # noqa: E402


def run_name() -> str:
    """A run's name in the Prefect UI: what it retrains and on which holdout (``churn-2026-10``)."""
    parameters = flow_run.parameters
    subject = parameters.get("dataset") or Path(parameters.get("spec") or "spec").stem
    return f"{subject}-{parameters.get('month') or 'latest'}"


def task_runner(name: str, address: str | None = None):
    """The runner the stages fan out on: local threads, or Dask (prefect-dask): the scheduler at ``address``
    (``TOLLGATE_DASK_ADDRESS``), or a temporary local cluster when none is given."""
    if name == "threads":
        return ThreadPoolTaskRunner(max_workers=4)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as error:
        raise SystemExit("--task-runner dask needs prefect-dask: .venv/bin/pip install -e '.[dask]'") from error
    return DaskTaskRunner(address=address) if address else DaskTaskRunner()


def configured_runner_name(settings: Settings) -> str:
    """The runner the settings name: dask when ``TOLLGATE_DASK_ADDRESS`` names a scheduler, else
    ``TOLLGATE_TASK_RUNNER`` (threads by default)."""
    return "dask" if settings.dask_address else settings.task_runner


def configured_task_runner(settings: Settings):
    """The settings' runner, made when the flow is imported, so a deployment's run on a worker uses the worker's
    settings as the command line does."""
    return task_runner(configured_runner_name(settings), settings.dask_address)


@flow(
    name="retrain",
    flow_run_name=run_name,
    log_prints=True,
    task_runner=configured_task_runner(Settings()),
    timeout_seconds=TIMEOUTS["retrain"],
)
def retrain(
    dataset: str | None = "churn",
    month: str | None = None,
    data: str | None = None,
    spec: str | None = None,
    raw: str | None = None,
    artifacts_dir: str | None = None,
) -> dict:
    """Retrain one dataset's model from raw batches; a critical data-quality failure stops it. The run ends
    in a state named after what happened, so the runs list says it: Promoted or Rejected (both completed),
    or Stopped at gate (failed, with the root causes in its message).

    Args:
        dataset: a spec under data/specs (churn, security, nsl_kdd); leave empty when giving spec
        month: the holdout month YYYY-MM; the months before it train (default: the latest batch)
        data: a CSV/Parquet file or a folder of monthly batches (default: the spec's raw_dir)
        spec: a spec YAML file, instead of dataset
        raw: raw event logs (a month folder, or a folder of month folders), for specs with raw_logs
        artifacts_dir: where runs and the registry live (default: TOLLGATE_ARTIFACTS_DIR)
    """
    settings = Settings(**({"artifacts_dir": artifacts_dir} if artifacts_dir else {}))
    dataset_spec = load_dataset_spec(dataset, spec, settings)
    run = start_run(dataset_spec, settings)
    batches = cached(ingest, settings)(dataset_spec, settings, data, month, raw)
    validation = cached(validate, settings)(batches, dataset_spec, settings)
    try:
        quality = quality_gate(validation, batches, dataset_spec, settings, run)
    except QualityGateFailed as stopped:  # a named final state: the runs list tells a stopped batch from a crash
        return Failed(name="Stopped at gate", message=str(stopped).splitlines()[0], data=stopped)
    cleaned = clean(batches.frame, dataset_spec)
    # Submitted, not called: on a Dask cluster the split is made on a worker and stays there, and each candidate
    # (a task on any worker) reads it from the cluster, so the training rows cross the network once per worker.
    made = split_train_holdout.submit(cleaned.frame, dataset_spec, batches.holdout_month)
    on_every_worker(made)
    candidates = run_candidate.map(dataset_spec.tournament.candidates, unmapped(made), unmapped(dataset_spec))
    ranked = select_winner(candidates.result(), made, dataset_spec)
    leaderboard = final_fit.submit(ranked, made, dataset_spec, settings.dask_partition_rows).result()
    split = made.result()
    builder = start_bento_builder(settings)  # its imports overlap the explanations and the report
    explanation = explain(leaderboard, split.train, split.holdout, dataset_spec)
    fairness = evaluate_slices(split, leaderboard, dataset_spec)
    # The reports are drawn on this core while the model is packaged and its bento built on the other; the promote
    # stage writes the registry only once they are done (a report that fails leaves the champion as it was).
    report = write_report.submit(run, dataset_spec, quality, cleaned.report, split, leaderboard, explanation, fairness)
    anomaly = anomaly_report.submit(run, split, dataset_spec, wait_for=[report])  # pyplot draws one run at a time
    package = package_model(
        run, dataset_spec, batches, quality, cleaned.report, split, leaderboard, explanation, settings
    )
    promotion = promote(
        run, dataset_spec, batches, split, leaderboard, package, settings, fairness, builder, WaitFor(report, anomaly)
    )
    retention = retain(dataset_spec, settings, run, promotion)
    summary = run_summary(
        dataset_spec,
        run,
        batches,
        quality,
        cleaned.report,
        split,
        leaderboard,
        report.result(),
        anomaly.result(),
        package,
        promotion,
        retention,
        fairness,
    )
    decision = promotion.decision
    return Completed(data=summary, name=decision.decision.replace("_", " ").title(), message=decision.reason)


class WaitFor:
    """Waits for stages still running (their futures), when called; a plain object, so that Prefect hands it to a task
    as it is instead of waiting for the futures before starting the task."""

    def __init__(self, *futures: PrefectFuture) -> None:
        self.futures = futures

    def __call__(self) -> None:
        for future in self.futures:
            future.result()


def on_every_worker(future: PrefectFuture) -> None:
    """On a Dask cluster, copy a task's result to every worker once (else the scheduler, keeping work next to its
    data, runs every task that reads it on the worker that made it); nothing on threads."""
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:  # the dask extra is not installed: no cluster either
        return
    context = FlowRunContext.get()
    if context is not None and isinstance(context.task_runner, DaskTaskRunner):
        context.task_runner.client.replicate([future.wrapped_future])


def failure_summary(error: BaseException, dataset: str | None) -> dict:
    """The JSON line for a failed run: what failed and, for the quality gate, which expectations."""
    result = getattr(error, "result", None)
    quality = result.summary() if result is not None else None
    report_dir = getattr(result, "report_dir", None)
    return {
        "dataset": getattr(result, "dataset", dataset),
        "run_id": Path(report_dir).name if report_dir else None,
        "status": "failed",
        "rows_in": None,
        "rows_clean": None,
        "quality": quality,
        "report_dir": report_dir,
        "data_docs": getattr(result, "data_docs", None),
        "error": f"{type(error).__name__}: {error}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=None, help="a spec under data/specs (default: churn)")
    parser.add_argument("--month", default=None, help="holdout month YYYY-MM (default: the latest batch)")
    parser.add_argument("--data", default=None, help="a CSV/Parquet file or a folder of monthly batches")
    parser.add_argument("--spec", default=None, help="a spec YAML file (instead of --dataset)")
    parser.add_argument(
        "--raw", default=None, help="raw event logs: a month folder, or a folder of YYYY-MM folders (spec's raw_logs)"
    )
    settings = Settings()
    parser.add_argument(
        "--task-runner",
        choices=["threads", "dask"],
        default=configured_runner_name(settings),
        help="where the split, the candidates and the final fit run (default: dask when TOLLGATE_DASK_ADDRESS names "
        "a scheduler, else TOLLGATE_TASK_RUNNER, else threads; dask without an address starts a local cluster)",
    )
    args = parser.parse_args(argv)
    dataset = args.dataset or (None if args.spec else "churn")
    label = dataset or Path(args.spec).stem

    return run_and_report(
        retrain.with_options(task_runner=task_runner(args.task_runner, settings.dask_address)),
        label,
        failure_summary,
        preload=("great_expectations",),  # the gate's first step; seconds to import
        dataset=dataset,
        month=args.month,
        data=args.data,
        spec=args.spec,
        raw=args.raw,
    )


if __name__ == "__main__":
    exit_now(main())
