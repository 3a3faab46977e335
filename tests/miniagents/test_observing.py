"""The interaction observer hook (``miniagents.miniagents.lowlevel.observe_interactions``)."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import threading
import weakref
from collections.abc import Iterator, Mapping

import pytest

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.messages import MessagePromise, MessageSequencePromise, MessageTokenAppender
from miniagents.miniagents import _observing
from miniagents.miniagents.lowlevel import (
    Hook,
    InteractionWatch,
    ObservedAgent,
    adopt_carrier,
    incoming_carrier,
    interaction_observers,
    observe_interactions,
    outgoing_carrier,
)
from miniagents.promising.lowlevel import core_of

_caller: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="")


class _Recorder:
    """An observer that records what it is told, and sets ``_caller`` in each interaction."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def interaction_started(self, agent: ObservedAgent) -> InteractionWatch | None:
        self.events.append(f"start {agent.alias} (inquired by {_caller.get() or 'nobody'})")
        _caller.set(agent.alias)
        return _Watch(self, agent.alias)

    def carrier(self) -> Mapping[str, str]:
        return {"caller": _caller.get()}


class _Watch:
    def __init__(self, recorder: _Recorder, alias: str) -> None:
        self.recorder = recorder
        self.alias = alias

    def interaction_ended(self, error: BaseException | None) -> None:
        ended = "" if error is None else f" with {type(error).__name__}"
        self.recorder.events.append(f"end {self.alias}{ended}")


@pytest.fixture(autouse=True)
def _logged_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """The observers' failures logged before (once per place for the process) forgotten."""
    monkeypatch.setattr(_observing._failures, "_logged", set())


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    made = _Recorder()
    assert observe_interactions(made) is None
    try:
        yield made
    finally:
        assert observe_interactions(None) is made


async def test_the_observer_is_told_in_each_interactions_task(recorder: _Recorder) -> None:
    @miniagent
    async def inner(ctx: InteractionContext) -> None:
        ctx.reply("inner")

    @miniagent
    async def outer(ctx: InteractionContext) -> None:
        ctx.reply(inner.fork(start_asap=False).inquire())

    async with MiniAgents():
        assert str(await outer.inquire()) == "inner"
    assert recorder.events == [
        "start OUTER (inquired by nobody)",
        "start INNER (inquired by OUTER)",
        "end INNER",
        "end OUTER",
    ]


async def test_the_watch_is_told_when_the_last_token_has_come(recorder: _Recorder) -> None:
    appender = MessageTokenAppender()

    @miniagent
    async def streaming(ctx: InteractionContext) -> None:
        ctx.reply(appender.promise)

    async with MiniAgents():
        reply = streaming.inquire()
        await core_of(reply).await_done()  # the agent function has returned
        assert recorder.events == ["start STREAMING (inquired by nobody)"]
        appender.append("token")
        appender.fail(KeyError("k"))
        assert recorder.events[-1] == "end STREAMING with KeyError"
        with pytest.raises(KeyError):
            await reply


class _Broken:
    """An observer whose every method raises."""

    def interaction_started(self, agent: ObservedAgent) -> InteractionWatch | None:
        raise RuntimeError("broken observer")

    def carrier(self) -> Mapping[str, str]:
        raise RuntimeError("broken carrier")


@miniagent
async def _fine(ctx: InteractionContext) -> None:
    ctx.reply("fine")


async def test_an_observer_that_raises_is_logged_once_and_the_agents_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    observe_interactions(_Broken())
    try:
        with caplog.at_level(logging.WARNING, logger="miniagents"):
            async with MiniAgents():
                assert str(await _fine.inquire()) == "fine"
                assert str(await _fine.inquire()) == "fine"
            assert outgoing_carrier() == {}
    finally:
        observe_interactions(None)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages  # once each: interaction_started, carrier
    assert "interaction_started (RuntimeError: broken observer)" in messages[0]
    assert "carrier (RuntimeError: broken carrier)" in messages[1]


async def test_observers_added_side_by_side_are_each_told_and_each_removed_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second, broken = _Recorder(), _Recorder(), _Broken()
    for observer in (first, broken, second):
        interaction_observers.add(observer)
    try:
        with caplog.at_level(logging.WARNING, logger="miniagents"):
            async with MiniAgents():
                assert str(await _fine.inquire()) == "fine"
                assert outgoing_carrier() == {"caller": ""}  # (the broken one's: logged)
                interaction_observers.remove(first)
                interaction_observers.remove(broken)
                assert observe_interactions(None) is second  # the one left, alone
                observe_interactions(second)
                assert str(await _fine.fork(alias="LATER").inquire()) == "fine"
    finally:
        interaction_observers.remove(second)
    assert observe_interactions(None) is None
    assert first.events == ["start _FINE (inquired by nobody)", "end _FINE"]
    assert second.events == [  # (told after the first, which set the context variable)
        "start _FINE (inquired by _FINE)",
        "end _FINE",
        "start LATER (inquired by nobody)",
        "end LATER",
    ]
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages  # once each: interaction_started, carrier


async def test_a_broken_observer_is_logged_once_however_often_others_plug_in_and_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = _Broken()
    interaction_observers.add(broken)
    try:
        with caplog.at_level(logging.WARNING, logger="miniagents"):
            async with MiniAgents():
                await _fine.inquire()  # alone
                for _ in range(2):  # (beside another, as each eval run plugs its recorder)
                    other = _Recorder()
                    interaction_observers.add(other)
                    assert str(await _fine.inquire()) == "fine"
                    interaction_observers.remove(other)
                    assert other.events == ["start _FINE (inquired by nobody)", "end _FINE"]
    finally:
        observe_interactions(None)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1, messages
    assert "interaction_started (RuntimeError: broken observer)" in messages[0]


