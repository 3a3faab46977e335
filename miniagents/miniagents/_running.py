"""Running one interaction of an agent: its task, its replies, its limit and its errors.

``inquire`` starts an interaction: a reply sequence (its core tracked by the context) and a
task that runs the agent function. The task starts at once, or, for a lazy interaction
(``start_asap=False``), when the replies are first consumed, in the context captured at
``inquire``. Inside the task, the agent first takes a slot of its concurrency limit (if it
has one), then runs with an :class:`InteractionContext` whose input waits for room in the
replies before each message (see :mod:`miniagents.promising.limits`).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, cast

from miniagents.messages.appender import MessageSequenceAppender
from miniagents.messages.sequence import MessageSequencePromise
from miniagents.miniagents.context import MiniAgents
from miniagents.miniagents.interaction import InteractionContext
from miniagents.promising._reporting import logger

if TYPE_CHECKING:
    from miniagents.miniagents.agent import MiniAgent

__all__ = ["start_interaction"]


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
        context.adopt_hook, name=f"the replies of the agent {agent.alias}"
    )
    sequence = replies.sequence
    if start_asap is None:
        start_asap = agent.start_asap
    if start_asap is None:
        start_asap = context.start_everything_asap_by_default
    if start_asap:
        task = context.start(_run(agent, inputs, args, arguments, replies), agent.alias)
        replies.cancel_when_abandoned(task)
    else:
        captured = contextvars.copy_context()  # the agent runs where it was inquired

        def launch() -> None:
            coroutine = _run(agent, inputs, args, arguments, replies)
            task = captured.run(context.start, coroutine, agent.alias)
            replies.cancel_when_abandoned(task)

        replies.start_lazily(launch)
    context.track(sequence, agent.alias)
    return sequence


async def _run(
    agent: MiniAgent[...],
    inputs: MessageSequencePromise,
    args: tuple[object, ...],
    arguments: dict[str, object],
    replies: MessageSequenceAppender,
) -> None:
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
