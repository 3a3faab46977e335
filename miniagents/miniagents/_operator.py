"""An agent as a reactive operator: one interaction per subscription."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc

from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageSequencePromise

__all__ = ["agent_operator"]


def agent_operator(
    start: Callable[[Observable[Message]], MessageSequencePromise],
) -> Callable[[Observable[Message]], Observable[Message]]:
    """Turn "start an interaction with this input" into an operator on message streams.

    Each subscription starts one interaction whose input is the source; the result emits
    each reply message, in order, as soon as it is complete.

    Marble::

        source:   --m1--m2--|
        agent:    (replies "echo: m1" when it reads m1, ...)
        result:   ----e1--e2--|
    """

    def operator(source: Observable[Message]) -> Observable[Message]:
        def subscribe(
            observer: abc.ObserverBase[Message], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            replies = start(source)
            return replies.as_message_observable().subscribe(observer, scheduler=scheduler)

        return Observable(subscribe)

    return operator
