"""The root of every error MiniAgents raises: :class:`MiniAgentsError`.

It lies below every layer (it imports nothing of the package), so that each layer's
``errors`` module derives from it: the streams' (:mod:`miniagents.promising.errors`, which
re-exports it) and the frozen values' (:mod:`miniagents.frozen.errors`) alike. Users import
it from :mod:`miniagents.errors`, where the whole hierarchy is drawn.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MiniAgentsError"]


_PUBLIC_HOME = "miniagents.errors"
"""Where every error of the package is imported from: tracebacks name them by this path."""


class MiniAgentsError(Exception):
    """The root of every error raised by MiniAgents itself.

    Every public error of the package shows the path users import it from in tracebacks,
    ``miniagents.errors.AgentArgumentError`` rather than the module that defines it (as
    httpx's errors show ``httpx.ConnectError``); pickle finds it there too.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Name a public error of the package by its public path (not a user's own error)."""
        super().__init_subclass__(**kwargs)
        module = cls.__module__
        if (
            module.startswith("miniagents.")
            and not module.startswith("miniagents.testing")
            and not cls.__name__.startswith("_")
        ):
            cls.__module__ = _PUBLIC_HOME


MiniAgentsError.__module__ = _PUBLIC_HOME
