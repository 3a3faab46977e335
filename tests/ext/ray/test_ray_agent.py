"""``ray_agent`` against a real local Ray cluster: streaming, errors, cancellation, retries."""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import os
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from miniagents import (
    InteractionContext,
    Message,
    MessagePromise,
    MessageSequencePromise,
    MiniAgents,
)
from miniagents.errors import StreamCancelledError
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.ray import (
    RayCancelTimeoutError,
    RayWorkerDiedError,
    RemoteError,
    RemoteTraceback,
    ray_agent,
)
from miniagents.ext.ray._mailbox import mailbox_actor
from miniagents.ext.ray.errors import RayAgentArgumentError
from tests.ext.ray.remote import (
    CustomError,
    PlotMessage,
    Point,
    SettingsMessage,
    SignalsHandle,
    dying_agent,
    echo_agent,
    failing_agent,
    failing_reply_agent,
    gated_tokens_agent,
    mailbox_reading_agent,
    settings_agent,
    waiting_agent,
)

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]

WITHIN = 60.0
"""Seconds a step may take before the test fails (instead of hanging until pytest's timeout)."""


def fresh_key() -> str:
    return uuid.uuid4().hex


async def test_the_first_token_reaches_the_caller_before_the_remote_agent_finishes(
    signals: SignalsHandle,
) -> None:
    key = fresh_key()
    remote = ray_agent(gated_tokens_agent, num_cpus=0.5)
    async with MiniAgents():
        replies = remote.inquire(signals=signals, key=key)
        messages = aiter(replies)
        first = await asyncio.wait_for(anext(messages), WITHIN)
        tokens = aiter(first)
        # The remote agent is waiting at its gate: this token crossed while it runs.
        assert await asyncio.wait_for(anext(tokens), WITHIN) == "Hel"
        assert first.message_class is PlotMessage
        assert dict(first.metadata) == {"title": "gated", "role": "assistant"}
        await signals.set.remote(f"{key}:gate")
        assert [token async for token in tokens] == ["lo"]
        whole = await first
        second = await asyncio.wait_for(anext(messages), WITHIN)
        assert await replies == (whole, await second)
    assert whole == PlotMessage.model_validate(
        {"text": "Hello", "title": "gated", "role": "assistant", "finish_reason": "stop"}
    )
    assert await second == PlotMessage(text="second", title="after", points=(Point(x=1, y=2),))


async def test_an_llm_agent_streams_its_reply_token_by_token_from_the_worker() -> None:
    remote = ray_agent(offline_agent.fork(token_delay=0), num_cpus=0.5)
    async with MiniAgents():
        reply = remote.inquire("Stream this back, please.")
        tokens = [token async for message in reply async for token in message]
        local = offline_agent.fork(token_delay=0).inquire("Stream this back, please.")
        local_tokens = [token async for message in local async for token in message]
        assert await reply == await local  # the same class, text and metadata
    assert tokens == local_tokens
    assert len(tokens) > 5


async def test_the_worker_runs_in_a_context_with_the_llm_settings_of_the_caller() -> None:
    remote = ray_agent(settings_agent, num_cpus=0.5)
    async with MiniAgents(stream_llm_tokens_by_default=False, llm_logger_agent=True):
        async with MiniAgents(llm_stall_timeout=12.5):
            (reply,) = await remote.inquire()
        (default,) = await ray_agent(settings_agent, num_cpus=0.5).inquire()
    assert isinstance(reply, SettingsMessage)
    assert isinstance(default, SettingsMessage)
    assert (reply.stream, reply.stall_timeout, reply.logger) == (False, 12.5, "True")
    assert (default.stream, default.stall_timeout, default.logger) == (False, 60.0, "True")


