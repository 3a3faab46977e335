"""One ``mypy`` run for every typing test of the suite, shared by the tests that read it.

The typing tests (``tests/typing/test_*.py``, ``tests/ext/tools/test_tool_loop_types.py``)
and the python blocks of the README and of the docs pages (as modules ``doc_snippet_NNN``,
NNN the block's index among all of them, as in ``tests/test_docs.py``) are checked by one
``mypy`` run with the project's ``mypy.ini`` (strict, ``warn_unused_ignores``), made when a
test first asks for it and kept for the process (``tests/conftest.py`` puts these tests in
one pytest-xdist group, so one worker runs them all). Each test then asserts on the lines of
its own file. A file with an error that must be found (:data:`PLANTED`) goes into the same
run, so the run is shown to catch errors. ``mypy`` reuses the incremental cache of the
repository (``.mypy_cache``), which CI's own ``mypy`` step has just filled.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

TYPED_TESTS = sorted(
    [
        *(ROOT / "tests" / "typing").glob("test_*.py"),
        ROOT / "tests/ext/tools/test_tool_loop_types.py",
    ]
)
"""The test modules whose ``check_*`` functions exist to be type-checked."""

PLANTED = (
    "from miniagents import InteractionContext, miniagent\n\n\n"
    "@miniagent\n"
    "async def echo(ctx: InteractionContext) -> None:\n"
    "    ctx.reply(ctx.messages)\n\n\n"
    "async def main() -> None:\n"
    "    print((await echo.inquire('x'))[0].model)\n"
)
"""A snippet with a type error (a plain agent's reply has no ``model``; LLM replies do)."""

_LINE = re.compile(r"^(?P<path>[^:\n]+\.py):(?P<line>\d+): (?P<kind>error|note): ", re.MULTILINE)


@dataclass(frozen=True)
class Report:
    """What the one ``mypy`` run said."""

    status: int
    stdout: str
    stderr: str
    snippets: dict[str, Path]
    """Each extra module checked (the pages' blocks, the planted error), by its name."""

    def lines_for(self, path: Path) -> list[str]:
        """The lines of the report about the file at ``path``."""
        found = []
        for line in self.stdout.splitlines():
            match = _LINE.match(line)
            if match and (ROOT / match["path"]).resolve() == path.resolve():
                found.append(line)
        return found

    def errors_for(self, path: Path) -> list[str]:
        """The error lines about ``path`` (with the notes that follow them)."""
        return [line for line in self.lines_for(path) if ": error: " in line] or (
            self.lines_for(path) if self.status == 2 else []
        )


MYPY_SECONDS = 600
"""The bound of the one mypy run (its first reader's test gets a minute more)."""


@cache
def mypy_report() -> Report:
    """Run mypy once over the typing tests, the pages' blocks and :data:`PLANTED`."""
    from tests.fakes.doc_pages import SNIPPETS  # the pages' python blocks, as test_docs runs them

    folder = Path(tempfile.mkdtemp(prefix="miniagents-typecheck-"))
    snippets: dict[str, Path] = {}
    texts = [snippet.code for snippet in SNIPPETS]
    run = os.urandom(4).hex()  # mypy's cache replays an unchanged module's errors with the
    # path it had then: a module name of this run only is checked anew, where it is now
    for index, text in enumerate([*texts, PLANTED]):
        name = "planted_error" if index == len(texts) else snippet_module(index)
        path = folder / f"{name}_{run}.py"
        path.write_text(text, encoding="utf-8")
        snippets[name] = path
    # In a process of its own: mypy's objects would make every later garbage collection of
    # the test process (after each test: tests/conftest.py) take seconds.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "mypy.ini"),
            *(str(path.relative_to(ROOT)) for path in TYPED_TESTS),
            *(str(path) for path in snippets.values()),
        ],
        cwd=ROOT,  # mypy.ini's paths (mypy_path = stubs) are the repository's
        capture_output=True,
        text=True,
        timeout=MYPY_SECONDS,
        check=False,
    )
    stdout, stderr, status = result.stdout, result.stderr, result.returncode
    return Report(status, stdout, stderr, snippets)


def snippet_module(index: int) -> str:
    """The module name the python block ``SNIPPETS[index]`` is checked as."""
    return f"doc_snippet_{index:03d}"


def assert_passes_mypy(file: str) -> None:
    """Fail unless the one ``mypy`` run found no error in ``file`` (a test's ``__file__``)."""
    report = mypy_report()
    assert report.status != 2, f"mypy could not check the suite:\n{report.stdout}{report.stderr}"
    errors = report.errors_for(Path(file))
    assert not errors, f"mypy fails on {file}:\n" + "\n".join(report.lines_for(Path(file)))
