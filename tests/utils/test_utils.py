"""The utilities (agent loops, join and split) and agents as reactive operators."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.subject import Subject

from miniagents import (
    InteractionContext,
    Message,
    MessagePromise,
    MessageSequencePromise,
    MessageType,
    MiniAgent,
    MiniAgents,
    miniagent,
)
from miniagents.miniagents.errors import AgentArgumentError, NoActiveContextError
from miniagents.promising.sentinels import AWAIT, CLEAR
from miniagents.testing import VirtualClock
from miniagents.utils import (
    ChainDefinitionError,
    ChainStep,
    achain_loop,
    adialog_loop,
    join_messages,
    split_messages,
)

T = TypeVar("T")

TIMEOUT = 10.0


class Boom(Exception):
    """An error raised on purpose by a test agent or a test token stream."""


class Note(Message):
    """A message class with a declared field, for ``message_class=``."""

    topic: str = ""


# -- helpers -------------------------------------------------------------------------


async def texts_of(messages: MessageSequencePromise) -> list[str]:
    return [str(message) for message in await messages]


async def next_within(iterator: AsyncIterator[T]) -> T:
    """The next item, failing the test (instead of hanging) if it does not come."""
    return await asyncio.wait_for(anext(iterator), TIMEOUT)


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the loop run until ``condition()`` holds."""
    for _ in range(int(TIMEOUT / 0.001)):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"timed out waiting for {what}")


async def tokens(
    *pieces: str,
    hold: asyncio.Event | None = None,
    hold_at: int = 0,
    error: BaseException | None = None,
) -> AsyncIterator[str]:
    """Yield ``pieces``, waiting for ``hold`` before the piece at ``hold_at``, then raise."""
    for index, piece in enumerate(pieces):
        if hold is not None and index == hold_at:
            await hold.wait()
        yield piece
    if error is not None:
        raise error


def streamed(
    *pieces: str,
    hold: asyncio.Event | None = None,
    hold_at: int = 0,
    error: BaseException | None = None,
) -> MessagePromise:
    """A message streamed token by token (see :func:`tokens`)."""
    return MessagePromise.from_async_iterable(
        tokens(*pieces, hold=hold, hold_at=hold_at, error=error)
    )


async def read_until_error(items: AsyncIterable[T]) -> tuple[list[T], BaseException | None]:
    seen: list[T] = []
    try:
        async for item in items:
            seen.append(item)
    except Exception as error:
        return seen, error
    return seen, None


async def part_tokens(parts: MessageSequencePromise) -> list[list[str]]:
    return [[token async for token in part] async for part in parts]