async def test_a_setting_that_cannot_be_pickled_stays_behind_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unpicklable_logger = echo_agent.fork(prefix=threading.Lock())
    remote = ray_agent(settings_agent, num_cpus=0.5)
    async with MiniAgents(llm_logger_agent=unpicklable_logger, llm_stall_timeout=7.0):
        (reply,) = await remote.inquire()
    assert isinstance(reply, SettingsMessage)
    assert (reply.logger, reply.stall_timeout) == ("False", 7.0)  # the worker's default
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("llm_logger_agent" in text and "Ray worker" in text for text in warned)


async def test_the_inputs_are_sent_as_they_resolve() -> None:
    remote = ray_agent(echo_agent, num_cpus=0.5)
    async with MiniAgents():
        call = remote.initiate_inquiry(prefix="echo: ")
        replies = aiter(call.reply_sequence(finish_call=False))
        for text in ("one", "two", "three"):
            call.send_message(text)  # the next one is sent only after this one's reply
            assert str(await asyncio.wait_for(anext(replies), WITHIN)) == f"echo: {text}"
        call.finish()
        assert [promise async for promise in replies] == []
    assert await mailbox_actor().boxes.remote() == 0  # every interaction's box is closed


async def test_a_dead_mailbox_is_replaced_and_the_interaction_runs_again_on_the_new_one() -> None:
    import ray

    dead = mailbox_actor()
    ray.kill(dead)  # its process ends, as with the OOM killer
    remote = ray_agent(echo_agent, num_cpus=0.5)
    async with MiniAgents():
        call = remote.initiate_inquiry(prefix="echo: ")  # its input goes through the mailbox
        replies = aiter(call.reply_sequence(finish_call=False))
        call.send_message("one")
        assert str(await asyncio.wait_for(anext(replies), WITHIN)) == "echo: one"
        call.finish()
        assert [promise async for promise in replies] == []
    assert mailbox_actor() is not dead
    assert await mailbox_actor().boxes.remote() == 0


async def test_a_mailbox_that_dies_after_a_reply_ends_the_replies_with_worker_died() -> None:
    import ray

    remote = ray_agent(echo_agent, num_cpus=0.5)
    async with MiniAgents():
        call = remote.initiate_inquiry(prefix="echo: ")
        replies = aiter(call.reply_sequence(finish_call=False))
        call.send_message("one")
        assert str(await asyncio.wait_for(anext(replies), WITHIN)) == "echo: one"
        dead = mailbox_actor()
        ray.kill(dead)
        with pytest.raises(RayWorkerDiedError, match=r"^The mailbox actor .* died") as raised:
            await asyncio.wait_for(anext(replies), WITHIN)
    assert "not run again, as some of its replies had reached the caller" in str(raised.value)
    assert isinstance(raised.value.__cause__, ray.exceptions.RayActorError)
    assert mailbox_actor() is not dead  # the next interactions get a new one


async def signalled(signal: Any, replies: asyncio.Future[Any]) -> None:
    """Wait for ``signal`` (an ``ObjectRef`` of ``signals.wait``), or raise how ``replies`` ended.

    An interaction that gives up too early fails the test at once, with its error.
    """
    waiting = asyncio.ensure_future(signal)
    done, _ = await asyncio.wait(
        [waiting, replies], timeout=WITHIN, return_when=asyncio.FIRST_COMPLETED
    )
    if waiting in done:
        return
    waiting.cancel()
    if replies in done:
        pytest.fail(f"The replies ended before the signal was set, with {replies.result()!r}.")
    raise TimeoutError(f"The signal was not set within {WITHIN} s.")


async def kill_mailboxes(
    signals: SignalsHandle, key: str, attempts: range, replies: asyncio.Future[Any]
) -> None:
    """Kill the mailbox of each of ``attempts`` of ``mailbox_reading_agent``, once it reads it.

    Each kill waits for the attempt to start: its mailbox is the one named then. (It does
    not wait for the attempt to fail: the driver may cancel it first, and after the last
    attempt the replies end at once.)
    """
    import ray

    for attempt in attempts:
        await signalled(signals.wait.remote(f"{key}:started:{attempt}"), replies)
        ray.kill(mailbox_actor())  # the mailbox this attempt reads its input from


