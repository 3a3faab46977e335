"""What the Ray tests run in the workers: agents, message classes, and a signalling actor.

The workers import this module (the tests run from the repository root, which Ray puts on
the workers' ``sys.path``). The tests and the agents order their steps with the
:class:`Signals` actor (events set and awaited on both sides), never with sleeps.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import defaultdict
from typing import Any, Protocol

from miniagents import Frozen, InteractionContext, Message, miniagent
from miniagents.messages import MessageTokenAppender


class Signals:
    """Named events with values, and counters, shared by the tests and the agents (an actor)."""

    def __init__(self) -> None:
        self._events: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._values: dict[str, object] = {}
        self._counts: defaultdict[str, int] = defaultdict(int)

    async def set(self, name: str, value: object = None) -> None:
        self._values[name] = value
        self._events[name].set()

    async def wait(self, name: str) -> object:
        await self._events[name].wait()
        return self._values[name]

    async def count(self, name: str) -> int:
        """Add one to the counter ``name`` and return it."""
        self._counts[name] += 1
        return self._counts[name]

    async def counted(self, name: str) -> int:
        return self._counts[name]


class RemoteMethod(Protocol):
    """A method of an actor handle: ``handle.method.remote(...)`` gives an ``ObjectRef``."""

    def remote(self, *args: object) -> Any: ...


class SignalsHandle(Protocol):
    """The handle of a :class:`Signals` actor, as the tests and agents use it."""

    @property
    def set(self) -> RemoteMethod: ...

    @property
    def wait(self) -> RemoteMethod: ...

    @property
    def count(self) -> RemoteMethod: ...

    @property
    def counted(self) -> RemoteMethod: ...


class Point(Frozen):
    x: int
    y: int


class PlotMessage(Message):
    """A custom message class, with a nested Frozen field, sent both ways."""

    title: str
    points: tuple[Point, ...] = ()


class CustomError(ValueError):
    """An error of the agent's own."""


