"""The bento builder started early: it imports what a build imports, then builds only when handed a build."""

import signal
import subprocess
import sys

from tollgate.store.bento_builder import SERVICE, BentoBuilder, service_libraries


def test_it_imports_the_libraries_the_service_imports_and_not_the_service_itself():
    libraries = service_libraries()
    assert {"bentoml", "fastapi", "tollgate.core.fastpath", "tollgate.store.models"} <= set(libraries)
    assert not [name for name in libraries if name.split(".")[0] == SERVICE.parent.name]
    assert "__future__" not in libraries


def test_a_builder_not_handed_a_build_exits_at_the_end_of_its_input_having_built_nothing():
    builder = BentoBuilder.start()
    _, stderr = builder.process.communicate("", timeout=120)
    assert builder.process.returncode == 0, stderr  # its imports worked, and it read the end of its input


def test_a_cancelled_builder_is_ended_rather_than_waited_for():
    """Cancelled while it still imports (a challenger rejected at once), it is ended, not left to finish imports
    that the run would wait for."""
    builder = BentoBuilder.start()
    builder.cancel()
    assert builder.process.returncode == -signal.SIGKILL
    builder.cancel()  # twice is harmless


def test_a_failing_build_reports_its_status_and_bentomls_own_words():
    with BentoBuilder.start() as builder:
        code, _, stderr = builder.build({}, ["build", "--no-such-option"], timeout=120)
    assert code != 0
    assert "no-such-option" in stderr


def test_the_builder_ends_with_the_process_that_started_it():
    """A run killed with SIGKILL leaves no builder waiting (``ending_with_this_process``)."""
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from tollgate.store.bento_builder import BentoBuilder as B; import sys; "
            "b = B.start(); print(b.process.pid, flush=True); sys.stdin.readline()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    subprocess.run(["tail", f"--pid={child}", "-f", "/dev/null"], timeout=10, check=True)  # returns once it ended


def test_a_builder_that_could_not_start_reports_why_when_handed_its_build(tmp_path, monkeypatch):
    """A broken environment (here a BentoML that cannot be imported) fails the build with the builder's own words,
    not a broken pipe."""
    (tmp_path / "bentoml").mkdir()
    (tmp_path / "bentoml" / "__init__.py").write_text("raise ImportError('this BentoML is broken')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    builder = BentoBuilder.start()
    code, _, stderr = builder.build({}, ["build"], timeout=120)
    assert code == 1
    assert "this BentoML is broken" in stderr