async def test_an_interaction_runs_again_after_each_mailbox_death_within_max_retries(
    signals: SignalsHandle,
) -> None:
    key = fresh_key()
    remote = ray_agent(mailbox_reading_agent, num_cpus=0.5, max_retries=2)
    async with MiniAgents():
        call = remote.initiate_inquiry(signals=signals, key=key)
        replies = asyncio.ensure_future(call.reply_sequence(finish_call=False))
        await kill_mailboxes(signals, key, range(1, 3), replies)
        await signalled(signals.wait.remote(f"{key}:started:3"), replies)
        call.send_message("one")
        call.finish()
        messages = await asyncio.wait_for(replies, WITHIN)
    assert [str(message) for message in messages] == ["read 1 at attempt 3"]
    assert await mailbox_actor().boxes.remote() == 0


@pytest.mark.parametrize(
    ("max_retries", "worker_dies_at"),
    [(0, ()), (1, (1,)), (2, ())],
    ids=["no retries", "a worker death then a mailbox death", "two retries"],
)
async def test_mailbox_deaths_and_worker_deaths_share_the_max_retries_budget(
    signals: SignalsHandle, max_retries: int, worker_dies_at: tuple[int, ...]
) -> None:
    import ray

    key = fresh_key()
    tries = max_retries + 1
    remote = ray_agent(mailbox_reading_agent, num_cpus=0.5, max_retries=max_retries)
    async with MiniAgents():
        call = remote.initiate_inquiry(signals=signals, key=key, die_at=worker_dies_at)
        replies = asyncio.ensure_future(call.reply_sequence(finish_call=False))
        await kill_mailboxes(signals, key, range(len(worker_dies_at) + 1, tries + 1), replies)
        call.send_message("one")  # one try too many would read it, and succeed
        call.finish()
        with pytest.raises(RayWorkerDiedError, match=r"^The mailbox actor .* died") as raised:
            await asyncio.wait_for(replies, WITHIN)
    message = str(raised.value)
    assert f"it was tried {tries} time(s)" in message
    assert "raise max_retries in ray_agent(...)" in message
    assert isinstance(raised.value.__cause__, ray.exceptions.RayActorError)
    assert await signals.counted.remote(key) == tries


async def test_a_remote_error_reaches_every_consumer_with_its_own_type_and_message() -> None:
    remote = ray_agent(failing_agent, num_cpus=0.5)
    async with MiniAgents():
        replies = remote.inquire()
        with pytest.raises(CustomError, match=r"^the remote agent failed on purpose$") as iterated:
            await _texts_of(replies)
        with pytest.raises(CustomError) as awaited:
            await replies
        assert str(await anext(aiter(replies))) == "before the error"
    assert awaited.value is iterated.value  # one error, given to every consumer
    cause = iterated.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "in failing_agent" in cause.traceback
    assert 'raise CustomError("the remote agent failed on purpose")' in cause.traceback


async def test_an_error_that_cannot_be_unpickled_arrives_as_a_remote_error_naming_it() -> None:
    remote = ray_agent(failing_agent, num_cpus=0.5)
    async with MiniAgents():
        with pytest.raises(RemoteError, match="PickyError: the picky step failed because it was"):
            await remote.inquire(picky=True)


async def test_a_remote_error_that_nobody_reads_is_logged_as_lost_on_the_driver(
    caplog: pytest.LogCaptureFixture,
) -> None:
    remote = ray_agent(failing_agent, num_cpus=0.5)
    async with MiniAgents():
        replies = remote.inquire()
        await asyncio.wait_for(anext(aiter(replies)), WITHIN)  # the first message only
    lost = [r for r in caplog.records if r.name == "miniagents" and r.levelno == logging.ERROR]
    assert len(lost) == 1
    assert "no consumer ever received" in lost[0].getMessage()
    assert isinstance(lost[0].exc_info and lost[0].exc_info[1], CustomError)
    caplog.clear()


