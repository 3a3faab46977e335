"""Lazily started agents: ``start_asap=False`` runs an agent only when its replies are consumed."""

from __future__ import annotations

import asyncio

import pytest
from reactivex import operators as ops

from miniagents import InteractionContext, MiniAgent, MiniAgents, miniagent
from miniagents.errors import AgentArgumentError, NoActiveContextError
from miniagents.promising.limits import StreamLimits, stream_limits
from miniagents.promising.sentinels import DEFAULT


def recording_agent(events: list[str]) -> MiniAgent[[]]:
    @miniagent
    async def recorder(ctx: InteractionContext) -> None:
        events.append("ran")
        ctx.reply("reply")

    return recorder


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_an_agent_starts_at_once_by_default() -> None:
    events: list[str] = []
    async with MiniAgents():
        recording_agent(events).inquire()
        await settle()
        assert events == ["ran"]


@pytest.mark.parametrize("consume", ["iterate", "await", "subscribe", "start"])
async def test_a_lazy_agent_runs_when_its_replies_are_first_consumed(consume: str) -> None:
    events: list[str] = []
    async with MiniAgents():
        reply = recording_agent(events).inquire(start_asap=False)  # type: ignore[call-arg]
        await settle()
        assert events == []
        if consume == "iterate":
            assert [str(promise) async for promise in reply] == ["reply"]
        elif consume == "await":
            assert str(await reply) == "reply"
        elif consume == "subscribe":
            assert len(await reply.as_message_observable().pipe(ops.to_list())) == 1
        else:
            reply.start()
            await settle()
        assert events == ["ran"]


async def test_a_lazy_agent_runs_when_a_started_agent_reads_its_replies() -> None:
    events: list[str] = []
    lazy = recording_agent(events)

    @miniagent
    async def reader(ctx: InteractionContext) -> None:
        events.append("reader")
        async for promise in ctx.message_promises:
            ctx.reply(f"read {await promise}")

    async with MiniAgents():
        reply = reader.inquire(lazy.inquire(start_asap=False), start_asap=False)  # type: ignore[call-arg]
        await settle()
        assert events == []  # a lazy agent passed to a lazy one: neither starts
        assert [str(promise) async for promise in reply] == ["read reply"]
        assert events == ["reader", "ran"]


async def test_a_lazy_agent_nobody_consumes_never_runs_and_the_context_exits() -> None:
    events: list[str] = []
    async with MiniAgents():
        recording_agent(events).inquire(start_asap=False)  # type: ignore[call-arg]
    assert events == []


@pytest.mark.parametrize("consume", ["iterate", "start"])
async def test_a_lazy_agent_read_after_its_context_exited_is_refused_and_never_runs(
    consume: str,
) -> None:
    # (it ran in a task of the exited context, which nobody waited for any more: the
    # suite's leak check found it still waiting on the gate)
    events: list[str] = []
    gate = asyncio.Event()

    @miniagent
    async def waits(ctx: InteractionContext) -> None:
        events.append("ran")
        ctx.reply("early")
        await gate.wait()

    async with MiniAgents():
        reply = waits.inquire(start_asap=False)  # type: ignore[call-arg]
    if consume == "start":
        reply.start()
        await settle()
        assert events == []
    refused = r"WAITS was inquired lazily .* has exited.* inside the block"
    with pytest.raises(NoActiveContextError, match=refused):
        await anext(aiter(reply))  # (the first reply: the agent had it at once)
    assert events == []


async def test_the_context_default_makes_agents_lazy_and_an_inner_context_inherits_it() -> None:
    events: list[str] = []
    agent = recording_agent(events)
    async with MiniAgents(start_everything_asap_by_default=False), MiniAgents():
        reply = agent.inquire()
        eager = agent.inquire(start_asap=True)  # type: ignore[call-arg]
        await settle()
        assert events == ["ran"]  # only the one asked to start at once
        await reply
        assert events == ["ran", "ran"]
        await eager


async def test_an_agent_or_a_fork_may_be_lazy_by_default() -> None:
    events: list[str] = []

    @miniagent(start_asap=False)
    async def lazy(ctx: InteractionContext) -> None:
        events.append("lazy")

    eager = lazy.fork(start_asap=True)
    assert lazy.start_asap is False
    assert eager.start_asap is True
    assert recording_agent(events).fork(start_asap=False).start_asap is False
    async with MiniAgents():
        reply = lazy.inquire()
        eager.inquire()
        await settle()
        assert events == ["lazy"]  # the eager fork
        await reply
        assert events == ["lazy", "lazy"]


async def test_a_lazy_agent_runs_in_the_context_it_was_inquired_in() -> None:
    seen: list[StreamLimits] = []

    @miniagent
    async def reads_limits(ctx: InteractionContext) -> None:
        seen.append(stream_limits.get())

    async with MiniAgents(replay_window=7):
        reply = reads_limits.inquire(start_asap=False)  # type: ignore[call-arg]
        async with MiniAgents(replay_window=9):
            await reply
    assert seen == [StreamLimits(7)]


async def test_an_agent_that_takes_start_asap_gets_it() -> None:
    got: list[bool] = []

    @miniagent
    async def takes_it(ctx: InteractionContext, start_asap: bool) -> None:
        got.append(start_asap)

    async with MiniAgents():
        await takes_it.inquire(start_asap=False)
    assert got == [False]
    with pytest.raises(AgentArgumentError):
        async with MiniAgents():
            takes_it.inquire()  # type: ignore[call-arg]


async def test_default_given_to_any_keyword_means_the_default() -> None:
    events: list[str] = []

    @miniagent
    async def greeter(ctx: InteractionContext, greeting: str = "Hello") -> None:
        ctx.reply(greeting)

    bound = greeter.fork(greeting="Hi", start_asap=DEFAULT)
    assert bound.start_asap is None
    assert greeter.fork(greeting=DEFAULT).bound_arguments == {}
    async with MiniAgents(start_everything_asap_by_default=DEFAULT, llm_logger_agent=DEFAULT):
        reply = recording_agent(events).inquire(start_asap=DEFAULT)  # type: ignore[call-arg]
        await settle()
        assert events == ["ran"]  # the context's default: at once
        assert str(await reply) == "reply"
        assert str(await greeter.inquire(greeting=DEFAULT)) == "Hello"  # type: ignore[arg-type]
        assert str(await bound.inquire(greeting=DEFAULT)) == "Hi"  # type: ignore[arg-type]
