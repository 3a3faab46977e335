"""The worker's event-loop thread and outbox, tested in this process (no Ray task needed)."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast
from unittest.mock import ANY

import pytest
import ray

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.ext.llm import usage
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.ray import agent as agent_module
from miniagents.ext.ray._budgets import _AwayEnd
from miniagents.ext.ray._wire import (
    COMPLETE,
    FAILED,
    INPUT_END,
    LINK,
    LINKS_BOX,
    START,
    TOKENS,
    WHOLE,
    Call,
    InputEvent,
    dumps,
    dumps_arguments,
    dumps_settings,
    encode_error,
    loads,
)
from miniagents.ext.ray._worker import OUTBOX_EVENTS, _Outbox, _send_replies, serve_interaction
from miniagents.ext.ray._worker_loop import LoopTask, run_on_loop, worker_loop
from miniagents.ext.ray.errors import (
    MessageSerializationError,
    RayAgentError,
    RayCancelTimeoutError,
)
from miniagents.messages import MessageTokenAppender
from miniagents.messages.appender import MessageSequenceAppender

pytestmark = pytest.mark.ray


def test_a_loop_task_cancelled_before_its_first_step_still_ends() -> None:
    loop = worker_loop()
    gate = threading.Event()
    loop.call_soon_threadsafe(gate.wait)  # the loop is busy until the gate opens
    started: list[bool] = []

    async def body() -> None:
        started.append(True)

    task = LoopTask(body())
    loop.call_soon_threadsafe(task._cancel)  # a ray.cancel that comes at once
    gate.set()
    assert task.ended.wait(10)  # (a wait for the coroutine's own end would never return)
    assert started == []
    assert task.outcome.cancelled()


def test_a_loop_task_gives_its_result_or_its_error() -> None:
    async def answer() -> int:
        return 42

    async def fail() -> int:
        raise KeyError("no")

    assert LoopTask(answer()).result() == 42
    with pytest.raises(KeyError):
        LoopTask(fail()).result()


_seen: contextvars.ContextVar[str] = contextvars.ContextVar("_seen", default="unset")


def test_a_loop_task_runs_in_a_context_of_its_own_not_the_calling_threads() -> None:
    async def read_and_set() -> str:
        value = _seen.get()
        _seen.set("set by a task")
        return value

    token = _seen.set("the calling thread's")  # what an earlier Ray task left in the thread
    try:
        assert LoopTask(read_and_set()).result() == "unset"
        assert run_on_loop(read_and_set()) == "unset"  # nor what the other task set
    finally:
        _seen.reset(token)


async def test_cancelled_while_sending_replies_it_cancels_the_messages_it_sends() -> None:
    async with MiniAgents():
        replies = MessageSequenceAppender()
        streaming = MessageTokenAppender()  # a message whose tokens never end
        replies.append(streaming.promise)
        streaming.append("Hel")
        outbox = _Outbox()
        sending = asyncio.create_task(_send_replies(replies.sequence, outbox, "agent"))
        assert await outbox.batch() == [(START, 0, ANY), (TOKENS, 0, ["Hel"])]
        before = asyncio.all_tasks()
        sending.cancel()  # the interaction is cancelled (every consumer gave up)
        with pytest.raises(asyncio.CancelledError):
            await sending
        left = [task.get_name() for task in before if not task.done() and task is not sending]
        assert left == [asyncio.current_task().get_name()]  # type: ignore[union-attr]
        streaming.complete()
        replies.complete()


def test_a_loop_task_that_does_not_end_when_cancelled_is_given_up_on_with_a_timeout_error() -> None:
    release = threading.Event()
    started, cancelled = threading.Event(), threading.Event()

    async def stubborn() -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            await asyncio.get_running_loop().run_in_executor(None, release.wait)  # hangs

    task = LoopTask(stubborn())
    assert started.wait(10)  # cancelled at its wait (not before its first step)
    with pytest.raises(RayCancelTimeoutError, match=r"STUBBORN did not end within 0\.2 s"):
        task.cancel(0.2, "the agent STUBBORN")
    assert cancelled.is_set()
    assert not task.ended.is_set()
    release.set()
    assert task.ended.wait(10)


async def test_the_outbox_holds_a_bounded_number_of_events_and_merges_tokens() -> None:
    outbox = _Outbox()
    await outbox.put((START, 0, b"header"))
    for _ in range(OUTBOX_EVENTS - 1):
        await outbox.put((TOKENS, 0, "t"))
    extra = asyncio.create_task(outbox.put((TOKENS, 0, "u")))
    for _ in range(3):
        await asyncio.sleep(0)  # the extra event's sender gets its turns
    assert not extra.done()  # the outbox is full: it waits for the driver
    batch = await outbox.batch()
    await extra
    assert batch == [(START, 0, b"header"), (TOKENS, 0, ["t"] * (OUTBOX_EVENTS - 1) + ["u"])]
    await outbox.close()
    assert await outbox.batch() is None


class _Counting:
    """A live link's end that has a message for the driver at every batch (its counts)."""

    def open(self, wake: Callable[[], None]) -> None:
        """(Nothing to do.)"""

    def drain(self) -> object | None:
        return "counts"

    def receive(self, message: object) -> None:
        """(Nothing comes.)"""

    def close(self, error: BaseException | None = None) -> None:
        """(Nothing to stop.)"""

    async def asettled(self) -> None:
        """(Nothing stopped.)"""