@pytest.mark.parametrize("reading", ["tokens", "whole"])
async def test_a_reply_message_that_fails_gives_its_error_once_and_logs_nothing(
    caplog: pytest.LogCaptureFixture, reading: str
) -> None:
    async def received(replies: MessageSequencePromise) -> list[BaseException]:
        """The errors a consumer receives: from the message's tokens, then from the replies."""
        errors: list[BaseException] = []
        if reading == "tokens":
            message = await asyncio.wait_for(anext(aiter(replies)), WITHIN)
            with pytest.raises(CustomError) as in_message:
                [token async for token in message]
            errors.append(in_message.value)
        with pytest.raises(CustomError) as in_replies:
            await replies
        return [*errors, in_replies.value]

    remote = ray_agent(failing_reply_agent, num_cpus=0.5)
    async with MiniAgents():
        errors = await received(remote.inquire())
    assert str(errors[0]) == "the stream broke"
    assert all(error is errors[0] for error in errors)  # one error, as from a local agent
    del errors  # (their tracebacks hold the streams)
    gc.collect()  # the streams are gone: an error no consumer received would be reported now
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("reading", ["tokens", "whole"])
async def test_when_every_consumer_gives_up_the_worker_gets_cancelled(
    signals: SignalsHandle, reading: str
) -> None:
    key = fresh_key()
    remote = ray_agent(waiting_agent, num_cpus=0.5)
    async with MiniAgents():
        replies = remote.inquire(signals=signals, key=key)

        async def consume() -> None:
            if reading == "whole":
                await replies
            async for promise in replies:  # the consumer waits for the message's next token
                async for _token in promise:
                    pass

        consumer = asyncio.create_task(consume())
        await asyncio.wait_for(signals.wait.remote(f"{key}:started"), WITHIN)
        consumer.cancel()  # the only consumer gives up
        with pytest.raises(asyncio.CancelledError):
            await consumer
        pid = await asyncio.wait_for(signals.wait.remote(f"{key}:cancelled"), WITHIN)
        with pytest.raises(StreamCancelledError):
            await replies
    assert isinstance(pid, int)
    assert pid != os.getpid()  # the agent saw CancelledError in the worker's process


