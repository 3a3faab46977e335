"""The tests' own Python children (``tests/subprocesses.py``): they take what they started along."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest

from tests import subprocesses
from tests.ext.dbos.killed_child import Child, Children
from tests.fakes.fixtures import WAIT
from tests.subprocesses import (
    ProcessGroups,
    StderrRead,
    end_process_group,
    ends_within,
    killed,
    start_python,
    start_server,
)

_PROGRAM = """\
import subprocess, sys, time
started = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
print("PORT 9", flush=True)
print(started.pid, flush=True)
time.sleep(3600)
"""
"""A child that starts a process of its own (as Ray's daemons are), says a port (as a server
would), then that process's pid, and waits."""


def test_ending_a_child_ends_the_processes_it_started(tmp_path: Path) -> None:
    """Killing a child alone leaves what it started running with no parent; its group goes."""
    with start_python(["-c", _PROGRAM], tmp_path, stdout=subprocess.PIPE) as child:
        assert child.stdout is not None
        assert child.stdout.readline() == "PORT 9\n"
        started = int(child.stdout.readline())
        ended = os.pidfd_open(started)  # (readable once that process has ended)
        try:
            assert select.select([ended], [], [], 0)[0] == []  # running, as the child
            end_process_group(child)
            assert child.wait() != 0
            assert select.select([ended], [], [], 60)[0] == [ended]
        finally:
            os.close(ended)
    end_process_group(child)  # (again: a group whose processes all ended is no error)


def test_a_durable_child_of_a_failed_test_is_ended_with_what_it_started(tmp_path: Path) -> None:
    # (was: a test that failed before the child's finish() or kill() left it running, and
    # what it started, for the rest of the run)
    program = tmp_path / "starting.py"
    program.write_text(_PROGRAM, encoding="utf-8")
    children: list[Child] = []

    def failing_test() -> None:
        with Children() as started:
            children.append(started.start(None, tmp_path, "sqlite://", program))
            children[0].read_lines(2)
            raise AssertionError("the test failed")

    with pytest.raises(AssertionError, match="the test failed"):
        failing_test()  # (no model is called)
    [child] = children
    assert child.process.returncode is not None
    assert ends_within(int(child.lines[1]), WAIT)


def test_a_killed_server_child_ends_with_what_it_started(tmp_path: Path) -> None:
    # (was: the durable web server of tests/ext/web/test_durable.py, killed alone: what it
    # started ran on, with no parent, and held its stderr: the kill's wait timed out)
    program = tmp_path / "starting.py"
    program.write_text(_PROGRAM, encoding="utf-8")
    child, _ = start_server(program, timeout=WAIT)
    assert child.stdout is not None
    started = int(child.stdout.readline())
    killed(child, WAIT)
    assert child.returncode != 0
    assert ends_within(started, WAIT)


_LOGGING_SERVER = """\
import socket, sys
sys.stderr.write("logged " * 20_000)  # 140 kB, more than a pipe holds
sys.stderr.flush()
with socket.create_server(("127.0.0.1", 0)) as listener:
    print("PORT", listener.getsockname()[1], flush=True)
    connection, _ = listener.accept()
    with connection:
        connection.sendall(b"served")
sys.stderr.write("done")
"""
"""A server that writes more to stderr than a pipe holds before it listens, then serves once."""


@pytest.mark.timeout(60)
def test_a_server_child_that_logs_much_before_it_serves_is_not_blocked(tmp_path: Path) -> None:
    # its stderr was read only at its end: the child blocked in its first write, and the test
    # in its wait for the child's port (until its timeout)
    program = tmp_path / "logging_server.py"
    program.write_text(_LOGGING_SERVER, encoding="utf-8")
    child, url = start_server(program, timeout=WAIT)
    with child:
        port = urlsplit(url).port
        assert port is not None
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as server:
            assert b"".join(iter(lambda: server.recv(100), b"")) == b"served"  # (to its end)
        out, err = child.communicate(timeout=WAIT)
    assert (child.returncode, out, err) == (0, "", "logged " * 20_000 + "done")


_LEAVING = """\
import subprocess, sys
started = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
print(started.pid, flush=True)
"""
"""A child that starts a process of its own, says its pid, and ends (what it started runs on)."""


def test_an_ended_child_not_yet_reaped_is_ended_with_what_it_started(tmp_path: Path) -> None:
    with ProcessGroups() as groups:
        child = groups.ended(
            start_python(["-c", _LEAVING], tmp_path, text=False, stdout=subprocess.PIPE)
        )
        assert child.stdout is not None
        started = int(child.stdout.readline())
        assert ends_within(child.pid, WAIT)  # (ended, not reaped: its group is still its own)
        out, _ = killed(child, WAIT)
    assert (child.returncode, out) == (0, b"")  # (bytes: the kit takes them too)
    assert ends_within(started, WAIT)


@dataclass
class _Reaped:
    """A child already reaped (an asyncio one, say): its pid may be another process's now."""

    pid: int
    returncode: int | None = 0


def test_a_reaped_child_s_group_is_not_signalled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (was: killed, the cleanup of ProcessGroups and Child.kill after finish() sent SIGKILL
    # to the group of a reaped child's pid: by then maybe another process's)
    signalled: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "killpg", lambda group, number: signalled.append((group, number)))
    with ProcessGroups() as groups:
        child = groups.python(["-c", "pass"], tmp_path, stdout=subprocess.PIPE)
        assert child.wait(WAIT) == 0
    assert killed(child, WAIT) == ("", None)
    end_process_group(_Reaped(child.pid))
    assert signalled == []
    end_process_group(_Reaped(child.pid, None))  # (not reaped: its group is its own)
    assert signalled == [(child.pid, signal.SIGKILL)]


class _Recorded(StderrRead):
    """A :class:`StderrRead` that records itself (the child ``start_server`` started)."""

    made: ClassVar[list[_Recorded]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.made.append(self)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("program", "said"),
    [
        ("import time; time.sleep(3600)", "no line in 0.5 s"),  # (was: a read for ever)
        ("print('hello', flush=True); import time; time.sleep(3600)", "'hello\\n'"),
    ],
)
def test_a_server_child_that_does_not_start_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, program: str, said: str
) -> None:
    # (was: one that wrote no line was read for ever; one whose first line was another was
    # left running once the wait for its end timed out, its process lost to the caller)
    monkeypatch.setattr(subprocesses, "StderrRead", _Recorded)
    monkeypatch.setattr(_Recorded, "made", [])
    server = tmp_path / "server.py"
    server.write_text(program, encoding="utf-8")
    with pytest.raises(AssertionError, match=re.escape(f"server.py did not start: {said}\n")):
        start_server(server, timeout=0.5)
    [child] = _Recorded.made
    assert child.returncode == -signal.SIGKILL
