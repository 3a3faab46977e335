"""Ray's cancel of the caller's tasks lets the tasks that have ended be (``ext/ray/_cancel``).

A ``ray.cancel`` that comes while Ray takes in a task's reply aborts the caller's process
(Ray's own race, see the module): the tasks that have ended, or end within the grace, are
not cancelled at all, and the tasks still running are. So it goes for a ``ray_agent``
whose input messages cannot be sent too (its cancel runs off the loop, and the
interaction waits for it).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any, cast

import pytest
import ray

from miniagents import Message, MiniAgents
from miniagents.errors import MessageSerializationError, StreamCancelledError
from miniagents.ext.ray import agent as agent_module
from miniagents.ext.ray import ray_agent
from miniagents.ext.ray._cancel import cancel_running
from miniagents.ext.ray._mailbox import mailbox_actor
from miniagents.ext.ray.errors import RayAgentError
from tests.ext.ray.remote import SignalsHandle, gated_agent, input_reading_agent, waiting_agent

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]

WITHIN = 60.0


@ray.remote(num_cpus=0)
def _quick() -> str:
    return "ended"


@ray.remote(num_cpus=0)
def _waiting(signals: SignalsHandle, name: str) -> str:
    ray.get(signals.set.remote(f"{name}:started"))
    ray.get(signals.wait.remote(name))  # never set: only a cancel ends it
    return "ended"


@ray.remote(num_cpus=0, num_returns="streaming")
def _counting() -> Iterator[int]:
    yield 1
    yield 2


@pytest.fixture
def cancelled(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """What ``ray.cancel`` is called for (it still cancels)."""
    calls: list[object] = []
    real = ray.cancel

    def recording(target: Any, **options: Any) -> None:
        calls.append(target)
        real(target, **options)

    monkeypatch.setattr(ray, "cancel", recording)
    return calls


def test_only_the_tasks_still_running_are_cancelled(
    signals: SignalsHandle, cancelled: list[object]
) -> None:
    name = f"cancel:{uuid.uuid4()}"
    ended = _quick.remote()
    assert ray.get(ended, timeout=WITHIN) == "ended"
    running = _waiting.remote(signals, name)
    ray.get(signals.wait.remote(f"{name}:started"), timeout=WITHIN)

    cancel_running([(ended, ended), (running, running)])

    assert cancelled == [running]
    assert ray.get(ended, timeout=WITHIN) == "ended"
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(running, timeout=WITHIN)


def test_a_generator_that_has_ended_is_not_cancelled(cancelled: list[object]) -> None:
    generator = cast(ray.ObjectRefGenerator, _counting.remote())
    assert [ray.get(ref, timeout=WITHIN) for ref in generator] == [1, 2]

    cancel_running([(generator, generator.completed())])

    assert cancelled == []


def test_nothing_to_cancel_waits_for_nothing(cancelled: list[object]) -> None:
    cancel_running([], grace=WITHIN)  # (it would wait a minute, were there a task)
    assert cancelled == []


def _unsendable() -> Message:
    return Message(text="locked", meta={"lock": threading.Lock()})


def _other_tasks() -> list[str]:
    current = asyncio.current_task()
    return [task.get_name() for task in asyncio.all_tasks() if task is not current]


async def test_a_ray_agent_whose_input_cannot_be_sent_is_cancelled_if_it_runs_on(
    signals: SignalsHandle, cancelled: list[object]
) -> None:
    key = f"unsent:{uuid.uuid4()}"
    remote = ray_agent(waiting_agent, num_cpus=0.5)
    async with MiniAgents():
        call = remote.initiate_inquiry(signals=signals, key=key).send_message("fine")
        reading = asyncio.create_task(call.reply_sequence(finish_call=False).aresolve())
        await asyncio.wait_for(signals.wait.remote(f"{key}:started"), WITHIN)
        call.send_message(_unsendable()).finish()  # its sender fails: the task is to stop
        with pytest.raises(MessageSerializationError, match=r"^The field \"meta\['lock'\]\""):
            await reading
        await asyncio.wait_for(signals.wait.remote(f"{key}:cancelled"), WITHIN)
        assert len(cancelled) == 1  # once: the interaction's stop waited for the same cancel
    assert _other_tasks() == []


async def test_a_ray_agent_whose_input_cannot_be_sent_and_that_ends_in_the_grace_is_let_end(
    signals: SignalsHandle, cancelled: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"unsent:{uuid.uuid4()}"
    threads: list[bool] = []

    def ending_in_the_grace(tasks: Sequence[tuple[Any, Any]]) -> None:
        threads.append(threading.current_thread() is threading.main_thread())
        ray.get(signals.set.remote(f"{key}:gate"), timeout=WITHIN)  # the agent ends now
        cancel_running(tasks, grace=WITHIN)  # (a grace long enough for it, whatever the load)

    monkeypatch.setattr(agent_module, "cancel_running", ending_in_the_grace)
    remote = ray_agent(gated_agent, num_cpus=0.5)
    async with MiniAgents():
        call = remote.initiate_inquiry(signals=signals, key=key).send_message("fine")
        reading = asyncio.create_task(call.reply_sequence(finish_call=False).aresolve())
        await asyncio.wait_for(signals.wait.remote(f"{key}:started"), WITHIN)
        call.send_message(_unsendable()).finish()  # its sender fails: the task is to stop
        with pytest.raises(MessageSerializationError, match=r"^The field \"meta\['lock'\]\""):
            await reading
        assert threads == [False]  # once, off the loop's thread
        assert cancelled == []  # it ended by itself: no cancel raced its reply
    assert _other_tasks() == []


async def test_a_ray_agent_whose_stop_is_cancelled_still_closes_its_mailbox_box(
    signals: SignalsHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Ctrl-C cancels the stop while it waits for Ray's cancel: the box is closed.

    (The agent's input ends when its box closes: the close has run when it says so.)
    """
    key = f"cut-short:{uuid.uuid4()}"
    loop = asyncio.get_running_loop()
    cancelling = asyncio.Event()
    release = threading.Event()

    def slow_cancel(tasks: Sequence[tuple[Any, Any]]) -> None:
        loop.call_soon_threadsafe(cancelling.set)
        release.wait()  # Ray's cancel hangs until the test is done with the stop
        cancel_running(tasks)

    monkeypatch.setattr(agent_module, "cancel_running", slow_cancel)
    mailbox = mailbox_actor()
    before = await asyncio.wait_for(mailbox.boxes.remote(), WITHIN)
    remote = ray_agent(input_reading_agent, num_cpus=0.5)
    try:
        async with MiniAgents():
            call = remote.initiate_inquiry(signals=signals, key=key).send_message("more to come")
            reading = asyncio.create_task(call.reply_sequence(finish_call=False).aresolve())
            await asyncio.wait_for(signals.wait.remote(f"{key}:started"), WITHIN)
            assert await asyncio.wait_for(mailbox.boxes.remote(), WITHIN) == before + 1
            (interaction,) = [
                task
                for task in asyncio.all_tasks()
                if task.get_name() == f"miniagents:{input_reading_agent.alias}"
            ]
            interaction.cancel()  # the first Ctrl-C: the interaction stops, Ray's cancel hangs
            await asyncio.wait_for(cancelling.wait(), WITHIN)
            interaction.cancel()  # the second one: its stop is cancelled
            await asyncio.wait([interaction, reading])
            assert interaction.cancelled()
            with pytest.raises(StreamCancelledError):
                reading.result()
            await asyncio.wait_for(signals.wait.remote(f"{key}:input-ended"), WITHIN)
            assert await asyncio.wait_for(mailbox.boxes.remote(), WITHIN) == before
            call.finish()
    finally:
        release.set()
    await asyncio.wait_for(signals.wait.remote(f"{key}:cancelled"), WITHIN)


