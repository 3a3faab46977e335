"""An agent as a reactive operator: one interaction per subscription."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable

from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageObservable, MessageSequencePromise

__all__ = ["agent_operator"]


def agent_operator(
    start: Callable[[Observable[Message]], MessageSequencePromise],
) -> Callable[[Observable[Message]], Observable[Message]]:
    """Turn "start an interaction with this input" into an operator on message streams.

    Each subscription starts one interaction whose input is the source; the result emits
    each reply message, in order, as soon as it is complete. The result is a
    :class:`MessageObservable`: an agent piped after this one (or
    ``MessageSequencePromise.from_observable``) reads the replies themselves, pulled with
    backpressure, instead of subscribing.

    Marble::

        source:   --m1--m2--|
        agent:    (replies "echo: m1" when it reads m1, ...)
        result:   ----e1--e2--|
    """

    def operator(source: Observable[Message]) -> Observable[Message]:
        return MessageObservable(lambda: start(source))

    return operator
