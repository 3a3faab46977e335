"""A durable run of ``durable_child.py`` (or another child program of this folder), read
line by line, killed and run again: what the kill tests and the approval tests drive."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from miniagents.testing import FakeLLMServer, ToolCall
from tests.subprocesses import ROOT, ProcessGroups, killed, start_python

CHILD = Path(__file__).with_name("durable_child.py")
TIMEOUT = 120.0  # seconds a child may take, at most, on a loaded machine

MAIN = "main-model"
HELPER = "helper-model"


def script(server: FakeLLMServer, start: int = 0, *, pause_second: bool = False) -> None:
    """The main model's three calls (from the ``start``-th): note, lookup, then the answer."""
    if start <= 0:
        server.reply(
            tokens=["Noting ", "it."],
            tool_calls=[ToolCall("note", {"text": "a"}, id="c1")],
            for_model=MAIN,
        )
    if start <= 1:
        server.reply(
            tokens=["Let ", "me ", "look."],
            tool_calls=[ToolCall("lookup", {"query": "q"}, id="c2")],
            for_model=MAIN,
            pause_after=1 if pause_second else None,
        )
    server.reply(tokens=["All ", "done."], for_model=MAIN)


@dataclass
class Outcome:
    """What a child printed: its events (in order), the tokens read, the reply."""

    lines: list[str]
    returncode: int | None

    @property
    def tokens(self) -> list[str]:
        return [json.loads(line[6:]) for line in self.lines if line.startswith("TOKEN ")]

    @property
    def reply(self) -> list[list[str]]:
        found = [json.loads(line[6:]) for line in self.lines if line.startswith("REPLY ")]
        assert found, f"the child printed no reply: {self.lines}"
        return found[0]  # type: ignore[no-any-return]


class Child:
    """One run of ``durable_child.py`` whose stdout is read line by line.

    A context manager: its exit ends the child and every process it started, whatever
    happened (a test that failed before :meth:`finish` or :meth:`kill` left them running);
    a test takes its children from the ``children`` fixture (see :class:`Children`).
    """

    def __init__(
        self, llm: FakeLLMServer | None, folder: Path, url: str, child: Path = CHILD, **env: str
    ) -> None:
        env |= {"DB_URL": url, "SIDE_EFFECTS": str(folder / "side_effects.txt")}
        pipe = subprocess.PIPE
        self.process = start_python(
            [str(child), "run-1"], ROOT, llm=llm, env=env, stdout=pipe, stderr=pipe
        )
        self.lines: list[str] = []

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.kill()

    def read_until(self, wanted: str) -> None:
        """Read lines until one starts with ``wanted`` (fails if the child ends first)."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith(wanted):
                return
        raise AssertionError(f"the child ended before {wanted!r}: {self.finish().lines}")

    def read_lines(self, count: int) -> None:
        """Read ``count`` more lines (fewer if the child ends first)."""
        assert self.process.stdout is not None
        for _ in range(count):
            line = self.process.stdout.readline()
            if not line:
                return
            self.lines.append(line.rstrip("\n"))

    def kill(self) -> None:
        """SIGKILL, to the child and every process it started: nothing of them runs after this.

        (A child that ended already is no error: what it started, if it runs, is ended.)
        """
        killed(self.process, TIMEOUT)

    def failure(self) -> tuple[int, str]:
        """Wait for the child's end (expected to fail); its return code and stderr."""
        out, err = self.process.communicate(timeout=TIMEOUT)
        self.lines.extend(out.splitlines())
        return self.process.returncode, err

    def finish(self) -> Outcome:
        """Wait for the child's end; all it printed."""
        out, err = self.process.communicate(timeout=TIMEOUT)
        self.lines.extend(out.splitlines())
        outcome = Outcome(self.lines, self.process.returncode)
        assert self.process.returncode == 0, f"the child failed:\n{err[-4000:]}"
        return outcome


class Children(ProcessGroups):
    """The children a test starts: at the exit, each is ended with all it started (those of
    :meth:`start` and those of :meth:`python`)."""

    def start(
        self, llm: FakeLLMServer | None, folder: Path, url: str, child: Path = CHILD, **env: str
    ) -> Child:
        """Start a :class:`Child` (the same arguments), ended at the exit of this stack."""
        return self.enter_context(Child(llm, folder, url, child, **env))

    def logged(self, program: Path, folder: Path, **env: str) -> subprocess.Popen[str]:
        """Start ``program`` in ``folder`` (its output piped), on the SQLite file of ``folder``
        (``DB_URL``), logging to its ``log.txt`` (``LOG``), ``env`` added."""
        env |= {"DB_URL": f"sqlite:///{folder / 'runs.sqlite'}", "LOG": str(folder / "log.txt")}
        pipe = subprocess.PIPE
        return self.python([str(program)], folder, env=env, stdout=pipe, stderr=pipe)


def side_effects(folder: Path) -> list[str]:
    """What the child's tools did, one line each (``side_effects.txt`` of ``folder``)."""
    path = folder / "side_effects.txt"
    return path.read_text().splitlines() if path.exists() else []


def models(llm: FakeLLMServer) -> list[str]:
    """The model of each request ``llm`` got, in order."""
    return [str(request.json["model"]) for request in llm.requests]
