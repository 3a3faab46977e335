"""Errors of realtime sessions; the whole hierarchy is drawn in :mod:`miniagents.errors`.

A realtime session fails with the LLM agents' errors where they fit (a missing model is an
``LLMConfigurationError``, a refused key an ``LLMAuthenticationError``, a budget used up a
``BudgetExceededError``, a replay-only call cache without the session an
``LLMCacheMissError``), and with these where they do not::

    LLMError
    └── RealtimeError                          a realtime session failed
        ├── RealtimeConnectionError (also ConnectionError)  no connection, or it dropped
        ├── RealtimeServerError                the server ended the session with an error
        └── RealtimeInputError (also TypeError)  an input piece the session cannot send

Each reaches the reader of the session's reply after the pieces that came before it.
"""

from __future__ import annotations

from miniagents.ext.llm.errors import LLMError

__all__ = [
    "RealtimeConnectionError",
    "RealtimeError",
    "RealtimeInputError",
    "RealtimeServerError",
]


class RealtimeError(LLMError):
    """A realtime session (``miniagents.ext.realtime``) failed."""


class RealtimeConnectionError(RealtimeError, ConnectionError):
    """The session could not connect to the realtime API, or its connection dropped."""


class RealtimeServerError(RealtimeError):
    """The realtime API ended the session with an error (its error event or close frame).

    Attributes:
        code: The API's code of the error (``"server_error"``, a close code, ...).
    """

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class RealtimeInputError(RealtimeError, TypeError):
    """An input piece that a realtime session cannot send (audio of another format, ...)."""
