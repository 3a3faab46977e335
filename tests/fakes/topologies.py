"""Agent programs made from data, for the topology fuzzer (``test_topology_fuzzer.py``).

A *node* describes one agent and what it does with its input; a :class:`Program` is a root
node, the stream limits, and how the caller reads the root's replies. :func:`build` turns a
node into real ``@miniagent`` agents, :func:`expected` computes the texts the node must
reply for an input, and :func:`run` runs a program on a virtual clock and returns what the
caller read (a :class:`Reading`). The strategies (:func:`programs`) draw sizes across every
limit: fan-outs wider than the high-water mark, more pieces than the replay window, agents
called more often than their concurrency limit.

The shapes: a **leaf** reads its input (awaiting it whole, message by message, token by
token, or *skimming*: each message's tokens for half a tick at most, then the message
whole, as a reader that times out on one message and reads on) and replies an echo per
input message, then a few messages of its own (with ``reply`` or ``areply``), maybe
*pausing* a few ticks before each (the agent sleeps, or the message streams its text in
two tokens with the pause between them); a **fan-out** replies with the replies of its
children, each inquired (``replicas`` times) with the fan-out's own input, as one list or
one reply per call, eagerly or lazily (``start_asap``); a **chain** feeds one child's
replies to the next (``inquire(a.inquire(...))``); a **pipe** does the same with reactive
operators (``as_operator``); an **agent used as a tool** is called by an LLM agent's tool
loop (a scripted model from :mod:`miniagents.testing`).

The callers (:data:`Consumer`) read the replies whole, message by message, token by token,
with two readers at once, or stop early (``break``), and some *give up* (a timeout around
their loop): ``timeout_wait`` reads ``early_after`` messages, then its timeout is set to
half a tick from then, so that it lands in its first wait that needs the clock (the next
message, or the rest of one, while agents pause or a stream waits for room);
``timeout_body`` gives up in the loop's own work (it sleeps a tick in its body, with the
timeout half a tick away) once it has taken message number ``early_after + 1``;
``two_one_gives_up`` is two readers, one giving up (in a wait or in its body, as
``give_up_in`` says) while the other reads on to the end (working ``pace`` ticks on each
message). A *tick* is a second of the virtual clock (a millisecond on uvloop, whose clock
is real).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias, TypeVar, get_args

import reactivex
from hypothesis import strategies as st

from miniagents import (
    InteractionContext,
    Message,
    MessagePromise,
    MiniAgent,
    MiniAgents,
    miniagent,
)
from miniagents.ext.llm import LLMCall
from miniagents.ext.llm.messages import LLMToolResultMessage
from miniagents.ext.llm.offline import CallTool
from miniagents.ext.tools import AgentTool
from miniagents.messages import MessageSequencePromise
from miniagents.operators import resolve_messages
from miniagents.testing import function_agent

InputStyle = Literal["await", "promises", "tokens", "skim"]
Consumer = Literal[
    "await",
    "messages",
    "tokens",
    "two",
    "early",
    "timeout_wait",
    "timeout_body",
    "two_one_gives_up",
]
GIVING_UP: tuple[Consumer, ...] = ("timeout_wait", "timeout_body", "two_one_gives_up")
"""The callers that give up (a timeout around their loop)."""


@dataclass(frozen=True)
class Leaf:
    """Reads its input its way, echoes each message, then replies ``own`` messages.

    With a ``pause``, it waits that many ticks before each of its own messages: the agent
    sleeps (``pause_in="agent"``), or the message streams its text in two tokens, the pause
    between them (``"message"``: the agent replies it at once and goes on).
    """

    input_style: InputStyle
    own: int
    with_areply: bool = False
    max_concurrency: int | None = None
    pause: int = 0
    pause_in: Literal["agent", "message"] = "agent"


@dataclass(frozen=True)
class FanOut:
    """Replies with each child's replies (each child called ``replicas`` times) in order."""

    children: tuple[Node, ...]
    replicas: int = 1
    one_list: bool = False
    start_asap: bool = True


@dataclass(frozen=True)
class Chain:
    """Feeds ``first``'s replies to ``second`` (``second.inquire(first.inquire(input))``)."""

    first: Node
    second: Node


@dataclass(frozen=True)
class Pipe:
    """Feeds ``first``'s replies to ``second`` through reactive operators (``as_operator``)."""

    first: Node
    second: Node


