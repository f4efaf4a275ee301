"""The daily monitoring flow: drift of logged traffic against the champion's training data, and the value
its lists realised.

    python -m flows.monitor --dataset churn

Reads the service's prediction log for the serving champion, computes PSI per input (and KS for
numeric inputs), the predicted-positive rate and latency; writes drift.md/.json/.html and a
markdown artifact; reads the newest realised outcome of the champion's lists (flows.score --outcomes).
When drift passes the spec's `monitoring` thresholds, or realised value fell short of the predicted
by more than the spec's `decision.value_drop_tolerance`, it starts the retrain
deployment, or runs the retrain flow itself when no Prefect server has one. Last stdout line: JSON.
"""

from __future__ import annotations

import argparse
import sys

from prefect import flow

from flows.cli import run_and_report
from flows.retrain import retrain
from tasks.monitor import check_drift, check_realised, load_champion_reference, load_prediction_log, trigger_retrain
from tollgate.config.settings import Settings


@flow(name="monitor", log_prints=True)
def monitor(
    dataset: str = "churn", log_dir: str | None = None, retrain_on_drift: bool = True, artifacts_dir: str | None = None
) -> dict:
    settings = Settings(**({"artifacts_dir": artifacts_dir} if artifacts_dir else {}))
    champion = load_champion_reference(dataset, settings)
    log = load_prediction_log(champion, settings, log_dir)
    drift = check_drift(log, champion, settings)
    realised = check_realised(champion, settings)
    shortfall = bool(realised and realised["shortfall"])
    retraining = None
    if (drift.report.drifted or shortfall) and retrain_on_drift:
        retraining = trigger_retrain(dataset)
        if retraining is None:
            retraining = {"how": "subflow", "run": retrain(dataset=dataset, artifacts_dir=artifacts_dir)}
    return {**drift.summary(), "realised": realised, "realised_shortfall": shortfall, "retrain": retraining}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="churn")
    args = parser.parse_args(argv)
    return run_and_report(monitor, args.dataset, dataset=args.dataset)


if __name__ == "__main__":
    sys.exit(main())
