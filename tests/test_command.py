"""The `tollgate` command: arguments checked before anything slow starts, one line per mistake."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tollgate.config.settings import PROJECT_ROOT, Settings

TOLLGATE = Path(sys.executable).parent / "tollgate"  # the [project.scripts] entry point, as installed


def run(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(TOLLGATE), *arguments], capture_output=True, text=True, timeout=60, cwd="/")


def test_help_lists_every_command():
    """Check `tollgate --help` names each command."""
    result = run("--help")
    assert result.returncode == 0
    for command in ("retrain", "score", "monitor", "rollback", "simulate", "serve", "registry", "init", "config"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["retrain", "--dataset", "nope"], "no dataset 'nope': specs in"),
        (["retrain", "--month", "2026-13"], "is not a month YYYY-MM"),
        (["retrain", "--data", "/no/such/file.csv"], "does not exist"),
        (["score", "--outcomes"], "--outcomes needs --period"),
        (["serve", "--port", "70000"], "is not a port"),
        (["simulate", "--months", "0"], "at least 1"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2_at_once(arguments, says):
    """Check a mistake costs one line on stderr and exit 2 before Prefect starts (it took 38 s and 86 lines)."""
    started = time.monotonic()
    result = run(*arguments)
    assert time.monotonic() - started < 5
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr


def test_debug_shows_the_traceback():
    """Check --debug adds the traceback to the one line."""
    result = run("--debug", "retrain", "--dataset", "nope")
    assert result.returncode == 2 and "Traceback" in result.stderr and "no dataset 'nope'" in result.stderr


def test_config_lists_every_setting_and_where_it_came_from(tmp_path):
    """Check `tollgate config` prints every TOLLGATE_* setting, says which came from the environment, and
    never prints the signing key or API key."""
    environment = {"TOLLGATE_WORKERS": "3", "TOLLGATE_API_KEY": "do-not-print-me", "PATH": "/usr/bin"}
    result = subprocess.run([str(TOLLGATE), "config"], capture_output=True, text=True, env=environment, timeout=60)
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert set(lines) == {f"TOLLGATE_{name.upper()}" for name in Settings.model_fields}
    assert lines["TOLLGATE_WORKERS"].split()[1] == "3" and "from TOLLGATE_WORKERS" in lines["TOLLGATE_WORKERS"]
    assert "default" in lines["TOLLGATE_RELOAD_SECONDS"]
    assert "do-not-print-me" not in result.stdout


def test_registry_show_reads_a_dataset_without_promotions(tmp_path):
    """Check `tollgate registry show` on a dataset nothing was promoted for says so."""
    environment = {"TOLLGATE_ARTIFACTS_DIR": str(tmp_path), "PATH": "/usr/bin"}
    result = subprocess.run(
        [str(TOLLGATE), "registry", "show", "--dataset", "security"], capture_output=True, text=True, env=environment
    )
    assert result.returncode == 0 and "champion: none yet" in result.stdout


def test_a_command_ending_leaves_no_worker_processes_holding_its_output():
    """Check that a flow command's fast exit (``exit_now``) ends the joblib worker processes a library started:
    left alone they idle for minutes after the command, holding its stdout open, so a pipe reading to the end
    (``make run | tee``, a benchmark) would wait for them."""
    script = (
        "import joblib\n"
        "from flows.cli import exit_now\n"
        "print(sum(joblib.Parallel(n_jobs=2, backend='loky')(joblib.delayed(abs)(i) for i in range(4))))\n"
        "exit_now(0)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "6"