@dataclass(frozen=True)
class AsTool:
    """An LLM agent (a scripted model) that calls ``child`` as a tool, then answers "done".

    The child runs with no input (a tool's arguments are its whole input), and its replies
    come back as the tool's result (joined by a blank line), except the calls and results
    of its own tools (a nested ``AsTool``'s): those stay in the child's reply only.
    """

    child: Node


Node: TypeAlias = "Leaf | FanOut | Chain | Pipe | AsTool"


@dataclass(frozen=True)
class Program:
    """A root node, its input, the limits, and how the caller reads the replies.

    ``early_after``: how many messages the callers that stop early or give up read first.
    ``give_up_in`` (``two_one_gives_up``): where the reader that gives up does, in a wait
    (as ``timeout_wait``) or in its loop's own work (as ``timeout_body``); ``pace``: the
    ticks the other one works on each message it read (between two messages of the reply).
    """

    root: Node
    inputs: tuple[str, ...]
    high_water_mark: int | None
    replay_window: int | None
    consumer: Consumer
    early_after: int = 1
    give_up_in: Literal["wait", "body"] = "wait"
    pace: int = 0

    @property
    def takes_time(self) -> bool:
        """Whether the program waits on the clock by its shape (a pause or a caller's timeout)."""
        return self.consumer in GIVING_UP or _pauses(self.root)


@dataclass
class Reading:
    """What the caller read, and when (the times are the loop's, from the program's start)."""

    texts: list[str]
    """What the caller read: for ``two_one_gives_up``, the reader that read on."""
    gave_up_at: float | None = None
    """When the reader that gave up did (its timeout's ``TimeoutError``); ``None``: none did."""
    other: list[str] | None = None
    """``two_one_gives_up``: what the reader that gave up had read."""
    exited_at: float = 0.0
    """When the ``MiniAgents`` context had exited."""


def _pauses(node: Node) -> bool:
    if isinstance(node, Leaf):
        return node.pause > 0
    if isinstance(node, FanOut):
        return any(_pauses(child) for child in node.children)
    if isinstance(node, AsTool):
        return _pauses(node.child)
    return _pauses(node.first) or _pauses(node.second)


@dataclass
class _Names:
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def next(self) -> str:
        return f"a{next(self.counter)}"


A = TypeVar("A")
B = TypeVar("B")

Expected: TypeAlias = "Callable[[list[str]], list[str]]"
"""The texts a node must reply for the texts of its input."""


def build(
    node: Node, names: _Names | None = None, tick: float = 1.0
) -> tuple[MiniAgent[[]], Expected]:
    """The node as an agent (its children as agents of their own) and its expected replies.

    ``tick``: the seconds of a tick (of the loop's clock), the unit of pauses and timeouts.
    """
    names = names or _Names()
    if isinstance(node, Leaf):
        return _leaf(node, names.next(), tick)
    if isinstance(node, FanOut):
        built = [build(child, names, tick) for child in node.children]
        return _fan_out(node, names.next(), built)
    if isinstance(node, AsTool):
        return _as_tool(*build(node.child, names, tick))
    first, first_expected = build(node.first, names, tick)
    second, second_expected = build(node.second, names, tick)
    name = names.next()
    if isinstance(node, Pipe):

        async def piped(ctx: InteractionContext) -> None:
            ctx.reply(
                reactivex.of(ctx.message_promises).pipe(
                    resolve_messages(), first.as_operator(), second.as_operator()
                )
            )

        agent: MiniAgent[[]] = miniagent(alias=name)(piped)
    else:

        async def chain(ctx: InteractionContext) -> None:
            ctx.reply(second.inquire(first.inquire(ctx.message_promises)))

        agent = miniagent(alias=name)(chain)

    def expected(inputs: list[str]) -> list[str]:
        return second_expected(first_expected(inputs))

    return agent, expected


