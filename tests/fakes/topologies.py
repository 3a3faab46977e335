"""Agent programs made from data, for the topology fuzzer (``test_topology_fuzzer.py``).

A *node* describes one agent and what it does with its input; a :class:`Program` is a root
node, the stream limits, how the caller reads the root's replies, and what else the loop
holds meanwhile. :func:`build` turns a node into real ``@miniagent`` agents,
:func:`expected` computes the texts the node must reply for an input, :func:`longest`
bounds the ticks a program may take if it does not hang, and :func:`run` runs a program
and returns what the caller read (a :class:`Reading`). The strategies (:func:`programs`,
:func:`diamonds`, :func:`passed_on_twice`) draw sizes across every limit: fan-outs wider
than the high-water mark, more pieces than the replay window, agents called more often
than their concurrency limit.

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
loop (a scripted model from :mod:`miniagents.testing`); a **diamond** (:class:`Shared`)
inquires its source once and gives that one reply to two or three branches, replying with
their replies in order (issue 57's program: its sources reply 2 to a few hundred
messages); a **reply passed on twice** (:class:`Twice`) replies with one child's reply two
or three times (``ctx.reply([r, r])`` or ``ctx.reply(r)`` twice: issue 58).

The callers (:data:`Consumer`) read the replies whole, message by message, token by token,
with two readers at once, or stop early (``break``); collect the message promises, then
read them last to first (``reverse``); read ``MessageSequencePromise([r, r])``, made
outside any agent (``passed_twice``); read the complete messages
(``as_message_observable()``: ``complete``); or call the root through an operator
(``reactivex.from_iterable(inputs).pipe(root.as_operator(), ...)``: ``pipe``) or a
pipeline (``pipeline(root, [inputs])``). Some *give up* (a timeout around their loop):
``timeout_wait`` reads ``early_after`` messages, then its timeout is set to half a tick
from then, so that it lands in its first wait that needs the clock (the next message, or
the rest of one, while agents pause or a stream waits for room); ``timeout_body`` gives up
in the loop's own work (it sleeps a tick in its body, with the timeout half a tick away)
once it has taken message number ``early_after + 1``; ``two_one_gives_up`` is two readers,
one giving up (in a wait or in its body, as ``give_up_in`` says) while the other reads on
to the end (working ``pace`` ticks on each message); ``complete_beside_give_up`` reads the
complete messages while another reader, once the reply has ended, reads the messages last
to first and gives up after half a tick (on one still streaming, which the first may have
queued: issue 58, item 6). A *tick* is a second of the virtual clock (a millisecond on
uvloop, whose clock is real).

What else the loop holds (``ambient``, issue 57): nothing, an unrelated timer far off, or
a timeout far off around the caller (neither fires; the deadlock watch acts only while the
loop is idle).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Literal, TypeAlias, TypeVar, get_args

import reactivex
from hypothesis import strategies as st
from reactivex import operators as ops

from miniagents import (
    InteractionContext,
    Message,
    MessagePromise,
    MiniAgent,
    MiniAgents,
    miniagent,
    pipeline,
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
    "reverse",
    "passed_twice",
    "complete",
    "timeout_wait",
    "timeout_body",
    "two_one_gives_up",
    "complete_beside_give_up",
    "pipe",
    "pipeline",
]
GIVING_UP: tuple[Consumer, ...] = (
    "timeout_wait",
    "timeout_body",
    "two_one_gives_up",
    "complete_beside_give_up",
)
"""The callers that give up (a timeout around their loop, or around reading)."""
OPERATORS: tuple[Consumer, ...] = ("pipe", "pipeline")
"""The callers that read the root through an operator or a pipeline (not ``inquire``)."""
ORDINARY: tuple[Consumer, ...] = tuple(
    consumer for consumer in get_args(Consumer) if consumer not in GIVING_UP + OPERATORS
)
"""The callers that ``inquire`` and read to the end (or stop early), giving nothing up."""
Ambient = Literal["idle", "timer", "timeout"]
"""What else the loop holds while the program runs (see :class:`Program`)."""
AMBIENT_DELAY = 1e9
"""The ticks after which the unrelated timer of an ``ambient`` program would fire: never."""


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


@dataclass(frozen=True)
class Shared:
    """A diamond: ``source`` inquired once, its one reply the input of every branch.

    It replies with each branch's replies, in order (as one list, or one reply per
    branch): the branches share the source's reply and meet again in order, as the
    program of issue 57 (a report replying two per-row agents over one source).
    """

    source: Node
    branches: tuple[Node, ...]
    one_list: bool = False


@dataclass(frozen=True)
class Twice:
    """A reply passed on more than once: ``child`` inquired once, replied with ``copies`` times.

    As one list (``ctx.reply([r, r])``) or one reply per copy (``ctx.reply(r)`` twice), as
    in issue 58 (item 1): every copy reads the one reply from its first message.
    """

    child: Node
    copies: int = 2
    one_list: bool = True


Node: TypeAlias = "Leaf | FanOut | Chain | Pipe | AsTool | Shared | Twice"


@dataclass(frozen=True)
class Program:
    """A root node, its input, the limits, and how the caller reads the replies.

    ``early_after``: how many messages the callers that stop early or give up read first.
    ``give_up_in`` (``two_one_gives_up``): where the reader that gives up does, in a wait
    (as ``timeout_wait``) or in its loop's own work (as ``timeout_body``); ``pace``: the
    ticks the other one works on each message it read (between two messages of the reply).
    ``ambient``: what else the loop holds meanwhile, as in any real application: nothing
    (``"idle"``), an unrelated timer far off (``"timer"``: ``loop.call_later``), or a
    timeout far off around the caller (``"timeout"``); neither ever fires (they are
    :data:`AMBIENT_DELAY` ticks away), but the deadlock watch may act only on an idle loop.
    """

    root: Node
    inputs: tuple[str, ...]
    high_water_mark: int | None
    replay_window: int | None
    consumer: Consumer
    early_after: int = 1
    give_up_in: Literal["wait", "body"] = "wait"
    pace: int = 0
    ambient: Ambient = "idle"

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


def children(node: Node) -> tuple[Node, ...]:
    """The nodes right under ``node`` (none under a leaf)."""
    if isinstance(node, Leaf):
        return ()
    if isinstance(node, FanOut):
        return node.children
    if isinstance(node, (AsTool, Twice)):
        return (node.child,)
    if isinstance(node, Shared):
        return (node.source, *node.branches)
    return (node.first, node.second)


def _pauses(node: Node) -> bool:
    if isinstance(node, Leaf):
        return node.pause > 0
    return any(_pauses(child) for child in children(node))


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
    if isinstance(node, Shared):
        source = build(node.source, names, tick)
        branches = [build(branch, names, tick) for branch in node.branches]
        return _shared(node, names.next(), source, branches)
    if isinstance(node, Twice):
        return _twice(node, names.next(), *build(node.child, names, tick))
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


def _shared(
    node: Shared,
    name: str,
    source: tuple[MiniAgent[[]], Expected],
    branches: list[tuple[MiniAgent[[]], Expected]],
) -> tuple[MiniAgent[[]], Expected]:
    source_agent, source_expected = source

    async def shared(ctx: InteractionContext) -> None:
        reply = source_agent.inquire(ctx.message_promises)
        calls = [branch.inquire(reply) for branch, _ in branches]
        if node.one_list:
            ctx.reply(calls)
        else:
            for call in calls:
                ctx.reply(call)

    agent: MiniAgent[[]] = miniagent(alias=name)(shared)

    def expected(inputs: list[str]) -> list[str]:
        texts = source_expected(inputs)
        return [text for _, branch_expected in branches for text in branch_expected(texts)]

    return agent, expected


def _twice(
    node: Twice, name: str, child: MiniAgent[[]], child_expected: Expected
) -> tuple[MiniAgent[[]], Expected]:
    async def twice(ctx: InteractionContext) -> None:
        reply = child.inquire(ctx.message_promises)
        if node.one_list:
            ctx.reply([reply] * node.copies)
        else:
            for _copy in range(node.copies):
                ctx.reply(reply)

    agent: MiniAgent[[]] = miniagent(alias=name)(twice)

    def expected(inputs: list[str]) -> list[str]:
        return child_expected(inputs) * node.copies

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
    far_off = AMBIENT_DELAY * tick
    timer = loop.call_later(far_off, _nothing) if program.ambient == "timer" else None
    around: AbstractAsyncContextManager[object] = (
        asyncio.timeout(far_off) if program.ambient == "timeout" else nullcontext()
    )
    try:
        async with (
            MiniAgents(
                high_water_mark=program.high_water_mark, replay_window=program.replay_window
            ),
            around,
        ):
            reading = await _read(program, root, tick)
    finally:
        if timer is not None:
            timer.cancel()
    if reading.gave_up_at is not None:
        reading.gave_up_at -= start
    reading.exited_at = loop.time() - start
    return reading


def _nothing() -> None:
    """The unrelated timer's work (it never fires)."""


