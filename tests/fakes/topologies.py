"""Agent programs made from data, for the topology fuzzer (``test_topology_fuzzer.py``).

A *node* describes one agent and what it does with its input; a :class:`Program` is a root
node, the stream limits, and how the caller reads the root's replies. :func:`build` turns a
node into real ``@miniagent`` agents, :func:`expected` computes the texts the node must
reply for an input, and :func:`run` runs a program on a virtual clock and returns what the
caller read. The strategies (:func:`programs`) draw sizes across every limit: fan-outs
wider than the high-water mark, more pieces than the replay window, agents called more
often than their concurrency limit.

The shapes: a **leaf** reads its input (awaiting it whole, message by message, or token by
token) and replies an echo per input message, then a few messages of its own (with
``reply`` or ``areply``); a **fan-out** replies with the replies of its children, each
inquired (``replicas`` times) with the fan-out's own input, as one list or one reply per
call, eagerly or lazily (``start_asap``); a **chain** feeds one child's replies to the next
(``inquire(a.inquire(...))``); a **pipe** does the same with reactive operators
(``as_operator``); an **agent used as a tool** is called by an LLM agent's tool loop
(a scripted model from :mod:`miniagents.testing`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

import reactivex
from hypothesis import strategies as st

from miniagents import InteractionContext, Message, MiniAgent, MiniAgents, miniagent
from miniagents.ext.llm import LLMCall
from miniagents.ext.llm.messages import LLMToolResultMessage
from miniagents.ext.llm.offline import CallTool
from miniagents.ext.tools import AgentTool
from miniagents.messages import MessageSequencePromise
from miniagents.operators import resolve_messages
from miniagents.testing import function_agent

InputStyle = Literal["await", "promises", "tokens"]
Consumer = Literal["await", "messages", "tokens", "two", "early"]


@dataclass(frozen=True)
class Leaf:
    """Reads its input its way, echoes each message, then replies ``own`` messages."""

    input_style: InputStyle
    own: int
    with_areply: bool = False
    max_concurrency: int | None = None


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
    """A root node, its input, the limits, and how the caller reads the replies."""

    root: Node
    inputs: tuple[str, ...]
    high_water_mark: int | None
    replay_window: int | None
    consumer: Consumer
    early_after: int = 1


@dataclass
class _Names:
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def next(self) -> str:
        return f"a{next(self.counter)}"


Expected: TypeAlias = "Callable[[list[str]], list[str]]"
"""The texts a node must reply for the texts of its input."""


def build(node: Node, names: _Names | None = None) -> tuple[MiniAgent[[]], Expected]:
    """The node as an agent (its children as agents of their own) and its expected replies."""
    names = names or _Names()
    if isinstance(node, Leaf):
        return _leaf(node, names.next())
    if isinstance(node, FanOut):
        return _fan_out(node, names.next(), [build(child, names) for child in node.children])
    if isinstance(node, AsTool):
        return _as_tool(*build(node.child, names))
    first, first_expected = build(node.first, names)
    second, second_expected = build(node.second, names)
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


def _leaf(node: Leaf, name: str) -> tuple[MiniAgent[[]], Expected]:
    async def leaf(ctx: InteractionContext) -> None:
        if node.input_style == "await":
            for message in await ctx.messages:
                ctx.reply(f"{name}<{message}>")
        elif node.input_style == "promises":
            async for promise in ctx.message_promises:
                ctx.reply(f"{name}<{await promise}>")
        else:
            async for promise in ctx.message_promises:
                text = "".join([token async for token in promise])
                ctx.reply(f"{name}<{text}>")
        for index in range(node.own):
            if node.with_areply:
                await ctx.areply(f"{name}:{index}")
            else:
                ctx.reply(f"{name}:{index}")

    agent: MiniAgent[[]] = miniagent(alias=name, max_concurrency=node.max_concurrency)(leaf)

    def expected(inputs: list[str]) -> list[str]:
        return [f"{name}<{text}>" for text in inputs] + [f"{name}:{i}" for i in range(node.own)]

    return agent, expected


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


async def run(program: Program) -> list[str]:
    """Run ``program`` in a ``MiniAgents`` context; what the caller read, as texts."""
    root, _ = build(program.root)
    async with MiniAgents(
        high_water_mark=program.high_water_mark, replay_window=program.replay_window
    ):
        replies = root.inquire(list(program.inputs))
        if program.consumer == "await":
            return [str(message) for message in await replies]
        if program.consumer == "messages":
            return [str(await promise) async for promise in replies]
        if program.consumer == "tokens":
            return ["".join([token async for token in promise]) async for promise in replies]
        if program.consumer == "two":
            first, second = await asyncio.gather(_texts(replies), _texts(replies))
            assert first == second, (first, second)
            return first
        read: list[str] = []
        async for promise in replies:
            if len(read) == program.early_after:
                break
            read.append(str(await promise))
        return read


async def _texts(replies: MessageSequencePromise[Message]) -> list[str]:
    return [str(await promise) async for promise in replies]


def expected(program: Program) -> list[str]:
    """What the caller of ``program`` must read."""
    _, expect = build(program.root)
    texts = expect(list(program.inputs))
    return texts[: program.early_after] if program.consumer == "early" else texts


# -- strategies ---------------------------------------------------------------------------


def _leaves() -> st.SearchStrategy[Node]:
    return st.builds(
        Leaf,
        input_style=st.sampled_from(["await", "promises", "tokens"]),
        own=st.integers(0, 4),
        with_areply=st.booleans(),
        max_concurrency=st.one_of(st.none(), st.integers(1, 2)),
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


def programs() -> st.SearchStrategy[Program]:
    """Whole programs, with limits small enough that small programs cross them."""
    return st.builds(
        Program,
        root=nodes(),
        inputs=st.lists(st.sampled_from(["x", "y", "zz"]), max_size=4).map(tuple),
        high_water_mark=st.one_of(st.none(), st.integers(1, 4)),
        replay_window=st.one_of(st.none(), st.integers(2, 8)),
        consumer=st.sampled_from(["await", "messages", "tokens", "two", "early"]),
        early_after=st.integers(0, 3),
    )
