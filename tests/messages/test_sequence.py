"""MessageSequencePromise, MessageTuple and MessageType flattening."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sized
from typing import Any, cast

import pydantic
import pytest
import reactivex

from miniagents import Message, MessagePromise, MessageSequencePromise, MessageTuple, MessageType
from miniagents.errors import (
    DeadlockError,
    IncompleteStreamError,
    MessageTupleFieldError,
    MessageTypeError,
    MiniAgentsError,
    SyncReadError,
    UnresolvedMessageError,
)
from miniagents.messages import MessageSequenceAppender
from miniagents.promising.lowlevel import running_tasks
from miniagents.testing import VirtualClock
from tests.fakes.reading import texts, texts_until_error


class Boom(Exception):
    """An error placed in a message stream."""


class Note(pydantic.BaseModel):
    """A plain pydantic model used as a message."""

    text: str
    priority: int


async def slow_words(*words: str, delay: float) -> AsyncIterator[str]:
    for word in words:
        await asyncio.sleep(delay)
        yield word


def test_the_seed_snippet_builds_a_ready_sequence_without_a_task() -> None:
    messages = MessageSequencePromise(prefill_pieces=[Message(text="Hello"), Message(text="World")])
    assert messages.done
    assert str(messages) == "Hello\n\nWorld"


async def test_async_for_gives_message_promises_and_await_gives_messages() -> None:
    messages = MessageSequencePromise(prefill_pieces=[Message(text="Hello"), Message(text="World")])
    promises = [promise async for promise in messages]
    assert all(isinstance(promise, MessagePromise) for promise in promises)
    resolved = await messages
    assert isinstance(resolved, MessageTuple)
    assert resolved == (Message(text="Hello"), Message(text="World"))
    assert str(resolved) == "Hello\n\nWorld"


async def test_the_resolved_tuple_can_be_awaited_and_resolved_again() -> None:
    resolved = await MessageSequencePromise(["You said: Hello!"])
    assert await resolved is resolved
    assert await resolved.aresolve_messages() is resolved
    assert str(await resolved) == "You said: Hello!"
    assert repr(resolved) == "MessageTuple((Message(text='You said: Hello!'),))"


async def test_a_slice_of_the_resolved_tuple_is_one_too_and_prints_its_texts() -> None:
    resolved = await MessageSequencePromise(["a", "b", "c"])
    tail = resolved[1:]
    assert isinstance(tail, MessageTuple)
    assert str(tail) == "b\n\nc"
    assert await tail is tail  # awaitable, as the whole
    assert resolved[::-1] == (Message(text="c"), Message(text="b"), Message(text="a"))
    assert type(resolved[-1]) is Message  # an index: the message itself


async def test_every_message_type_is_flattened_in_order() -> None:
    async def streamed() -> AsyncIterator[str]:
        yield "str"
        yield "eam"

    def generated() -> Iterator[str]:
        yield "gen1"
        yield "gen2"

    async def async_items() -> AsyncIterator[str | list[str | Message]]:
        yield "async1"
        yield ["async2", Message(text="async3")]

    inner = MessageSequencePromise(["inner1", "inner2"])
    sequence = MessageSequencePromise(
        [
            "plain",
            {"text": "from a dict", "role": "user"},
            Message(text="message"),
            Note(text="model", priority=1),
            MessagePromise.from_async_iterable(streamed()),
            inner,
            ("tuple1", ["nested", ["deeper"]]),
            generated(),
            async_items(),
            reactivex.of("observed1", "observed2"),
        ]
    )
    assert await texts(sequence) == [
        "plain",
        "from a dict",
        "message",
        "model",
        "stream",
        "inner1",
        "inner2",
        "tuple1",
        "nested",
        "deeper",
        "gen1",
        "gen2",
        "async1",
        "async2",
        "async3",
        "observed1",
        "observed2",
    ]
    resolved = await sequence
    assert resolved[1].model_extra == {"role": "user"}
    assert resolved[3].model_extra == {"priority": 1}


async def test_a_slow_later_item_does_not_delay_earlier_ones(virtual_clock: VirtualClock) -> None:
    arrivals: list[tuple[str | None, float]] = []
    sequence = MessageSequencePromise(
        [
            "first",
            MessagePromise.from_async_iterable(slow_words("fast", delay=0.0)),
            MessageSequencePromise(slow_words("slow", delay=0.3)),
            "last",
        ]
    )
    async for promise in sequence:
        message = await promise
        arrivals.append((message.text, virtual_clock.elapsed))
    assert arrivals == [
        ("first", 0.0),
        ("fast", 0.0),  # not after the slow one
        ("slow", pytest.approx(0.3)),
        ("last", pytest.approx(0.3)),
    ]


async def test_pieces_stream_before_the_input_ends() -> None:
    release = asyncio.Event()

    async def items() -> AsyncIterator[str]:
        yield "early"
        await release.wait()
        yield "late"

    sequence = MessageSequencePromise(items())
    iterator = aiter(sequence)
    first = await asyncio.wait_for(anext(iterator), timeout=1)
    assert (await first).text == "early"
    assert not sequence.done
    release.set()
    assert (await anext(iterator)).done
    with pytest.raises(StopAsyncIteration):
        await anext(iterator)


async def test_nested_sequences_of_parallel_streams_all_run_together(
    virtual_clock: VirtualClock,
) -> None:
    sequence = MessageSequencePromise(
        [MessagePromise.from_async_iterable(slow_words(f"m{i}", delay=0.2)) for i in range(5)]
    )
    for promise in [promise async for promise in sequence]:
        promise.start()
    assert [m.text for m in await sequence] == ["m0", "m1", "m2", "m3", "m4"]
    assert virtual_clock.elapsed == pytest.approx(0.2)  # five streams of 0.2 s at once


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        (42, "int"),
        (3.5, "float"),
        (object(), "object"),
        (b"bytes", "bytes"),
        (["fine", 7], "int"),
    ],
)
def test_bad_input_is_a_type_error_naming_the_type_and_the_accepted_ones(
    bad: object, named: str
) -> None:
    with pytest.raises(MessageTypeError) as caught:
        MessageSequencePromise(bad)  # type: ignore[arg-type]
    text = str(caught.value)
    assert named in text
    assert "str" in text
    assert isinstance(caught.value, TypeError)
    assert isinstance(caught.value, MiniAgentsError)


@pytest.mark.parametrize("bad", [None, [["deep", [None]]]])
def test_none_as_input_is_a_type_error_saying_to_leave_it_out(bad: object) -> None:
    with pytest.raises(MessageTypeError, match=r"Got None where messages were expected"):
        MessageSequencePromise(bad)  # type: ignore[arg-type]


def test_a_dict_with_non_str_keys_is_rejected_with_a_fix() -> None:
    with pytest.raises(MessageTypeError, match="str keys"):
        MessageSequencePromise({1: "one"})  # type: ignore[dict-item]


async def test_an_openai_style_dict_is_refused_with_the_text_field_to_pass_instead() -> None:
    # (was: a Message with text=None and an extra "content" field, silently)
    with pytest.raises(MessageTypeError, match="has a 'content' and no 'text'") as caught:
        MessageSequencePromise(["fine", {"role": "user", "content": "Hi"}])
    assert "pass {'text': ..., 'role': ...} instead" in str(caught.value)
    # (a message of its own fields, "content" among them, is one still)
    assert await texts(MessageSequencePromise({"text": "Hi", "content": "extra"})) == ["Hi"]


class _Note(pydantic.BaseModel):
    text: int = 3


@pytest.mark.parametrize(
    ("given", "as_what"),
    [({"text": 3}, "The message given as a dict"), (_Note(), "The message given as a _Note (a")],
)
def test_a_dict_or_model_with_a_field_of_a_wrong_type_is_our_error_naming_the_field(
    given: object, as_what: str
) -> None:
    with pytest.raises(MessageTypeError) as caught:  # (was: pydantic's ValidationError)
        MessageSequencePromise(["fine", given])  # type: ignore[list-item]
    said = str(caught.value)
    assert said.startswith(f"{as_what}")
    assert "'text': Input should be a valid string (got 3)" in said
    assert "Give the field a value of its type" in said
    assert isinstance(caught.value.__cause__, pydantic.ValidationError)


async def test_bad_input_in_an_async_part_ends_the_stream_at_its_position() -> None:
    async def items() -> AsyncIterator[object]:
        yield "good"
        yield 42

    sequence = MessageSequencePromise(items())  # type: ignore[arg-type]
    seen, error = await texts_until_error(sequence)
    assert seen == ["good"]
    assert isinstance(error, MessageTypeError)
    assert "int" in str(error)


async def test_an_exception_item_ends_the_sequence_where_it_stands() -> None:
    sequence = MessageSequencePromise(["a", "b", Boom("stop here"), "never"])
    seen, error = await texts_until_error(sequence)
    assert seen == ["a", "b"]
    assert isinstance(error, Boom)
    assert str(error) == "stop here"
    with pytest.raises(Boom):
        await sequence


async def test_an_error_inside_a_nested_stream_reaches_the_outer_consumer() -> None:
    async def failing() -> AsyncIterator[str]:
        yield "before"
        raise Boom("inner failure")

    sequence = MessageSequencePromise(["outer", MessageSequencePromise(failing()), "after"])
    seen, error = await texts_until_error(sequence)
    assert seen == ["outer", "before"]
    assert isinstance(error, Boom)
    assert str(error) == "inner failure"


async def test_late_consumers_of_a_sequence_get_the_replay() -> None:
    sequence = MessageSequencePromise(slow_words("a", "b", "c", delay=0.005))
    first = await texts(sequence)
    second, third = await asyncio.gather(texts(sequence), texts(sequence))
    assert first == second == third == ["a", "b", "c"]


async def test_await_works_with_gather() -> None:
    sequences = [MessageSequencePromise(slow_words(f"s{i}", delay=0.01)) for i in range(5)]
    results = await asyncio.gather(*sequences)
    assert [str(result) for result in results] == ["s0", "s1", "s2", "s3", "s4"]


async def test_str_of_a_streaming_sequence_is_a_clear_error() -> None:
    sequence = MessageSequencePromise(slow_words("x", delay=0.01))
    sequence.start()
    with pytest.raises(IncompleteStreamError, match="await"):
        str(sequence)
    await sequence
    assert str(sequence) == "x"


async def test_a_message_field_read_from_its_promise_is_one_of_our_errors_naming_await() -> None:
    # `async for message in agent.inquire(...)` gives promises: `message.text` is a slip
    # a newcomer makes (on main: a bare AttributeError naming a private class)
    streaming = MessagePromise(slow_words("Hel", "lo", delay=0.01), role="assistant")
    for promise in (MessagePromise(prefill_message=Message(text="Hi")), streaming):
        with pytest.raises(UnresolvedMessageError) as raised:
            promise.text  # type: ignore[attr-defined]  # noqa: B018
        assert isinstance(raised.value, AttributeError)
        assert isinstance(raised.value, MiniAgentsError)
        assert str(raised.value) == (
            "A MessagePromise has no attribute 'text': it is the promise of a message (which "
            "may still be streaming). Await it, then read the message: `message = await "
            "promise`, then `message.text`."
        )
        assert not hasattr(promise, "role")  # (hasattr still says no)
        with pytest.raises(AttributeError) as plain:
            promise._no_such_slot  # type: ignore[attr-defined]  # noqa: B018
        assert not isinstance(plain.value, MiniAgentsError)  # (private names: as before)
    assert (await streaming).text == "Hello"
    assert streaming.metadata["role"] == "assistant"


@pytest.mark.parametrize(
    ("given", "named"), [("Hello", "a str"), ({"text": "Hello"}, "a dict"), (42, "an int")]
)
def test_a_prefill_message_that_is_no_message_is_a_message_type_error(
    given: object, named: str
) -> None:
    # on main: a bare AttributeError ("'str' object has no attribute 'text'"); then "a int"
    with pytest.raises(MessageTypeError) as raised:
        MessagePromise(prefill_message=cast(Any, given))
    assert str(raised.value) == (
        f"MessagePromise(prefill_message=...) takes a Message, not {named} "
        f"({given!r}): wrap it, MessagePromise(prefill_message=Message(text=...)), or make the "
        "promise of a text with MessagePromise.of_text(text)."
    )


def test_messages_and_prefill_pieces_are_exclusive() -> None:
    with pytest.raises(TypeError, match="not both"):
        MessageSequencePromise(["a"], prefill_pieces=["b"])
    assert MessageSequencePromise().done


async def test_an_empty_sequence_resolves_to_an_empty_tuple() -> None:
    assert await MessageSequencePromise() == MessageTuple()
    assert await MessageSequencePromise([[], ()]) == MessageTuple()
    assert not running_tasks()


async def test_from_observable_flattens_each_item() -> None:
    items: list[MessageType] = [
        "one",
        ["two", Message(text="three")],
        MessageSequencePromise(["four"]),
    ]
    source = reactivex.from_iterable(items)
    sequence = MessageSequencePromise.from_observable(source)
    assert await texts(sequence) == ["one", "two", "three", "four"]


@pytest.mark.parametrize("ready_first", [False, True])
async def test_a_sequence_over_an_async_iterable_closes_it_once_every_consumer_gave_up(
    virtual_clock: VirtualClock, ready_first: bool
) -> None:
    # issue 58, item 2: it pulled the generator on for nobody
    closed = asyncio.Event()
    pulled: list[str] = []

    async def endless() -> AsyncIterator[str]:
        try:
            while True:
                pulled.append(f"m{len(pulled)}")
                yield pulled[-1]
                await asyncio.sleep(1)
        finally:
            closed.set()

    sequence = MessageSequencePromise(["ready", endless()] if ready_first else endless())
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sequence.aresolve_messages(), 2.5)
    await asyncio.wait_for(closed.wait(), 10)
    count = len(pulled)
    await asyncio.sleep(10)
    assert len(pulled) == count
    assert sequence.done


async def test_a_sequence_over_an_async_iterable_goes_on_while_someone_still_reads_it(
    virtual_clock: VirtualClock,
) -> None:
    closed = asyncio.Event()

    async def counting() -> AsyncIterator[str]:
        try:
            for number in range(6):
                yield f"m{number}"
                await asyncio.sleep(1)
        finally:
            closed.set()

    sequence = MessageSequencePromise(counting())
    reader = aiter(sequence)
    assert (await (await anext(reader))).text == "m0"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sequence.aresolve_messages(), 2.5)
    assert [(await (await anext(reader))).text for _ in range(5)] == ["m1", "m2", "m3", "m4", "m5"]
    await asyncio.wait_for(closed.wait(), 10)  # read to its end
    assert [message.text for message in await sequence] == [f"m{n}" for n in range(6)]


async def test_a_sequence_given_itself_as_a_part_fails_instead_of_replaying_itself_forever() -> (
    None
):
    # followed, it replayed its own pieces into itself without end, synchronously: the loop
    # never ran again (no timeout could fire) and memory grew until the process died
    appender = MessageSequenceAppender()
    with appender:
        appender.append("a")
        appender.append(appender.sequence)
    seen, error = await texts_until_error(appender.sequence)
    assert seen == ["a"]
    assert isinstance(error, DeadlockError)
    assert "was given itself as one of its parts" in str(error)

    holder: list[MessageSequencePromise] = []

    async def parts() -> AsyncIterator[MessageType]:
        yield "b"
        yield [holder[0]]  # (nested in a list: the same)

    holder.append(MessageSequencePromise(parts()))
    seen, error = await texts_until_error(holder[0])
    assert seen == ["b"]
    assert isinstance(error, DeadlockError)


async def test_sequences_that_contain_each_other_fail_instead_of_freezing_the_loop() -> None:
    # a appends b's sequence and b appends a's (or a ring of three): followed, each replayed
    # the other's pieces into itself without end, synchronously, so no timeout could fire
    a, b = MessageSequenceAppender(), MessageSequenceAppender()
    with a, b:
        a.append("a1")
        b.append("b1")
        a.append(b.sequence)
        b.append(a.sequence)
    for sequence, before in ((a.sequence, ["a1", "b1"]), (b.sequence, ["b1"])):
        seen, error = await texts_until_error(sequence)
        assert seen == before
        assert isinstance(error, DeadlockError)
        assert "a sequence that it feeds itself" in str(error)

    ring = [MessageSequenceAppender() for _ in range(3)]
    for index, appender in enumerate(ring):
        with appender:
            appender.append(f"r{index}")
            appender.append(ring[(index + 1) % 3].sequence)
    seen, error = await texts_until_error(ring[0].sequence)
    assert seen == ["r0", "r1", "r2"]
    assert isinstance(error, DeadlockError)

    holder: dict[str, MessageSequencePromise] = {}

    async def parts(name: str, other: str) -> AsyncIterator[MessageType]:
        yield name
        yield [holder[other]]

    holder["x"] = MessageSequencePromise(parts("x", "y"))
    holder["y"] = MessageSequencePromise(parts("y", "x"))
    seen, error = await texts_until_error(holder["x"])
    assert seen == ["x", "y"]
    assert isinstance(error, DeadlockError)
    assert not [task for task in running_tasks() if not task.done()]


async def test_a_sequence_that_feeds_another_is_followed_by_it_as_before() -> None:
    # no cycle: a chain a <- b <- c, and one sequence given twice, pass everything on
    a, b, c = MessageSequenceAppender(), MessageSequenceAppender(), MessageSequenceAppender()
    with c:
        c.append("c1")
        with b:
            b.append(c.sequence)
            b.append("b1")
            with a:
                a.append(b.sequence)
                a.append(c.sequence)
                a.append("a1")
    assert await texts(a.sequence) == ["c1", "b1", "c1", "a1"]


def _read_in_a_for(stream: object) -> None:
    for piece in cast("Iterable[object]", stream):
        print(piece)


_each_sync_read = pytest.mark.parametrize(
    "read",
    [
        _read_in_a_for,
        lambda stream: list(cast("Iterable[object]", stream)),
        lambda stream: "a" in cast("list[object]", stream),
        lambda stream: cast("list[object]", stream)[0],
    ],
    ids=["for", "list", "in", "index"],
)
"""A message stream read synchronously in each way Python has (``for``, ``list()`` ...)."""


@_each_sync_read
def test_a_sequence_read_synchronously_says_to_use_async_for_or_await(
    read: Callable[[object], object],
) -> None:
    # a bare TypeError before ("'MessageSequencePromise' object is not iterable")
    sequence = MessageSequencePromise(["a", "b"])
    with pytest.raises(SyncReadError, match=r"`async for message in sequence:`.*await sequence`"):
        read(sequence)
    with pytest.raises(TypeError):  # (still a TypeError, for code that catches that)
        read(sequence)
    # ... and the sequence does not look iterable to isinstance checks; it is Sized (its
    # len() refuses, with a TypeError too: code that asks a length and catches that goes on)
    assert not isinstance(sequence, Iterable)
    with pytest.raises(SyncReadError, match=r"has no len\(\).*`len\(await sequence\)`"):
        len(cast("Sized", sequence))
    assert sequence  # (true, as any object: bool() does not ask its len())


async def test_a_message_field_read_from_the_awaited_tuple_says_to_read_it_from_one() -> None:
    messages = cast(Any, await MessageSequencePromise(["a", "b"]))
    with pytest.raises(MessageTupleFieldError) as raised:
        print(messages.text)  # (was: AttributeError: 'MessageTuple' object has no attribute)
    assert isinstance(raised.value, AttributeError)
    assert (raised.value.name, raised.value.obj) == ("text", messages)
    assert str(raised.value) == (
        "A MessageTuple has no attribute 'text': it is the tuple of the messages (here 2), not "
        "one message. Read it from one of them: `messages[0].text`; `str(messages)` gives "
        "their text, joined."
    )
    assert not hasattr(messages, "role")
    with pytest.raises(AttributeError) as private:
        print(messages._private)
    assert type(private.value) is AttributeError


class _Tokens(pydantic.BaseModel):
    tokens: list[str]


@_each_sync_read
async def test_a_message_promise_read_synchronously_says_to_use_async_for_or_await(
    read: Callable[[object], object],
) -> None:
    # a bare TypeError before ("'MessagePromise' object is not iterable")
    streaming = MessagePromise(slow_words("Hel", "lo", delay=0))
    for promise in (MessagePromise.of_text("Hello"), streaming):
        with pytest.raises(SyncReadError) as raised:
            read(promise)
        assert isinstance(raised.value, TypeError)  # (code that catches that still works)
        assert str(raised.value) == (
            "A MessagePromise streams its tokens, so it is read asynchronously: use `async for "
            "token in message:` for each token as it comes, or `message = await message` for "
            "the whole message (then `message.text`)."
        )
        # ... and the promise does not look iterable (nor sized) to isinstance checks
        assert not isinstance(promise, Iterable)
        assert not isinstance(promise, Sized)
        with pytest.raises(pydantic.ValidationError):  # (a list field still refuses it)
            _Tokens(tokens=cast("list[str]", promise))
        assert (await promise).text == "Hello"
