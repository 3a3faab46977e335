"""Where the streams layer reports what it must not lose: lost errors and broken observers."""

from __future__ import annotations

import contextlib
import logging

from miniagents.promising.errors import StreamCancelledError

__all__ = [
    "logger",
    "mark_received",
    "report_broken_observer",
    "report_lost_error",
    "was_received",
]

logger = logging.getLogger("miniagents")

_RECEIVED = "__miniagents_received__"


def mark_received(error: BaseException) -> None:
    """Note that ``error`` reached a consumer (the mark travels with the exception object).

    One error may end several streams (a nested stream and the streams that pass it on);
    once any consumer has received it, it is not lost.
    """
    with contextlib.suppress(AttributeError, TypeError):  # an exception class with __slots__
        setattr(error, _RECEIVED, True)


def was_received(error: BaseException) -> bool:
    """Whether ``error`` has reached a consumer."""
    return bool(getattr(error, _RECEIVED, False))


def report_broken_observer(exc: Exception) -> None:
    """Log an observer that raised; the stream has unsubscribed it and goes on."""
    logger.error(
        "An observer of a MiniAgents stream raised an error and was unsubscribed; "
        "the stream goes on for its other consumers.",
        exc_info=exc,
    )


def report_lost_error(error: BaseException, source: str = "A MiniAgents stream") -> None:
    """Log an error that ended a stream no consumer read to its end (cancellation aside)."""
    if isinstance(error, StreamCancelledError) or was_received(error):
        return
    mark_received(error)
    logger.error("%s ended with an error that no consumer ever received.", source, exc_info=error)
