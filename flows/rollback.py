"""Roll a dataset back to its previous champion.

    python -m flows.rollback --dataset churn [--reason "complaints after the March model"]

The registry keeps every champion that was replaced; this makes the newest of them the champion
again and records the rollback in the history. A running `bentoml serve` switches within
TOLLGATE_RELOAD_SECONDS. Prints one JSON line; exits 1 if there is nothing to roll back to.
"""

from __future__ import annotations

import argparse

from flows.server import start_prefect_server_early

start_prefect_server_early(__name__)  # run as a command: its temporary server boots while all below is imported

from prefect import flow  # noqa: E402

from flows.cli import exit_now, run_and_report  # noqa: E402
from tasks.rollback import rollback_champion  # noqa: E402
from tollgate.config.settings import Settings  # noqa: E402


@flow(name="rollback", log_prints=True)
def rollback(dataset: str = "churn", reason: str = "manual rollback") -> dict:
    return rollback_champion(dataset, Settings(), reason)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="churn")
    parser.add_argument("--reason", default="manual rollback")
    args = parser.parse_args(argv)
    return run_and_report(rollback, args.dataset, dataset=args.dataset, reason=args.reason)


if __name__ == "__main__":
    exit_now(main())