async def _read(program: Program, root: MiniAgent[[]], tick: float) -> Reading:
    """Call ``root`` and read its replies as ``program.consumer`` says."""
    consumer = program.consumer
    if consumer == "pipe":
        return Reading(await _piped(root, program.inputs))
    if consumer == "pipeline":
        runs = pipeline(root, [list(program.inputs)], progress=False)
        (result,) = [result async for result in runs]
        if result.error is not None:
            raise result.error
        return Reading([str(message) for message in result.replies])
    replies = root.inquire(list(program.inputs))
    if consumer == "await":
        return Reading([str(message) for message in await replies])
    if consumer == "messages":
        return Reading([str(await promise) async for promise in replies])
    if consumer == "tokens":
        return Reading(["".join([token async for token in promise]) async for promise in replies])
    if consumer == "two":
        first, second = await _at_once(_texts(replies), _texts(replies))
        assert first == second, (first, second)
        return Reading(first)
    if consumer == "early":
        read: list[str] = []
        async for promise in replies:
            if len(read) == program.early_after:
                break
            read.append(str(await promise))
        return Reading(read)
    if consumer == "reverse":
        return Reading(await _in_reverse(replies))
    if consumer == "passed_twice":  # (outside any agent: one reply, two copies, one sequence)
        both = MessageSequencePromise([replies, replies])
        return Reading([str(await promise) async for promise in both])
    if consumer == "complete":
        return Reading(await _complete(replies))
    if consumer in ("timeout_wait", "timeout_body"):
        where: Literal["wait", "body"] = "wait" if consumer == "timeout_wait" else "body"
        read, gave_up_at = await _give_up(replies, program.early_after, where, tick)
        return Reading(read, gave_up_at)
    if consumer == "complete_beside_give_up":  # (the complete messages' subscriber first)
        texts, (read, gave_up_at) = await _at_once(
            _complete(replies), _give_up_in_reverse(replies, tick)
        )
        return Reading(texts, gave_up_at, other=read)
    # two_one_gives_up (the reader that reads on starts first: it reads from the first message)
    texts, (read, gave_up_at) = await _at_once(
        _texts(replies, program.pace * tick),
        _give_up(replies, program.early_after, program.give_up_in, tick),
    )
    return Reading(texts, gave_up_at, other=read)


