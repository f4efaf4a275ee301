"""Replay months in order: retrain, promote or reject, serve the next month, log it, monitor it.

    python -m flows.simulate --dataset churn --months 6

For each of the last N holdout months M: the retrain flow (holdout M, promotion against the
champion); the champion then scores month M+1's records through the serving path into a
simulation prediction log and makes month M+1's call list (labels hidden), which is then realised
against M+1's labels; the monitoring flow judges drift and realised value. Prints the table of
decisions, the champion's holdout metrics and its realised value month by month, then one JSON line.

It runs in an artifacts folder of its own (``<artifacts>/simulation/``, started afresh), so the
production registry, and the service that follows it, are never touched.
"""

from __future__ import annotations

import argparse

from flows.server import start_prefect_server_early

start_prefect_server_early(__name__)  # run as a command: its temporary server boots while all below is imported

from prefect import flow  # noqa: E402

from flows.cli import exit_now, run_and_report  # noqa: E402
from flows.monitor import monitor  # noqa: E402
from flows.retrain import retrain  # noqa: E402
from flows.score import realise, score  # noqa: E402
from tasks.run import load_dataset_spec  # noqa: E402
from tasks.simulate import decisions_table, fresh_simulation_root, plan_months, replay_traffic, simulation_row  # noqa: E402
from tollgate.config.settings import Settings  # noqa: E402


@flow(name="simulate", log_prints=True)
def simulate(dataset: str = "churn", months: int = 6) -> dict:
    spec = load_dataset_spec(dataset, None, Settings())
    settings = fresh_simulation_root(spec, Settings())
    root = str(settings.artifacts_dir)
    log_dir = settings.prediction_logs(spec.name)
    rows = []
    for holdout, following in plan_months(spec, settings, months):
        run = retrain(dataset=dataset, month=holdout, artifacts_dir=root)
        traffic = drift = outcome = None
        if following is not None:
            traffic = replay_traffic(spec, settings, following, log_dir)
            if spec.decision is not None and spec.id_column is not None:
                month_file = str(spec.raw_path(settings) / f"{following}.csv")
                score(dataset=dataset, data=month_file, period=following, artifacts_dir=root)
                outcome = realise(dataset=dataset, period=following, data=month_file, artifacts_dir=root)
            drift = monitor(dataset=dataset, log_dir=str(log_dir), retrain_on_drift=False, artifacts_dir=root)
        rows.append(simulation_row(holdout, run, run["registry"], traffic, drift, outcome))
    table = decisions_table(rows)
    print("\n" + table)
    return {"dataset": spec.name, "months": rows, "table": table}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="churn")
    parser.add_argument("--months", type=int, default=6)
    args = parser.parse_args(argv)
    return run_and_report(
        simulate,
        args.dataset,
        shown=lambda result: {key: value for key, value in result.items() if key != "table"},
        dataset=args.dataset,
        months=args.months,
    )


if __name__ == "__main__":
    exit_now(main())
