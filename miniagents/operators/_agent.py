"""``agent_operator``: an agent as an operator on a stream of messages."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import ParamSpec

from reactivex import Observable
from typing_extensions import TypeVar

from miniagents.arguments import a_class
from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageType
from miniagents.miniagents.agent import MiniAgent
from miniagents.operators.errors import OperatorArgumentError

__all__ = ["agent_operator"]

P = ParamSpec("P")
ReplyT = TypeVar("ReplyT", bound=Message)


def agent_operator(
    agent: MiniAgent[P, ReplyT], /, *args: P.args, **kwargs: P.kwargs
) -> Callable[[Observable[MessageType]], Observable[ReplyT]]:
    """The agent as an operator: each subscription is one interaction, the source its input.

    The result emits each reply message, in order, as soon as it is complete; ``kwargs``
    are the agent's arguments (checked by mypy against the agent function). An agent piped
    after another reads that agent's replies directly, with backpressure and no copy. The
    same as ``agent.as_operator(**kwargs)``; it needs a running ``MiniAgents`` context when
    subscribed to. Each subscription lets go of its source (unsubscribes from it, or gives
    up the interaction piped before it) when it is disposed, e.g. by an ``ops.take(n)``
    after it, and when its interaction is over (the agent returned or failed), as a
    reactive operator that completes does; the observable of a sequence that others read
    is left to them.

    .. marble::
        :alt: agent_operator

        --m1-----m2-----|
        [ agent_operator(echo) ]     echo replies "echo: <m>" to each message
        ----e1------e2--|

    Example:
        >>> # source.pipe(agent_operator(upper), agent_operator(exclaim, mark="!"))

    Raises:
        OperatorArgumentError: if ``agent`` is not an agent (e.g. a function without
            ``@miniagent``).
    """
    given: object = agent  # (typed so; code mypy does not check may pass anything)
    if not isinstance(given, MiniAgent):
        what = (
            f"the function {given.__name__}"
            if inspect.isfunction(given)
            else f"{a_class(type(given))} ({given!r:.60})"
        )
        raise OperatorArgumentError(
            f"agent_operator() got {what}, not an agent: decorate it with @miniagent (an "
            "`async def` of an InteractionContext that replies with ctx.reply), or pass an "
            "agent made by one."
        )
    return agent.as_operator(*args, **kwargs)
