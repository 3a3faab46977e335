"""A structured answer's retries in a durable run: each try a step, replayed on recovery.

A durable run asks an LLM agent for a structured answer (``output_type=``) whose first
answer does not validate: the answer goes back to the model, which answers again. Each
call of the model is a step of the run, recorded once complete; the run is then stopped
before its end (its context cancelled while the agent waits for a gate, as a crash would
leave it: pending, its steps recorded) and asked for again by its workflow id: it replays
both tries without calling the model, and gives the same answer. These tests launch DBOS
in the test's process (a SQLite file of their own), and destroy it at their end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from miniagents import InteractionContext, Message, MiniAgents, miniagent
from miniagents.ext.dbos import durable, workflow_id
from miniagents.ext.llm.errors import LLMOutputValidationError
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.llm.provider import LLMCall
from tests.ext.dbos.recorded_steps import recorded_keys


class Weather(Message):
    """The weather in a city."""

    city: str
    celsius: float


ANSWERS = ['{"city": "Paris"}', '{"city": "Paris", "celsius": 21.5}']
"""What the model answers, call after call: first without a field, then whole."""

calls: list[str] = []
"""The prompts the model was called with (its last message), in this test's process."""

gate: list[asyncio.Event] = []
"""What the forecaster waits for after its answer (a crash point), once set."""


def _answer(call: LLMCall) -> str:
    calls.append(str(call.messages[-1].text))
    return ANSWERS[min(len(calls), len(ANSWERS)) - 1]


weather_model = offline_agent.fork(alias="WEATHER_MODEL", reply=_answer, token_delay=0)


@miniagent
async def forecaster(ctx: InteractionContext) -> None:
    """Ask the model for the weather (a structured answer), then wait for the gate."""
    answer = await weather_model.inquire(ctx.messages, output_type=Weather)
    ctx.reply(answer)  # whole: each try of the answer is recorded by now
    if gate:
        await gate[0].wait()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Path]:
    """A SQLite file of runs of its own; DBOS destroyed after the test, the model reset."""
    from dbos import DBOS

    calls.clear()
    gate.clear()
    try:
        yield tmp_path / "runs.sqlite"
    finally:
        DBOS.destroy(destroy_registry=False)


async def test_each_try_is_a_step_and_a_stopped_run_replays_them(fresh: Path) -> None:
    agent = durable(forecaster.fork(alias="FORECASTER"), database_url=f"sqlite:///{fresh}")
    gate.append(asyncio.Event())

    answered: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

    async def crashing() -> None:
        async with MiniAgents():
            with workflow_id("weather-1"):
                reply = agent.inquire("Weather in Paris?")
            async for promise in reply:
                answered.set_result(await promise)
                await asyncio.Event().wait()  # until the "crash" cancels everything

    crash = asyncio.create_task(crashing())
    first = await answered
    crash.cancel()  # the run stops before its end: pending, its steps recorded
    with pytest.raises(asyncio.CancelledError):
        await crash

    assert isinstance(first, Weather)
    assert (first.city, first.celsius) == ("Paris", 21.5)
    assert len(calls) == 2  # the first answer did not validate: asked again
    assert "celsius" in calls[1]  # with the errors of the first answer
    keys = sorted(recorded_keys(fresh))
    model = "/FORECASTER.0/WEATHER_MODEL.0"  # (the model agent under its structured agent)
    assert keys == [f"{model}/llm.0", f"{model}/llm.1"]  # a step per try

    gate[0].set()
    async with MiniAgents():
        with workflow_id("weather-1"):
            again = await agent.inquire("Weather in Paris?")

    assert len(calls) == 2  # both tries replayed: the model was not called again
    assert [type(message) for message in again] == [Weather]
    assert again[0] == first

    async with MiniAgents():
        with workflow_id("weather-1"):
            assert await agent.inquire("Weather in Paris?") == again  # ended: recorded
    assert len(calls) == 2


@miniagent
async def stubborn(ctx: InteractionContext) -> None:
    """Ask for a structured answer that never validates."""
    ctx.reply(weather_model.inquire(ctx.messages, output_type=Weather, output_retries=1))


async def test_an_answer_that_never_validates_fails_the_same_when_asked_again(
    fresh: Path,
) -> None:
    ANSWERS[1:] = ['{"city": 7}']
    try:
        agent = durable(stubborn.fork(alias="STUBBORN"), database_url=f"sqlite:///{fresh}")
        async with MiniAgents():
            with workflow_id("never"), pytest.raises(LLMOutputValidationError):
                await agent.inquire("Weather?")
            assert len(calls) == 2  # the answer, and one retry
            with workflow_id("never"), pytest.raises(LLMOutputValidationError):
                await agent.inquire("Weather?")  # the recorded failure: no call
        assert len(calls) == 2
    finally:
        ANSWERS[1:] = ['{"city": "Paris", "celsius": 21.5}']
