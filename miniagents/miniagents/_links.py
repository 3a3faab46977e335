"""Live links: state of the calling code that stays live while an agent runs in another process.

Some state of the code that starts an interaction must not be copied to the process that
runs it (a Ray worker) but stay one, shared, while it runs there: the budgets of
``miniagents.ext.llm`` are such state. Whoever knows such state registers a *link opener*
(:func:`add_link_opener`: the Ray agents of ``miniagents.ext.ray`` register the budgets'
link, whose ends implement the hook of ``miniagents.ext.llm.charging``); a transport that
runs interactions elsewhere (the Ray agents) asks for the links of an interaction that
starts (:func:`outgoing_links`), sends each link's far end along with the call, and
carries the messages of the two ends both ways while the interaction runs::

    caller:   outgoing_links() -> [home]       home.away() --pickled with the call-->
    worker:                                    away.open(wake), in the interaction's context
    worker:   wake() ... away.drain() -> message --------> home.receive(message)
    caller:   home.drain() -> message -----------------------> away.receive(message)
    both:     close() when the interaction has ended (or its worker died), then
              await asettled(): what the close stopped has ended
    worker:   close(error) if the way back broke: what waits on the link fails with error

Neither end knows how its messages travel, nor the transport what they mean. With no link
to open (no opener, or none with anything to keep live: the common case), a transport
sends nothing more and makes no round trip.

State may also travel in the call itself (an agent's argument): the transport pickles the
call in a :func:`sending` block, an object that needs a link notes itself when it is
pickled (:func:`note_sent`), and the openers see what was noted.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

__all__ = [
    "CallerEnd",
    "LinkEnd",
    "LinkOpener",
    "add_link_opener",
    "note_sent",
    "outgoing_links",
    "sending",
]


class LinkEnd(Protocol):
    """One end of a live link; the far end of one (:meth:`CallerEnd.away`) travels pickled."""

    def open(self, wake: Callable[[], None]) -> None:
        """The interaction starts, in its own context (the far end: in the other process).

        Args:
            wake: To call (on this end's event loop) when :meth:`drain` has something to send.
        """
        ...

    def drain(self) -> object | None:
        """The message to send to the other end now (it can be pickled), or ``None``: none."""
        ...

    def receive(self, message: object) -> None:
        """A message the other end sent, in the order it was sent."""
        ...

    def close(self, error: BaseException | None = None) -> None:
        """The interaction has ended here: no message is received any more.

        A transport may drain the end once more after its close (the worker's last batch of
        replies does: it carries what the close left to send, e.g. the last counts), and
        never again. What the close stops may end a loop turn later: :meth:`asettled` waits
        for it.

        Args:
            error: Why, if the link broke while the interaction runs on (the way between
                the ends failed, e.g. a process carrying its messages died): what the close
                stops, and what asks the link for something later, fails with it.
        """
        ...

    async def asettled(self) -> None:
        """Wait until what :meth:`close` stopped has ended (an end with nothing left: at once).

        A transport awaits it after :meth:`close`, before it says the interaction ended.
        """
        ...


class CallerEnd(LinkEnd, Protocol):
    """The end of a link that stays with the calling code."""

    def away(self) -> LinkEnd:
        """The far end, to send (pickled) to the process that runs the interaction."""
        ...


LinkOpener = Callable[[Sequence[object]], "CallerEnd | None"]
"""Called where an interaction is about to run elsewhere, with what :func:`note_sent` noted
while its call was pickled: its link, or ``None``: none needed."""

_OPENERS: list[LinkOpener] = []
_SENDING: contextvars.ContextVar[list[object] | None] = contextvars.ContextVar(
    "miniagents_sending", default=None
)


def add_link_opener(opener: LinkOpener) -> None:
    """Open a link with ``opener`` for every interaction run elsewhere from now on.

    An opener added twice counts once.
    """
    if opener not in _OPENERS:
        _OPENERS.append(opener)


@contextmanager
def sending() -> Iterator[list[object]]:
    """Pickle a call for another process inside the block: it yields what was noted."""
    noted: list[object] = []
    token = _SENDING.set(noted)
    try:
        yield noted
    finally:
        _SENDING.reset(token)


def note_sent(value: object) -> None:
    """Note ``value``, being pickled, for the openers (outside a :func:`sending` block: no-op)."""
    noted = _SENDING.get()
    if noted is not None:
        noted.append(value)


def outgoing_links(sent: Sequence[object] = ()) -> list[CallerEnd]:
    """The links the interaction that is about to run elsewhere needs (empty: none).

    Args:
        sent: What :func:`sending` noted while the call was pickled.
    """
    links: list[CallerEnd] = []
    for opener in _OPENERS:
        link = opener(sent)
        if link is not None:
            links.append(link)
    return links