async def test_a_hanging_cancel_becomes_a_timeout_error_within_cancel_timeout(
    signals: SignalsHandle, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import ray

    release = threading.Event()
    real_cancel = ray.cancel
    cancels: list[object] = []

    def hanging_cancel(ref: object, **options: object) -> None:  # Ray's cancel, stuck
        cancels.append(ref)
        release.wait()
        real_cancel(ref, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(ray, "cancel", hanging_cancel)
    key = fresh_key()
    remote = ray_agent(waiting_agent, num_cpus=0.5, cancel_timeout=0.5)
    try:
        with caplog.at_level(logging.ERROR):
            async with MiniAgents():
                replies = remote.inquire(signals=signals, key=key)
                consumer = asyncio.create_task(replies.aresolve())
                await asyncio.wait_for(signals.wait.remote(f"{key}:started"), WITHIN)
                consumer.cancel()  # the only consumer gives up: the task is to be cancelled
                with pytest.raises(asyncio.CancelledError):
                    await consumer
            # the context ended: the interaction did too, within its cancel_timeout
        assert len(cancels) == 1
        errors = [r.exc_info[1] for r in caplog.records if r.exc_info and r.exc_info[1]]
        assert len(errors) == 1
        assert isinstance(errors[0], RayCancelTimeoutError)
        assert isinstance(errors[0], TimeoutError)
        assert "waiting for Ray's cancel" in str(errors[0])
        caplog.clear()  # the one error expected: logged, as the replies had ended
    finally:
        release.set()  # the real cancel goes on: the worker stops
    await asyncio.wait_for(signals.wait.remote(f"{key}:cancelled"), WITHIN)


async def test_an_interaction_whose_worker_dies_before_replying_is_run_again(
    signals: SignalsHandle,
) -> None:
    key = fresh_key()
    remote = ray_agent(dying_agent, num_cpus=0.5)
    async with MiniAgents():
        replies = await asyncio.wait_for(
            remote.inquire(signals=signals, key=key, after_reply=False), WITHIN
        )
    assert [str(message) for message in replies] == ["done at attempt 2"]
    assert await signals.counted.remote(key) == 2


@pytest.mark.parametrize("replay_window", [None, 8])
async def test_a_retry_sends_the_inputs_again_unless_they_passed_their_replay_window(
    signals: SignalsHandle, replay_window: int | None
) -> None:
    key = fresh_key()
    remote = ray_agent(dying_agent, num_cpus=0.5)

    async def inputs() -> AsyncIterator[str]:  # streamed: a list would be kept whole anyway
        for number in range(20):
            yield f"input {number}"

    async with MiniAgents(replay_window=replay_window):
        replies = remote.inquire(
            inputs(), signals=signals, key=key, after_reply=False, read_inputs=True
        )
        if replay_window is None:  # every input is kept: the retry gets them all again
            assert str(await asyncio.wait_for(replies, WITHIN)) == "read 20 at attempt 2"
            return
        with pytest.raises(RayWorkerDiedError) as raised:
            await asyncio.wait_for(replies, WITHIN)
    message = str(raised.value)
    assert "it was not run again: its input had passed its replay window" in message
    assert "MiniAgents(replay_window=None)" in message
    assert "max_retries=0" in message
    assert await signals.counted.remote(key) == 1


async def test_a_worker_that_dies_after_replying_ends_the_replies_with_worker_died(
    signals: SignalsHandle,
) -> None:
    key = fresh_key()
    remote = ray_agent(dying_agent, num_cpus=0.5)
    async with MiniAgents():
        replies = remote.inquire(signals=signals, key=key, after_reply=True)
        messages = aiter(replies)
        first: MessagePromise = await asyncio.wait_for(anext(messages), WITHIN)
        assert str(await first) == "attempt 1"
        await signals.set.remote(f"{key}:read")  # now the worker kills itself
        with pytest.raises(
            RayWorkerDiedError, match="it was not run again, as some of its replies had reached"
        ):
            await asyncio.wait_for(anext(messages), WITHIN)
    assert await signals.counted.remote(key) == 1  # not retried: a reply was out already


async def test_a_nested_call_whose_task_waits_long_to_start_logs_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import miniagents.ext.ray.agent as agent_module

    monkeypatch.setattr(agent_module, "in_worker_loop", lambda: True)  # as on a Ray worker
    monkeypatch.setattr(agent_module, "SCHEDULING_WARNING", 0.1)
    warned = asyncio.Event()

    class Warned(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno == logging.WARNING and "has not started" in record.getMessage():
                warned.set()

    heard = Warned()
    logging.getLogger("miniagents").addHandler(heard)
    remote = ray_agent(echo_agent, num_cpus=0.5, resources={"no node has it": 1.0})
    try:
        async with MiniAgents():
            consumer = asyncio.create_task(remote.inquire("never runs").aresolve())
            await asyncio.wait_for(warned.wait(), WITHIN)  # its task is never scheduled
            consumer.cancel()
            with pytest.raises(asyncio.CancelledError):
                await consumer
    finally:
        logging.getLogger("miniagents").removeHandler(heard)
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "The remote interaction of the agent ECHO_AGENT, called by an agent on a Ray" in warning
    assert "not started after 0.1 s" in warning
    assert "num_cpus=0" in warning


async def test_the_remote_agent_keeps_its_alias_parameters_and_bound_arguments() -> None:
    remote = ray_agent(echo_agent.fork(prefix="bound: "), num_cpus=0.5)
    assert remote.alias == echo_agent.alias
    assert remote.description == echo_agent.description
    async with MiniAgents():
        assert str(await remote.inquire("x")) == "bound: x"
        assert str(await remote.inquire("x", prefix="given: ")) == "given: x"
        assert str(await remote.fork(prefix="forked: ").inquire("x")) == "forked: x"
        assert await remote.inquire(Message(text="as is"), prefix="") == (Message(text="as is"),)


def test_the_remote_agents_function_copies_what_a_wrapper_should_and_no_more() -> None:
    llm = offline_agent.fork(reply="x")  # (its function, an object, has attributes of its own)
    remote = ray_agent(llm, num_cpus=0.5)
    assert vars(llm.func)["_provider"] is not None
    assert [name for name in vars(remote.func) if not name.startswith("__")] == []
    assert inspect.signature(remote.func) == inspect.signature(llm.func)
    assert (remote.func.__name__, remote.func.__doc__) == (llm.func.__name__, llm.func.__doc__)


async def _texts_of(replies: MessageSequencePromise) -> list[str]:
    return [str(await promise) async for promise in replies]


def test_something_that_is_not_an_agent_is_refused_naming_the_fix() -> None:
    async def forgot_the_decorator(ctx: InteractionContext) -> None:
        """An agent function without @miniagent."""

    not_an_agent: Any = forgot_the_decorator
    with pytest.raises(RayAgentArgumentError, match=r"^ray_agent\(\) needs an agent .*@miniagent"):
        ray_agent(not_an_agent)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_retries": "2"}, r"max_retries to be a whole number of at least 0; got '2'\. It"),
        ({"max_retries": True}, r"max_retries to be a whole number of at least 0; got True\. "),
        ({"cancel_timeout": "5"}, r"cancel_timeout to be a positive, finite .*; got '5'\. It"),
        ({"cancel_timeout": float("inf")}, r"cancel_timeout to be a positive, finite .*; got inf"),
    ],
)
def test_our_options_of_a_wrong_type_or_value_are_refused_at_once(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(RayAgentArgumentError, match=rf"^ray_agent\(\) needs {message}"):
        ray_agent(echo_agent, **options)


def test_an_option_ray_does_not_know_fails_at_once_with_rays_message() -> None:
    with pytest.raises(ValueError, match="Invalid option keyword num_cpu for remote functions"):
        ray_agent(echo_agent, num_cpu=1)  # type: ignore[call-arg]


def test_a_cancel_that_ends_after_a_second_ctrl_c_closed_the_loop_leaves_no_error_behind(
    signals: SignalsHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    entered, release = threading.Event(), threading.Event()
    threads: list[threading.Thread] = []
    real_cancel = ray.cancel

    def slow_cancel(ref: object, **options: object) -> None:  # Ray's cancel, still on its way
        threads.append(threading.current_thread())
        entered.set()
        release.wait()
        real_cancel(ref, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(ray, "cancel", slow_cancel)
    failures: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", failures.append)
    key = fresh_key()
    remote = ray_agent(waiting_agent, num_cpus=0.5, cancel_timeout=WITHIN)

    async def call() -> None:
        async with MiniAgents():
            await remote.inquire(signals=signals, key=key)

    async def interrupted_twice() -> None:  # what asyncio.run does at each Ctrl-C
        calling = asyncio.create_task(call())
        await asyncio.wait_for(signals.wait.remote(f"{key}:started"), WITHIN)
        calling.cancel()  # the first: the call is given up, its Ray task is to be cancelled
        assert await asyncio.to_thread(entered.wait, WITHIN)
        calling.cancel()  # the second, while Ray's cancel is on its way
        with pytest.raises(asyncio.CancelledError):
            await calling

    asyncio.run(interrupted_twice())  # (then it cancels the tasks left, and closes the loop)
    release.set()  # Ray's cancel ends, with nobody on a loop to tell
    threads[0].join(WITHIN)
    assert not threads[0].is_alive()
    assert [failure.exc_value for failure in failures] == []
    assert isinstance(ray.get(signals.wait.remote(f"{key}:cancelled"), timeout=WITHIN), int)