async def _piped(root: MiniAgent[[]], inputs: tuple[str, ...]) -> list[str]:
    """``root`` as a reactive operator over the inputs: its complete replies' texts."""
    texts: list[str] = await reactivex.from_iterable(inputs).pipe(
        root.as_operator(), ops.map(str), ops.to_list()
    )
    return texts


async def _complete(replies: MessageSequencePromise[Message]) -> list[str]:
    """The texts of the complete messages (``as_message_observable()``), as they complete."""
    texts: list[str] = await replies.as_message_observable().pipe(ops.map(str), ops.to_list())
    return texts


async def _in_reverse(replies: MessageSequencePromise[Message]) -> list[str]:
    """Collect the message promises (to the reply's end), then read them last to first.

    Returns:
        Their texts, in the reply's order.
    """
    promises = [promise async for promise in replies]
    return list(reversed([str(await promise) for promise in reversed(promises)]))


async def _give_up_in_reverse(
    replies: MessageSequencePromise[Message], tick: float
) -> tuple[list[str], float | None]:
    """Collect the message promises, then read them last to first, giving up after half a tick.

    Once the reply has ended, it gives up on the last message still streaming (then), which
    other readers of the reply may have queued behind an earlier one.

    Returns:
        The texts it read (in the reply's order: a suffix of it), and when it gave up
        (``None`` if it read every message).
    """
    loop = asyncio.get_running_loop()
    promises = [promise async for promise in replies]
    read: list[str] = []
    try:
        async with asyncio.timeout(tick / 2):
            for promise in reversed(promises):
                read.insert(0, str(await promise))
    except TimeoutError:
        return read, loop.time()
    return read, None


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
    texts = expect(list(program.inputs))
    return texts * 2 if program.consumer == "passed_twice" else texts


def _count(node: Node, inputs: int) -> int:
    """How many messages ``node`` replies for ``inputs`` input messages."""
    if isinstance(node, Leaf):
        return inputs + node.own
    if isinstance(node, FanOut):
        return sum(node.replicas * _count(child, inputs) for child in node.children)
    if isinstance(node, AsTool):
        return 3
    if isinstance(node, Shared):
        shared = _count(node.source, inputs)
        return sum(_count(branch, shared) for branch in node.branches)
    if isinstance(node, Twice):
        return node.copies * _count(node.child, inputs)
    return _count(node.second, _count(node.first, inputs))


def _work(node: Node, inputs: int) -> int:
    """How many messages ``node`` and every agent under it reply, for ``inputs`` inputs."""
    replied = _count(node, inputs)
    if isinstance(node, Leaf):
        return replied
    if isinstance(node, FanOut):
        return replied + sum(node.replicas * _work(child, inputs) for child in node.children)
    if isinstance(node, AsTool):
        return replied + _work(node.child, 0)
    if isinstance(node, Shared):
        shared = _count(node.source, inputs)
        return (
            replied
            + _work(node.source, inputs)
            + sum(_work(branch, shared) for branch in node.branches)
        )
    if isinstance(node, Twice):
        return replied + _work(node.child, inputs)
    return replied + _work(node.first, inputs) + _work(node.second, _count(node.first, inputs))


