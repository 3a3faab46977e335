"""Errors of the promising layer, rooted in :class:`MiniAgentsError`.

The root of every error MiniAgents raises is defined below every layer, in
:mod:`miniagents.root_error`, and re-exported here, as are the errors of
:mod:`miniagents.frozen` (defined in its own ``errors`` module), for the code that imports
them from here. The whole hierarchy is drawn in :mod:`miniagents.errors`.
"""

from __future__ import annotations

from miniagents.frozen.errors import FrozenFieldError as FrozenFieldError
from miniagents.frozen.errors import FrozenInstanceError as FrozenInstanceError
from miniagents.frozen.errors import HashKeyError as HashKeyError
from miniagents.root_error import ArgumentError
from miniagents.root_error import MiniAgentsError as MiniAgentsError

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


class SentinelMisuseError(MiniAgentsError, TypeError):
    """A sentinel such as ``AWAIT`` or ``NO_VALUE`` was used as a boolean."""


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


class StreamLimitError(ArgumentError):
    """A stream limit or policy that cannot be: a bad replay window, mark or overflow."""


class StreamLoopError(MiniAgentsError, RuntimeError):
    """A stream was read in an event loop other than the one it started in."""