class PickyError(Exception):
    """An error whose constructor needs two arguments: it cannot be unpickled."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what} failed because {why}")


def kill_this_worker() -> None:
    """Kill the worker process at once, as a crash or the OOM killer would."""
    os.kill(os.getpid(), signal.SIGKILL)


@miniagent
async def echo_agent(ctx: InteractionContext, prefix: str = "") -> None:
    """Reply each input message as it arrives: itself, or its text after ``prefix``."""
    async for promise in ctx.message_promises:
        message = await promise
        ctx.reply(message if not prefix else f"{prefix}{message}")


@miniagent
async def gated_tokens_agent(ctx: InteractionContext, signals: SignalsHandle, key: str) -> None:
    """Stream one token, wait for the test to open the gate, then stream the rest."""
    reply = MessageTokenAppender(message_class=PlotMessage, title="gated", role="assistant")
    ctx.reply(reply.promise)
    reply.append("Hel")
    await signals.wait.remote(f"{key}:gate")
    reply.append("lo")
    reply.update_metadata(finish_reason="stop")
    reply.complete()
    ctx.reply(PlotMessage(text="second", title="after", points=(Point(x=1, y=2),)))


@miniagent
async def gated_agent(ctx: InteractionContext, signals: SignalsHandle, key: str) -> None:
    """Say it started, wait for the test to open the gate, then reply; its input unread."""
    await signals.set.remote(f"{key}:started")
    await signals.wait.remote(f"{key}:gate")
    ctx.reply("through the gate")


@miniagent
async def failing_agent(ctx: InteractionContext, picky: bool = False) -> None:
    """Reply one message, then raise an error of its own."""
    ctx.reply("before the error")
    if picky:
        raise PickyError("the picky step", "it was told to")
    raise CustomError("the remote agent failed on purpose")


@miniagent
async def failing_reply_agent(ctx: InteractionContext) -> None:
    """Reply a message whose tokens fail, then fail with its error (as an LLM agent does)."""
    reply = MessageTokenAppender()
    ctx.reply(reply.promise)
    reply.append("partial ")
    reply.fail(CustomError("the stream broke"))
    await reply.promise


@miniagent
async def waiting_agent(ctx: InteractionContext, signals: SignalsHandle, key: str) -> None:
    """Stream a token, then wait forever; tell the test when it is cancelled."""
    reply = MessageTokenAppender()
    ctx.reply(reply.promise)
    reply.append("waiting")
    try:
        await signals.set.remote(f"{key}:started")
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        await signals.set.remote(f"{key}:cancelled", os.getpid())
        raise


@miniagent
async def input_reading_agent(ctx: InteractionContext, signals: SignalsHandle, key: str) -> None:
    """Read its whole input, say so, then wait forever; tell the test when it is cancelled.

    It sets ``<key>:started`` once it has read its first input message.
    """
    try:
        async for promise in ctx.message_promises:
            await promise
            await signals.set.remote(f"{key}:started")
        await signals.set.remote(f"{key}:input-ended")
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        await signals.set.remote(f"{key}:cancelled")
        raise


@miniagent
async def dying_agent(
    ctx: InteractionContext,
    signals: SignalsHandle,
    key: str,
    after_reply: bool,
    read_inputs: bool = False,
) -> None:
    """On its first attempt, kill its worker (after a reply the test has read, if asked).

    With ``read_inputs``, it reads every input message first and says how many it read.
    """
    attempt = await signals.count.remote(key)
    read = len(await ctx.messages) if read_inputs else None
    if after_reply:
        ctx.reply(f"attempt {attempt}")
        await signals.wait.remote(f"{key}:read")
    if attempt == 1:
        kill_this_worker()
    ctx.reply(f"done at attempt {attempt}" if read is None else f"read {read} at attempt {attempt}")


@miniagent
async def mailbox_reading_agent(
    ctx: InteractionContext, signals: SignalsHandle, key: str, die_at: tuple[int, ...] = ()
) -> None:
    """Read every input message (through the mailbox), then say how many, at which attempt.

    It sets ``<key>:started:<attempt>`` before reading; at an attempt in ``die_at`` it kills
    its worker first.
    """
    attempt = await signals.count.remote(key)
    if attempt in die_at:
        kill_this_worker()
    await signals.set.remote(f"{key}:started:{attempt}")
    read = len(await ctx.messages)
    ctx.reply(f"read {read} at attempt {attempt}")


@miniagent
async def unpicklable_reply_agent(ctx: InteractionContext) -> None:
    """Reply a message holding a lock, which cannot be pickled."""
    import threading

    ctx.reply(Message(text="locked", handle=threading.Lock()))


@miniagent
async def item_agent(ctx: InteractionContext, signals: SignalsHandle, key: str) -> None:
    """A pipeline stage whose items follow instructions written in them.

    ``"wait:<name>"`` sets ``waiting:<text>``, then waits for the signal ``<name>`` (and
    sets ``cancelled:<text>`` if it is cancelled meanwhile); ``"finish:<name>"`` sets it
    after replying; ``"die-once"`` reports its process and waits until it is killed, on
    its first attempt; ``"fail"`` raises.
    """
    text = str(await ctx.messages)
    for part in text.split():
        if part.startswith("wait:"):
            try:
                await signals.set.remote(f"{key}:waiting:{text}")
                await signals.wait.remote(f"{key}:{part[5:]}")
            except asyncio.CancelledError:
                await signals.set.remote(f"{key}:cancelled:{text}")
                raise
        elif part == "die-once" and await signals.count.remote(f"{key}:attempts") == 1:
            await signals.set.remote(f"{key}:started", os.getpid())
            await asyncio.Event().wait()  # until the test kills this worker
        elif part == "fail":
            raise CustomError(f"item {text!r} failed")
    ctx.reply(text.upper())
    for part in text.split():
        if part.startswith("finish:"):
            await signals.set.remote(f"{key}:{part[7:]}")


@miniagent
async def upper_agent(ctx: InteractionContext) -> None:
    """Reply each input message upper-cased."""
    async for promise in ctx.message_promises:
        ctx.reply(str(await promise).upper())


class SettingsMessage(Message):
    """The LLM settings an agent saw."""

    stream: bool
    stall_timeout: float | None
    logger: str


@miniagent
async def settings_agent(ctx: InteractionContext) -> None:
    """Replies with the LLM settings of the context it runs in (in a worker: the caller's)."""
    from miniagents.ext.llm.settings import llm_settings

    settings = llm_settings()
    ctx.reply(
        SettingsMessage(
            text="settings",
            stream=settings.stream_llm_tokens_by_default,
            stall_timeout=settings.llm_stall_timeout,
            logger=repr(settings.llm_logger_agent),
        )
    )


@miniagent
async def nested_runaway_agent(ctx: InteractionContext) -> None:
    """On a worker: asks an offline model that calls its tool forever, on another worker."""
    from miniagents.ext.llm.offline import CallTool, create_offline_agent
    from miniagents.ext.ray import ray_agent
    from tests.ext.tools.loop_support import add

    runaway = create_offline_agent(token_delay=0).fork(
        reply=CallTool("add", {"a": 1, "b": 1}), tools=[add], max_tool_rounds=100
    )
    ctx.reply(ray_agent(runaway, num_cpus=0.1).inquire(ctx.messages))


@miniagent
async def late_count_agent(ctx: InteractionContext, fail: bool = False) -> None:
    """On a worker: a call of its own reports its count a loop turn after the link closes.

    (As a call in the background does that ends as its interaction does: the link to the
    caller's budgets has closed, the worker's last batch of reply events has not gone.)
    """
    from miniagents.ext.llm import TokenUsage
    from miniagents.ext.llm.charging import CallCharge, budget_link
    from miniagents.ext.ray._budgets import _AwayEnd

    charge = CallCharge("late", "gpt-4o-mini", None)
    await charge.aadmit()
    link = budget_link()
    assert isinstance(link, _AwayEnd)
    closing = link.close
    usage = TokenUsage(input_tokens=12, output_tokens=3, cost_usd=0.25)

    def close(error: BaseException | None = None) -> None:
        closing(error)
        asyncio.get_running_loop().call_soon(charge.finish, usage)

    link.close = close  # type: ignore[method-assign]
    if fail:
        raise ValueError("The late agent failed on purpose.")
    ctx.reply("started")


@miniagent
async def audio_count_agent(ctx: InteractionContext) -> None:
    """On a worker: a call whose provider says the part of its tokens that was audio."""
    from miniagents.ext.llm import TokenUsage
    from miniagents.ext.llm.charging import CallCharge
    from miniagents.ext.llm.provider import AudioTokens

    charge = CallCharge("voice", "gpt-4o-mini", None)
    await charge.aadmit()
    usage = TokenUsage(input_tokens=20, output_tokens=8, cached_input_tokens=4, cost_usd=0.5)
    charge.finish(usage, AudioTokens(input_tokens=12, output_tokens=6, cached_input_tokens=2))
    ctx.reply("said")


@miniagent
async def dying_call_agent(ctx: InteractionContext, signals: SignalsHandle, key: str) -> None:
    """On a worker: a call of its own streams a piece, then the worker dies mid-call.

    It dies once the test has read its reply (which carried the call's start and piece).
    """
    from miniagents.ext.llm.charging import CallCharge

    charge = CallCharge("doomed", "gpt-4o-mini", None)
    await charge.aadmit()
    charge.piece()
    ctx.reply("streaming")
    await signals.wait.remote(f"{key}:read")
    kill_this_worker()