def longest(program: Program) -> float:
    """The most ticks ``program`` may take if it does not hang (a generous bound).

    Every message any of its agents replies may cost a pause (2 ticks at most), a skim
    (half a tick), the caller's pace (a tick), and a relief of the deadlock watch (a
    second, on the virtual clock): 5 ticks a message, and 100 more for the rest.
    """
    return 100 + 5 * 2 * _work(program.root, len(program.inputs))


# -- strategies ---------------------------------------------------------------------------

SOURCE_SIZES = (2, 2, 3, 8, 65, 129, 300)
"""How many messages of its own a diamond's (or a passed-on reply's) source replies."""

NESTED_SOURCE_SIZES = (2, 3, 8, 17)
"""The same, for a diamond or a passed-on reply anywhere in a tree (a few of them nest)."""


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


def _sources(sizes: Sequence[int] = SOURCE_SIZES) -> st.SearchStrategy[Node]:
    """Leaves that reply many messages of their own, at once (a source of rows)."""
    return st.builds(
        Leaf,
        input_style=st.sampled_from(["await", "promises"]),
        own=st.sampled_from(sizes),
        with_areply=st.booleans(),
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
        st.builds(
            Shared,
            source=st.one_of(_sources(NESTED_SOURCE_SIZES), children),
            branches=st.lists(children, min_size=2, max_size=3).map(tuple),
            one_list=st.booleans(),
        ),
        st.builds(
            Twice,
            child=st.one_of(_sources(NESTED_SOURCE_SIZES), children),
            copies=st.integers(2, 3),
            one_list=st.booleans(),
        ),
    )


def nodes() -> st.SearchStrategy[Node]:
    """Agent trees of up to about a dozen agents."""
    return st.recursive(_leaves(), _extend, max_leaves=8)


def diamonds() -> st.SearchStrategy[Node]:
    """Trees whose root is a diamond (:class:`Shared`) of small trees, or the leaves' own.

    Its source replies 2 to a few hundred messages (or is a small tree itself); its
    branches read the one reply their ways (whole, message by message, token by token).
    """
    small = st.recursive(_leaves(), _extend, max_leaves=3)
    return st.builds(
        Shared,
        source=st.one_of(_sources(), small),
        branches=st.lists(st.one_of(_leaves(), small), min_size=2, max_size=3).map(tuple),
        one_list=st.booleans(),
    )


def passed_on_twice() -> st.SearchStrategy[Node]:
    """Trees whose root passes one reply on two or three times (:class:`Twice`).

    The reply is mostly a source's (past a small replay window: 17 to 300 messages),
    maybe read through a chain or a pipe into a leaf, or a leaf's: each of its streams
    has one reader but the copies (so a ``ReplayWindowError`` can only come from them).
    """
    sources = _sources((17, 65, 129, 300))
    return st.builds(
        Twice,
        child=st.one_of(
            sources,
            st.builds(Chain, sources, _leaves()),
            st.builds(Pipe, sources, _leaves()),
            _leaves(),
        ),
        copies=st.integers(2, 3),
        one_list=st.booleans(),
    )


def programs(
    consumers: Sequence[Consumer] = ORDINARY + GIVING_UP,
    roots: st.SearchStrategy[Node] | None = None,
    ambient: Sequence[Ambient] = ("idle",),
    high_water_marks: st.SearchStrategy[int | None] | None = None,
    replay_windows: st.SearchStrategy[int | None] | None = None,
) -> st.SearchStrategy[Program]:
    """Whole programs, with limits small enough that small programs cross them.

    Args:
        consumers: The callers to draw from (those that ``inquire``, by default).
        roots: The agent trees (:func:`nodes` by default).
        ambient: What else the loop may hold (see :class:`Program`).
        high_water_marks: The high-water marks (``None`` or 1 to 4 by default).
        replay_windows: The replay windows (``None`` or 2 to 8 by default).
    """
    return st.builds(
        Program,
        root=nodes() if roots is None else roots,
        inputs=st.lists(st.sampled_from(["x", "y", "zz"]), max_size=4).map(tuple),
        high_water_mark=(
            st.one_of(st.none(), st.integers(1, 4))
            if high_water_marks is None
            else high_water_marks
        ),
        replay_window=(
            st.one_of(st.none(), st.integers(2, 8)) if replay_windows is None else replay_windows
        ),
        consumer=st.sampled_from(consumers),
        early_after=st.integers(0, 3),
        give_up_in=st.sampled_from(["wait", "body"]),
        pace=st.integers(0, 1),
        ambient=st.sampled_from(ambient),
    )
