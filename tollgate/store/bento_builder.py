"""A bento build whose process starts before it is needed (``python -m tollgate.store.bento_builder``).

``bentoml build`` runs in a process of its own (the service module reads its model at import time), and most of
that process's time was its start: the interpreter, BentoML and the service's libraries, ~2 s of a 3 s build, on
the critical path of every promotion. Started early (``BentoBuilder.start``, while the run writes its report on
the other core), the process imports all that and then waits for one line on its standard input: the build to
run (JSON: the environment to add and ``bentoml build``'s arguments), which it runs and exits with its status. A
rejected challenger ends it (``cancel``); at the end of its input (a run that failed before promotion closed the
pipe, or ended) it exits having built nothing. So a bento is still built only for a promoted model, and the build
itself is what is left on the critical path.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tollgate.store.processes import ending_with_this_process

SERVICE = Path(__file__).resolve().parents[2] / "service/service.py"


def service_libraries(service: Path = SERVICE) -> list[str]:
    """The modules the service's package imports, itself aside: what a build imports before the service runs."""
    folder = service.parent
    modules: dict[str, None] = {}
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules.update(dict.fromkeys(alias.name for alias in node.names))
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules[node.module] = None
    return [name for name in modules if name.split(".")[0] != folder.name and name != "__future__"]


@dataclass
class BentoBuilder:
    """A started builder process: ``build`` hands it the build, ``cancel`` lets it exit without one."""

    process: subprocess.Popen[str]

    @classmethod
    def start(cls) -> BentoBuilder:
        """Start the process; it imports BentoML and the service's libraries while the caller goes on."""
        process = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "BENTOML_DO_NOT_TRACK": "true"},
            preexec_fn=ending_with_this_process(),  # a killed run leaves no builder behind
        )
        return cls(process)

    def build(self, environment: dict[str, str], arguments: list[str], timeout: float) -> tuple[int, str, str]:
        """Run ``bentoml build <arguments>`` with ``environment`` added in the started process; its exit status,
        standard output and standard error."""
        request = json.dumps({"environment": environment, "arguments": arguments}) + "\n"
        try:
            stdout, stderr = self.process.communicate(request, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            stdout, stderr = self.process.communicate()
            return self.process.returncode, stdout, f"{stderr}\nbentoml build did not finish within {timeout:g} s"
        return self.process.returncode, stdout, stderr

    def __enter__(self) -> BentoBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()  # whatever happened, the process ends (after its build, if it was given one)

    def cancel(self) -> None:
        """No build after all: the process is ended at once (it has been handed nothing, so there is nothing of it to
        keep or to clean up); after a build it has exited already."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def main(requests: IO[str] = sys.stdin) -> int:
    """Import what a build imports, wait for the build's line, run it; 0 without building at end of input."""
    for name in service_libraries():
        importlib.import_module(name)
    from bentoml_cli.cli import cli

    line = requests.readline()
    if not line.strip():
        return 0
    request = json.loads(line)
    os.environ.update(request["environment"])
    try:
        cli.main(args=request["arguments"], prog_name="bentoml", standalone_mode=False)
    except SystemExit as stopped:
        return stopped.code if isinstance(stopped.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
