"""Static typing tests: message streams typed by their message class, agents by their replies.

The ``check_*`` functions are never called: mypy checks them (strict, with
``warn_unused_ignores``), and :func:`test_typed_stream_types_pass_mypy` runs it on this file.
``assert_type`` pins each inferred type; each line that must be rejected carries a precise
``# type: ignore[code]``.

``MessagePromise``, ``MessageSequencePromise``, ``MessageTuple``, ``MessageObservable`` and
``AgentCall`` take the class of their messages (default ``Message``: the bare names keep
meaning what they meant); ``MiniAgent[P, R]`` takes the class of its replies (default
``Message``, so ``MiniAgent[P]`` is ``MiniAgent[P, Message]``), kept by ``inquire``,
``fork``, ``bind``, ``as_operator`` and ``agent_operator``, and every stream is covariant:
a stream of ``Weather`` is a stream of ``Message``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import assert_type

import reactivex
from pydantic import BaseModel
from reactivex import Observable

from miniagents import (
    InteractionContext,
    Message,
    MessagePromise,
    MessageSequencePromise,
    MessageTuple,
    MiniAgent,
    miniagent,
)
from miniagents.messages import MessageObservable, MessageTokenAppender, MessageType
from miniagents.messages.message_promise import is_ready
from miniagents.miniagents import AgentCall
from miniagents.operators import agent_operator
from miniagents.promising import Overflow
from tests.fakes.typecheck import assert_passes_mypy


class Weather(Message):
    city: str
    celsius: float


async def _tokens() -> AsyncIterator[str]:
    yield "{}"


@miniagent
async def forecaster(ctx: InteractionContext, city: str = "Paris") -> None:
    ctx.reply(Weather(city=city, celsius=21.0))


# An agent whose maker knows its replies says so in its type (as make_llm_agent does).
typed_forecaster: MiniAgent[..., Weather] = MiniAgent(forecaster.func)


# --- Promises, sequences, tuples -------------------------------------------------------


async def check_message_promise_types() -> None:
    plain = MessagePromise(_tokens())
    assert_type(plain, MessagePromise[Message])
    assert_type(plain, MessagePromise)  # the bare name is MessagePromise[Message]
    weather = MessagePromise(_tokens(), message_class=Weather, city="Paris")
    assert_type(weather, MessagePromise[Weather])
    assert_type(await weather, Weather)
    assert_type(await weather.aresolve(), Weather)
    assert_type(weather.message_now(), Weather)
    assert_type(is_ready(weather), bool)
    is_ready(Weather(city="Oslo", celsius=3))  # type: ignore[arg-type]  # (a promise's question)
    assert_type(weather.message_class, type[Weather])
    assert_type(
        MessagePromise(prefill_message=Weather(city="Oslo", celsius=3)), MessagePromise[Weather]
    )
    assert_type(MessagePromise.of_message(Weather(city="Oslo", celsius=3)), MessagePromise[Weather])
    assert_type(MessagePromise.of_text("hi"), MessagePromise[Message])
    assert_type(
        MessagePromise.from_observable(reactivex.of("{}"), message_class=Weather),
        MessagePromise[Weather],
    )
    async for token in weather:
        assert_type(token, str)
    # covariant: a promise of a Weather is a promise of a Message
    as_message: MessagePromise = weather
    assert_type(as_message, MessagePromise[Message])
    # ... and not the other way round
    as_weather: MessagePromise[Weather] = plain  # type: ignore[assignment]
    assert_type(as_weather, MessagePromise[Weather])
    print((await plain).celsius)  # type: ignore[attr-defined]
    (await weather).celsius = 1  # type: ignore[misc]  # frozen
    # read synchronously, a promise is refused by mypy too (at run time: SyncReadError)
    for token in plain:  # type: ignore[attr-defined]
        print(token)
    print(plain[0])  # type: ignore[index]
    print(list(plain))  # type: ignore[call-overload]
    print("Hel" in plain)  # type: ignore[operator]


async def check_message_sequence_types(
    weathers: MessageSequencePromise[Weather], messages: MessageTuple[Weather]
) -> None:
    plain = MessageSequencePromise(["a", Weather(city="Oslo", celsius=3)])
    assert_type(plain, MessageSequencePromise[Message])
    assert_type(await plain, MessageTuple[Message])
    assert_type(await weathers, MessageTuple[Weather])
    assert_type(await weathers.aresolve_messages(), MessageTuple[Weather])
    assert_type((await weathers)[0], Weather)
    assert_type((await weathers)[0].celsius, float)
    async for promise in weathers:
        assert_type(promise, MessagePromise[Weather])
        assert_type(await promise, Weather)
    assert_type(weathers.as_observable(), Observable[MessagePromise[Weather]])
    assert_type(weathers.as_message_observable(), MessageObservable[Weather])
    assert_type(weathers.as_message_observable().open(), MessageSequencePromise[Weather])
    assert_type(messages[-1], Weather)
    assert_type(messages[1:], MessageTuple[Weather])
    assert_type(await messages, MessageTuple[Weather])
    assert_type(list(messages), list[Weather])
    # covariant: typed streams are MessageType and stand for plain ones
    as_input: MessageType = weathers
    assert_type(as_input, MessageType)
    as_plain: MessageSequencePromise = weathers
    assert_type(as_plain, MessageSequencePromise[Message])
    plain_tuple: MessageTuple = messages
    assert_type(plain_tuple, MessageTuple[Message])
    # a plain sequence's messages have only a Message's fields
    print((await plain)[0].celsius)  # type: ignore[attr-defined]
    wrong: MessageSequencePromise[Weather] = plain  # type: ignore[assignment]
    assert_type(wrong, MessageSequencePromise[Weather])
    # read synchronously, a sequence is refused by mypy too (at run time: SyncReadError)
    for message in weathers:  # type: ignore[attr-defined]
        print(message)
    print(len(weathers))  # type: ignore[arg-type]
    print(weathers[0])  # type: ignore[index]
    print(list(weathers))  # type: ignore[call-overload]


class Row(BaseModel):
    """A pydantic model that is not a ``Message``."""

    text: str | None = None


def check_message_class_is_a_message(
    metadata: Mapping[str, object], message_class: type[Message]
) -> None:
    # A message class that is no Message is refused (it typed as MessagePromise[Message],
    # through the metadata, and resolved to a Row).
    MessagePromise(_tokens(), message_class=Row)  # type: ignore[type-var]
    MessagePromise.from_async_iterable(_tokens(), message_class=Row)  # type: ignore[type-var]
    MessagePromise.from_observable(reactivex.of("a"), message_class=Row)  # type: ignore[type-var]
    MessageTokenAppender(message_class=Row)  # type: ignore[type-var]
    MessagePromise(_tokens(), message_class=str)  # type: ignore[type-var]
    # A ready message takes no token source and no metadata (StreamArgumentError).
    MessagePromise(_tokens(), prefill_message=Message(text="x"))  # type: ignore[call-overload]
    MessagePromise(reactivex.of("a"), prefill_message=Message(text="x"))  # type: ignore[call-overload]
    MessagePromise(prefill_message=Message(text="x"), role="user")  # type: ignore[call-overload]
    # What stays valid: a Message class held in a variable, metadata, no ready message.
    assert_type(MessagePromise(_tokens(), message_class=message_class), MessagePromise[Message])
    assert_type(MessagePromise(_tokens(), prefill_message=None, role="x"), MessagePromise)
    assert_type(MessageTokenAppender(message_class=message_class), MessageTokenAppender)
    assert_type(MessageTokenAppender(role="x", model="m"), MessageTokenAppender)
    # Metadata of object values spreads beside the message class (the class named, mypy
    # does not take the mapping's values for it): e.g. a message's own class and metadata.
    weather = MessagePromise(_tokens(), message_class=Weather, city="Oslo")
    assert_type(
        MessagePromise.from_observable(
            weather.as_observable(), message_class=weather.message_class, **weather.metadata
        ),
        MessagePromise[Weather],
    )
    assert_type(
        MessagePromise.from_async_iterable(_tokens(), message_class=Message, **metadata),
        MessagePromise,
    )
    assert_type(MessagePromise(_tokens(), message_class=Message, **metadata), MessagePromise)
    assert_type(MessageTokenAppender(message_class=Message, **metadata), MessageTokenAppender)
    # Without the class, mypy takes the mapping's values for message_class, which an object
    # may be: name the class (as above). (Values of str, int, float or bool cannot be a
    # class, nor a ready message: see check_a_metadata_spread_of_plain_values.)
    MessagePromise.from_observable(reactivex.of("a"), **metadata)  # type: ignore[call-overload]
    MessageTokenAppender(**metadata)  # type: ignore[call-overload]


def check_a_metadata_spread_of_plain_values(
    strings: dict[str, str],
    plain: Mapping[str, str | int | float | bool],
    maybe_class: type[Message] | None,
) -> None:
    # Metadata of str, int, float or bool values spreads without the class named, and the
    # message is a Message: such a mapping cannot hold a message_class (or a ready message)
    tokens: Observable[str] = reactivex.of("a")
    assert_type(MessagePromise.from_async_iterable(_tokens(), **strings), MessagePromise[Message])
    assert_type(MessagePromise.from_observable(tokens, **strings), MessagePromise[Message])
    assert_type(MessagePromise(tokens, **strings), MessagePromise[Message])
    assert_type(MessagePromise(_tokens(), **plain), MessagePromise[Message])
    assert_type(MessageTokenAppender(**strings), MessageTokenAppender[Message])
    assert_type(MessageTokenAppender(**plain), MessageTokenAppender[Message])
    # with the class named, its class, as before
    assert_type(
        MessagePromise.from_observable(tokens, message_class=Weather, **strings),
        MessagePromise[Weather],
    )
    # a subclass's constructors keep it
    assert_type(_Subclassed.from_observable(tokens, **strings), _Subclassed)
    assert_type(_Subclassed.from_async_iterable(_tokens(), **plain), _Subclassed)
    # None is not among them, so a message_class that may be None stays an error (metadata
    # with None values needs the class named, as above)
    MessagePromise(tokens, message_class=maybe_class)  # type: ignore[arg-type]
    MessagePromise.from_observable(tokens, message_class=maybe_class)  # type: ignore[arg-type]


class _Subclassed(MessagePromise):
    pass


class Alert(Message):
    overflow: bool = False


def check_a_message_takes_no_overflow_policy() -> None:
    # A message keeps every token, so it takes no overflow policy: its keyword arguments
    # are metadata, and overflow= is a StreamArgumentError at run time unless the class
    # declares that field. mypy cannot refuse it: a keyword parameter that refused it would
    # refuse every **metadata spread too (mypy checks a spread's values against each one).
    assert_type(
        MessagePromise.from_observable(reactivex.of("a"), message_class=Alert, overflow=True),
        MessagePromise[Alert],
    )
    assert_type(
        MessagePromise(reactivex.of("a"), message_class=Alert, overflow=True),
        MessagePromise[Alert],
    )
    # a sequence's policy is typed exactly
    MessageSequencePromise.from_observable(reactivex.of("a"), overflow="drop_oldest")
    MessageSequencePromise.from_observable(reactivex.of("a"), overflow="drop")  # type: ignore[arg-type]
    # the policies' type, for a value kept in a variable (exported from miniagents.promising)
    policy: Overflow = "drop_newest"
    MessageSequencePromise.from_observable(reactivex.of("a"), overflow=policy)
    wrong: Overflow = "drop"  # type: ignore[assignment]
    MessageSequencePromise.from_observable(reactivex.of("a"), overflow=wrong)


def check_token_appender_types() -> None:
    plain = MessageTokenAppender(role="assistant")
    assert_type(plain, MessageTokenAppender[Message])
    assert_type(plain.promise, MessagePromise[Message])
    weather = MessageTokenAppender(message_class=Weather, city="Oslo")
    assert_type(weather, MessageTokenAppender[Weather])
    assert_type(weather.promise, MessagePromise[Weather])
    as_plain: MessageTokenAppender = weather
    assert_type(as_plain, MessageTokenAppender[Message])


# --- Agents ----------------------------------------------------------------------------


async def check_agent_reply_types(ctx: InteractionContext) -> None:
    # an agent function's replies are Messages: MiniAgent[P] is MiniAgent[P, Message]
    assert_type(forecaster.inquire(), MessageSequencePromise[Message])
    print((await forecaster.inquire())[0].celsius)  # type: ignore[attr-defined]
    # a typed agent keeps its reply class through inquire, fork, bind and its operators
    assert_type(typed_forecaster.inquire(), MessageSequencePromise[Weather])
    assert_type((await typed_forecaster.inquire("x"))[0].celsius, float)
    assert_type(typed_forecaster.fork(city="Oslo"), MiniAgent[..., Weather])
    assert_type(typed_forecaster.bind(city="Oslo"), MiniAgent[..., Weather])
    assert_type(typed_forecaster.fork().inquire(), MessageSequencePromise[Weather])
    assert_type(
        typed_forecaster.as_operator(), Callable[[Observable[MessageType]], Observable[Weather]]
    )
    assert_type(
        agent_operator(typed_forecaster),
        Callable[[Observable[MessageType]], Observable[Weather]],
    )
    assert_type(
        agent_operator(forecaster, city="Oslo"),
        Callable[[Observable[MessageType]], Observable[Message]],
    )
    call = typed_forecaster.initiate_inquiry()
    assert_type(call, AgentCall[Weather])
    assert_type(call.reply_sequence(), MessageSequencePromise[Weather])
    assert_type(forecaster.initiate_inquiry(), AgentCall[Message])
    # a typed agent is an agent (covariant), and its replies are a reply for any agent
    any_agent: MiniAgent[...] = typed_forecaster
    assert_type(any_agent, MiniAgent[..., Message])
    ctx.reply(typed_forecaster.inquire())
    # ... but a plain agent is no typed one
    wrong: MiniAgent[..., Weather] = forecaster  # type: ignore[assignment]
    assert_type(wrong, MiniAgent[..., Weather])
    # the reply class is no parameter of inquire: its arguments are still checked
    typed_forecaster.inquire(cty="Oslo")  # ok for MiniAgent[..., Weather]: any arguments
    forecaster.inquire(cty="Oslo")  # type: ignore[call-arg]


# --- The test that pytest runs --------------------------------------------------------


def test_typed_stream_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
