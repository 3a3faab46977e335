"""The throwaway PostgreSQL cluster of ``postgres_server`` ends with the process that made it."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.fakes.postgres import PostgresServer
from tests.subprocesses import ProcessGroups, ends_within, killed

SAFETY = 60.0
"""Seconds the cluster may take, at most, to stop (a loaded machine): a hang guard only."""

_HOLDING = """\
import sys

from tests.fakes.postgres import postgres_server

with postgres_server() as server:
    print(server.folder, flush=True)
    sys.stdin.read()
"""
"""A test process: it starts a cluster, says its folder, and holds it until its stdin ends."""


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=lambda how: how.name)
def test_a_cluster_stops_when_its_process_is_killed_where_no_finally_runs(
    tmp_path: Path, how: signal.Signals
) -> None:
    # (was: it ran on, pg_ctl having detached it from the process, which a signal it does
    # not handle ends at once: no finally of its runs)
    pipe = subprocess.PIPE
    with ProcessGroups() as groups:
        holding = groups.python(["-c", _HOLDING], tmp_path, stdin=pipe, stdout=pipe, stderr=pipe)
        assert holding.stdout is not None
        line = holding.stdout.readline()
        assert line, killed(holding)[1]
        folder = Path(line.strip())
        ended = False
        try:
            postmaster = int((folder / "data" / "postmaster.pid").read_text().split()[0])
            holding.send_signal(how)  # (to the test process alone, not to its group)
            ended = ends_within(postmaster, SAFETY)
            assert ended
        finally:
            if not ended:  # (the cluster of a failed test does not run on)
                with contextlib.suppress(OSError, subprocess.CalledProcessError):
                    PostgresServer("127.0.0.1", 0, "", str(folder)).stop()
                shutil.rmtree(folder, ignore_errors=True)
