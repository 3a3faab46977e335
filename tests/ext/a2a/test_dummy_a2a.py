"""``dummy-a2a``: its portable contracts against ``a2a_app``, and its server for ``a2a_agent``.

``dummy-a2a`` (PyPI) needs Python 3.12 or newer and pins its own ``a2a-sdk``: it lives in a
virtual environment of its own, ``.venv-dummy-a2a`` (git-ignored), which ``.ci/setup``
makes from the newest Python 3.12 or newer of the machine. On every Python of ours (CI's
3.11 pass and its 3.13 pass alike), these tests run dummy-a2a's side in a child process on
that environment's Python (``dummy_a2a_child.py``): its contracts, against our server
started in this process by each test, and its server, on a free port of 127.0.0.1, for our
client. Without that environment they fail, saying to run ``bash .ci/setup``.

- Every contract of ``dummy_a2a.contracts`` passes against the contract agent
  (``contract_agent.py``), but the three that need an extension the app declares (it
  declares none): the card lists extensions, a request activates one, its artifacts say so.
- ``a2a_agent`` reads the dummy's own server (the official SDK's): its texts, streams,
  files, data, three artifacts, a question answered, a request to authenticate answered,
  a rejection and a failure as typed errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

import pytest

from miniagents import MiniAgents
from miniagents.errors import A2ATaskFailedError, A2ATaskRejectedError
from miniagents.ext.a2a import (
    A2AAuthRequest,
    A2AData,
    A2AFile,
    A2AInputRequest,
    A2AMessage,
    a2a_agent,
)
from tests.ext.a2a.contract_agent import app
from tests.ext.a2a.rpc import serving
from tests.subprocesses import end_process_group, ends_within, start_python

ROOT = Path(__file__).resolve().parents[3]
DUMMY_VENV = ROOT / os.environ.get("MINIAGENTS_DUMMY_A2A_VENV", ".venv-dummy-a2a")
"""dummy-a2a's virtual environment, made by ``.ci/setup``: ``.venv-dummy-a2a``, or the folder
``MINIAGENTS_DUMMY_A2A_VENV`` names (relative to the repository's root), as there."""

CHILD = Path(__file__).with_name("dummy_a2a_child.py")

CHILD_WARNINGS = ("-W", "error", "-W", "ignore:label() is deprecated:DeprecationWarning")
"""Warnings are errors in the child, but for the deprecation of protobuf's ``label()`` that
the a2a-sdk dummy-a2a pins (1.1.0) hits at every request: only a newer dummy-a2a can mend it."""

DEADLINE = 60.0
"""Seconds the test waits, at most, for a line of the child: its start (an interpreter and
dummy-a2a's imports, a few seconds on a loaded machine) or one contract's run."""


def dummy_python() -> Path:
    """dummy-a2a's Python (else the test fails, saying how to make it)."""
    python = DUMMY_VENV / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    if not python.is_file():
        pytest.fail(
            f"dummy-a2a's Python ({python}) is missing: run `bash .ci/setup` from the "
            "repository's root. It makes that virtual environment from the newest Python 3.12 "
            "or newer it finds (the active one, pyenv's, python3.12 to python3.14 on the PATH) "
            "and installs dummy-a2a there; if it finds none, install one first (e.g. "
            "`pyenv install 3.13`)."
        )
    return python


class DummyChild:
    """A process of ``dummy_a2a_child.py`` on dummy-a2a's Python: JSON lines in and out.

    Two threads read its standard output (a queue of lines, so that each read has a
    deadline) and its standard error (shown when it fails). Closing its standard input
    stops it.
    """

    def __init__(self, mode: str) -> None:
        # -I: nothing of ours (PYTHONPATH, the script's folder) on its path
        pipe = subprocess.PIPE
        self.process = start_python(
            ["-I", *CHILD_WARNINGS, str(CHILD), mode],
            ROOT,
            python=dummy_python(),
            stdin=pipe,
            stdout=pipe,
            stderr=pipe,
        )
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self._lines: queue.Queue[str] = queue.Queue()
        self._errors: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(out, put), daemon=True)
            for out, put in (
                (self.process.stdout, self._lines.put),
                (self.process.stderr, self._errors.append),
            )
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(out: IO[str], put: Callable[[str], object]) -> None:
        with out:
            for line in out:
                put(line)
        put("")  # its end

    def said(self) -> str:
        """The end of what the child wrote to its standard error."""
        return "".join(self._errors)[-4000:]

    def read(self) -> Any:
        """The child's next JSON line (the test fails if none comes within ``DEADLINE``)."""
        try:
            line = self._lines.get(timeout=DEADLINE)
        except queue.Empty:
            self.close()
            pytest.fail(f"dummy-a2a's child said nothing in {DEADLINE} s:\n{self.said()}")
        if not line:
            self.close()
            pytest.fail(
                f"dummy-a2a's child ended ({self.process.returncode}): is dummy-a2a installed "
                f"in {DUMMY_VENV}? (`bash .ci/setup` installs it)\n{self.said()}"
            )
        return json.loads(line)

    def ask(self, request: Mapping[str, object]) -> Any:
        """Send ``request`` (a JSON line); the child's answer."""
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # (it ended: read says how)
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        return self.read()

    def close(self) -> None:
        """Stop the child (killed if it has not ended after ``DEADLINE`` seconds), and end
        every process it started."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(BrokenPipeError):  # (it ended already)
                self.process.stdin.close()
        if self.process.returncode is None:  # (not closed before)
            try:  # (waited for, not reaped: its group is still its own, then killed)
                ends_within(self.process.pid, DEADLINE)
            finally:  # (its group: what it left running too, whatever stopped the wait)
                end_process_group(self.process)
                self.process.wait()
        for reader in self._readers:
            reader.join(DEADLINE)

    def stop(self) -> None:
        """Stop the child, which must end well and quietly."""
        self.close()
        assert (self.process.returncode, self.said()) == (0, ""), "dummy-a2a's child failed"


class DummyContracts:
    """dummy-a2a's contracts, run by one child, started at the first question."""

    def __init__(self) -> None:
        self._child: DummyChild | None = None

    def ask(self, request: Mapping[str, object]) -> Any:
        """The child's answer to ``request`` (see ``dummy_a2a_child.py``)."""
        if self._child is None:
            self._child = DummyChild("contracts")
        return self._child.ask(request)

    def stop(self) -> None:
        if self._child is not None:
            self._child.stop()