@pytest.mark.parametrize("events", [OUTBOX_EVENTS - 1, OUTBOX_EVENTS])
async def test_every_batch_holds_at_most_the_bound_with_the_links_messages_and_the_failure(
    events: int,
) -> None:
    """A full batch leaves room for the links' messages; the failure goes in the next one.

    (On main the batch at the bound took the link's counts and the failure beyond it.)
    """
    outbox = _Outbox()
    outbox.links = [_Counting()]
    for index in range(events):
        await outbox.put((WHOLE, index, b"message"))
    closing = asyncio.create_task(outbox.close((FAILED, 0, b"the agent's error")))
    batches = []
    while (batch := await outbox.batch()) is not None:
        batches.append(batch)
    await closing
    # the links' message and the events the first batch had no room for, the failure
    assert [len(batch) for batch in batches] == [OUTBOX_EVENTS, 1 + events - OUTBOX_EVENTS + 2]
    assert all(batch[0] == (LINK, 0, dumps("counts", "")) for batch in batches)  # first
    sent = [event for batch in batches for event in batch[1:]]
    expected = [(WHOLE, index, b"message") for index in range(events)]
    assert sent == [*expected, (FAILED, 0, b"the agent's error")]


async def test_an_event_after_the_agents_failure_is_an_error_not_dropped() -> None:
    """The agent's failure ends the worker's replies: an event after it breaks the protocol.

    (On main the driver returned at the failure, dropping what followed it unread.)
    """
    runner = SimpleNamespace(agent=SimpleNamespace(alias="FAKE"), cancel_timeout=10.0)
    attempt = agent_module._Attempt(cast(Any, runner), cast(Any, None))
    failure = encode_error(KeyError("no such key"))
    assert isinstance(attempt._apply([(FAILED, 0, failure)]), KeyError)
    breach = r"The Ray worker of the agent FAKE sent 1 reply event\(s\) after the agent's failure"
    with pytest.raises(RayAgentError, match=breach) as raised:
        attempt._apply([(FAILED, 0, failure), (COMPLETE, 0, None)])
    assert isinstance(raised.value.__cause__, KeyError)


# -- ray.cancel's interrupt landing while the task's thread schedules work on the loop --------
# Ray interrupts the task's thread wherever it is; seen in real runs: inside
# call_soon_threadsafe (its _write_to_self), after the callback was queued.


@miniagent
async def _waiting_agent(ctx: InteractionContext, name: str) -> None:
    reply = MessageTokenAppender()
    ctx.reply(reply.promise)
    reply.append("waiting")
    await asyncio.Event().wait()