async def test_a_ray_agent_whose_cancel_fails_ends_with_a_ray_agent_error(
    signals: SignalsHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray's cancel fails as it does once Ray is shut down: the interaction says what failed."""
    key = f"cancel-fails:{uuid.uuid4()}"
    asked: list[Sequence[tuple[Any, Any]]] = []

    def failing_cancel(tasks: Sequence[tuple[Any, Any]]) -> None:
        asked.append(tasks)
        system_error: Any = ray.exceptions.RaySystemError  # (Ray's constructor is untyped)
        raise system_error("Ray has not been started yet. You can start Ray with 'ray.init()'.")

    monkeypatch.setattr(agent_module, "cancel_running", failing_cancel)
    remote = ray_agent(waiting_agent, num_cpus=0.5)
    async with MiniAgents():
        call = remote.initiate_inquiry(signals=signals, key=key).send_message("fine")
        call.finish()
        reading = asyncio.create_task(call.reply_sequence(finish_call=False).aresolve())
        await asyncio.wait_for(signals.wait.remote(f"{key}:started"), WITHIN)
        (interaction,) = [
            task
            for task in asyncio.all_tasks()
            if task.get_name() == f"miniagents:{waiting_agent.alias}"
        ]
        interaction.cancel()  # its stop asks Ray to cancel the task, which fails
        await asyncio.wait([interaction, reading])
        with pytest.raises(RayAgentError) as raised:  # what its caller gets
            reading.result()
        assert str(raised.value).startswith(
            f"Ray could not run the agent {waiting_agent.alias} (cancelling its Ray task): "
            "System error: Ray has not been started yet."
        )
        assert "being stopped because" not in str(raised.value)  # (nothing else was why)
        assert isinstance(raised.value.__cause__, ray.exceptions.RaySystemError)
        (tasks,) = asked
        await asyncio.to_thread(cancel_running, tasks)  # the task still runs: cancel it
        await asyncio.wait_for(signals.wait.remote(f"{key}:cancelled"), WITHIN)


async def test_a_ray_agent_whose_input_cannot_be_sent_and_whose_cancel_fails_ends_with_it(
    signals: SignalsHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task runs on, its replies never end: the interaction ends with the cancel's failure.

    (It waited for the task's replies until its consumers gave up.)
    """
    key = f"unsent-cancel-fails:{uuid.uuid4()}"
    loop = asyncio.get_running_loop()
    failed = asyncio.Event()
    asked: list[Sequence[tuple[Any, Any]]] = []

    def failing_cancel(tasks: Sequence[tuple[Any, Any]]) -> None:
        asked.append(tasks)
        loop.call_soon_threadsafe(failed.set)
        system_error: Any = ray.exceptions.RaySystemError  # (Ray's constructor is untyped)
        raise system_error("Ray has not been started yet. You can start Ray with 'ray.init()'.")

    monkeypatch.setattr(agent_module, "cancel_running", failing_cancel)
    remote = ray_agent(waiting_agent, num_cpus=0.5)
    try:
        async with MiniAgents():
            call = remote.initiate_inquiry(signals=signals, key=key).send_message("fine")
            reading = asyncio.create_task(call.reply_sequence(finish_call=False).aresolve())
            await asyncio.wait_for(signals.wait.remote(f"{key}:started"), WITHIN)
            call.send_message(_unsendable()).finish()  # its sender fails: the task is to stop
            await asyncio.wait_for(failed.wait(), WITHIN)  # ... and Ray's cancel fails
            with pytest.raises(RayAgentError) as raised:  # (before: a TimeoutError, a hang)
                await asyncio.wait_for(reading, WITHIN)
            assert str(raised.value).startswith(
                f"Ray could not run the agent {waiting_agent.alias} (cancelling its Ray task): "
                "System error: Ray has not been started yet."
            )
            # why it was being cancelled (on main: not said, the caller saw the cancel only)
            because = " It was being stopped because of this error: The field \"meta['lock']\""
            assert because in str(raised.value)
            assert isinstance(raised.value.__cause__, ray.exceptions.RaySystemError)
            assert len(asked) == 1
    finally:
        for tasks in asked:  # the task still runs: cancel it
            await asyncio.to_thread(cancel_running, tasks)
    await asyncio.wait_for(signals.wait.remote(f"{key}:cancelled"), WITHIN)
    assert _other_tasks() == []


class _Logged(logging.Handler):
    """The records of a logger, with an event set at each (it logs on the loop's thread)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.event.set()


async def test_a_ray_agent_whose_stop_is_cut_short_logs_its_cancel_failing_later(
    signals: SignalsHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Ctrl-C gives up on Ray's cancel; that it failed later is logged, once.

    (It was lost: nobody waited for it any more.)
    """
    key = f"cut-short-fails:{uuid.uuid4()}"
    loop = asyncio.get_running_loop()
    cancelling = asyncio.Event()
    release = threading.Event()

    def failing_late(tasks: Sequence[tuple[Any, Any]]) -> None:
        loop.call_soon_threadsafe(cancelling.set)
        release.wait()  # Ray's cancel hangs until the stop was given up on
        cancel_running(tasks)  # (the task is cancelled all the same, for the test's end)
        system_error: Any = ray.exceptions.RaySystemError  # (Ray's constructor is untyped)
        raise system_error("Ray has not been started yet. You can start Ray with 'ray.init()'.")

    monkeypatch.setattr(agent_module, "cancel_running", failing_late)
    logged = _Logged()
    miniagents_logger = logging.getLogger("miniagents")
    miniagents_logger.addHandler(logged)
    remote = ray_agent(waiting_agent, num_cpus=0.5)
    try:
        async with MiniAgents():
            call = remote.initiate_inquiry(signals=signals, key=key).send_message("fine")
            call.finish()
            reading = asyncio.create_task(call.reply_sequence(finish_call=False).aresolve())
            await asyncio.wait_for(signals.wait.remote(f"{key}:started"), WITHIN)
            (interaction,) = [
                task
                for task in asyncio.all_tasks()
                if task.get_name() == f"miniagents:{waiting_agent.alias}"
            ]
            interaction.cancel()  # the first Ctrl-C: the interaction stops, Ray's cancel hangs
            await asyncio.wait_for(cancelling.wait(), WITHIN)
            interaction.cancel()  # the second one: its stop is cut short
            await asyncio.wait([interaction, reading])
            assert interaction.cancelled()
            assert logged.records == []
            release.set()  # Ray's cancel fails now
            await asyncio.wait_for(logged.event.wait(), WITHIN)
        (record,) = logged.records
        assert record.levelno == logging.WARNING
        assert record.getMessage().startswith(
            f"Stopping the Ray task of the agent {waiting_agent.alias} failed after it had been "
            'given up on (RaySystemError("Ray has not been started yet.'
        )
    finally:
        release.set()
        miniagents_logger.removeHandler(logged)
    await asyncio.wait_for(signals.wait.remote(f"{key}:cancelled"), WITHIN)


def _cut_short_attempt() -> Any:
    """An attempt of a ray agent whose stop is cut short (no task, no mailbox: only its cancel)."""
    runner = SimpleNamespace(agent=SimpleNamespace(alias="FAKE"), cancel_timeout=WITHIN)
    return agent_module._Attempt(cast(Any, runner), cast(Any, None))


async def test_a_cancel_still_pending_when_the_stop_is_let_go_is_logged_if_it_fails() -> None:
    """``_let_go`` leaves Ray's cancel running: its failure, later, is logged once.

    (On a real cluster the cancel's end cannot be ordered after the let-go: a future stands
    for it here.)
    """
    logged = _Logged()
    miniagents_logger = logging.getLogger("miniagents")
    miniagents_logger.addHandler(logged)
    try:
        outcomes: dict[str, asyncio.Future[None]] = {}
        for outcome in ("fails", "ends", "is cancelled"):
            attempt = _cut_short_attempt()
            attempt.cancelling = outcomes[outcome] = asyncio.get_running_loop().create_future()
            attempt._let_go(None, [])
        assert logged.records == []  # nothing is known yet
        system_error: Any = ray.exceptions.RaySystemError  # (Ray's constructor is untyped)
        outcomes["fails"].set_exception(system_error("Ray has not been started yet."))
        outcomes["ends"].set_result(None)
        outcomes["is cancelled"].cancel()
        await asyncio.wait(outcomes.values())  # (their callbacks run first: added first)
        # on main without the let-go's callback: nothing logged (the failure was lost)
        (record,) = logged.records
        assert record.getMessage().startswith(
            "Stopping the Ray task of the agent FAKE failed after it had been given up on "
            "(RaySystemError('Ray has not been started yet.'"
        )
    finally:
        miniagents_logger.removeHandler(logged)


def _interrupt() -> None:
    raise KeyboardInterrupt  # Ctrl-C, landing in the loop itself (as in its select())


def test_ctrl_c_under_a_bare_run_until_complete_stops_the_interaction_once_the_task_is_cancelled(
    signals: SignalsHandle,
) -> None:
    """What the Ray page says: the loop stops where it is; cancelling the main task stops it."""
    key = f"bare-loop:{uuid.uuid4()}"
    remote = ray_agent(waiting_agent, num_cpus=0.5)
    loop = asyncio.new_event_loop()

    async def main() -> None:
        async with MiniAgents():
            replies = remote.inquire("fine", signals=signals, key=key)
            reading = asyncio.ensure_future(replies.aresolve())
            await asyncio.wait_for(signals.wait.remote(f"{key}:started"), WITHIN)
            loop.call_soon(_interrupt)
            await reading

    task = loop.create_task(main())
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(task)
        assert not task.done()  # the interaction waits, as the loop does
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            loop.run_until_complete(task)
        ray.get(signals.wait.remote(f"{key}:cancelled"), timeout=WITHIN)  # Ray's task stopped
        assert [t for t in asyncio.all_tasks(loop) if not t.done()] == []
    finally:
        loop.close()
