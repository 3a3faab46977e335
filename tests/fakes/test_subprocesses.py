"""The tests' own Python children (``tests/subprocesses.py``): they take what they started along."""

from __future__ import annotations

import os
import select
import subprocess
from pathlib import Path

from tests.subprocesses import end_process_group, start_python

_PROGRAM = """\
import subprocess, sys, time
started = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
print(started.pid, flush=True)
time.sleep(3600)
"""
"""A child that starts a process of its own (as Ray's daemons are), says its pid, and waits."""


def test_ending_a_child_ends_the_processes_it_started(tmp_path: Path) -> None:
    """Killing a child alone leaves what it started running with no parent; its group goes."""
    with start_python(["-c", _PROGRAM], tmp_path, stdout=subprocess.PIPE) as child:
        assert child.stdout is not None
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
