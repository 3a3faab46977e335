"""Message promises in, complete messages out, in order: what a message observable emits.

The public operator is :func:`miniagents.operators.resolve_messages`; this is the machinery
under :meth:`~miniagents.messages.sequence.MessageSequencePromise.as_message_observable`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from miniagents.messages.message import Message
from miniagents.messages.message_promise import MessagePromise
from miniagents.promising.lowlevel import core_of, mark_received

__all__ = ["messages_in_order"]


def messages_in_order(source: Observable[MessagePromise]) -> Observable[Message]:
    """Emit the message of each promise once it is complete, keeping the source's order.

    A promise that is complete already is emitted at once, unless one before it is
    still streaming; an error in a message's token stream ends the result.

    Marble::

        source:   --p1--p2--------|   (p1 completes at x, p2 before it)
        p1:       ---------x
        result:   ---------(m1m2)-|
    """

    def subscribe(
        observer: abc.ObserverBase[Message], _scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        resolver = _InOrder(observer)
        outer = source.subscribe(resolver.on_next, resolver.on_error, resolver.on_completed)
        return Disposable(lambda: resolver.dispose(outer))

    return Observable(subscribe)


def _ignore(_error: BaseException) -> None:
    """An error of a message held queued: it is read (and raised) when its turn comes."""


def _nothing() -> None:
    """The end of a message held queued: its turn comes in order."""


class _InOrder:
    __slots__ = (
        "held",
        "observer",
        "pending",
        "source_done",
        "stop_waiting",
        "stopped",
        "waiting",
    )

    def __init__(self, observer: abc.ObserverBase[Message]) -> None:
        self.observer = observer
        self.pending: deque[MessagePromise] = deque()
        self.source_done = False
        self.stopped = False
        self.waiting: MessagePromise | None = None
        self.stop_waiting: Callable[[], None] | None = None
        # the messages still streaming that wait in the queue, each held as read (an end
        # consumer of its own), so that another reader giving up on one does not stop it
        # under this one: by the promise, what lets go of each hold (one per place in the
        # queue: a reply passed on twice queues its messages twice)
        self.held: dict[MessagePromise, list[Callable[[], None]]] | None = None

    def on_next(self, promise: MessagePromise) -> None:
        self.pending.append(promise)
        self.drain()
        if self.waiting is not None and self.pending[-1] is promise and promise is not self.waiting:
            self._hold(promise)  # (queued behind the one it waits for)

    def _hold(self, promise: MessagePromise) -> None:
        if promise.done:
            return
        held = self.held
        if held is None:
            held = self.held = {}
        let_go = core_of(promise).add_end_observer(_ignore, _nothing)
        holds = held.get(promise)
        if holds is None:
            held[promise] = [let_go]
        else:
            holds.append(let_go)

    def _let_go(self, promise: MessagePromise) -> bool:
        """Let go of one hold of ``promise``; whether there was one."""
        held = self.held
        if held is None:
            return False
        holds = held.get(promise)
        if not holds:
            return False
        let_go = holds.pop()
        if not holds:
            del held[promise]
        let_go()
        return True

    def on_error(self, error: BaseException) -> None:
        if not self.stopped:
            self.stopped = True
            mark_received(error)  # it goes to the subscriber, an end consumer
            self.observer.on_error(error)  # type: ignore[arg-type]

    def on_completed(self) -> None:
        self.source_done = True
        self.drain()

    def _head_done(self) -> None:
        self.waiting = self.stop_waiting = None
        self.drain()

    def drain(self) -> None:
        while not self.stopped and self.waiting is None and self.pending:
            head = self.pending[0]
            if not head.done:
                core = core_of(head)
                core.start()  # (a synchronous source may end it here)
                if not core.done:  # wait for the end of its tokens, not for each one
                    self.waiting = head
                    self.stop_waiting = core.add_end_observer(self.on_error, self._head_done)
                    if self.held:
                        self._let_go(head)  # (read now: the wait holds it)
                    return
            self.pending.popleft()
            if self.held:
                self._let_go(head)
            try:
                message = head.message_now()
            except Exception as error:
                self.on_error(error)
                return
            self.observer.on_next(message)
        if not self.stopped and self.source_done and self.waiting is None and not self.pending:
            self.stopped = True
            self.observer.on_completed()

    def dispose(self, outer: abc.DisposableBase) -> None:
        self.stopped = True
        outer.dispose()
        stop_waiting, self.stop_waiting = self.stop_waiting, None
        if stop_waiting is not None:
            stop_waiting()  # no longer a consumer of the message it waited for
        # nor of those queued behind it, which it took from the source to read next: each
        # is given up on unless someone else reads it (the source, if it has ended, gives
        # up nothing when disposed)
        pending, self.pending = self.pending, deque()
        for promise in pending:
            if not self._let_go(promise) and not promise.done:  # (letting go checks it)
                core_of(promise).check_abandoned()
        self.held = None
