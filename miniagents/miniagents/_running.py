"""Running one interaction of an agent: its task, its replies, its limit and its errors.

``inquire`` starts an interaction: a reply sequence (its core tracked by the context) and a
task that runs the agent function. The task starts at once, or, for a lazy interaction
(``start_asap=False``), when the replies are first consumed, in the context captured at
``inquire``; either way it joins the :class:`~miniagents.miniagents._scope.InteractionScope`
current at ``inquire``, if any. Inside the task, the agent first takes a slot of its
concurrency limit (if it has one), then runs (outside every scope) with an
:class:`InteractionContext` whose input waits for room in the replies before each message
(see :mod:`miniagents.promising.limits`).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, cast

from reactivex import Observable

from miniagents.messages.appender import MessageSequenceAppender
from miniagents.messages.errors import MessageTypeError
from miniagents.messages.message import Message
from miniagents.messages.sequence import (
    MessageObservable,
    MessageSequencePromise,
    MessageType,
    as_message_sequence,
)
from miniagents.miniagents._scope import current_scope
from miniagents.miniagents.context import MiniAgents
from miniagents.miniagents.interaction import InteractionContext
from miniagents.promising.lowlevel import logger

if TYPE_CHECKING:
    from miniagents.miniagents.agent import MiniAgent

__all__ = ["input_of", "start", "start_interaction"]

_NO_MESSAGES = MessageSequencePromise()  # finished and empty, so one serves every call


def input_of(agent: MiniAgent[...], messages: MessageType | None) -> MessageSequencePromise:
    """The input of an interaction of ``agent``: ``messages`` as a sequence.

    Raises:
        MessageTypeError: naming the agent, if ``messages`` is not a ``MessageType``.
    """
    if messages is None:
        return _NO_MESSAGES
    try:
        return as_message_sequence(messages)
    except MessageTypeError as error:
        raise MessageTypeError(
            f"The input of the agent {agent.alias} is invalid. {error}"
        ) from error


def start(
    agent: MiniAgent[...],
    inputs: MessageSequencePromise | Observable[Message],
    args: tuple[object, ...],
    kwargs: Mapping[str, object],
) -> MessageSequencePromise:
    """Check the call's arguments and start (or prepare) an interaction; return its replies.

    Raises:
        NoActiveContextError: outside of a ``MiniAgents`` context.
        AgentArgumentError: for positional, unknown or missing arguments.
    """
    arguments = {**agent._bound, **kwargs} if agent._bound else dict(kwargs)
    start_asap: bool | None = None
    if "start_asap" in arguments and "start_asap" not in agent._parameters.names:
        start_asap = cast("bool | None", arguments.pop("start_asap"))
    context = MiniAgents.get_current()  # outside a context: the clear error, at once
    agent._parameters.check_call(args, arguments)
    if isinstance(inputs, MessageObservable):  # another agent's replies: read them directly
        inputs = MessageSequencePromise.from_observable(inputs)
    elif not isinstance(inputs, MessageSequencePromise):
        inputs = MessageSequencePromise.from_observable(inputs)
        inputs.start()  # a hot source must not emit before the agent listens
    return start_interaction(context, agent, inputs, args, arguments, start_asap)


def start_interaction(
    context: MiniAgents,
    agent: MiniAgent[...],
    inputs: MessageSequencePromise,
    args: tuple[object, ...],
    arguments: dict[str, object],
    start_asap: bool | None,
) -> MessageSequencePromise:
    """Start (or prepare, for a lazy start) one interaction; return its replies."""
    replies = MessageSequenceAppender(
        context._adopt_hook, name=f"the replies of the agent {agent.alias}"
    )
    sequence = replies.sequence
    if start_asap is None:
        start_asap = agent.start_asap
    if start_asap is None:
        start_asap = context.start_everything_asap_by_default
    scope = current_scope.get()
    if start_asap:
        task = context._start(_run(agent, inputs, args, arguments, replies), agent.alias)
        replies.cancel_when_abandoned(task)
        if scope is not None:
            scope.add(task)
    else:
        captured = contextvars.copy_context()  # the agent runs where it was inquired

        def launch() -> None:
            coroutine = _run(agent, inputs, args, arguments, replies)
            task = captured.run(context._start, coroutine, agent.alias)
            replies.cancel_when_abandoned(task)
            if scope is not None:
                scope.add(task)

        replies.start_lazily(launch)
    context._track(sequence, agent.alias)
    return sequence


async def _run(
    agent: MiniAgent[...],
    inputs: MessageSequencePromise,
    args: tuple[object, ...],
    arguments: dict[str, object],
    replies: MessageSequenceAppender,
) -> None:
    if current_scope.get() is not None:
        current_scope.set(None)  # what the agent starts belongs to no scope of its caller
    interaction = InteractionContext(
        agent, replies.paced(inputs), replies
    )  # made here: fewer objects wait
    func = cast("Callable[..., Awaitable[None]]", agent.func)
    limit = agent.concurrency_limit
    try:
        if limit is None:
            await func(interaction, *args, **arguments)
        else:
            async with limit:  # it may wait here for a slot
                await func(interaction, *args, **arguments)
    except BaseException as error:  # it travels through the replies, even Ctrl+C
        finished_early = interaction._finished
        interaction._finish()
        if not replies.closed:
            replies.fail(error)
        elif not isinstance(error, asyncio.CancelledError):
            _report_late_error(agent, replies, error, finished_early)
        if isinstance(error, asyncio.CancelledError):
            raise
    else:
        interaction._finish()
        replies.complete()


def _report_late_error(
    agent: MiniAgent[...],
    replies: MessageSequenceAppender,
    error: BaseException,
    finished_early: bool,
) -> None:
    """Log an agent's error that its replies, already ended, cannot carry any more."""
    if finished_early:
        logger.error("The agent %s failed after finish_early().", agent.alias, exc_info=error)
    elif replies.error is not error:
        logger.error(
            "The agent %s failed after its replies had ended with the error of a stream it "
            "replied with; its consumers got that error, and this one reaches nobody else.",
            agent.alias,
            exc_info=error,
        )
