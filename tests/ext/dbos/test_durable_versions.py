"""Which code a durable run was started by: checked run by run, at recovery.

Each run records the version of its agent (a hash of its code and settings), so that a
process may make its durable agents in any order, before or after its first durable run:
a run killed mid-way is recovered by the same agent's code, whatever other agents the
program has gained, and refused (``DurableVersionError``, left pending, not mixed) by an
agent whose code changed. Each test runs ``version_child.py``, kills it with SIGKILL while
its tool runs (when it prints that it does, never after a sleep) and starts it again.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from miniagents.ext.dbos._versions import DurableAgents
from tests.ext.dbos.killed_child import Children
from tests.subprocesses import end_process_group

CHILD = Path(__file__).with_name("version_child.py")
TIMEOUT = 120.0  # seconds a child may take, at most, on a loaded machine
EXPECTED = ['{"what": "a"}', "waited for a", "Done with waited for a."]


def _killed_in_the_tool(children: Children, folder: Path) -> None:
    """Run the child until the late run's tool runs (after one model call), and kill it."""
    child = children.logged(CHILD, folder, HANG="1")
    assert child.stdout is not None
    lines = []
    for line in child.stdout:
        lines.append(line.strip())
        if line.startswith("EVENT tool"):
            break
    end_process_group(child)
    child.communicate(timeout=TIMEOUT)
    assert lines == ["FIRST First.", "EVENT tool"]
    assert _log(folder) == ["MODEL", "TOOL"]


def _finished(children: Children, folder: Path, **env: str) -> list[str]:
    out, err = children.logged(CHILD, folder, **env).communicate(timeout=TIMEOUT)
    assert "FIRST First." in out, err
    return out.splitlines()


def _log(folder: Path) -> list[str]:
    return (folder / "log.txt").read_text().splitlines()


def test_a_run_of_an_agent_made_after_the_first_run_is_recovered(
    children: Children, tmp_path: Path
) -> None:
    _killed_in_the_tool(children, tmp_path)

    lines = _finished(children, tmp_path, EXTRA="1")  # and one more durable agent in the program

    replies = [json.loads(line[6:]) for line in lines if line.startswith("REPLY ")]
    assert replies == [EXPECTED]
    # the model's first call replayed; the tool that was running ran again
    assert _log(tmp_path) == ["MODEL", "TOOL", "TOOL", "MODEL"]


def test_a_run_whose_agent_changed_is_refused_and_kept_for_its_own_code(
    children: Children, tmp_path: Path
) -> None:
    _killed_in_the_tool(children, tmp_path)

    lines = _finished(children, tmp_path, LATE_SYSTEM="v2")  # the late agent's code changed

    refused = [line for line in lines if line.startswith("REFUSED ")]
    assert len(refused) == 1, lines
    assert "'late' was started by other code" in refused[0]
    assert "its agent LATE had the version" in refused[0]
    assert _log(tmp_path) == ["MODEL", "TOOL"]  # nothing of the changed code ran

    lines = _finished(children, tmp_path)  # the code that started it: it runs to its end
    replies = [json.loads(line[6:]) for line in lines if line.startswith("REPLY ")]
    assert replies == [EXPECTED]
    assert _log(tmp_path) == ["MODEL", "TOOL", "TOOL", "MODEL"]


async def test_a_waiter_that_leaves_keeps_nothing_for_its_alias() -> None:
    """A run that stopped waiting for its agent (cancelled) leaves no list behind it."""
    agents = DurableAgents()
    waiting = asyncio.ensure_future(agents.await_agent("never-made"))
    await asyncio.sleep(0)  # (its first step: it waits)
    assert list(agents._waiting) == ["never-made"]
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert agents._waiting == {}
