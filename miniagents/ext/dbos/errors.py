"""Errors of durable runs on DBOS; the whole hierarchy is drawn in :mod:`miniagents.errors`.

An error of the agent itself (a model's, a tool's) is not one of these: a durable run
fails with it as the agent would. These errors are about recording the run.
"""

from __future__ import annotations

from miniagents.promising.errors import MiniAgentsError, StreamCancelledError

__all__ = [
    "DurableApprovalError",
    "DurableConfigurationError",
    "DurableDataError",
    "DurableDatabaseError",
    "DurableError",
    "DurableFailedCallError",
    "DurableRecordError",
    "DurableRunCancelledError",
    "DurableRunStoppedError",
    "DurableVersionError",
]


class DurableError(MiniAgentsError):
    """A durable run could not be started, recorded or recovered."""


class DurableDatabaseError(DurableError, ConnectionError):
    """The database of durable runs cannot be reached or written, is not SQLite, or is damaged.

    Its message is one line that names the cause (locked, not a SQLite database or damaged,
    not writable, a missing folder, an unreachable server) and the fix; the library's error
    is not chained to it.
    """


class DurableDataError(DurableError, ValueError):
    """A database of durable records refused what was written: a value, or a constraint.

    A value it cannot keep (a NUL character in a name, on PostgreSQL), or a table not as
    this library makes it (a column narrowed, a constraint added). Nothing was written.
    The database was reached: a database that cannot be is a ``DurableDatabaseError``.
    """


class DurableConfigurationError(DurableError, ValueError):
    """``durable`` got what it cannot use (two database URLs, two agents of one alias)."""


class DurableRecordError(DurableError, TypeError):
    """A value a durable run must record (an input message's field, an argument) cannot be.

    The error names the field (or argument) holding the value; nothing ran.
    """


class DurableVersionError(DurableError, RuntimeError):
    """A run was started by other code (another application version) than the one running now.

    Its recorded steps would not match what this code does, so it is not recovered here.
    """


class DurableRunStoppedError(DurableError, StreamCancelledError):
    """A durable run was stopped in this process before it ended, so its reply ends here.

    A ``StreamCancelledError`` too: its reply was cut short, as a cancelled stream is.

    Stopped unrecorded, as at a crash: its ``MiniAgents`` context ended while a call waited
    for a decision, or it was stopped on purpose. It stays pending in the database of
    durable runs: the next launch recovers it, or asking for it again under its workflow id
    runs it on here.
    """


class DurableRunCancelledError(DurableError, StreamCancelledError):
    """A durable run was cancelled (``acancel_run``, DBOS's own cancel) before it ended.

    A ``StreamCancelledError`` too: its reply ends cut short for its readers, as a
    cancelled stream's does (DBOS's own stop of the run is its ``__cause__``). The run is
    over: its record stays, and ``replay`` replays it up to where it stopped; a new run
    under another workflow id does its work again.
    """


class DurableApprovalError(DurableError, LookupError):
    """A decision sent to a durable run (``approve``, ``deny``) for a call that does not wait.

    The run does not exist or has ended, the call is unknown, or it was decided already:
    nothing was sent.
    """


class DurableFailedCallError(DurableError, RuntimeError):
    """A model or tool call of a durable run failed with an error not recordable as itself.

    A failed call is recorded with its error, and replayed by raising it again; an error
    that cannot be pickled (an ``LLMError`` always can) is recorded as this one instead,
    which names its class and says its text (a tool's: its result, the model's alone). The
    run gets this one both times (live, with the original as ``__cause__``, and replayed),
    so that its code takes the same path.

    Attributes:
        error_type: The original error's class, with its module (``"module.Class"``).
        text: The original error's text.
    """

    def __init__(self, message: str, error_type: str = "", text: str = "") -> None:
        """Make the error from its message, the original error's class name and its text."""
        super().__init__(message)
        self.error_type = error_type
        self.text = text
