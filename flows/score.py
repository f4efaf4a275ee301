"""Call lists and alert queues: score a period's records with the serving champion, rank them by expected
value, cut at capacity, write ``artifacts/<dataset>/lists/<period>.csv``; later, realise the list against
the period's labels.

    python -m flows.score --dataset churn                                # this month's customers
    python -m flows.score --dataset security --data day.csv --period 2026-10-14
    python -m flows.score --dataset churn --period 2026-10 --outcomes --data data/raw/churn/2026-10.csv

One file is one period: the list is cut at the spec's capacity count, or at its share of the records.
The last stdout line is JSON.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flows.server import start_prefect_server_early

start_prefect_server_early(__name__)  # run as a command: its temporary server boots while all below is imported

from prefect import flow  # noqa: E402

from flows.cli import exit_now, run_and_report  # noqa: E402
from tasks.run import load_dataset_spec  # noqa: E402
from tasks.score import latest_batch, load_champion, make_list, publish_list, read_period, record_outcome  # noqa: E402
from tollgate.config.settings import Settings  # noqa: E402
from tollgate.core.ingest import month_of  # noqa: E402


def _settings(artifacts_dir: str | None) -> Settings:
    return Settings(**({"artifacts_dir": artifacts_dir} if artifacts_dir else {}))


@flow(name="score", log_prints=True)
def score(
    dataset: str = "churn", data: str | None = None, period: str | None = None, artifacts_dir: str | None = None
) -> dict:
    """Rank one period's records by expected value and write the list the team works through."""
    settings = _settings(artifacts_dir)
    path = Path(data) if data else latest_batch(load_dataset_spec(dataset, None, settings), settings)
    label = period or month_of(path) or path.stem
    model = load_champion(dataset, settings)
    records = read_period(path, model.spec, labelled=False)
    call_list = make_list(model, records, label)
    written = publish_list(call_list, model.spec, settings)
    return {**call_list.summary(), "list": str(written)}


@flow(name="realise", log_prints=True)
def realise(dataset: str = "churn", period: str = "", data: str = "", artifacts_dir: str | None = None) -> dict:
    """Join a period's labels to the list made for it: realised precision, recall and net value."""
    settings = _settings(artifacts_dir)
    spec = load_dataset_spec(dataset, None, settings)
    labels = read_period(Path(data), spec, labelled=True)
    return record_outcome(spec, settings, period, labels).summary()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="churn")
    parser.add_argument("--data", default=None, help="the period's records (default: the newest monthly batch)")
    parser.add_argument("--period", default=None, help="the list's name (default: the file's month, else its name)")
    parser.add_argument("--outcomes", action="store_true", help="realise the period's list against --data's labels")
    args = parser.parse_args(argv)
    if args.outcomes:
        if not (args.period and args.data):
            parser.error("--outcomes needs --period (the list) and --data (the period's labelled records)")
        return run_and_report(realise, args.dataset, dataset=args.dataset, period=args.period, data=args.data)
    return run_and_report(score, args.dataset, dataset=args.dataset, data=args.data, period=args.period)


if __name__ == "__main__":
    exit_now(main())
