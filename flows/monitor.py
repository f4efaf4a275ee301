"""The daily monitoring flow: drift of the traffic logged since the last check against the champion's training
data, and the value its lists realised.

    python -m flows.monitor --dataset churn

Reads the service's prediction log for the serving champion from where the last verdict stopped
(``artifacts/<dataset>/monitoring/state.json``), computes PSI per input (and KS for numeric inputs), the
predicted-positive rate and latency, and reads the newest realised outcome of the champion's lists
(flows.score --outcomes). Drift past the spec's ``monitoring`` thresholds, or realised value short of the
predicted by more than ``decision.value_drop_tolerance``, is a reason to retrain; a retrain is asked for only
outside the spec's ``monitoring.cooldown_days`` since the last request and when the data a retrain would read
holds labels the champion did not train on. Asking is the event ``tollgate.retrain.requested``, which the
retrain deployments' triggers in prefect.yaml react to; with no such deployment the flow retrains itself.
Writes drift.md/.json/.html with the decision and a markdown artifact. Last stdout line: JSON.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

from flows.server import start_prefect_server_early

start_prefect_server_early(__name__)  # run as a command: its temporary server boots while all below is imported

from prefect import flow  # noqa: E402

from flows.cli import exit_now, run_and_report  # noqa: E402
from flows.retrain import retrain  # noqa: E402
from tasks.monitor import (  # noqa: E402
    check_drift,
    check_realised,
    decide_retrain,
    load_champion_reference,
    load_prediction_log,
    read_monitoring_state,
    remember_check,
    request_retrain,
    write_monitoring_report,
)
from tollgate.config.settings import Settings  # noqa: E402


@flow(name="monitor", log_prints=True)
def monitor(
    dataset: str = "churn", log_dir: str | None = None, retrain_on_drift: bool = True, artifacts_dir: str | None = None
) -> dict:
    """Check the champion's traffic since the last check for drift, and its lists' realised value; ask for a
    retrain only with a reason, outside the spec's cooldown and with labels the champion has not seen.

    Args:
        dataset: a spec under data/specs
        log_dir: the prediction log folder (default: the service's, TOLLGATE_PREDICTION_LOG_DIR)
        retrain_on_drift: act on the decision (emit the retrain event, or retrain here without a deployment)
        artifacts_dir: where the registry, reports and monitoring state live (default: TOLLGATE_ARTIFACTS_DIR)
    """
    settings = Settings(**({"artifacts_dir": artifacts_dir} if artifacts_dir else {}))
    champion = load_champion_reference(dataset, settings)
    state = read_monitoring_state(dataset, settings)
    log = load_prediction_log(champion, settings, log_dir)
    report = check_drift(log, champion, state)
    realised = check_realised(champion, settings)
    decision = decide_retrain(report, realised, champion, state, settings)
    drift = write_monitoring_report(report, decision, champion, settings)
    retraining = None
    if decision.requested and retrain_on_drift:
        retraining = request_retrain(dataset, decision.reason, champion.tag)
        if retraining is None:
            retraining = {"how": "subflow", "run": retrain(dataset=dataset, artifacts_dir=artifacts_dir)}
    remember_check(log, report, decision, retrain_on_drift, state, champion, settings)
    return {
        **drift.summary(),
        "realised": realised,
        "realised_shortfall": bool(realised and realised["shortfall"]),
        "retrain_decision": asdict(decision),
        "retrain": retraining,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="churn")
    args = parser.parse_args(argv)
    return run_and_report(monitor, args.dataset, dataset=args.dataset)


if __name__ == "__main__":
    exit_now(main())
