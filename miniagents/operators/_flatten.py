"""``flatten_messages``: any ``MessageType`` items in, one stream of message promises out."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc

from miniagents.messages.message_promise import MessagePromise
from miniagents.messages.sequence import MessageSequencePromise, MessageType, cancelling
from miniagents.promising.limits import Overflow, checked_overflow

__all__ = ["flatten_messages"]


def flatten_messages(
    overflow: Overflow = "buffer",
) -> Callable[[Observable[MessageType]], Observable[MessagePromise]]:
    """Flatten every item of the source, in order, into a stream of message promises.

    An item may be anything a ``MessageType`` allows: a string, a message, a list, another
    sequence or an agent's replies (followed in its place while it streams), an async
    iterable or an observable of these; a promise is emitted as soon as it starts, its
    tokens may still be streaming. An item that is not a ``MessageType``, or an error in a
    nested stream, ends the result with that error after what came before it. Each
    subscription reads the source anew.

    .. marble::
        :alt: flatten_messages

        --"a"--[b, c]--S-------------|      S: a sequence streaming x, then y
        [       flatten_messages()      ]
        --a----bc------x----y--------|

    Args:
        overflow: What to do with items of a hot source that outruns the subscriber (see
            :data:`~miniagents.promising.limits.Overflow`).

    Raises:
        StreamLimitError: if ``overflow`` is not an overflow policy.
    """

    checked_overflow(overflow)

    def operator(source: Observable[MessageType]) -> Observable[MessagePromise]:
        def subscribe(
            observer: abc.ObserverBase[MessagePromise], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sequence = MessageSequencePromise.from_observable(source, overflow=overflow)
            subscription = sequence.as_observable().subscribe(observer, scheduler=scheduler)
            return cancelling(subscription, sequence)  # (its own: nobody else reads it)

        return Observable(subscribe)

    return operator