def test_a_removed_observer_is_held_by_nothing_and_a_combination_given_back_restores_it() -> None:
    first, second = _Recorder(), _Recorder()
    removed = weakref.ref(first)
    interaction_observers.add(first)
    interaction_observers.add(second)
    try:
        both = observe_interactions(None)  # (the two as one)
        assert observe_interactions(both) is None  # given back: the two plugged in again
        interaction_observers.remove(first)
        assert observe_interactions(None) is second  # each removable alone
        observe_interactions(second)
        del both, first
        gc.collect()
        assert removed() is None  # no combination it was in is kept by the hook
    finally:
        observe_interactions(None)


class _Named:
    """An observer equal to any other of its name (as a dataclass's instances are)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.told = 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Named) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def interaction_started(self, agent: ObservedAgent) -> InteractionWatch | None:
        self.told += 1
        return None

    def carrier(self) -> Mapping[str, str]:
        return {}


async def test_observers_equal_to_each_other_are_plugged_in_and_out_each_by_itself() -> None:
    first, second = _Named("same"), _Named("same")
    interaction_observers.add(first)
    interaction_observers.add(second)  # equal to the first, but another observer
    interaction_observers.add(second)  # (itself again: no-op)
    try:
        async with MiniAgents():
            await _fine.inquire()
        assert (first.told, second.told) == (1, 1)
        interaction_observers.remove(second)
        assert observe_interactions(None) is first  # the other one stays
        observe_interactions(first)
    finally:
        observe_interactions(None)


def test_an_observer_plugged_in_from_another_thread_meanwhile_is_not_lost() -> None:
    def combine(plugged: tuple[str, ...]) -> str:
        if plugged == ("w", "x"):  # (the first change, while it is being made)
            other = threading.Thread(target=hook.add, args=("y",))
            other.start()
            other.join()  # another thread plugs "y" in meanwhile, to the end
        return "+".join(plugged)

    hook: Hook[str] = Hook("a test's", combine)
    hook.add("w")
    hook.add("x")
    assert hook.current == "w+y+x"  # made again, of what the other thread plugged in
    hook.remove("w")
    assert hook.current == "y+x"


async def test_a_carrier_adopted_in_a_task_is_incoming_there_only(recorder: _Recorder) -> None:
    assert outgoing_carrier() == {"caller": ""}
    seen: list[Mapping[str, str] | None] = []

    @miniagent
    async def remote_side(ctx: InteractionContext) -> None:
        seen.append(incoming_carrier())

    async def worker() -> None:
        adopt_carrier({"traceparent": "00-abc-def-01"})
        async with MiniAgents():
            await remote_side.inquire()

    await asyncio.create_task(worker())  # as a Ray worker runs an interaction: in a task
    assert seen == [{"traceparent": "00-abc-def-01"}]
    assert incoming_carrier() is None


async def test_a_messages_watch_gets_the_input_and_each_reply_unread() -> None:
    """A watch with ``interaction_input`` / ``interaction_replied`` gets the streams as they
    are (a message still streaming, before anyone reads it), to follow them with
    ``when_done``."""
    seen: list[str] = []
    appender = MessageTokenAppender()

    class Messages(_Watch):
        def interaction_input(self, inputs: MessageSequencePromise) -> None:
            core = core_of(inputs)
            core.when_done(
                lambda: seen.append(f"{self.alias} input " + "|".join(map(str, core.pieces)))
            )

        def interaction_replied(self, message: MessagePromise) -> None:
            seen.append(f"{self.alias} replied, done={message.done}")
            core_of(message).when_done(lambda: seen.append(f"{self.alias} reply ended"))

    class Observer(_Recorder):
        def interaction_started(self, agent: ObservedAgent) -> InteractionWatch | None:
            return Messages(self, agent.alias)

    @miniagent
    async def echo(ctx: InteractionContext) -> None:
        ctx.reply(appender.promise)
        ctx.reply(f"got {len(await ctx.message_promises)}")

    assert observe_interactions(Observer()) is None
    try:
        async with MiniAgents():
            reply = echo.inquire(["a", "b"])
            await core_of(reply).await_done()
            assert seen == [
                "ECHO input a|b",
                "ECHO replied, done=False",
                "ECHO replied, done=True",
                "ECHO reply ended",
            ]
            appender.append("x")
            appender.complete()
            assert seen[4:] == ["ECHO reply ended"]
            assert [str(message) for message in await reply] == ["x", "got 2"]
    finally:
        observe_interactions(None)


class _AlsoBroken(_Broken):
    """Another class of broken observer."""


async def test_two_broken_observers_are_each_logged_once_by_their_class(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for observer in (_Broken(), _AlsoBroken(), _Broken()):  # (the third: the first's class)
        interaction_observers.add(observer)
    try:
        with caplog.at_level(logging.WARNING, logger="miniagents"):
            async with MiniAgents():
                assert str(await _fine.inquire()) == "fine"
                assert str(await _fine.inquire()) == "fine"
    finally:
        observe_interactions(None)
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        f"An interaction observer ({__name__}.{name}) failed in interaction_started "
        "(RuntimeError: broken observer); the agents go on unobserved by it there. This is "
        "logged once for its class."
        for name in ("_Broken", "_AlsoBroken")
    ]
