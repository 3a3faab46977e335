"""``resolve_messages``: message promises (any ``MessageType``) in, complete messages out."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable

from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageObservable, MessageSequencePromise, MessageType
from miniagents.promising.limits import Overflow, checked_overflow

__all__ = ["resolve_messages"]


def resolve_messages(
    overflow: Overflow = "buffer",
) -> Callable[[Observable[MessageType]], Observable[Message]]:
    """Emit each message of the source once it is complete, in the source's order.

    The source's items are flattened first (see :func:`flatten_messages`); a message that
    is complete already is emitted at once unless one before it is still streaming. An
    error in a message's tokens ends the result after the messages before it. An agent
    given the result as input (``agent.inquire(observable)``, or piped after it) reads the
    flattened sequence itself, with backpressure, instead of subscribing.

    .. marble::
        :alt: resolve_messages

        --p1--p2------------|      p1 completes at x, p2 before it
        [   resolve_messages()   ]
        ---------x(m1,m2)---|

    Args:
        overflow: As in :func:`flatten_messages`.

    Raises:
        StreamLimitError: if ``overflow`` is not an overflow policy.
    """

    checked_overflow(overflow)

    def operator(source: Observable[MessageType]) -> Observable[Message]:
        return MessageObservable(
            lambda: MessageSequencePromise.from_observable(source, overflow=overflow), own=True
        )

    return operator
