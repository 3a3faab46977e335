"""Delivering a replay core's record: to observers in order, then its end; waking waiters.

Every observer sees the pieces in the order of the record, even when a source emits from
inside an observer (the piece is recorded, and the running delivery passes it on); an
observer that raises is unsubscribed and reported, and the stream goes on for the others.
The end goes to each observer once, with the error: to an end consumer it counts as
received, to another stream as handed over (that stream then answers for it).
"""

from __future__ import annotations

from typing import TypeVar

from miniagents.promising._consumers import Observer
from miniagents.promising._producers import SourceSide
from miniagents.promising._reporting import mark_received, report_broken_observer

__all__ = ["DeliverySide"]

T = TypeVar("T")


class DeliverySide(SourceSide[T]):
    """The delivering part of :class:`~miniagents.promising._replay.ReplayCore`."""

    __slots__ = ("_delivering", "handed_over", "sent")

    _delivering: bool
    handed_over: bool
    sent: int

    def _deliver(self) -> None:
        """Pass on every recorded piece not passed on yet, then the end if it came.

        A piece or an end that arrives while observers are being called (a source that
        emits from inside an observer) is recorded and passed on by this same loop, so
        that every observer sees the pieces in the order of the record.
        """
        self._delivering = True
        try:
            pieces = self.pieces
            while self.sent < self.base + len(pieces):
                piece = pieces[self.sent - self.base]
                self.sent += 1
                self._pass_on(piece)
            if self.done:
                observers, self.observers = self.observers, ()
                for observer in observers:
                    self._unlink(observer)
                    self.send_end(observer)
        finally:
            self._delivering = False
        if self._waiters:
            self._wake()

    def _pass_on(self, piece: T) -> None:
        for observer in self.observers:
            try:
                observer[0](piece)
            except Exception as exc:  # a broken observer must not break the stream
                self.remove(observer)
                report_broken_observer(exc)

    def send_end(self, observer: Observer[T]) -> None:
        """Tell ``observer`` how the stream ended."""
        try:
            if self.error is None:
                observer[2]()
            else:
                if observer[3]:
                    mark_received(self.error)
                else:  # another stream: it is the one that must see the error consumed
                    self.handed_over = True
                observer[1](self.error)
        except Exception as exc:
            report_broken_observer(exc)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)
