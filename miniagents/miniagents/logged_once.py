"""An observer's failure, logged once per its class and place: the work goes on unobserved there.

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
    """Logs a warning for the first failure of each observer's class at each place, no later one.

    A failure is known by the place (``where``) and by the class of the observer that failed
    (``who``, named in the warning by its module and qualified name): another observer's
    failure at the same place is logged too. What it keeps is those names, as many as the
    program has classes and places, not the observers: an observer made again and again (an
    eval run's recorder) costs no memory here, and its class's failure is logged once.

    Args:
        message: The warning, in ``%`` style: given the observer's class (when there is
            one), the place (when there is one), then the error's class name and the error,
            e.g. ``"An observer (%s) failed in %s (%s: %s); ..."``.
    """

    __slots__ = ("_logged", "_message")

    def __init__(self, message: str) -> None:
        self._message = message
        self._logged: set[tuple[str | None, str | None]] = set()

    def failed(self, error: Exception, where: str | None = None, who: object = None) -> None:
        """Log ``error``, unless a failure of ``who``'s class at ``where`` was logged before."""
        named = None if who is None else f"{type(who).__module__}.{type(who).__qualname__}"
        if (named, where) in self._logged:
            return
        self._logged.add((named, where))
        told = tuple(part for part in (named, where) if part is not None)
        logger.warning(self._message, *told, type(error).__name__, error)

    def call(
        self,
        where: str,
        who: object,
        function: Callable[P, R],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R | None:
        """``function(*args, **kwargs)``; ``None`` if it raised (logged as ``who``'s failure).

        ``where``: the place; ``who``: the observer whose code ``function`` is.
        """
        try:
            return function(*args, **kwargs)
        except Exception as error:
            self.failed(error, where, who)
            return None
