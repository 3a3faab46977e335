"""What a timed-out try leaves in the record of durable runs, and what a restart does with it.

- A pipeline item's try that took longer than the pipeline's ``timeout=`` is stopped (its
  agent cancelled, as without durability: no work goes on in the background, and the
  context does not wait for it) and is not recorded as ended, as at a crash: asked again
  (a restart of the pipeline), it runs again, from its recorded steps.
- A model call that stalled (``stall_timeout``) fails the run with its ``LLMTimeoutError``
  like any other error of the agent: recorded, and asked again, given again without a call.

These tests launch DBOS in the test's process (a SQLite file of their own) and destroy it
at their end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import pytest

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.ext.dbos import durable, use_database, workflow_id
from miniagents.ext.llm.errors import LLMTimeoutError
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.llm.provider import LLMCall
from miniagents.messages import MessagePromise
from miniagents.miniagents.lowlevel import InteractionWatch, ObservedAgent, interaction_observers
from miniagents.pipeline import pipeline
from miniagents.pipeline.errors import PipelineTimeoutError
from tests.ext.dbos.recorded_steps import rows

events: list[str] = []
"""What the agents of these tests did, in order."""

gate: list[asyncio.Event] = []
"""What the slow agent waits for (set: it answers at once)."""


@miniagent
async def slow(ctx: InteractionContext) -> None:
    """Wait for the gate, then answer; note when it is called and when it is cancelled."""
    text = str((await ctx.messages)[-1])
    events.append(f"called {text}")
    try:
        await gate[0].wait()
    except asyncio.CancelledError:
        events.append(f"cancelled {text}")
        raise
    ctx.reply(f"done {text}")


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    """A SQLite file of runs of its own; DBOS destroyed after the test."""
    from dbos import DBOS

    events.clear()
    gate[:] = [asyncio.Event()]
    path = tmp_path / "runs.sqlite"
    use_database(f"sqlite:///{path}")
    try:
        yield path
    finally:
        DBOS.destroy(destroy_registry=False)


def _statuses(database: Path) -> list[str]:
    query = "SELECT status FROM workflow_status WHERE workflow_uuid LIKE 'PIPELINE[%'"
    return [str(status) for (status,) in rows(database, query)]


async def test_a_try_that_timed_out_is_stopped_and_runs_again_when_asked_again(
    database: Path,
) -> None:
    warm = durable(offline_agent.fork(alias="WARM_UP", token_delay=0))
    async with MiniAgents():
        await warm.inquire("Hi")  # DBOS launched: the timeout is the try's alone
        results = [
            result async for result in pipeline(slow, ["b"], timeout=0.2, durable="timeouts")
        ]
        assert events == ["called b", "cancelled b"]  # stopped at the timeout, not later
    assert isinstance(results[0].error, PipelineTimeoutError)
    assert events == ["called b", "cancelled b"]  # nothing went on in the background
    assert _statuses(database) == ["PENDING"]  # not recorded as ended: as at a crash

    gate[0].set()
    async with MiniAgents():  # the pipeline again (a restart): the try runs again
        results = [result async for result in pipeline(slow, ["b"], durable="timeouts")]
    assert [str(reply) for reply in results[0].replies] == ["done b"]
    assert results[0].error is None
    assert events == ["called b", "cancelled b", "called b"]
    assert _statuses(database) == ["SUCCESS"]


class _Starts:
    """An interaction observer that notes the alias of each interaction as it starts."""

    def __init__(self) -> None:
        self.aliases: list[str] = []

    def interaction_started(self, agent: ObservedAgent) -> InteractionWatch | None:
        self.aliases.append(agent.alias)
        return None

    def carrier(self) -> Mapping[str, str]:
        return {}


async def test_stop_gives_up_on_a_durable_try_whose_run_has_not_started(database: Path) -> None:
    """``Pipeline.stop()`` before a try's durable run began: it never begins.

    The stop comes from plain code on the loop (an observable's ``dispose``), queued as the
    source gives the second item: the first item's try has inquired its durable run, whose
    input (the item, a message held on an event that the stop sets) is not complete yet, so
    the run cannot have begun its workflow at the stop, whenever its interaction started (at
    its task's first turn, after the stop, or at once under eager tasks). The stop once
    cancelled the item's task alone, so the run's interaction (inquired already) still
    started after the stop (cancelled only as it waited for its input, before its workflow).
    """
    gate[0].set()
    held = asyncio.Event()
    starts = _Starts()
    at_stop: list[tuple[list[str], list[str], list[str]]] = []
    warm = durable(offline_agent.fork(alias="WARM_UP", token_delay=0))

    async def held_text() -> AsyncIterator[str]:
        await held.wait()
        yield "a"

    def stop() -> None:
        at_stop.append((list(starts.aliases), list(events), _statuses(database)))
        run.stop()
        held.set()  # (the run's input is complete now: it begins only if the stop let it)

    def items() -> Iterator[MessagePromise]:
        yield MessagePromise.from_async_iterable(held_text())
        asyncio.get_running_loop().call_soon(stop)  # (after the first item's try starts)
        yield MessagePromise.from_async_iterable(held_text())

    interaction_observers.add(starts)
    try:
        async with MiniAgents():
            await warm.inquire("Hi")  # DBOS launched: its runs start at their first turn
            run = pipeline(slow, items(), durable="stops")
            assert [result async for result in run] == []
    finally:
        interaction_observers.remove(starts)
    ((aliases, events_at_stop, statuses_at_stop),) = at_stop
    assert (events_at_stop, statuses_at_stop) == ([], [])  # no run began before the stop
    # the warm-up's two (the durable agent and its own) and, under eager tasks only, the
    # run's two: they start as the try inquires them
    assert aliases in (["WARM_UP"] * 2, ["WARM_UP"] * 2 + ["PIPELINE[stops]"] * 2)
    # no interaction started after the stop, no run, no call of the chain
    assert (starts.aliases, events, _statuses(database)) == at_stop[0]


async def test_a_model_call_that_stalled_fails_the_run_and_the_failure_is_recorded(
    database: Path,
) -> None:
    calls: list[str] = []

    def answer(call: LLMCall) -> str:
        calls.append(str(call.messages[-1].text))
        return "too slow to come"

    stalling = durable(
        offline_agent.fork(alias="STALLING", reply=answer, token_delay=5, stall_timeout=0.05)
    )
    async with MiniAgents():
        with workflow_id("stalled"), pytest.raises(LLMTimeoutError):
            await stalling.inquire("Hi")
        with workflow_id("stalled"), pytest.raises(LLMTimeoutError):
            await stalling.inquire("Hi")  # the recorded failure: no call
    assert calls == ["Hi"]
