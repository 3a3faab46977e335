"""Where the streams layer reports what it must not lose: lost errors and broken observers."""

from __future__ import annotations

import logging

from miniagents.promising.errors import StreamCancelledError

__all__ = ["logger", "report_broken_observer", "report_lost_error"]

logger = logging.getLogger("miniagents")


def report_broken_observer(exc: Exception) -> None:
    """Log an observer that raised; the stream has unsubscribed it and goes on."""
    logger.error(
        "An observer of a MiniAgents stream raised an error and was unsubscribed; "
        "the stream goes on for its other consumers.",
        exc_info=exc,
    )


def report_lost_error(error: BaseException, source: str = "A MiniAgents stream") -> None:
    """Log an error that ended a stream no consumer read to its end (cancellation aside)."""
    if isinstance(error, StreamCancelledError):
        return
    logger.error("%s ended with an error that no consumer ever received.", source, exc_info=error)