def _leaf(node: Leaf, name: str, tick: float) -> tuple[MiniAgent[[]], Expected]:
    pause = node.pause * tick

    async def leaf(ctx: InteractionContext) -> None:
        if node.input_style == "await":
            for message in await ctx.messages:
                ctx.reply(f"{name}<{message}>")
        elif node.input_style == "promises":
            async for promise in ctx.message_promises:
                ctx.reply(f"{name}<{await promise}>")
        elif node.input_style == "tokens":
            async for promise in ctx.message_promises:
                text = "".join([token async for token in promise])
                ctx.reply(f"{name}<{text}>")
        else:
            async for promise in ctx.message_promises:
                try:  # a timeout around one message, then reading on: the message goes on
                    async with asyncio.timeout(tick / 2):
                        text = "".join([token async for token in promise])
                except TimeoutError:
                    text = str(await promise)  # (its input: it streams on for this agent)
                ctx.reply(f"{name}<{text}>")
        for index in range(node.own):
            own: str | MessagePromise = f"{name}:{index}"
            if node.pause_in == "message":
                own = MessagePromise.from_async_iterable(_two_tokens(f"{name}:", f"{index}", pause))
            elif pause:
                await asyncio.sleep(pause)
            if node.with_areply:
                await ctx.areply(own)
            else:
                ctx.reply(own)

    agent: MiniAgent[[]] = miniagent(alias=name, max_concurrency=node.max_concurrency)(leaf)

    def expected(inputs: list[str]) -> list[str]:
        return [f"{name}<{text}>" for text in inputs] + [f"{name}:{i}" for i in range(node.own)]

    return agent, expected


async def _two_tokens(first: str, second: str, pause: float) -> AsyncIterator[str]:
    yield first
    await asyncio.sleep(pause)
    yield second


def _fan_out(
    node: FanOut, name: str, built: list[tuple[MiniAgent[[]], Expected]]
) -> tuple[MiniAgent[[]], Expected]:
    async def fan_out(ctx: InteractionContext) -> None:
        calls = [
            child.inquire(ctx.message_promises)
            for child, _ in built
            for _replica in range(node.replicas)
        ]
        if node.one_list:
            ctx.reply(calls)
        else:
            for call in calls:
                ctx.reply(call)

    agent: MiniAgent[[]] = miniagent(alias=name, start_asap=node.start_asap)(fan_out)

    def expected(inputs: list[str]) -> list[str]:
        return [
            text
            for _, child_expected in built
            for _replica in range(node.replicas)
            for text in child_expected(inputs)
        ]

    return agent, expected


class _ToolLoopText(str):
    """The expected text of a tool call or result: left out of an enclosing tool's result."""

    __slots__ = ()


def _as_tool(child: MiniAgent[[]], child_expected: Expected) -> tuple[MiniAgent[[]], Expected]:
    tool_name = AgentTool(child).name

    def model(call: LLMCall) -> str | CallTool:
        if call.messages and isinstance(call.messages[-1], LLMToolResultMessage):
            return "done"
        return CallTool(tool_name, {})

    agent: MiniAgent[[]] = function_agent(model, tools=[child])

    def expected(_inputs: list[str]) -> list[str]:
        answer = [text for text in child_expected([]) if not isinstance(text, _ToolLoopText)]
        return [_ToolLoopText("{}"), _ToolLoopText("\n\n".join(answer)), "done"]

    return agent, expected


async def run(program: Program, tick: float = 1.0) -> Reading:
    """Run ``program`` in a ``MiniAgents`` context; what the caller read, as texts, and when.

    ``tick``: the seconds of a tick (see :func:`build`).
    """
    root, _ = build(program.root, tick=tick)
    loop = asyncio.get_running_loop()
    start = loop.time()
    consumer = program.consumer
    async with MiniAgents(
        high_water_mark=program.high_water_mark, replay_window=program.replay_window
    ):
        replies = root.inquire(list(program.inputs))
        if consumer == "await":
            reading = Reading([str(message) for message in await replies])
        elif consumer == "messages":
            reading = Reading([str(await promise) async for promise in replies])
        elif consumer == "tokens":
            reading = Reading(
                ["".join([token async for token in promise]) async for promise in replies]
            )
        elif consumer == "two":
            first, second = await _at_once(_texts(replies), _texts(replies))
            assert first == second, (first, second)
            reading = Reading(first)
        elif consumer == "early":
            read: list[str] = []
            async for promise in replies:
                if len(read) == program.early_after:
                    break
                read.append(str(await promise))
            reading = Reading(read)
        elif consumer in ("timeout_wait", "timeout_body"):
            where: Literal["wait", "body"] = "wait" if consumer == "timeout_wait" else "body"
            read, gave_up_at = await _give_up(replies, program.early_after, where, tick)
            reading = Reading(read, gave_up_at)
        else:  # (the reader that reads on starts first: it reads from the first message)
            texts, (read, gave_up_at) = await _at_once(
                _texts(replies, program.pace * tick),
                _give_up(replies, program.early_after, program.give_up_in, tick),
            )
            reading = Reading(texts, gave_up_at, other=read)
    if reading.gave_up_at is not None:
        reading.gave_up_at -= start
    reading.exited_at = loop.time() - start
    return reading


