"""Errors of the promising layer, rooted in :class:`MiniAgentsError`.

The root of every error MiniAgents raises lives here, in the lowest layer, so that
every other layer can derive from it. The whole hierarchy is drawn in
:mod:`miniagents.errors`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DeadlockError",
    "FrozenFieldError",
    "FrozenInstanceError",
    "HashKeyError",
    "IncompleteStreamError",
    "MiniAgentsError",
    "NoRunningLoopError",
    "ReplayWindowError",
    "SentinelMisuseError",
    "StreamArgumentError",
    "StreamCancelledError",
    "StreamLimitError",
    "StreamLoopError",
    "StreamOverflowError",
    "StreamPicklingError",
    "StreamSourceError",
]


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


class SentinelMisuseError(MiniAgentsError, TypeError):
    """A sentinel such as ``AWAIT`` or ``NO_VALUE`` was used as a boolean."""


class FrozenInstanceError(MiniAgentsError, TypeError):
    """Something tried to mutate a frozen container inside a ``Frozen`` model."""


class FrozenFieldError(MiniAgentsError, TypeError):
    """A ``Frozen`` model declares a field whose type is a mutable container (or model)."""


class HashKeyError(MiniAgentsError, TypeError):
    """A ``Frozen`` model holds a value that its ``hash_key`` cannot encode."""


class NoRunningLoopError(MiniAgentsError, RuntimeError):
    """A stream that needs an asyncio task was started outside a running event loop."""


class IncompleteStreamError(MiniAgentsError, RuntimeError):
    """The complete value of a stream was asked for synchronously before the stream ended."""


class DeadlockError(MiniAgentsError, RuntimeError):
    """Every task waits on the library's own streams, and nothing else can wake them.

    Its message names each waiting task and what it waits for (see
    :mod:`miniagents.promising._deadlock`).
    """


class StreamCancelledError(MiniAgentsError):
    """A stream was cancelled before it ended: ``cancel()``, or every consumer gave up on it."""


class ReplayWindowError(MiniAgentsError, RuntimeError):
    """A consumer needed pieces that the stream had released after passing its replay window."""


class StreamOverflowError(MiniAgentsError, RuntimeError):
    """A hot source outran the consumers of a stream whose overflow policy is ``"error"``."""


class StreamSourceError(MiniAgentsError, TypeError):
    """The source given to a stream is not an async iterable (or not an ``Observable``)."""


class StreamPicklingError(MiniAgentsError, TypeError):
    """A promise or a stream was pickled: it is a live stream; its awaited value pickles."""


class StreamArgumentError(MiniAgentsError, TypeError):
    """A promise or a stream was given arguments that do not go together (or none it needs)."""


class StreamLimitError(MiniAgentsError, ValueError):
    """A stream limit or policy that cannot be: a bad replay window, mark or overflow."""


class StreamLoopError(MiniAgentsError, RuntimeError):
    """A stream was read in an event loop other than the one it started in."""
