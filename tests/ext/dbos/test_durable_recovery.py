"""DBOS's launch and what it recovers: outside of every user's context and timeout.

- The runs DBOS recovers at launch run in a ``MiniAgents`` context of the engine's own,
  not in the context of the run that launched DBOS: that context ends without them (and
  does not see their messages), they go on, and a caller that asks for one by its id
  reads its reply.
- A recovered run whose agent the process never makes is released at the loop's end
  without DBOS's error log (one warning names it), and stays pending: the next process
  that makes its agent recovers it and runs it to its end.
- A durable pipeline launches DBOS before its first item's try starts: ``timeout=`` limits
  the tries alone, not the seconds a launch takes.

The in-process tests launch DBOS in the test's process (a database of their own) and
destroy it at their end; the others run ``version_child.py`` and ``recovery_child.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import miniagents.ext.dbos._engine as engine_module
from miniagents import MiniAgents
from miniagents.ext.dbos import durable, use_database, workflow_id
from miniagents.ext.llm.offline import CallTool, offline_agent
from miniagents.ext.llm.offline_script import ScriptedReply
from miniagents.ext.llm.provider import LLMCall
from miniagents.ext.tools.messages import ToolResultMessage
from miniagents.messages import Message, MessagePromise
from miniagents.pipeline import ItemResult, Pipeline, pipeline
from miniagents.testing import manual_time
from tests.ext.dbos.killed_child import Children
from tests.subprocesses import end_process_group

HERE = Path(__file__).parent
TIMEOUT = 120.0  # seconds a child may take, at most, on a loaded machine
ENDED_WITHIN = 60.0  # seconds a context's end may take (a hang, before the fix: a failure)
EXPECTED = ['{"what": "a"}', "waited for a", "Done with waited for a."]

log: list[str] = []
"""The calls of the model (``MODEL``) and runs of the tool (``TOOL``) of ``RECOVERED``."""

started: list[asyncio.Event] = []
"""Set when the tool of ``RECOVERED`` runs (one event per event loop)."""

gate: list[asyncio.Event] = []
"""What the tool of ``RECOVERED`` waits for (one event per event loop)."""


def answer(call: LLMCall) -> ScriptedReply:
    """The model: call the tool first, then answer with its result."""
    log.append("MODEL")
    results = [item for item in call.messages if isinstance(item, ToolResultMessage)]
    if not results:
        return CallTool("wait", {"what": "a"})
    return f"Done with {results[-1].text}."


async def wait(what: str) -> str:
    """Wait for the gate."""
    log.append("TOOL")
    started[0].set()
    await gate[0].wait()
    return f"waited for {what}"


recovered = durable(
    offline_agent.fork(alias="RECOVERED", tools=[wait], reply=answer, token_delay=0)
)
launcher = durable(offline_agent.fork(alias="LAUNCHER", reply="Launched.", token_delay=0))


class _Stopped(Exception):
    """Ends a context with an error: its runs are stopped, unrecorded (as at a crash)."""


@pytest.fixture
def runs_database(database_url: str) -> Iterator[str]:
    """``database_url`` (SQLite or Postgres) for the runs; DBOS destroyed after the test."""
    from dbos import DBOS

    log.clear()
    use_database(database_url)
    try:
        yield database_url
    finally:
        DBOS.destroy(destroy_registry=False)


def _new_loop_events() -> None:
    started[:] = [asyncio.Event()]
    gate[:] = [asyncio.Event()]


async def _stopped_in_the_tool() -> None:
    """A process that stops while the run ``recovered`` runs its tool: it stays pending."""
    _new_loop_events()
    with contextlib.suppress(_Stopped):
        async with MiniAgents():
            with workflow_id("recovered"):
                recovered.inquire("Go.")
            await started[0].wait()
            raise _Stopped


async def _recovered_after_the_launcher_ended() -> tuple[list[str], list[str], bool]:
    """The next process: another context launches DBOS and ends; another asks for the run."""
    _new_loop_events()
    persisted: list[str] = []

    async def keep(promise: MessagePromise, message: Message) -> None:
        persisted.append(str(message))

    async def launch() -> None:
        async with MiniAgents(on_persist_message=keep):
            with workflow_id("launcher"):
                await launcher.inquire("Hi")  # DBOS launched here: it recovers "recovered"
            await started[0].wait()  # the recovered run runs its tool (its model replayed)

    await asyncio.wait_for(launch(), ENDED_WITHIN)  # ended without waiting for that run
    ended_first = not gate[0].is_set()
    async with MiniAgents():
        with workflow_id("recovered"):
            reply = recovered.inquire("Go.")
        gate[0].set()
        messages = []
        async for promise in reply:  # as it streams: each message token by token
            tokens = [token async for token in promise]
            assert "".join(tokens) == str(await promise)
            messages.append("".join(tokens))
    from dbos import DBOS

    status = await DBOS.get_workflow_status_async("recovered")  # the reader's context waited
    assert status is not None
    assert status.status == "SUCCESS"  # for its end: recorded as ended, not recovered again
    return persisted, messages, ended_first


def test_a_recovered_run_runs_in_a_context_of_its_own_and_is_read_by_its_id(
    runs_database: str,
) -> None:
    asyncio.run(_stopped_in_the_tool())
    assert log == ["MODEL", "TOOL"]

    persisted, messages, ended_first = asyncio.run(_recovered_after_the_launcher_ended())

    assert ended_first  # the launcher's context ended while the recovered run went on
    assert messages == EXPECTED  # read by its id, after the launcher's context ended
    assert log == ["MODEL", "TOOL", "TOOL", "MODEL"]  # its first model call replayed
    assert persisted == ["Hi", "Launched."]  # the launcher's context saw its own run only


def test_a_recovered_run_whose_agent_is_never_made_is_released_cleanly_and_kept(
    children: Children, tmp_path: Path
) -> None:
    # LATE's run "late", killed
    child = children.logged(HERE / "version_child.py", tmp_path, HANG="1")
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("EVENT tool"):
            break
    end_process_group(child)
    child.communicate(timeout=TIMEOUT)

    out, err = children.logged(HERE / "recovery_child.py", tmp_path).communicate(timeout=TIMEOUT)

    assert out.splitlines() == ["OTHER Other."]
    assert "Asyncio task cancelled" not in err  # released, not an error
    assert err.count("never made") == 1, err  # one warning, naming the run and its agent
    assert "'late'" in err
    assert "LATE" in err

    out, err = children.logged(HERE / "version_child.py", tmp_path).communicate(timeout=TIMEOUT)

    replies = [json.loads(line[6:]) for line in out.splitlines() if line.startswith("REPLY ")]
    assert replies == [EXPECTED], err  # recovered by the process that makes LATE
    assert (tmp_path / "log.txt").read_text().splitlines() == ["MODEL", "TOOL", "TOOL", "MODEL"]


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    """A SQLite file of runs of its own; DBOS destroyed after the test."""
    from dbos import DBOS

    path = tmp_path / "runs.sqlite"
    use_database(f"sqlite:///{path}")
    try:
        yield path
    finally:
        DBOS.destroy(destroy_registry=False)


async def test_a_pipelines_timeout_does_not_count_the_launch_of_dbos(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launching = threading.Event()
    launched = threading.Event()
    checked = engine_module._check_reachable

    def slow_check(url: str) -> None:  # the launch waits here until the test lets it go
        checked(url)
        launching.set()
        launched.wait()

    monkeypatch.setattr(engine_module, "_check_reachable", slow_check)
    echo = offline_agent.fork(alias="ECHO_TIMED", reply="Done.", token_delay=0)
    async with MiniAgents():
        with manual_time() as clock:
            results = asyncio.ensure_future(
                _results(pipeline(echo, ["a"], timeout=2, durable="launch-timeout"))
            )
            try:
                await asyncio.to_thread(launching.wait)  # DBOS is launching
                clock.advance(10)  # the launch took 10 s: longer than an item's timeout
            finally:
                launched.set()
            done = await results
    assert [(result.error, [str(reply) for reply in result.replies]) for result in done] == [
        (None, ["Done."])
    ]


async def _results(running: Pipeline[str, Message]) -> list[ItemResult[str, Message]]:
    return [result async for result in running]