@pytest.fixture(scope="module")
def dummy_contracts() -> Iterator[DummyContracts]:
    """One child for the module's contracts: dummy-a2a's imports cost a second of CPU."""
    contracts = DummyContracts()
    try:
        yield contracts
    finally:
        contracts.stop()


UNDECLARED_EXTENSIONS = {
    "ext.card-advertises-extensions",
    "ext.negotiation-activates",
    "ext.artifact-tagged",
}
"""The contracts of extensions the app does not declare (it declares none): they fail."""


@pytest.mark.parametrize(
    "contract_id",
    [
        "card.well-known",  # (the ids, listed here: dummy-a2a lives in another environment)
        "card.required-fields",
        "card.skills-have-required-fields",
        "card.interface-protocol-version",
        "card.extended-card",
        "send.completed",
        "send.has-task-id",
        "send.has-artifacts",
        "send.has-history",
        "state.failed",
        "state.rejected",
        "state.input-required",
        "state.auth-required",
        "multi-turn.input-required-follow-up",
        "multi-turn.auth-required-follow-up",
        "get-task.retrieves-task",
        "get-task.not-found",
        "get-task.includes-artifacts",
        "list-tasks.returns-tasks",
        "cancel.cancels-task",
        "cancel.nonexistent-task",
        "stream.sse-events",
        "content.text-part",
        "content.file-part",
        "content.data-part",
        "content.multi-artifact",
        "push.create-config",
        "push.delete-config",
        "push.get-config",
        "push.list-configs",
        "subscribe.reattach",
        "error.method-not-found",
        "error.invalid-jsonrpc",
        "ext.card-advertises-extensions",
        "ext.negotiation-activates",
        "ext.unknown-ignored",
        "ext.artifact-tagged",
        "ext.multiple-extensions",
        "ext.params-in-card",
        "ext.required-enforced",
        "ext.required-satisfied",
        "ext.partial-activation",
        "ext.all-non-required",
        "ext.artifact-extensions-exact",
        "ext.header-and-artifact-agree",
        "ext.ordering-stable",
    ],
)
async def test_each_contract_passes_but_those_of_undeclared_extensions(
    contract_id: str, dummy_contracts: DummyContracts
) -> None:
    async with serving(lambda url: app()) as url:
        request = {"verify": contract_id, "url": url.rstrip("/")}
        verdict = await asyncio.to_thread(dummy_contracts.ask, request)
    if contract_id in UNDECLARED_EXTENSIONS:
        assert not verdict["passed"]
        assert "extension" in verdict["detail"].lower()
    else:
        assert verdict["passed"], verdict["detail"] + (verdict["traceback"] or "")