async def _at_once(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Both results, ``first`` started first; an error of one cancels the other (once ended)."""
    tasks = (asyncio.ensure_future(first), asyncio.ensure_future(second))
    try:
        return await asyncio.gather(tasks[0], tasks[1])
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)  # (no reader of the caller's is left behind)
        raise


async def _texts(replies: MessageSequencePromise[Message], pace: float = 0) -> list[str]:
    """The texts of ``replies``, working ``pace`` seconds on each (between two messages)."""
    texts = []
    async for promise in replies:
        texts.append(str(await promise))
        if pace:
            await asyncio.sleep(pace)
    return texts


async def _give_up(
    replies: MessageSequencePromise[Message],
    after: int,
    where: Literal["wait", "body"],
    tick: float,
) -> tuple[list[str], float | None]:
    """Read ``after`` messages, then give up (a timeout around the loop) in a wait or the body.

    ``"wait"``: the timeout is set to half a tick from then, so that it lands in the first
    wait that needs the clock (nothing lands if the replies end before). ``"body"``: once
    it has taken the next message, it sleeps a tick in the loop's body (before reading the
    message), with the timeout half a tick away: it lands there.

    Returns:
        The texts it read, and when it gave up (``None`` if it read to the end).
    """
    loop = asyncio.get_running_loop()
    read: list[str] = []
    try:
        async with asyncio.timeout(None) as timeout:
            if where == "wait" and after == 0:
                timeout.reschedule(loop.time() + tick / 2)
            async for promise in replies:
                if where == "body" and len(read) == after:
                    timeout.reschedule(loop.time() + tick / 2)
                    await asyncio.sleep(tick)  # (the loop's own work: the timeout lands here)
                read.append(str(await promise))
                if where == "wait" and len(read) == after:
                    timeout.reschedule(loop.time() + tick / 2)
    except TimeoutError:
        return read, loop.time()
    return read, None


def expected(program: Program) -> list[str]:
    """What a caller of ``program`` that reads its replies to the end must read."""
    _, expect = build(program.root)
    return expect(list(program.inputs))


# -- strategies ---------------------------------------------------------------------------


def _leaves() -> st.SearchStrategy[Node]:
    return st.builds(
        Leaf,
        input_style=st.sampled_from(["await", "promises", "tokens", "skim"]),
        own=st.integers(0, 4),
        with_areply=st.booleans(),
        max_concurrency=st.one_of(st.none(), st.integers(1, 2)),
        pause=st.sampled_from([0, 0, 1, 2]),  # half of the leaves take no time
        pause_in=st.sampled_from(["agent", "message"]),
    )


def _extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.one_of(
        st.builds(
            FanOut,
            children=st.lists(children, min_size=1, max_size=4).map(tuple),
            replicas=st.integers(1, 4),
            one_list=st.booleans(),
            start_asap=st.booleans(),
        ),
        st.builds(Chain, children, children),
        st.builds(Pipe, children, children),
        # an LLM agent is no tool as it is (its options have no schema): a tool's child is not
        st.builds(AsTool, children.filter(lambda child: not isinstance(child, AsTool))),
    )


def nodes() -> st.SearchStrategy[Node]:
    """Agent trees of up to about a dozen agents."""
    return st.recursive(_leaves(), _extend, max_leaves=8)


def programs(consumers: Sequence[Consumer] = get_args(Consumer)) -> st.SearchStrategy[Program]:
    """Whole programs, with limits small enough that small programs cross them.

    ``consumers``: the callers to draw from (every one by default).
    """
    return st.builds(
        Program,
        root=nodes(),
        inputs=st.lists(st.sampled_from(["x", "y", "zz"]), max_size=4).map(tuple),
        high_water_mark=st.one_of(st.none(), st.integers(1, 4)),
        replay_window=st.one_of(st.none(), st.integers(2, 8)),
        consumer=st.sampled_from(consumers),
        early_after=st.integers(0, 3),
        give_up_in=st.sampled_from(["wait", "body"]),
        pace=st.integers(0, 1),
    )