def _interrupt_scheduling(monkeypatch: pytest.MonkeyPatch, nth_start: int) -> None:
    """Raise KeyboardInterrupt right after the ``nth_start`` LoopTask start is queued."""
    loop = worker_loop()
    original: Callable[..., Any] = loop.call_soon_threadsafe
    starts = [0]

    def interrupted(callback: Callable[..., object], *args: object, **kwargs: Any) -> object:
        handle = original(callback, *args, **kwargs)
        if getattr(callback, "__name__", "") == "_start":
            starts[0] += 1
            if starts[0] == nth_start:
                raise KeyboardInterrupt  # what ray.cancel does to the task's thread
        return handle

    monkeypatch.setattr(loop, "call_soon_threadsafe", interrupted)


def _pending_loop_tasks() -> list[str]:
    async def pending() -> list[str]:
        current = asyncio.current_task()
        return sorted(
            task.get_coro().__qualname__  # type: ignore[union-attr]
            for task in asyncio.all_tasks()
            if task is not current
        )

    return asyncio.run_coroutine_threadsafe(pending(), worker_loop()).result(10)


def _call() -> Call:
    alias = _waiting_agent.alias
    arguments = dumps_arguments((), {"name": alias}, alias)
    return Call(arguments, [(INPUT_END, None)], None, "key", dumps_settings({}))


def test_an_interrupt_while_the_interaction_is_being_scheduled_cancels_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served = serve_interaction(_waiting_agent, _call())
    _interrupt_scheduling(monkeypatch, 1)  # ray.cancel at once: the task has just started
    with pytest.raises(KeyboardInterrupt):
        next(served)
    monkeypatch.undo()
    assert _pending_loop_tasks() == []  # the agent is not left running on the loop


