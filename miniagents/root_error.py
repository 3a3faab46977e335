"""The root of every error MiniAgents raises, and the error of every argument check.

:class:`MiniAgentsError` is the root; :class:`ArgumentError`, the error of an argument that
cannot be used, derives from it. They lie below every layer (this module imports only
:mod:`miniagents.reexports`, which imports nothing of the package), so that each layer's
``errors`` module derives from them: the streams' (:mod:`miniagents.promising.errors`, which
re-exports the root) and the frozen values' (:mod:`miniagents.frozen.errors`) alike.
``ArgumentError`` is what every argument check of :mod:`miniagents.arguments` raises (or a
layer's own subclass of it). Users import both from :mod:`miniagents.errors`, where the
whole hierarchy is drawn.
"""

from __future__ import annotations

from typing import Any

from miniagents.reexports import resolve_own_annotations

__all__ = ["ArgumentError", "MiniAgentsError"]


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
            resolve_own_annotations(cls)  # (miniagents.errors does not import their names)
            cls.__module__ = _PUBLIC_HOME


MiniAgentsError.__module__ = _PUBLIC_HOME


class ArgumentError(MiniAgentsError, ValueError):
    """An argument that cannot be used: of the wrong type, or out of its range.

    Every check of :mod:`miniagents.arguments` raises it (or the subclass its caller names,
    such as ``StreamLimitError`` or ``LLMConfigurationError``, which existed before it), with
    a message that names the argument, says what it must be and how to give it.

    Attributes:
        parameter: The name of the argument refused (``"max_concurrency"``), or ``""``.
    """

    parameter: str = ""
