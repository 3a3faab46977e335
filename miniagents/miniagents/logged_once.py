"""A failure of a plugged-in observer, logged once per place: the work goes on unobserved there.

The hooks of the agents and of their extensions call code that is not theirs (observers,
tracing): its error must neither fail the agents nor flood the log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from miniagents.promising.lowlevel import logger

__all__ = ["LoggedOnce"]

P = ParamSpec("P")
R = TypeVar("R")


class LoggedOnce:
    """Logs a warning for the first failure at each place, and none for the later ones.

    Args:
        message: The warning, in ``%`` style: given the place (when there is one), then the
            error's class name and the error, e.g. ``"The X failed in %s (%s: %s); ..."``.
    """

    __slots__ = ("_logged", "_message")

    def __init__(self, message: str) -> None:
        self._message = message
        self._logged: set[str | None] = set()

    def failed(self, error: Exception, where: str | None = None) -> None:
        """Log ``error``, unless a failure at ``where`` was logged before."""
        if where in self._logged:
            return
        self._logged.add(where)
        named = (type(error).__name__, error)
        logger.warning(self._message, *named if where is None else (where, *named))

    def call(
        self, where: str, function: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> R | None:
        """``function(*args, **kwargs)``; ``None`` if it raised (logged as failed at ``where``)."""
        try:
            return function(*args, **kwargs)
        except Exception as error:
            self.failed(error, where)
            return None