def test_an_interrupt_while_a_wait_is_being_scheduled_cancels_what_it_waits_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started, cancelled = threading.Event(), threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    coroutine = forever()
    _interrupt_scheduling(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        run_on_loop(coroutine)
    monkeypatch.undo()
    # Ended before the interrupt went on: cancelled before its first step (the loop may not
    # have reached it yet), or cancelled at its wait with its clean-up run; never left waiting.
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED
    assert cancelled.is_set() == started.is_set()
    assert _pending_loop_tasks() == []


class OpenHandle:
    """A value that cannot be pickled, its class named with a vowel."""

    def __reduce__(self) -> str:
        raise TypeError("an open handle stays in its process")


def test_a_value_that_cannot_be_pickled_is_named_after_its_article() -> None:
    # on main: "it holds a OpenHandle"
    with pytest.raises(MessageSerializationError, match=r"it holds an OpenHandle \(<"):
        dumps(OpenHandle(), "a reply message of the agent ECHO")


# -- the far ends of live links: closed, then settled, before the interaction ends ----------

_far_end_record: list[str] = []


class _SettlingFarEnd:
    """A far end whose close stops work that ends a loop turn later (as an extension's may)."""

    def __init__(self) -> None:
        self._stopping: asyncio.Future[None] | None = None

    def open(self, wake: Callable[[], None]) -> None:
        _far_end_record.append("opened")

    def drain(self) -> object | None:
        return None

    def receive(self, message: object) -> None:
        raise AssertionError("the driver sends this end nothing")

    def close(self, error: BaseException | None = None) -> None:
        _far_end_record.append("closed")
        self._stopping = asyncio.ensure_future(self._stop())

    async def _stop(self) -> None:
        await asyncio.sleep(0)  # what the close stopped ends a loop turn later
        _far_end_record.append("stopped")

    async def asettled(self) -> None:
        assert self._stopping is not None
        await self._stopping
        _far_end_record.append("settled")


async def _silent_box(key: str) -> list[InputEvent]:
    await asyncio.Event().wait()  # the driver sends nothing, and has not closed the box
    raise AssertionError("never reached")


@miniagent
async def _replying_agent(ctx: InteractionContext) -> None:
    ctx.reply("done")


def test_the_far_ends_of_the_links_are_closed_and_settled_before_the_interaction_ends() -> None:
    alias = _replying_agent.alias
    mailbox = SimpleNamespace(take=SimpleNamespace(remote=_silent_box))
    links = dumps([_SettlingFarEnd()], "the live links of the caller")
    arguments = dumps_arguments((), {}, alias)
    call = Call(arguments, [(INPUT_END, None)], mailbox, "key", dumps_settings({}), links=links)
    _far_end_record.clear()
    batches = list(serve_interaction(_replying_agent, call))
    # on main: never settled (and what the close stopped might run on after the interaction)
    assert _far_end_record == ["opened", "closed", "stopped", "settled"]
    assert [tag for batch in batches for tag, _, _ in batch] == [WHOLE, COMPLETE]
    assert _pending_loop_tasks() == []


class _LateCountFarEnd(_SettlingFarEnd):
    """A far end that has a last count some loop turns after its close (a call ending)."""

    def __init__(self) -> None:
        super().__init__()
        self._count: str | None = None

    def drain(self) -> object | None:
        count, self._count = self._count, None
        return count

    async def _stop(self) -> None:
        for _ in range(10):  # (more turns than a batch waits for the events ready with it)
            await asyncio.sleep(0)
        self._count = "the last count"


@miniagent
async def _failing_agent(ctx: InteractionContext) -> None:
    raise ValueError("The agent failed on purpose.")


def test_the_last_batch_carries_the_links_last_counts_then_the_agents_failure() -> None:
    """The driver reads no batch after the agent's failure: the links' last counts go first."""
    mailbox = SimpleNamespace(take=SimpleNamespace(remote=_silent_box))
    links = dumps([_LateCountFarEnd()], "the live links of the caller")
    arguments = dumps_arguments((), {}, _failing_agent.alias)
    call = Call(arguments, [(INPUT_END, None)], mailbox, "key", dumps_settings({}), links=links)
    _far_end_record.clear()
    batches = list(serve_interaction(_failing_agent, call))
    # on main: [[FAILED], [LINK]], and the driver, stopped at the failure, lost the count
    assert [[tag for tag, _, _ in batch] for batch in batches] == [[LINK, FAILED]]
    assert loads(batches[0][0][2]) == "the last count"
    assert _far_end_record == ["opened", "closed", "settled"]
    assert _pending_loop_tasks() == []


# -- the link box broken: the calls waiting on the links fail with why ------------------------


class _DyingLinkBox:
    """A mailbox whose link box dies once the worker's first LLM call asks to start."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()  # set on the worker's loop, once the driver saw the ask
        self.take = SimpleNamespace(remote=self._take)

    async def _take(self, key: str) -> list[InputEvent]:
        assert key.endswith(LINKS_BOX)  # (the input came whole with the call)
        await self.asked.wait()
        actor_died: Any = ray.exceptions.ActorDiedError  # (Ray's constructor is untyped)
        raise actor_died()  # its actor's process was killed (the OOM killer, a lost node)


@miniagent
async def _two_llm_calls_agent(ctx: InteractionContext) -> None:
    """Two LLM calls charged to the caller's budget, one after the other: how each ended."""
    for _ in range(2):
        try:
            await offline_agent.fork(token_delay=0).inquire("Hi")
            ctx.reply("answered")
        except Exception as error:  # what the call failed with is the reply
            ctx.reply(f"{type(error).__name__}: {error}")


def test_llm_calls_waiting_on_a_link_whose_mailbox_died_fail_with_the_mailbox_death() -> None:
    """The call waiting for its verdict, and the one asking after, fail with why, not hang."""
    mailbox = _DyingLinkBox()
    far_budget = usage._budget_of("another-process", 1, (5, None, None))  # a limit there
    links = dumps([_AwayEnd((far_budget,), admits=True)], "the live links of the caller")
    arguments = dumps_arguments((), {}, _two_llm_calls_agent.alias)
    call = Call(arguments, [(INPUT_END, None)], mailbox, "key", dumps_settings({}), links=links)
    events = []
    for batch in serve_interaction(_two_llm_calls_agent, call):
        events.extend(batch)
        if any(tag == LINK for tag, _, _ in batch):  # the first call asks to start
            worker_loop().call_soon_threadsafe(mailbox.asked.set)
    replies = [str(loads(payload)) for tag, _, payload in events if tag == WHOLE]
    # on main: "LLMError: An LLM call did not start: the interaction that made it has
    # ended, ...", then the second call waited for ever
    assert len(replies) == 2
    for reply in replies:
        assert reply.startswith(
            "RayWorkerDiedError: The mailbox actor that carries the input messages of the "
            "agent _TWO_LLM_CALLS_AGENT to its Ray worker died (The actor died unexpectedly"
        )
        assert "its live links to the caller (e.g. its budgets) broke with it" in reply
    # the replies end complete; the broken link's last report (why it broke) goes in the last
    # batch, which may come after the one that ends the replies (was: `events[-1]` taken for
    # the replies' end, which failed whenever that report came in a batch of its own)
    assert [tag for tag, _, _ in events if tag != LINK][-1] == COMPLETE
    assert events[-1][0] in (COMPLETE, LINK)
    assert _pending_loop_tasks() == []


# -- the input box broken: the agent's input fails with why -----------------------------------


async def _dead_input_box(key: str) -> list[InputEvent]:
    assert not key.endswith(LINKS_BOX)  # (no live links)
    actor_died: Any = ray.exceptions.ActorDiedError  # (Ray's constructor is untyped)
    raise actor_died()  # its actor's process was killed (the OOM killer, a lost node)


@miniagent
async def _input_reading_agent(ctx: InteractionContext) -> None:
    """Reads its input: replies with what it failed with."""
    try:
        await ctx.message_promises
    except Exception as error:
        ctx.reply(f"{type(error).__name__}: {error}")


def test_an_input_whose_mailbox_died_fails_with_the_mailbox_death_as_the_links_do() -> None:
    mailbox = SimpleNamespace(take=SimpleNamespace(remote=_dead_input_box))
    arguments = dumps_arguments((), {}, _input_reading_agent.alias)
    call = Call(arguments, [], mailbox, "key", dumps_settings({}))  # the input is to follow
    events = [event for batch in serve_interaction(_input_reading_agent, call) for event in batch]
    (reply,) = [str(loads(payload)) for tag, _, payload in events if tag == WHOLE]
    # on main: "RayAgentError: Ray could not run the agent ... (taking its input messages)"
    assert reply.startswith(
        "RayWorkerDiedError: The mailbox actor that carries the input messages of the agent "
        "_INPUT_READING_AGENT to its Ray worker died (The actor died unexpectedly"
    )
    assert "the input messages it had not received yet were lost with it" in reply
    assert events[-1][0] == COMPLETE
    assert _pending_loop_tasks() == []


# -- a link end that fails to close: its error is logged, not lost -----------------------------


class _FailingFarEnd(_SettlingFarEnd):
    """A far end whose close raises (as an extension's may)."""

    def close(self, error: BaseException | None = None) -> None:
        raise RuntimeError("The far end could not close.")

    async def asettled(self) -> None:
        _far_end_record.append("settled what it could")


def test_a_link_end_whose_close_raises_is_logged_once_and_the_interaction_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mailbox = SimpleNamespace(take=SimpleNamespace(remote=_silent_box))
    links = dumps([_FailingFarEnd(), _SettlingFarEnd()], "the live links of the caller")
    arguments = dumps_arguments((), {}, _replying_agent.alias)
    call = Call(arguments, [(INPUT_END, None)], mailbox, "key", dumps_settings({}), links=links)
    _far_end_record.clear()
    with caplog.at_level(logging.ERROR, logger="miniagents"):
        batches = list(serve_interaction(_replying_agent, call))
    assert [tag for batch in batches for tag, _, _ in batch] == [WHOLE, COMPLETE]
    # on main: the end after the failing one was never closed, and no end was settled
    assert _far_end_record == [
        "opened",
        "opened",
        "closed",
        "settled what it could",
        "stopped",
        "settled",
    ]
    # on main: nothing logged here, and asyncio's "Task exception was never retrieved" later
    (record,) = caplog.records
    assert record.getMessage() == (
        "Closing the live links of the agent _REPLYING_AGENT ended with an error that no "
        "consumer ever received."
    )
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "The far end could not close."
    caplog.clear()  # (expected)
    assert _pending_loop_tasks() == []
