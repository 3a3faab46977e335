"""How much a stream keeps and how far its producer may run ahead: replay window and pressure.

Every stream of many pieces (a :class:`~miniagents.promising.StreamedPromise`, a message
sequence, an agent's replies) follows two limits, read from :data:`stream_limits` when the
stream is made (``MiniAgents(replay_window=..., high_water_mark=...)`` sets them for the code
inside it; outside any context the module defaults below apply):

**The replay window** (``replay_window``, W pieces). A stream keeps every piece it has
recorded until it has recorded more than W. From then on it keeps only the pieces a *live
consumer* still needs, and releases the others, for good:

* a live consumer is an ``async for`` iterator that exists (pieces from its position on),
  an ``await`` of the whole that is under way (every piece), or a subscriber (it was given
  every piece at once and needs none);
* with no live consumer, the pieces nobody was given yet are kept (they are released only
  once a consumer has had them), so nothing is lost that nobody saw;
* a stream that nobody can consume any more (no promise, observable or iterator of it is
  left) keeps nothing past the window.

Anyone who then needs a released piece (a new iterator from the start, a late ``await`` of
the whole, a late subscription) gets :class:`~miniagents.promising.errors.ReplayWindowError`,
which names the window and the stream. ``replay_window=None`` keeps everything::

    W = 3, one consumer C, pieces a..f
    record:   a b c d e f          (c: C has read a, b, c)
    kept:     a b c | d e f        before W is passed, all of it
    kept:           d e f          after: what C still needs; a new consumer from `a` fails

A message's tokens are exempt: a ``MessagePromise`` is one value, and it keeps all its
tokens (so ``await`` always gives the whole text), whatever the window.

**The high-water mark** (``high_water_mark``, HWM pieces). A producer that the library pulls
(an async iterable, at any depth of a ``MessageType``; an agent at its next input pull) is
pulled no further than HWM pieces ahead of the slowest live iterator of the stream it
feeds; with no consumer at all, no further than HWM pieces nobody was given. A stream that
forwards into another (a flattened sequence, an agent's replies) passes that stream's
pressure upstream. An ``await`` of the whole and a subscriber read as fast as pieces come,
so they exert none. ``high_water_mark=None`` lets every producer run freely::

    HWM = 2, a consumer reading slowly
    producer:  -a-b-------c-------d--|     (pulled only while fewer than 2 wait)
    consumer:  ------a-------b-------c-------d--|

A *hot* source (an ``Observable`` that emits on its own) cannot be slowed. What happens to
its pieces beyond the high-water mark is the stream's :data:`Overflow` policy.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias, get_args

from miniagents.arguments import check_count
from miniagents.promising.errors import StreamLimitError
from miniagents.promising.sentinels import DEFAULT, Sentinel

__all__ = [
    "DEFAULT_HIGH_WATER_MARK",
    "DEFAULT_REPLAY_WINDOW",
    "Overflow",
    "StreamLimits",
    "checked_overflow",
    "stream_limits",
]

DEFAULT_REPLAY_WINDOW: Final[int] = 1024
"""Pieces a stream keeps in full before it releases what no live consumer needs.

Chosen from the W4 benchmark (tests/benchmarks/README.md): far above any chat or LLM reply
sequence, and small enough that a pipeline of a million messages stays within a few MB
per stage."""

DEFAULT_HIGH_WATER_MARK: Final[int] = 64
"""Pieces a pulled producer may run ahead of the slowest consumer (like a queue's size)."""

Overflow: TypeAlias = Literal["buffer", "drop_oldest", "drop_newest", "error"]
"""What a stream does with a piece from a hot source when HWM pieces already wait.

Marble (HWM = 2, a consumer that reads one piece while the source emits three)::

    hot source:     -h0-h1-h2-h3-h4-h5-h6-h7-h8-h9-|
    "buffer":       every piece, read late (the default)
    "drop_newest":  h0 h1 h3 h6 h9     a piece arriving while 2 wait is dropped
    "drop_oldest":  h1 h4 h7 h8 h9     the slow reader skips its oldest unread piece
    "error":        h0 h1 #            StreamOverflowError after the pieces kept

With "drop_oldest" and no reader yet, the stream keeps only the newest HWM pieces (the
oldest go for good, whatever the replay window): a reader that comes later reads those.
"""


def checked_overflow(overflow: object) -> Overflow:
    """``overflow`` if it is an :data:`Overflow` policy.

    Raises:
        StreamLimitError: naming the policies, if it is not one.
    """
    if overflow not in _OVERFLOWS:
        raise StreamLimitError(
            f"overflow must be one of {', '.join(map(repr, _OVERFLOWS))}, but it is "
            f"{overflow!r}. Pass e.g. overflow='drop_oldest' to let a slow reader skip the "
            "oldest pieces of a hot source."
        )
    return overflow  # type: ignore[return-value]


_OVERFLOWS: Final = get_args(Overflow)


@dataclass(frozen=True)
class StreamLimits:
    """The limits given to the streams made where they are current.

    Attributes:
        replay_window: Pieces kept in full before releasing what no live consumer needs;
            ``None`` keeps every piece.
        high_water_mark: Pieces a pulled producer may run ahead of the slowest consumer;
            ``None`` lets producers run freely.
    """

    replay_window: int | None = DEFAULT_REPLAY_WINDOW
    high_water_mark: int | None = DEFAULT_HIGH_WATER_MARK

    def __post_init__(self) -> None:
        """Check the limits.

        Raises:
            StreamLimitError: if a limit is not a positive int (or ``None``).
        """
        for name in ("replay_window", "high_water_mark"):
            value = getattr(self, name)
            if value is not None:
                fix = f"Pass e.g. {name}=1024, or {name}=None for no limit."
                check_count(value, name, fix=fix, error=StreamLimitError)

    def replaced(
        self,
        replay_window: int | Literal[Sentinel.DEFAULT] | None = DEFAULT,
        high_water_mark: int | Literal[Sentinel.DEFAULT] | None = DEFAULT,
    ) -> StreamLimits:
        """These limits with the ones given replaced (``DEFAULT``: keep this one).

        Raises:
            StreamLimitError: if a limit given is not a positive int (or ``None``).
        """
        return StreamLimits(
            self.replay_window if replay_window is DEFAULT else replay_window,
            self.high_water_mark if high_water_mark is DEFAULT else high_water_mark,
        )


stream_limits: ContextVar[StreamLimits] = ContextVar(
    "miniagents_stream_limits",
    default=StreamLimits(),  # noqa: B039 - a frozen dataclass: it cannot be mutated
)
"""The limits for streams made in the current context (``MiniAgents`` sets it)."""
