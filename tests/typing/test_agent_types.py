"""Static typing tests for the agents layer: ``@miniagent``, ``MiniAgent``, ``MiniAgents``.

The ``check_*`` functions are never called: they exist to be type-checked by mypy
(``mypy.ini`` is strict, with ``warn_unused_ignores``). ``assert_type`` pins the exact
inferred types, and each line that must be rejected carries a precise
``# type: ignore[code]``, so a line that stops failing fails mypy too.
:func:`test_agent_types_pass_mypy` runs mypy on this file, so that a regression in the
types of the agents layer also fails the test suite.

An agent's parameters after its context are the ``ParamSpec`` of ``MiniAgent``; mypy
shows ``async def a(ctx, name: str, count: int = 1)`` as ``MiniAgent[(name: str, count:
int =)]``, which is spelled here with the extended callable syntax of ``mypy_extensions``
(``Arg`` and ``DefaultArg`` keep the parameter names, so a renamed parameter fails).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeAlias, assert_type

import reactivex
from mypy_extensions import Arg, DefaultArg, KwArg, NamedArg
from reactivex import Observable

from miniagents import (
    InteractionContext,
    Message,
    MessagePromise,
    MessageSequencePromise,
    MessageTuple,
    MiniAgent,
    MiniAgents,
    miniagent,
)
from miniagents.messages import MessageType
from miniagents.miniagents import AgentCall, ConcurrencyLimit
from miniagents.operators import flatten_messages
from miniagents.promising.limits import StreamLimits
from miniagents.promising.sentinels import AWAIT, CLEAR, DEFAULT
from miniagents.utils import achain_loop, adialog_loop, join_messages, split_messages
from tests.fakes.typecheck import assert_passes_mypy

NameCountAgent: TypeAlias = "MiniAgent[[Arg(str, 'name'), DefaultArg(int, 'count')]]"
"""The type of an agent ``async def (ctx, name: str, count: int = 1) -> None``."""

# Referenced so that the names used only inside the string alias above stay imported.
_EXTENDED_CALLABLE_SYNTAX = (Arg, DefaultArg, KwArg, NamedArg)


@miniagent
async def named_agent(ctx: InteractionContext, name: str, count: int = 1) -> None:
    ctx.reply(name * count)


@miniagent(alias="X")
async def aliased_agent(ctx: InteractionContext, name: str, count: int = 1) -> None:
    ctx.reply(name * count)


@miniagent
async def plain_agent(ctx: InteractionContext) -> None:
    ctx.reply("Hello")


@miniagent(alias="PLAIN", description="Says hello.", greeting="Hi")
async def aliased_plain_agent(ctx: InteractionContext, greeting: str = "Hello") -> None:
    ctx.reply(greeting)


@miniagent
async def untyped_agent(ctx):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN201
    ctx.reply("Hello, as the seed drafts write agents")


async def _compute() -> int:
    return 42


# Known gaps, left out of the checks below (the static types differ from the runtime):
# - MiniAgent.alias is inferred as ``str | Any``, not ``str``.
# - ``named_agent.inquire("hi", "x")`` type-checks (the ParamSpec allows ``name``
#   positionally) but raises AgentArgumentError: agent arguments are keyword-only.
# - Arguments bound by ``fork(...)`` or ``@miniagent(..., name=...)`` are not seen by mypy:
#   ``named_agent.fork(name="x").inquire("hi")`` works but is rejected ([call-arg]), and
#   ``named_agent.fork(nam="x")`` or ``fork(name=1)`` type-check but fail at run time.


# --- @miniagent and MiniAgent.inquire -------------------------------------------------


def check_decorated_agent_types() -> None:
    assert_type(named_agent, NameCountAgent)
    assert_type(aliased_agent, NameCountAgent)
    assert_type(plain_agent, MiniAgent[[]])
    assert_type(aliased_plain_agent, MiniAgent[[DefaultArg(str, "greeting")]])
    # An agent without annotations, as the seed drafts write them, takes no arguments.
    assert_type(untyped_agent, MiniAgent[[]])
    # The decorator with arguments gives an agent, never a union with a decorator.
    as_plain: MiniAgent[[]] = plain_agent
    assert_type(as_plain, MiniAgent[[]])
    # Every agent is a MiniAgent[...] (the gradual form that loops and contexts take).
    any_agent: MiniAgent[...] = named_agent
    assert_type(any_agent, MiniAgent[...])
    assert_type(named_agent.description, str | None)


async def check_inquire() -> None:
    assert_type(named_agent.inquire("hi", name="x"), MessageSequencePromise)
    assert_type(named_agent.inquire("hi", name="x", count=2), MessageSequencePromise)
    assert_type(named_agent.inquire(name="x"), MessageSequencePromise)
    assert_type(named_agent.inquire(["a", Message(text="b")], name="x"), MessageSequencePromise)
    assert_type(aliased_agent.inquire("hi", name="x"), MessageSequencePromise)
    assert_type(aliased_agent.inquire("hi", name="x", count=2), MessageSequencePromise)
    assert_type(plain_agent.inquire(), MessageSequencePromise)
    assert_type(plain_agent.inquire("hi"), MessageSequencePromise)
    assert_type(plain_agent.inquire(plain_agent.inquire()), MessageSequencePromise)
    assert_type(aliased_plain_agent.inquire("hi", greeting="Hey"), MessageSequencePromise)
    assert_type(await plain_agent.inquire(), MessageTuple)
    assert_type(await named_agent.inquire("hi", name="x"), MessageTuple)
    assert_type(await aliased_agent.inquire("hi", name="x"), MessageTuple)
    assert_type(await (await plain_agent.inquire()), MessageTuple)
    async for promise in plain_agent.inquire():
        assert_type(promise, MessagePromise)
        assert_type(await promise, Message)


def check_a_plain_with_is_refused() -> None:
    with MiniAgents():  # type: ignore[attr-defined]
        pass


async def check_calling_or_awaiting_an_agent_and_a_field_of_the_tuple_are_refused() -> None:
    # (an agent is inquired: `await plain_agent.inquire("hi")`)
    await plain_agent("hi")  # type: ignore[operator]
    await plain_agent  # type: ignore[misc]
    assert_type((await plain_agent.inquire("hi"))[0], Message)
    # (MessageTupleFieldError at run time: a message's field is read from one message)
    print((await plain_agent.inquire("hi")).text)  # type: ignore[attr-defined]


def check_inquire_errors() -> None:
    named_agent.inquire("hi", name=1)  # type: ignore[arg-type]
    named_agent.inquire("hi", nam="x")  # type: ignore[call-arg]
    named_agent.inquire("hi", name="x", count="2")  # type: ignore[arg-type]
    named_agent.inquire("hi")  # type: ignore[call-arg]
    aliased_agent.inquire("hi", name=1)  # type: ignore[arg-type]
    aliased_agent.inquire("hi", nam="x")  # type: ignore[call-arg]
    aliased_agent.inquire("hi")  # type: ignore[call-arg]
    plain_agent.inquire("hi", name="x")  # type: ignore[call-arg]
    plain_agent.inquire(42)  # type: ignore[arg-type]
    aliased_plain_agent.inquire(greeting=1)  # type: ignore[arg-type]


async def check_inquire_await_errors() -> None:
    wrong: Message = await plain_agent.inquire()  # type: ignore[assignment]
    assert_type(wrong, Message)


# --- fork, initiate_inquiry, AgentCall, as_operator -----------------------------------


def check_fork() -> None:
    assert_type(named_agent.fork(), NameCountAgent)
    assert_type(named_agent.fork(alias="B"), NameCountAgent)
    assert_type(named_agent.fork(alias="B", description="d", count=3), NameCountAgent)
    assert_type(aliased_agent.fork(alias="Y"), NameCountAgent)
    assert_type(plain_agent.fork(alias="P2"), MiniAgent[[]])
    forked = named_agent.fork(alias="B")
    assert_type(forked.inquire("hi", name="x"), MessageSequencePromise)


def check_fork_errors() -> None:
    forked = named_agent.fork(alias="B")
    forked.inquire("hi", name=1)  # type: ignore[arg-type]
    forked.inquire("hi", nam="x")  # type: ignore[call-arg]
    named_agent.fork(alias=1)  # type: ignore[arg-type]
    wrong: MiniAgent[[]] = named_agent.fork()  # type: ignore[assignment]
    assert_type(wrong, MiniAgent[[]])


def check_bind() -> None:
    assert_type(named_agent.bind(name="x"), NameCountAgent)
    assert_type(named_agent.bind("x", 2), NameCountAgent)
    assert_type(
        named_agent.bind, Callable[[Arg(str, "name"), DefaultArg(int, "count")], NameCountAgent]
    )
    named_agent.bind(nam="x")  # type: ignore[call-arg]
    named_agent.bind(name=1)  # type: ignore[arg-type]
    named_agent.bind(count=2)  # type: ignore[call-arg]


def check_initiate_inquiry() -> None:
    call = named_agent.initiate_inquiry(name="x")
    assert_type(call, AgentCall)
    assert_type(call.send_message("Hello"), AgentCall)
    assert_type(call.send_message(["a", Message(text="b")]).send_message("c"), AgentCall)
    assert_type(call.finish(), None)
    assert_type(call.reply_sequence(), MessageSequencePromise)
    assert_type(call.reply_sequence(finish_call=False), MessageSequencePromise)
    assert_type(plain_agent.initiate_inquiry(), AgentCall)


def check_initiate_inquiry_errors() -> None:
    named_agent.initiate_inquiry(name=1)  # type: ignore[arg-type]
    named_agent.initiate_inquiry(nam="x")  # type: ignore[call-arg]
    plain_agent.initiate_inquiry().send_message(42)  # type: ignore[arg-type]


def check_as_operator() -> None:
    operator = plain_agent.as_operator()
    assert_type(operator, Callable[[Observable[MessageType]], Observable[Message]])
    assert_type(
        named_agent.as_operator(name="x"), Callable[[Observable[MessageType]], Observable[Message]]
    )
    source: Observable[Message] = reactivex.of(Message(text="Hello"))
    assert_type(source.pipe(operator), Observable[Message])
    assert_type(
        source.pipe(plain_agent.as_operator(), named_agent.as_operator(name="x")),
        Observable[Message],
    )


def check_as_operator_errors() -> None:
    named_agent.as_operator(name=1)  # type: ignore[arg-type]
    named_agent.as_operator(nam="x")  # type: ignore[call-arg]
    numbers: Observable[int] = reactivex.of(42)
    plain_agent.as_operator()(numbers)  # type: ignore[arg-type]


def check_as_operator_takes_any_message_type() -> None:
    # an agent's input is any MessageType, in an observable as in inquire()
    texts: Observable[str] = reactivex.of("Hello")
    assert_type(texts.pipe(plain_agent.as_operator()), Observable[Message])
    promises = MessageSequencePromise(["a", "b"]).as_observable()
    assert_type(promises.pipe(plain_agent.as_operator()), Observable[Message])
    mixed: Observable[MessageType] = reactivex.of("c", ["d"])
    assert_type(mixed.pipe(flatten_messages(), plain_agent.as_operator()), Observable[Message])


# --- lazy start, concurrency limits, areply, stream limits ----------------------------


@miniagent(max_concurrency=4, start_asap=False)
async def limited_agent(ctx: InteractionContext, item: str) -> None:
    await ctx.areply(item)


def check_lazy_start_and_limits() -> None:
    assert_type(limited_agent, MiniAgent[[Arg(str, "item")]])
    assert_type(limited_agent.start_asap, bool | None)
    assert_type(limited_agent.concurrency_limit, ConcurrencyLimit | None)
    lazy = named_agent.fork(start_asap=False, max_concurrency=2)
    assert_type(lazy, NameCountAgent)  # the typed way to inquire lazily keeps the ParamSpec
    assert_type(lazy.inquire("hi", name="x"), MessageSequencePromise)
    assert_type(MiniAgent(_plain, max_concurrency=3, start_asap=True), MiniAgent[[]])
    assert_type(MiniAgents(start_everything_asap_by_default=False, replay_window=None), MiniAgents)
    assert_type(MiniAgents(replay_window=DEFAULT, high_water_mark=16), MiniAgents)
    assert_type(MiniAgents().stream_limits, StreamLimits)
    assert_type(MiniAgents().start_everything_asap_by_default, bool)


def check_lazy_start_and_limits_errors() -> None:
    # start_asap is a reserved keyword at run time, but mypy checks inquire exactly
    named_agent.inquire("hi", name="x", start_asap=False)  # type: ignore[call-arg]
    named_agent.fork(max_concurrency="4")  # type: ignore[arg-type]
    named_agent.fork(start_asap=1.5)  # type: ignore[arg-type]
    MiniAgents(replay_window="all")  # type: ignore[arg-type]
    MiniAgents(high_water_mark=1.5)  # type: ignore[arg-type]
    MiniAgents(start_everything_asap_by_default="yes")  # type: ignore[arg-type]


async def check_areply(ctx: InteractionContext) -> None:
    assert_type(await ctx.areply("x"), None)
    assert_type(await ctx.areply(["x", Message(text="y")]), None)
    await ctx.areply(42)  # type: ignore[arg-type]


async def _plain(ctx: InteractionContext) -> None:
    pass


# --- MiniAgents -----------------------------------------------------------------------


def check_mini_agents_run() -> None:
    assert_type(MiniAgents().run(_compute()), int)
    assert_type(MiniAgents(on_persist_message=()).run(_compute()), int)


async def check_mini_agents_context() -> None:
    assert_type(await MiniAgents().arun(_compute()), int)
    async with MiniAgents() as context:
        assert_type(context, MiniAgents)
    assert_type(MiniAgents.get_current(), MiniAgents)

    async def persist(promise: MessagePromise, message: Message) -> None:
        pass

    MiniAgents(on_persist_message=persist, on_promise_resolved=[persist])

    def returns_an_awaitable(promise: MessagePromise, message: Message) -> Awaitable[None]:
        return persist(promise, message)  # (a plain function: a handler too, at run time as well)

    MiniAgents(on_persist_message=returns_an_awaitable, on_promise_resolved=[returns_an_awaitable])
    MiniAgents(on_persist_message=lambda promise, message: persist(promise, message))


def check_mini_agents_errors() -> None:
    wrong: str = MiniAgents().run(_compute())  # type: ignore[assignment]
    assert_type(wrong, str)
    MiniAgents().run(42)  # type: ignore[arg-type]

    def not_async(promise: MessagePromise, message: Message) -> None:
        pass

    MiniAgents(on_persist_message=not_async)  # type: ignore[arg-type]


# --- InteractionContext ---------------------------------------------------------------


async def check_interaction_context(ctx: InteractionContext) -> None:
    assert_type(ctx.message_promises, MessageSequencePromise)
    assert_type(ctx.messages, MessageSequencePromise)
    assert_type(ctx.this_agent, MiniAgent[...])
    assert_type(await ctx.messages, MessageTuple)
    async for promise in ctx.message_promises:
        assert_type(promise, MessagePromise)
        assert_type(await promise, Message)
    assert_type(ctx.reply("Hello"), None)
    assert_type(ctx.reply(["a", Message(text="b"), plain_agent.inquire()]), None)
    assert_type(ctx.reply(ctx.messages), None)
    assert_type(ctx.finish_early(), None)


def check_interaction_context_errors(ctx: InteractionContext) -> None:
    ctx.reply(42)  # type: ignore[arg-type]
    ctx.reply([1, 2])  # type: ignore[list-item]
    ctx.reply(object())  # type: ignore[arg-type]


# --- What @miniagent rejects ----------------------------------------------------------


def _not_async(ctx: InteractionContext) -> None:
    pass


async def _context_not_first(name: str) -> None:
    pass


async def _returns_text(ctx: InteractionContext) -> str:
    return "Hello"


async def _tags(ctx: InteractionContext, *, topic: str, **tags: str) -> None:
    pass


async def _tags_after_slash(ctx: InteractionContext, /, *, topic: str, **tags: str) -> None:
    pass


TagsAgent: TypeAlias = "MiniAgent[[NamedArg(str, 'topic'), KwArg(str)]]"
"""The type of an agent ``async def (ctx, /, *, topic: str, **tags: str) -> None``."""


def _returns_an_awaitable(ctx: InteractionContext, greeting: str = "Hi") -> Awaitable[None]:
    return aliased_plain_agent.func(ctx, greeting)  # (no async: an agent function too)


def check_plain_functions_returning_awaitables_are_agent_functions() -> None:
    # issue 62, item 9: what mypy takes, the run takes too (as message handlers, ae31a94)
    plain = miniagent(_returns_an_awaitable)
    assert_type(plain, MiniAgent[[DefaultArg(str, "greeting")]])
    assert_type(plain.inquire("Ann", greeting="Hello"), MessageSequencePromise)
    assert_type(
        miniagent(alias="PLAIN")(_returns_an_awaitable), MiniAgent[[DefaultArg(str, "greeting")]]
    )
    plain.inquire("Ann", greeting=1)  # type: ignore[arg-type]


def check_miniagent_errors() -> None:
    miniagent(_not_async)  # type: ignore[arg-type]
    miniagent(alias="X")(_not_async)  # type: ignore[arg-type]
    miniagent(_context_not_first)  # type: ignore[arg-type]
    miniagent(_returns_text)  # type: ignore[arg-type]
    miniagent(alias=1)  # type: ignore[call-overload]
    # ``ctx`` then ``**kwargs``: mypy cannot keep the parameters unless ``ctx`` is
    # positional-only, so the function is refused (mypy says: "Consider marking them
    # positional-only"), never typed MiniAgent[...] with its arguments unchecked.
    miniagent(_tags)  # type: ignore[arg-type]
    miniagent(alias="TAGS")(_tags)  # type: ignore[arg-type]


async def check_kwargs_agent_after_slash() -> None:
    tags = miniagent(_tags_after_slash)
    assert_type(tags, TagsAgent)
    assert_type(miniagent(alias="TAGS", topic="x")(_tags_after_slash), TagsAgent)
    assert_type(await tags.inquire(topic="x", mood="calm"), MessageTuple)
    tags.inquire()  # type: ignore[call-arg]
    tags.inquire(topic=3)  # type: ignore[arg-type]
    tags.inquire(topic="x", mood=1)  # type: ignore[arg-type]
    tags.inquire(None, "oops")  # type: ignore[call-arg]


# --- Loops and join/split -------------------------------------------------------------


async def check_loops() -> None:
    assert_type(await achain_loop([plain_agent, AWAIT, plain_agent]), None)
    await achain_loop([named_agent, AWAIT, plain_agent, CLEAR, aliased_agent])
    await achain_loop((plain_agent, AWAIT), initial_messages="Hello")
    await adialog_loop(plain_agent, named_agent)
    await adialog_loop(plain_agent, named_agent, history_agent=aliased_plain_agent)
    await adialog_loop(user_agent=plain_agent, assistant_agent=named_agent.fork(alias="A"))


async def check_loop_errors() -> None:
    await achain_loop([plain_agent, 42])  # type: ignore[list-item]
    await achain_loop([plain_agent, DEFAULT])  # type: ignore[list-item]
    # Seed 004 passes reply sequences instead of agents: rejected by mypy as well.
    await achain_loop([plain_agent.inquire(), AWAIT])  # type: ignore[list-item]
    await achain_loop([plain_agent, AWAIT], initial_messages=42)  # type: ignore[arg-type]
    await adialog_loop(plain_agent, "assistant")  # type: ignore[arg-type]


class Note(Message):
    """A message class of the operators' ``message_class=`` checks."""

    author: str = ""