def test_the_contracts_listed_are_all_of_dummy_a2as(dummy_contracts: DummyContracts) -> None:
    listed = test_each_contract_passes_but_those_of_undeclared_extensions.pytestmark  # type: ignore[attr-defined]
    [parametrized] = [mark for mark in listed if mark.name == "parametrize"]
    assert sorted(parametrized.args[1]) == sorted(dummy_contracts.ask({"list": True}))


@asynccontextmanager
async def dummy_server() -> AsyncIterator[str]:
    """The dummy's own server (the official SDK's), on a free port of 127.0.0.1.

    It runs in a child on dummy-a2a's Python, which says its URL once it listens.
    """
    child = await asyncio.to_thread(DummyChild, "serve")
    try:
        url = await asyncio.to_thread(child.read)
        assert isinstance(url, str), url
        assert url.startswith("http://127.0.0.1:"), url
        yield url
    except BaseException:
        await asyncio.to_thread(child.close)
        raise
    await asyncio.to_thread(child.stop)


async def test_the_remote_agent_reads_the_dummys_texts_files_data_and_artifacts() -> None:
    async with dummy_server() as url, MiniAgents():
        remote = a2a_agent(url, alias="DUMMY")
        echoed = await remote.inquire("echo Hello there")
        streamed = await remote.inquire("stream three little words")
        [file] = await remote.inquire("file")
        [data] = await remote.inquire("data")
        multi = await remote.inquire("multi")
    assert [type(message) for message in echoed] == [A2AMessage]
    assert "Hello there" in str(echoed)
    assert "three little words" in str(streamed)
    assert isinstance(file, A2AFile)
    assert (file.filename, file.media_type, bool(file.data)) == ("test.txt", "text/plain", True)
    assert isinstance(data, A2AData)
    assert isinstance(data.data, dict)
    assert [type(message) for message in multi] == [A2AMessage, A2AMessage, A2AData]
    assert str(multi[1]) == "Beginning of the second artifact content."


async def test_the_remote_agent_answers_the_dummys_questions() -> None:
    async with dummy_server() as url, MiniAgents():
        remote = a2a_agent(url, alias="DUMMY")
        said: list[str] = []
        for command, answer in (("ask", "Claude"), ("auth", "my-token")):
            async for promise in remote.inquire(command):
                message = await promise
                said.append(f"{type(message).__name__}: {message}")
                if isinstance(message, A2AInputRequest):
                    message.answer(answer)
    assert said == [
        "A2AInputRequest: What is your name?",
        "A2AMessage: Hello, Claude!",
        "A2AAuthRequest: Authentication required. Provide a token in your next message.",
        "A2AMessage: Authenticated with token: my-token",
    ]
    assert A2AAuthRequest.__mro__.index(A2AInputRequest) > 0


async def test_the_dummys_rejection_and_failure_are_typed_errors() -> None:
    async with dummy_server() as url, MiniAgents():
        remote = a2a_agent(url, alias="DUMMY")
        with pytest.raises(A2ATaskRejectedError, match="rejected its task"):
            await remote.inquire("reject")
        with pytest.raises(A2ATaskFailedError, match="ended failed") as failed:
            await remote.inquire("fail")
    assert not isinstance(failed.value, A2ATaskRejectedError)


def test_without_dummy_a2as_environment_the_tests_fail_saying_to_run_the_setup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(f"{__name__}.DUMMY_VENV", tmp_path / "missing")
    with pytest.raises(pytest.fail.Exception, match=r"run `bash \.ci/setup`"):
        DummyChild("serve")


_STARTING = """\
import subprocess, sys
started = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
print(started.pid, flush=True)
sys.stdin.read()
"""
"""A child that starts a process of its own, says its pid, and ends when its stdin does."""


def test_a_stopped_child_ends_with_what_it_started(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # (was: the child alone was stopped, killed alone if it hung: what it started ran on)
    program = tmp_path / "starting.py"
    program.write_text(_STARTING, encoding="utf-8")
    monkeypatch.setattr(f"{__name__}.CHILD", program)
    child = DummyChild("serve")
    started = child.read()
    sleeper = os.pidfd_open(started)  # (it sleeps for an hour: it runs now)
    try:
        child.close()  # (it ends at once: its stdin closed)
        assert ends_within(started, DEADLINE)
    finally:  # (one that ran on failed the test: it does not outlive it)
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(sleeper, signal.SIGKILL)
        os.close(sleeper)
