"""The tests' own Python children (``tests/subprocesses.py``): they take what they started along."""

from __future__ import annotations

import os
import select
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.ext.dbos.killed_child import Child, Children
from tests.fakes.fixtures import WAIT
from tests.subprocesses import (
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