def take_error_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The "miniagents" ERROR logs so far (after a garbage collection), then forget them."""
    gc.collect()
    records = [r for r in caplog.records if r.name == "miniagents" and r.levelno >= logging.ERROR]
    caplog.clear()
    return [record.getMessage() for record in records]


# -- agents for the loops ---------------------------------------------------------------


@dataclass
class Recorder:
    """Makes agents that record their starts, ends and inputs in one shared event log."""

    events: list[str] = field(default_factory=list)
    inputs: dict[str, list[list[str]]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def at(self, event: str) -> int:
        return self.events.index(event)

    def agent(
        self,
        name: str,
        *,
        stop_at: int | None = None,
        stop_with: type[BaseException] = KeyboardInterrupt,
        work: float = 0.0,
    ) -> MiniAgent[[]]:
        """An agent replying ``<name><call number>``; its call ``stop_at`` raises ``stop_with``.

        It logs ``<name><n> start`` before reading its input and ``<name><n> end`` after
        replying; ``work`` is how long it sleeps between the two.
        """
        self.inputs[name] = []
        self.calls[name] = 0

        @miniagent(alias=name)
        async def agent(ctx: InteractionContext) -> None:
            self.calls[name] += 1
            call = self.calls[name]
            self.events.append(f"{name}{call} start")
            self.inputs[name].append(await texts_of(ctx.messages))
            if call == stop_at:
                self.events.append(f"{name}{call} stops")
                raise stop_with(f"{name} stops")
            await asyncio.sleep(work)
            ctx.reply(f"{name}{call}")
            self.events.append(f"{name}{call} end")

        return agent


def scripted_user(
    lines: Sequence[str], received: list[list[str]], *, end_with: type[BaseException] = EOFError
) -> MiniAgent[[]]:
    """A user agent that records its input, replies the next line, and ends when out of lines."""
    remaining = list(lines)

    @miniagent
    async def user(ctx: InteractionContext) -> None:
        received.append(await texts_of(ctx.messages))
        if not remaining:
            raise end_with("no more lines")
        ctx.reply(remaining.pop(0))

    return user


def echo_assistant(received: list[list[str]], *, stop_at: int | None = None) -> MiniAgent[[]]:
    """An assistant that records its input and echoes the last input message."""

    @miniagent
    async def assistant(ctx: InteractionContext) -> None:
        texts = await texts_of(ctx.messages)
        received.append(texts)
        if len(received) == stop_at:
            raise KeyboardInterrupt
        ctx.reply(f"echo: {texts[-1]}")

    return assistant


def history_keeper(history: list[Message]) -> MiniAgent[[]]:
    """A history agent: stores every message it gets and replies the whole history."""

    @miniagent
    async def history_agent(ctx: InteractionContext) -> None:
        history.extend(await ctx.messages)
        ctx.reply(list(history))

    return history_agent


# -- achain_loop -------------------------------------------------------------------------


@pytest.mark.parametrize("ending", [KeyboardInterrupt, EOFError])
async def test_achain_loop_feeds_each_agent_the_replies_of_the_previous_one(
    ending: type[BaseException],
) -> None:
    recorder = Recorder()
    async with MiniAgents():
        first = recorder.agent("A", stop_at=3, stop_with=ending)
        second = recorder.agent("B")
        await achain_loop([first, AWAIT, second, AWAIT])  # ends cleanly: nothing raised

    assert recorder.inputs == {
        "A": [[], ["B1"], ["B2"]],
        "B": [["A1"], ["A2"]],
    }
    assert recorder.calls == {"A": 3, "B": 2}
    assert recorder.events[-1] == "A3 stops"


async def test_achain_loop_ends_when_an_agent_not_followed_by_await_stops() -> None:
    # B stops, then the loop starts A with B's failed replies: A reads them, fails with
    # the same KeyboardInterrupt, and the AWAIT after A ends the loop.
    recorder = Recorder()
    async with MiniAgents():
        first = recorder.agent("A")
        second = recorder.agent("B", stop_at=2)
        await achain_loop([first, AWAIT, second])

    assert recorder.calls == {"A": 3, "B": 2}
    assert recorder.inputs == {"A": [[], ["B1"]], "B": [["A1"], ["A2"]]}


async def test_await_starts_the_next_agent_only_after_the_previous_replies_are_complete(
    virtual_clock: VirtualClock,
) -> None:
    recorder = Recorder()
    async with MiniAgents():
        first = recorder.agent("A", stop_at=3, work=0.01)
        second = recorder.agent("B", work=0.01)
        await achain_loop([first, AWAIT, second, AWAIT])

    assert recorder.events == [
        "A1 start",
        "A1 end",
        "B1 start",
        "B1 end",
        "A2 start",
        "A2 end",
        "B2 start",
        "B2 end",
        "A3 start",
        "A3 stops",
    ]


async def test_without_await_the_next_agent_starts_before_the_previous_one_ends(
    virtual_clock: VirtualClock,
) -> None:
    recorder = Recorder()
    async with MiniAgents():
        first = recorder.agent("A", stop_at=2, work=0.05)
        second = recorder.agent("B")
        await achain_loop([first, second, AWAIT])

    assert recorder.at("B1 start") < recorder.at("A1 end")  # B started while A worked ...
    assert recorder.inputs == {"A": [[], ["B1"]], "B": [["A1"]]}  # ... and got A's reply
    assert recorder.at("B1 end") < recorder.at("A2 start")  # the AWAIT after B


async def test_clear_drops_the_messages_so_the_next_agent_gets_no_input() -> None:
    recorder = Recorder()
    async with MiniAgents():
        first = recorder.agent("A", stop_at=3)
        second = recorder.agent("B")
        await achain_loop([first, AWAIT, CLEAR, second, AWAIT])

    assert recorder.inputs == {"A": [[], ["B1"], ["B2"]], "B": [[], []]}
    assert recorder.at("A1 end") < recorder.at("B1 start")  # the AWAIT before CLEAR


async def test_clear_without_await_starts_the_next_agent_at_once_with_no_input(
    virtual_clock: VirtualClock,
) -> None:
    recorder = Recorder()
    async with MiniAgents():
        first = recorder.agent("A", work=0.05)
        second = recorder.agent("B", stop_at=2)
        await achain_loop([first, CLEAR, second, AWAIT])

    assert recorder.inputs == {"A": [[], ["B1"]], "B": [[], []]}
    assert recorder.at("B1 end") < recorder.at("A1 end")  # B did not wait for A
    assert "A2 end" in recorder.events  # the dropped replies were still produced


async def test_the_seed_chain_with_clear_gives_the_last_agent_no_input() -> None:
    # [agent1, AWAIT, agent2, CLEAR, agent1], as in a seed README draft.
    recorder = Recorder()
    async with MiniAgents():
        agent1 = recorder.agent("A", stop_at=4)
        agent2 = recorder.agent("B")
        await achain_loop([agent1, AWAIT, agent2, CLEAR, agent1])

    # A: first round (no input), after CLEAR (no input), next round (its own replies),
    # then after CLEAR again, where it stops.
    assert recorder.inputs["A"] == [[], [], ["A2"], []]
    assert recorder.inputs["B"] == [["A1"], ["A3"]]


@pytest.mark.parametrize(
    ("initial", "expected"),
    [
        ("hello", ["hello"]),
        (["one", Message(text="two")], ["one", "two"]),
        (Message(text="a message"), ["a message"]),
    ],
)
async def test_initial_messages_are_the_input_of_the_first_agent_in_the_first_round(
    initial: MessageType, expected: list[str]
) -> None:
    recorder = Recorder()
    async with MiniAgents():
        first = recorder.agent("A", stop_at=2)
        second = recorder.agent("B")
        await achain_loop([first, AWAIT, second, AWAIT], initial_messages=initial)

    assert recorder.inputs == {"A": [expected, ["B1"]], "B": [["A1"]]}


async def test_initial_messages_go_through_an_await_before_the_first_agent() -> None:
    recorder = Recorder()
    async with MiniAgents():
        first = recorder.agent("A", stop_at=2)
        await achain_loop([AWAIT, first], initial_messages=streamed("str", "eamed"))

    assert recorder.inputs == {"A": [["streamed"], ["A1"]]}


def no_await(agent: MiniAgent[[]]) -> list[object]:
    return [agent, agent]


def no_steps(agent: MiniAgent[[]]) -> list[object]:
    return []


def inquiries(agent: MiniAgent[[]]) -> list[object]:
    # As in a seed README draft: achain_loop([hello_agent.inquire(), echo_agent.inquire()]).
    return [agent.inquire(), agent.inquire()]


def foreign_object(agent: MiniAgent[[]]) -> list[object]:
    return [agent, AWAIT, 42]


@pytest.mark.parametrize(
    ("steps", "why"),
    [
        pytest.param(no_await, "needs AWAIT in its list", id="no-await"),
        pytest.param(no_steps, "needs agents in its list", id="empty"),
        pytest.param(inquiries, "not the replies of agent.inquire()", id="inquire-results"),
        pytest.param(
            foreign_object,
            "takes agents, AWAIT and CLEAR, but got a",
            id="foreign-object",
        ),
    ],
)
async def test_achain_loop_refuses_a_bad_list_with_an_explanation_and_an_example(
    steps: Callable[[MiniAgent[[]]], list[object]], why: str
) -> None:
    recorder = Recorder()
    async with MiniAgents():
        agent = recorder.agent("A")
        bad = steps(agent)
        with pytest.raises(ValueError, match="achain_loop") as raised:
            await achain_loop(cast("Sequence[ChainStep]", bad))

    message = str(raised.value)
    assert why in message
    assert "e.g. achain_loop([user_agent, AWAIT, assistant_agent])" in message
    # the check comes before the loop: only the seed's own inquire() calls ran the agent
    assert recorder.calls["A"] == (2 if steps is inquiries else 0)


async def test_the_foreign_object_error_names_the_foreign_type() -> None:
    recorder = Recorder()
    async with MiniAgents():
        agent = recorder.agent("A")
        with pytest.raises(ValueError, match=r"takes agents, AWAIT and CLEAR.*\bint\b"):
            await achain_loop(cast("Sequence[ChainStep]", [agent, AWAIT, CLEAR, 42]))
    assert recorder.calls["A"] == 0


async def test_achain_loop_runs_the_steps_of_any_iterable() -> None:
    recorder = Recorder()
    async with MiniAgents():
        first = recorder.agent("A", stop_at=2)
        second = recorder.agent("B")
        steps: list[ChainStep] = [first, AWAIT, second, AWAIT]
        await achain_loop(step for step in steps)  # a generator: read once

    assert recorder.inputs == {"A": [[], ["B1"]], "B": [["A1"]]}


async def test_achain_loop_given_a_generator_it_cannot_run_shows_the_steps() -> None:
    recorder = Recorder()
    async with MiniAgents():
        agent = recorder.agent("A")
        with pytest.raises(ChainDefinitionError, match=r"needs AWAIT in its list, but got \[<"):
            await achain_loop(step for step in [agent, agent])


async def test_achain_loop_given_an_agent_alone_says_to_put_it_in_a_list() -> None:
    recorder = Recorder()
    async with MiniAgents():
        agent = recorder.agent("A")
        with pytest.raises(ChainDefinitionError) as raised:
            await achain_loop(cast("Sequence[ChainStep]", agent))

    assert str(raised.value).startswith(
        "achain_loop() takes a list of agents, AWAIT and CLEAR, not a MiniAgent "
    )
    assert "e.g. achain_loop([user_agent, AWAIT, assistant_agent])" in str(raised.value)
    assert recorder.calls["A"] == 0


async def test_an_ordinary_agent_error_at_an_await_propagates_out_of_achain_loop() -> None:
    recorder = Recorder()
    async with MiniAgents():
        first = recorder.agent("A")
        second = recorder.agent("B", stop_at=2, stop_with=ValueError)
        with pytest.raises(ValueError, match="B stops"):
            await achain_loop([first, AWAIT, second, AWAIT])

    assert recorder.calls == {"A": 2, "B": 2}
    assert recorder.events[-1] == "B2 stops"


# -- adialog_loop ------------------------------------------------------------------------


@pytest.mark.parametrize("ending", [EOFError, KeyboardInterrupt])
async def test_adialog_loop_passes_turns_between_user_and_assistant(
    ending: type[BaseException],
) -> None:
    user_inputs: list[list[str]] = []
    assistant_inputs: list[list[str]] = []
    async with MiniAgents():
        await adialog_loop(  # ends cleanly: nothing raised
            scripted_user(["hi", "how are you?"], user_inputs, end_with=ending),
            echo_assistant(assistant_inputs),
        )

    assert user_inputs == [[], ["echo: hi"], ["echo: how are you?"]]
    assert assistant_inputs == [["hi"], ["how are you?"]]


async def test_the_users_end_that_comes_with_the_loops_cancellation_is_not_a_lost_error() -> None:
    # Ctrl+C and the end of input in one step: the loop is cancelled before it awaits the
    # user's reply, which ends with EOFError; nothing is logged (the conftest fails a test
    # that logs an error) and the cancellation goes out
    loop_task: asyncio.Task[None] | None = None

    @miniagent
    async def ending_user(ctx: InteractionContext) -> None:
        assert loop_task is not None
        loop_task.cancel()
        raise EOFError

    async with MiniAgents():
        loop_task = asyncio.ensure_future(adialog_loop(ending_user, echo_assistant([])))
        with pytest.raises(asyncio.CancelledError):
            await loop_task


@pytest.mark.parametrize("place", ["user_agent", "assistant_agent", "history_agent"])
async def test_adialog_loop_refuses_what_is_not_an_agent_naming_the_argument(place: str) -> None:
    agents: dict[str, Any] = {
        "user_agent": scripted_user([], []),
        "assistant_agent": echo_assistant([]),
        place: "user",
    }
    async with MiniAgents():
        with pytest.raises(ChainDefinitionError) as raised:
            await adialog_loop(**agents)

    assert f"adialog_loop() takes agents, but its {place} is a str ('user')" in str(raised.value)
    assert "e.g. adialog_loop(console_user_agent, assistant, history_agent=" in str(raised.value)


async def test_adialog_loop_ends_cleanly_when_the_assistant_raises_keyboard_interrupt() -> None:
    user_inputs: list[list[str]] = []
    assistant_inputs: list[list[str]] = []
    async with MiniAgents():
        await adialog_loop(
            scripted_user(["one", "two", "three"], user_inputs),
            echo_assistant(assistant_inputs, stop_at=2),
        )

    assert assistant_inputs == [["one"], ["two"]]
    assert user_inputs == [[], ["echo: one"]]  # its third call read the interrupt


async def test_adialog_loop_with_a_history_agent_gives_the_assistant_the_whole_history() -> None:
    user_inputs: list[list[str]] = []
    assistant_inputs: list[list[str]] = []
    history: list[Message] = []
    async with MiniAgents():
        await adialog_loop(
            user_agent=scripted_user(["hi", "bye"], user_inputs),
            assistant_agent=echo_assistant(assistant_inputs),
            history_agent=history_keeper(history),
        )

    assert assistant_inputs == [["hi"], ["hi", "echo: hi", "bye"]]
    assert user_inputs == [[], ["echo: hi"], ["echo: bye"]]
    assert [str(message) for message in history] == ["hi", "echo: hi", "bye", "echo: bye"]


# -- join_messages -----------------------------------------------------------------------


async def test_join_messages_joins_the_texts_with_a_blank_line() -> None:
    joined = join_messages(["Hello", Message(text="big"), streamed("Wor", "ld")])
    assert [token async for token in joined] == ["Hello", "\n\n", "big", "\n\n", "Wor", "ld"]
    assert await joined == Message(text="Hello\n\nbig\n\nWorld")


class _Verdict(Message):
    guilty: bool


async def test_join_messages_shows_a_message_of_fields_alone_as_its_fields() -> None:
    joined = join_messages(["Verdict:", _Verdict(guilty=False), Message()])
    assert [token async for token in joined] == ["Verdict:", "\n\n", '{"guilty":false}', "\n\n"]
    assert str(await joined) == 'Verdict:\n\n{"guilty":false}\n\n'


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([], ""),
        (["only"], "only"),
        (MessageSequencePromise(["a", "b"]), "a\n\nb"),
    ],
)
async def test_join_messages_of_no_one_or_a_sequence(messages: MessageType, expected: str) -> None:
    assert (await join_messages(messages)).text == expected


async def test_join_messages_with_a_custom_delimiter() -> None:
    joined = join_messages(["a", "b", "c"], delimiter=" | ")
    assert [token async for token in joined] == ["a", " | ", "b", " | ", "c"]
    assert (await joined).text == "a | b | c"


async def test_strip_leading_newlines_drops_only_the_newlines_at_the_start_of_each_message() -> (
    None
):
    messages: list[MessageType] = ["\n\nfirst\n", streamed("\n", "\n", "\n  sec\n", "ond"), "third"]
    stripped = await join_messages(messages, delimiter="|", strip_leading_newlines=True)
    kept = await join_messages(messages, delimiter="|")
    assert stripped.text == "first\n|  sec\nond|third"
    assert kept.text == "\n\nfirst\n|\n\n\n  sec\nond|third"


async def test_join_messages_gives_the_joined_message_its_metadata() -> None:
    joined = join_messages(["a", "b"], role="assistant", model="m-1")
    assert joined.metadata == {"role": "assistant", "model": "m-1"}  # known before the text
    assert await joined == Message(text="a\n\nb", role="assistant", model="m-1")


async def test_join_messages_makes_a_message_of_the_given_class() -> None:
    joined = join_messages(["a", "b"], message_class=Note, topic="news")
    assert joined.message_class is Note
    message = await joined
    assert type(message) is Note
    assert message == Note(text="a\n\nb", topic="news")


async def test_join_messages_streams_the_first_message_before_a_later_one_has_started() -> None:
    release = asyncio.Event()
    later_started = asyncio.Event()

    async def messages() -> AsyncIterator[MessageType]:
        yield streamed("Hel", "lo")
        await release.wait()
        later_started.set()
        yield "World"

    joined = join_messages(messages())
    pieces = aiter(joined)
    assert await next_within(pieces) == "Hel"
    assert await next_within(pieces) == "lo"
    assert not later_started.is_set()
    assert not joined.done
    release.set()
    assert [token async for token in pieces] == ["\n\n", "World"]
    assert later_started.is_set()
    assert (await joined).text == "Hello\n\nWorld"


async def test_join_messages_streams_a_message_before_its_own_end() -> None:
    release = asyncio.Event()
    joined = join_messages(["a", streamed("b1", "b2", hold=release, hold_at=1)])
    pieces = aiter(joined)
    assert [await next_within(pieces) for _ in range(3)] == ["a", "\n\n", "b1"]
    release.set()
    assert [token async for token in pieces] == ["b2"]


async def test_an_error_in_a_message_reaches_the_joined_consumer_after_the_tokens_before_it() -> (
    None
):
    boom = Boom("broken message")
    joined = join_messages(["a", streamed("b1", "b2", error=boom), "c"])
    seen, error = await read_until_error(joined)
    assert seen == ["a", "\n\n", "b1", "b2"]
    assert error is boom
    with pytest.raises(Boom, match="broken message"):
        await joined


async def test_an_error_in_the_sequence_reaches_the_joined_consumer_after_tokens_before_it() -> (
    None
):
    boom = Boom("broken sequence")
    joined = join_messages(["a", "b", boom, "never"])
    seen, error = await read_until_error(joined)
    assert seen == ["a", "\n\n", "b"]
    assert error is boom


# -- split_messages ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ("a\n\nb\n\nc", ["a", "b", "c"]),
        ("no delimiter", ["no delimiter"]),
        (["a\n\nb", "c"], ["a", "b", "c"]),  # message boundaries split too
        (["a\nb", "c\n"], ["a\nb", "c\n"]),  # a single newline is no delimiter
        ("", []),
        ([], []),
    ],
)
async def test_split_messages_cuts_at_the_delimiter(
    messages: MessageType, expected: list[str]
) -> None:
    assert await texts_of(split_messages(messages)) == expected


async def test_split_messages_with_a_custom_delimiter() -> None:
    assert await texts_of(split_messages(["a|b", "c"], delimiter="|")) == ["a", "b", "c"]
    assert await texts_of(split_messages("a--b-c----d", delimiter="--")) == ["a", "b-c", "d"]


async def test_a_delimiter_split_across_token_boundaries_is_found() -> None:
    parts = split_messages(streamed("a\n", "\nb"))
    assert await part_tokens(parts) == [["a"], ["b"]]  # the held "\n" is not part of "a"
    assert await texts_of(parts) == ["a", "b"]


async def test_a_delimiter_split_over_three_tokens_is_found() -> None:
    parts = split_messages(streamed("x<", "-", "->y"), delimiter="<-->")
    assert await texts_of(parts) == ["x", "y"]


async def test_a_partial_delimiter_that_turns_out_not_to_be_one_stays_in_the_text() -> None:
    parts = split_messages(streamed("a\n", "b\n", "\nc\n"))
    assert await part_tokens(parts) == [["a", "\nb"], ["c", "\n"]]  # "\n" held till the end


@pytest.mark.parametrize(
    "messages",
    [
        "\n\na\n\n\n\n\n\nb\n\n",
        ["\n\n", "a", "\n\n", "b", "\n\n"],
        streamed("a\n\n", "\n\n", "\n", "\nb"),
    ],
)
async def test_consecutive_delimiters_give_no_empty_parts(messages: MessageType) -> None:
    assert await texts_of(split_messages(messages)) == ["a", "b"]


async def test_split_messages_gives_each_part_the_metadata_and_class() -> None:
    parts = await split_messages("a\n\nb", message_class=Note, topic="news")
    assert parts == (Note(text="a", topic="news"), Note(text="b", topic="news"))
    assert all(type(part) is Note for part in parts)


async def test_the_first_part_is_complete_before_the_input_is() -> None:
    release = asyncio.Event()
    source = streamed("first\n\n", "second", hold=release, hold_at=1)
    parts = split_messages(source)
    iterator = aiter(parts)
    first = await next_within(iterator)
    assert first.done
    assert str(await first) == "first"
    assert not source.done
    assert not parts.done
    release.set()
    assert [str(await part) async for part in iterator] == ["second"]


async def test_the_first_part_streams_before_its_delimiter_arrives() -> None:
    release = asyncio.Event()
    parts = split_messages(streamed("fir", "st\n\nsecond", hold=release, hold_at=1))
    first = await next_within(aiter(parts))
    first_tokens = aiter(first)
    assert await next_within(first_tokens) == "fir"
    assert not first.done
    release.set()
    assert [token async for token in first_tokens] == ["st"]
    assert await texts_of(parts) == ["first", "second"]


def test_an_empty_delimiter_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="non-empty delimiter"):
        split_messages("a\n\nb", delimiter="")


async def test_an_error_in_the_input_reaches_the_consumer_of_the_parts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    boom = Boom("broken input")
    parts = split_messages(streamed("a\n\nb", error=boom))
    seen, error = await read_until_error(parts)
    assert error is boom
    assert [part.done for part in seen] == [True, True]
    assert str(await seen[0]) == "a"
    with pytest.raises(Boom, match="broken input"):
        await seen[1]  # the part that was streaming fails with the same error
    with pytest.raises(Boom, match="broken input"):
        await parts
    del seen, error, parts
    assert take_error_logs(caplog) == []


async def _await_failing_split() -> str:
    try:
        await split_messages(streamed("a\n\nb", error=Boom("broken input")))
    except Boom as error:
        return str(error)
    return "no error"


async def test_awaiting_a_failing_split_reports_no_lost_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert await _await_failing_split() == "broken input"
    assert take_error_logs(caplog) == []


async def _read_parts_of_failing_split() -> tuple[list[str], str]:
    texts: list[str] = []
    try:
        async for part in split_messages(streamed("a\n\nb", error=Boom("broken input"))):
            texts.append(str(await part))
    except Boom as error:
        return texts, str(error)
    return texts, "no error"


async def test_reading_the_parts_of_a_failing_split_reports_no_lost_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert await _read_parts_of_failing_split() == (["a"], "broken input")
    assert take_error_logs(caplog) == []


async def test_an_error_in_the_input_sequence_after_a_delimiter_reaches_the_consumer() -> None:
    boom = Boom("broken sequence")
    parts = split_messages(["a\n\n", boom])
    seen, error = await read_until_error(parts)
    assert [str(await part) for part in seen] == ["a"]
    assert error is boom


# -- MiniAgent.as_operator ---------------------------------------------------------------


def tagger(tag: str, calls: list[str] | None = None) -> MiniAgent[[]]:
    """An agent replying ``<tag>(<text>)`` to each input message as soon as it is complete."""

    @miniagent(alias=tag)
    async def agent(ctx: InteractionContext) -> None:
        if calls is not None:
            calls.append(tag)
        async for promise in ctx.messages:
            ctx.reply(f"{tag}({await promise})")

    return agent


@miniagent
async def prefixer(ctx: InteractionContext, prefix: str, suffix: str = "") -> None:
    async for promise in ctx.messages:
        ctx.reply(f"{prefix}{await promise}{suffix}")


@miniagent
async def failing_after_one(ctx: InteractionContext) -> None:
    async for promise in ctx.messages:
        ctx.reply(f"ok: {await promise}")
        raise Boom("the agent broke")


@dataclass
class Recording:
    """What an observer got."""

    items: list[Message] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)
    completed: bool = False

    @property
    def ended(self) -> bool:
        return self.completed or bool(self.errors)

    def texts(self) -> list[str]:
        return [str(item) for item in self.items]

    def on_completed(self) -> None:
        self.completed = True

    def watch(self, observable: Observable[Message]) -> abc.DisposableBase:
        return observable.subscribe(self.items.append, self.errors.append, self.on_completed)


def two_messages() -> Observable[Message]:
    return reactivex.from_iterable([Message(text="a"), Message(text="b")])


async def test_agents_as_operators_in_a_pipe() -> None:
    async with MiniAgents():
        result = await two_messages().pipe(
            tagger("A").as_operator(), tagger("B").as_operator(), ops.to_list()
        )
    assert result == [Message(text="B(A(a))"), Message(text="B(A(b))")]


async def test_awaiting_the_operator_gives_the_last_reply() -> None:
    async with MiniAgents():
        last = await two_messages().pipe(tagger("A").as_operator())
    assert last == Message(text="A(b)")


async def test_as_operator_passes_its_keyword_arguments_to_the_agent() -> None:
    async with MiniAgents():
        result = await two_messages().pipe(
            prefixer.as_operator(prefix=">> "),
            prefixer.as_operator(prefix="[", suffix="]"),
            ops.to_list(),
        )
    assert [str(message) for message in result] == ["[>> a]", "[>> b]"]


def test_as_operator_refuses_an_unknown_keyword_when_it_is_made() -> None:
    # (not at each subscription, as an error "in inquire()" the pipe's author never called)
    with pytest.raises(AgentArgumentError, match="'prefx' in as_operator\\(\\); it takes: prefix"):
        prefixer.as_operator(prefx=">> ")  # type: ignore[call-arg]


async def test_as_operator_streams_each_reply_before_the_source_completes() -> None:
    source: Subject[Message] = Subject()
    recording = Recording()
    async with MiniAgents():
        recording.watch(source.pipe(tagger("A").as_operator()))
        await until(lambda: bool(source.observers), "the agent to subscribe to its source")
        source.on_next(Message(text="a"))
        await until(lambda: bool(recording.items), "the first reply")
        assert recording.texts() == ["A(a)"]
        assert not recording.ended
        source.on_next(Message(text="b"))
        await until(lambda: len(recording.items) == 2, "the second reply")
        assert not recording.ended
        source.on_completed()
        await until(lambda: recording.ended, "the end")
    assert recording == Recording([Message(text="A(a)"), Message(text="A(b)")], [], True)


async def test_as_operator_gets_what_a_hot_source_emits_right_after_subscription() -> None:
    source: Subject[Message] = Subject()
    recording = Recording()
    async with MiniAgents():
        recording.watch(source.pipe(tagger("A").as_operator()))
        source.on_next(Message(text="a"))  # at once, as with any other reactivex operator
        await until(lambda: bool(source.observers), "the agent to subscribe to its source")
        source.on_next(Message(text="b"))
        source.on_completed()
        await until(lambda: recording.ended, "the end")
    assert recording.texts() == ["A(a)", "A(b)"]


async def test_as_operator_is_pure_the_same_input_gives_the_same_output_twice() -> None:
    calls: list[str] = []
    async with MiniAgents():
        pipeline = two_messages().pipe(tagger("A", calls).as_operator(), ops.to_list())
        first = await pipeline
        second = await pipeline
        third = await two_messages().pipe(tagger("A", calls).as_operator(), ops.to_list())
    assert first == second == third == [Message(text="A(a)"), Message(text="A(b)")]
    assert calls == ["A", "A", "A"]  # one interaction per subscription


async def test_an_error_in_the_agent_reaches_on_error_after_the_replies_before_it() -> None:
    recording = Recording()
    async with MiniAgents():
        recording.watch(two_messages().pipe(failing_after_one.as_operator()))
        await until(lambda: recording.ended, "the end")
    assert recording.texts() == ["ok: a"]
    assert not recording.completed
    assert len(recording.errors) == 1
    assert isinstance(recording.errors[0], Boom)
    assert str(recording.errors[0]) == "the agent broke"


async def test_an_error_in_the_agent_is_raised_by_awaiting_the_pipe() -> None:
    async with MiniAgents():
        with pytest.raises(Boom, match="the agent broke"):
            await two_messages().pipe(failing_after_one.as_operator(), ops.to_list())


async def test_as_operator_outside_of_a_context_fails_at_subscription() -> None:
    calls: list[str] = []
    pipeline = two_messages().pipe(tagger("A", calls).as_operator())  # no context needed yet
    with pytest.raises(NoActiveContextError, match="async with MiniAgents"):
        pipeline.subscribe(lambda _message: None)
    recording = Recording()
    recording.watch(pipeline)
    assert len(recording.errors) == 1
    assert isinstance(recording.errors[0], NoActiveContextError)
    with pytest.raises(NoActiveContextError):
        await pipeline
    assert calls == []
