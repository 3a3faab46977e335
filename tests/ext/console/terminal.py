"""What the console tests share: a child Python whose stdin is closed, reading a child's output."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.subprocesses import default_sigint_in_children, python_env

WAIT = 30.0
"""Seconds to wait for what a child process should show soon (the CI machine is slow)."""


def run_with_stdin_closed(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` in ``cwd`` with its stdin closed (so ``sys.stdin`` is None)."""
    with default_sigint_in_children():
        return subprocess.run(
            ["sh", "-c", 'exec "$@" 0<&-', "sh", sys.executable, *args],
            cwd=cwd,
            env=python_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )


def read_until(fd: int, output: bytearray, text: bytes, timeout: float = WAIT) -> None:
    """Read ``fd`` into ``output`` until ``text`` is in it; fail at the deadline or EOF."""
    deadline = time.monotonic() + timeout
    while text not in output:
        left = deadline - time.monotonic()
        assert left > 0, f"{text!r} not shown in {timeout} s; shown: {bytes(output)!r}"
        readable, _, _ = select.select([fd], [], [], left)
        if readable:
            chunk = os.read(fd, 65536)
            assert chunk, f"the output ended before {text!r}; shown: {bytes(output)!r}"
            output += chunk
