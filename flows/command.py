"""``tollgate``: one command for everything the pipeline does.

    tollgate retrain --dataset churn [--month 2026-10] [--data FILE|FOLDER] [--raw FOLDER]
    tollgate score --dataset churn [--data FILE] [--period P] [--outcomes]
    tollgate monitor --dataset churn
    tollgate rollback --dataset churn [--reason TEXT]
    tollgate simulate --dataset churn [--months 6]
    tollgate serve --dataset churn [--host 127.0.0.1] [--port 3000]
    tollgate registry show --dataset churn
    tollgate init --data FILE --target COLUMN [--name NAME]
    tollgate config

Arguments are checked before Prefect is imported or a server started: a dataset without a spec, a
missing file or a malformed month is one line on stderr and exit 2, in well under a second. A run's
own failure is its JSON line and exit 1; ``--debug`` adds the traceback to any error. The
``python -m flows.<name>`` entry points do the same work; this command checks first and then calls
them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from flows.server import start_prefect_server_early
from tollgate.config.settings import Settings
from tollgate.store.registry import RegistryError, read_registry, registry_path

MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


class UsageError(ValueError):
    """Bad arguments: said in one line, exit 2."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except (UsageError, RegistryError, FileNotFoundError) as error:
        if args.debug:
            traceback.print_exc()
        print(f"tollgate {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `tollgate init … | head`: the reader left; no traceback for that
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tollgate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, run: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(run=run)
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        return sub

    retrain = command("retrain", "retrain, gate, compare and maybe promote a model (prints a JSON line)", _retrain)
    _dataset_option(retrain, default=None)
    retrain.add_argument("--spec", type=Path, help="a spec YAML file instead of --dataset")
    retrain.add_argument("--data", type=Path, help="a CSV/Parquet file or a folder of monthly batches")
    retrain.add_argument("--month", help="holdout month YYYY-MM (default: the latest batch)")
    retrain.add_argument("--raw", type=Path, help="raw event logs: a month folder, or a folder of month folders")
    retrain.add_argument("--task-runner", choices=["threads", "dask"], help="where candidates run")

    score = command("score", "make the period's call list / alert queue from the serving champion", _score)
    _dataset_option(score)
    score.add_argument("--data", type=Path, help="the period's records (default: the newest monthly batch)")
    score.add_argument("--period", help="the list's name (default: the file's month)")
    score.add_argument("--outcomes", action="store_true", help="realise --period's list against --data's labels")

    monitor = command("monitor", "check served traffic for drift and realised value; retrain if needed", _monitor)
    _dataset_option(monitor)

    rollback = command("rollback", "make the previous champion the champion again", _rollback)
    _dataset_option(rollback)
    rollback.add_argument("--reason", default="manual rollback")

    simulate = command("simulate", "replay months: retrain, serve, score, monitor, month by month", _simulate)
    _dataset_option(simulate)
    simulate.add_argument("--months", type=int, default=6)

    serve = command("serve", "serve the dataset's champion over HTTP (bentoml serve)", _serve)
    _dataset_option(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)

    registry = command("registry", "what the registry says", _registry)
    registry.add_argument("action", choices=["show"])
    _dataset_option(registry)
    registry.add_argument("--json", action="store_true", help="the whole registry file, as JSON")

    init = command("init", "draft a spec and an expectation suite from a data file, for a person to review", _init)
    init.add_argument("--data", type=Path, required=True, help="a CSV/Parquet file or a folder of monthly batches")
    init.add_argument("--target", required=True, help="the column to predict, as the file names it")
    init.add_argument("--name", help="the dataset's name (default: from the file name)")
    init.add_argument("--positive", help="the target's positive label (default: yes/1/true, else the rarer one)")
    init.add_argument("--negative", help="the negative label (needed when the target has more than two)")
    init.add_argument("--id", dest="id_column", help="the id column, as the file names it (default: found)")
    init.add_argument("--separator", help="between fields (default: sniffed)")
    init.add_argument("--decimal", choices=[".", ","], help="the decimal mark (default: sniffed)")
    init.add_argument("--encoding", help="the text encoding (default: sniffed)")
    init.add_argument("--force", action="store_true", help="overwrite an existing spec and suite of that name")

    command("config", "every TOLLGATE_* setting, its value and where it came from", _config)
    return parser


def _dataset_option(parser: argparse.ArgumentParser, default: str | None = "churn") -> None:
    parser.add_argument("--dataset", default=default, help=f"a spec under data/specs (default: {default or 'churn'})")


def _known_dataset(name: str, settings: Settings) -> str:
    available = sorted(path.stem for path in settings.specs_dir.glob("*.yaml"))
    if name not in available:
        raise UsageError(f"no dataset {name!r}: specs in {settings.specs_dir} are {', '.join(available) or 'none'}")
    return name


def _existing(path: Path | None, what: str) -> str | None:
    if path is None:
        return None
    if not path.exists():
        raise UsageError(f"{what} {path} does not exist")
    return str(path)


def _retrain(args: argparse.Namespace) -> int:
    settings = Settings()
    if args.spec is not None and args.dataset is not None:
        raise UsageError("give --dataset or --spec, not both")
    argv = ["--dataset", _known_dataset(args.dataset or "churn", settings)] if args.spec is None else []
    if args.spec is not None:
        argv += ["--spec", str(_existing(args.spec, "spec"))]
    if args.month is not None:
        if not MONTH.fullmatch(args.month):
            raise UsageError(f"--month {args.month!r} is not a month YYYY-MM")
        argv += ["--month", args.month]
    for option, value in (("--data", args.data), ("--raw", args.raw)):
        if value is not None:
            argv += [option, str(_existing(value, option.removeprefix("--")))]
    if args.task_runner:
        argv += ["--task-runner", args.task_runner]
    return _flow("retrain").main(argv)


def _score(args: argparse.Namespace) -> int:
    argv = ["--dataset", _known_dataset(args.dataset, Settings())]
    if args.data is not None:
        argv += ["--data", str(_existing(args.data, "data"))]
    if args.period is not None:
        argv += ["--period", args.period]
    if args.outcomes:
        if args.period is None or args.data is None:
            raise UsageError("--outcomes needs --period (the list) and --data (the period's labelled records)")
        argv.append("--outcomes")
    return _flow("score").main(argv)


def _monitor(args: argparse.Namespace) -> int:
    argv = ["--dataset", _known_dataset(args.dataset, Settings())]
    return _flow("monitor").main(argv)


def _rollback(args: argparse.Namespace) -> int:
    settings = Settings()
    dataset = _known_dataset(args.dataset, settings)
    if not read_registry(registry_path(dataset, settings)).get("previous"):
        raise UsageError(f"{registry_path(dataset, settings)}: no previous champion to roll back to")
    return _flow("rollback").main(["--dataset", dataset, "--reason", args.reason])


def _simulate(args: argparse.Namespace) -> int:
    if args.months < 1:
        raise UsageError("--months must be at least 1")
    argv = ["--dataset", _known_dataset(args.dataset, Settings()), "--months", str(args.months)]
    return _flow("simulate").main(argv)


def _flow(name: str) -> ModuleType:
    """The module of the flow ``name`` (``flows.<name>``), imported while the command's temporary Prefect server
    starts on the other core (``flows.server``)."""
    start_prefect_server_early()
    return importlib.import_module(f"flows.{name}")


def _serve(args: argparse.Namespace) -> int:
    dataset = _known_dataset(args.dataset, Settings())
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not a port")
    command = [sys.executable, "-m", "bentoml", "serve", "service.service:Tollgate"]
    command += ["--host", args.host, "--port", str(args.port)]
    os.chdir(Path(__file__).resolve().parents[1])  # bentoml imports the service from the project root
    os.execve(sys.executable, command, {**os.environ, "TOLLGATE_DATASET": dataset})
    return 0  # not reached: the server replaces this process


def _registry(args: argparse.Namespace) -> int:
    settings = Settings()
    dataset = _known_dataset(args.dataset, settings)
    path = registry_path(dataset, settings)
    registry = read_registry(path)
    if args.json:
        print(json.dumps(registry, indent=2, default=str))
        return 0
    champion = registry.get("champion")
    print(f"registry {path}")
    if champion is None:
        print("champion: none yet (no run has promoted a model)")
    else:
        print(
            f"champion: {champion['tag']} ({champion.get('algorithm')}, threshold {champion.get('threshold')}, "
            f"holdout {champion.get('holdout_month')}, promoted {champion.get('promoted_at')})"
        )
    for entry in reversed(registry.get("previous", [])):
        print(f"  previous: {entry['tag']} (promoted {entry.get('promoted_at')})")
    history = registry.get("history", [])
    print(f"decisions: {len(history)}, the last 10:")
    for record in history[-10:]:
        subject = record.get("challenger") or record.get("champion")
        print(f"  {record.get('at')}  {record.get('decision'):<11} {subject}  {record.get('reason', '')}")
    return 0


def _init(args: argparse.Namespace) -> int:
    from tollgate.config.spec import SpecError, load_spec
    from tollgate.config.suite import suite_from_spec
    from tollgate.core.draft import DraftError, column_name, draft_spec
    from tollgate.core.ingest import IngestError
    from tollgate.store.files import write_json_atomic, write_text_atomic

    settings = Settings()
    data = Path(str(_existing(args.data, "data")))
    name = args.name or column_name(data.stem if data.is_file() else data.resolve().name).replace("_", "-")
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
        raise UsageError(f"--name {name!r}: a dataset name is lowercase letters, digits, '-' and '_'")
    spec_path, suite_path = settings.specs_dir / f"{name}.yaml", settings.expectations_dir / f"{name}.json"
    existing = [str(path) for path in (spec_path, suite_path) if path.exists()]
    if existing and not args.force:
        raise UsageError(f"{' and '.join(existing)} already exist(s): choose another --name, or --force to replace")
    overrides = {
        k: v for k, v in (("separator", args.separator), ("decimal", args.decimal), ("encoding", args.encoding)) if v
    }
    try:
        draft = draft_spec(
            data,
            args.target,
            name,
            settings.specs_dir,
            suite_path,
            args.positive,
            args.negative,
            args.id_column,
            overrides,
        )
    except (DraftError, IngestError) as error:
        raise UsageError(str(error)) from error
    text = draft.yaml_text()
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    staged = spec_path.with_name(f".{spec_path.name}.draft")
    staged.write_text(text, encoding="utf-8")
    try:
        spec = load_spec(staged)  # the draft must be a spec the pipeline reads, before it takes the name
    except SpecError as error:
        raise UsageError(f"the drafted spec does not load ({error}); kept at {staged} for a look") from error
    suite = suite_from_spec(spec, draft.target_rate, draft.rows)
    suite["meta"] = {"generated_by": f"tollgate init --data {data} --target {args.target}"}
    suite_path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(suite_path, suite)
    write_text_atomic(spec_path, text)
    staged.unlink()
    print(
        f"drafted {spec_path} ({len(spec.columns.numeric)} numeric, {len(spec.columns.categorical)} categorical "
        f"columns; target {spec.target.column}) and {suite_path} ({len(suite['expectations'])} expectations)"
    )
    for note in draft.notes:
        print(f"  {note}")
    print(f"review both, then: tollgate retrain --dataset {name}")
    return 0


def _config(args: argparse.Namespace) -> int:
    settings = Settings()
    prefix = settings.model_config.get("env_prefix", "")
    for name, field in type(settings).model_fields.items():
        variable = f"{prefix}{name}".upper()
        value = getattr(settings, name)
        source = f"from {variable}" if variable in os.environ else "default"
        shown = "*** (set)" if "key" in name and value is not None and "file" not in name else value
        print(f"{variable:<36} {shown!s:<60} {source}{'  # ' + field.description if field.description else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
