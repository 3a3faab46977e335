"""Run many Python programs (the docs pages' blocks, examples) one after another in one interpreter.

``tests/test_docs.py`` used to start one Python process per README block and example, each
importing the SDKs anew (a second or two apiece). :func:`run_batch` starts one process that
runs every program of a batch in turn, each as ``python program.py`` would: its own
``__main__`` namespace, working directory, ``sys.argv``, standard input, output and error
(captured), and exit status (an uncaught error prints its traceback and gives 1, as Python
does; ``SystemExit`` gives its code). Between two programs the runner puts back what a
program may change of the interpreter: the working directory, the environment, the
``miniagents`` logger's level and handlers, the root logger's handlers, the deadlock
watch's interval, and the modules the program imported from its own folder. It writes how
long each program took on its standard error as it goes: a batch that runs out of time says
which programs took it, and which one it was running.

It is not a sandbox: a program that changes the interpreter in another way (a monkeypatch
of a library, a thread left running) may change what the programs after it see. The
programs here are the repository's own documentation; one that needs a process of its own
(it starts a Ray cluster, or its test sends it a signal) keeps using
:func:`tests.subprocesses.run_python`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from miniagents.testing import FakeLLMServer
from tests.subprocesses import run_python

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass(frozen=True)
class Program:
    """One program of a batch: a file to run (``path`` with ``argv``) or its ``code``."""

    name: str
    cwd: str
    code: str | None = None
    path: str | None = None
    argv: tuple[str, ...] = ()
    stdin: str = ""
    offline: bool = False
    """Run without the fake server's keys and addresses (as an example runs by default)."""


@dataclass(frozen=True)
class Outcome:
    """How one program ended, as ``subprocess.run`` would tell it."""

    returncode: int
    stdout: str
    stderr: str


def run_batch(
    programs: list[Program],
    *,
    llm: FakeLLMServer | None = None,
    timeout: float = 600,
    env: Mapping[str, str] | None = None,
) -> dict[str, Outcome]:
    """Run ``programs`` in one new interpreter, in order; each one's outcome by its name.

    ``env`` holds variables added to the interpreter's environment (see ``run_python``).
    """
    spec = ROOT / "build" / "batch"
    spec.mkdir(parents=True, exist_ok=True)
    request = spec / f"programs-{id(programs):x}.json"
    request.write_text(json.dumps([asdict(program) for program in programs]), encoding="utf-8")
    try:
        result = run_python(
            [str(Path(__file__).resolve()), str(request)],
            cwd=ROOT,
            llm=llm,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired as expired:
        took = expired.stderr.decode() if isinstance(expired.stderr, bytes) else expired.stderr
        raise AssertionError(
            f"the batch runner did not end within {timeout:g} s; what each program took, "
            f"in order (the one after the last ran out of time):\n{took or ''}"
        ) from None
    finally:
        request.unlink(missing_ok=True)
    if result.returncode != 0:
        raise AssertionError(f"the batch runner failed:\n{result.stdout}\n{result.stderr}")
    outcomes = json.loads(result.stdout.splitlines()[-1])
    return {name: Outcome(**fields) for name, fields in outcomes.items()}


# -- the runner, in the child process ----------------------------------------------------------


def _run_all(request: Path) -> None:  # pragma: no cover - runs in the child
    import asyncio
    import contextlib
    import io
    import logging
    import os
    import runpy
    import time
    import traceback

    from miniagents.promising.lowlevel import set_deadlock_check_interval

    programs = [Program(**fields) for fields in json.loads(request.read_text("utf-8"))]
    outcomes: dict[str, dict[str, object]] = {}
    library = logging.getLogger("miniagents")
    root_logger = logging.getLogger()
    for program in programs:
        saved_env = dict(os.environ)
        saved_argv = sys.argv
        saved_path = list(sys.path)
        saved_modules = set(sys.modules)
        saved_level, saved_handlers = library.level, list(library.handlers)
        saved_root = list(root_logger.handlers)
        out, err = io.StringIO(), io.StringIO()
        returncode = 0
        os.chdir(program.cwd)
        if program.offline:
            for name in [name for name in os.environ if name.startswith(("OPENAI_", "ANTHROPIC_"))]:
                del os.environ[name]
        sys.stdin = io.StringIO(program.stdin)
        started = time.perf_counter()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    if program.path is not None:
                        sys.argv = [program.path, *program.argv]
                        sys.path.insert(0, str(Path(program.path).parent))
                        runpy.run_path(program.path, run_name="__main__")
                    else:
                        sys.argv = [f"{program.name}.py", *program.argv]
                        code = compile(program.code or "", f"{program.name}.py", "exec")
                        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
                except SystemExit as stop:
                    code_value = stop.code
                    if code_value is None:
                        returncode = 0
                    elif isinstance(code_value, int):
                        returncode = code_value
                    else:
                        print(code_value, file=sys.stderr)
                        returncode = 1
                except BaseException:
                    traceback.print_exc()
                    returncode = 1
        finally:
            sys.stdin = sys.__stdin__
            sys.argv = saved_argv
            sys.path[:] = saved_path
            os.environ.clear()
            os.environ.update(saved_env)
            library.setLevel(saved_level)
            library.handlers[:] = saved_handlers
            root_logger.handlers[:] = saved_root
            set_deadlock_check_interval(1.0)
            for name in set(sys.modules) - saved_modules:
                module = sys.modules.get(name)
                source = getattr(module, "__file__", None) or ""
                if program.path is not None and source.startswith(str(Path(program.path).parent)):
                    del sys.modules[name]  # the example's own modules: fresh for the next one
            with contextlib.suppress(RuntimeError):
                asyncio.set_event_loop(None)
        print(
            f"{time.perf_counter() - started:8.2f} s  {program.name}", file=sys.stderr, flush=True
        )
        outcomes[program.name] = {
            "returncode": returncode,
            "stdout": out.getvalue(),
            "stderr": err.getvalue(),
        }
    sys.stdout.write("\n" + json.dumps(outcomes) + "\n")


if __name__ == "__main__":  # pragma: no cover - the child
    _run_all(Path(sys.argv[1]))