def check_join_and_split() -> None:
    assert_type(join_messages(["Hello", "World"]), MessagePromise)
    assert_type(join_messages(plain_agent.inquire(), "\n", role="assistant"), MessagePromise)
    assert_type(join_messages("a", strip_leading_newlines=True), MessagePromise)
    assert_type(split_messages("a\n\nb"), MessageSequencePromise)
    assert_type(split_messages(plain_agent.inquire(), "|", role="x"), MessageSequencePromise)
    assert_type(split_messages(join_messages(["a", "b"])), MessageSequencePromise)
    meta: dict[str, str] = {"role": "assistant"}  # a spread of plain values, class named or not
    assert_type(join_messages("a", **meta), MessagePromise)
    assert_type(join_messages("a", "\n", message_class=Note, **meta), MessagePromise[Note])
    assert_type(split_messages("a", **meta), MessageSequencePromise)
    assert_type(split_messages("a", message_class=Note, **meta), MessageSequencePromise[Note])


def check_join_and_split_errors() -> None:
    join_messages(42)  # type: ignore[call-overload]
    split_messages(42)  # type: ignore[call-overload]
    join_messages("a", delimiter=1)  # type: ignore[call-overload]
    wrong: MessageSequencePromise = join_messages("a")  # type: ignore[assignment]
    assert_type(wrong, MessageSequencePromise)


# --- The test that pytest runs --------------------------------------------------------


def test_agent_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
