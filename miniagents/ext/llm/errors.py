"""Errors of LLM agents; the whole hierarchy is drawn in :mod:`miniagents.errors`.

Errors of the provider SDKs (OpenAI, Anthropic) reach consumers translated into these,
with the SDK's exception kept as ``__cause__``::

    LLMError
    ├── LLMConfigurationError (also ValueError)  e.g. no model was given
    ├── LLMSDKMissingError (also ImportError)   the provider's SDK is not installed
    ├── LLMRateLimitError                       429, after the SDK's own retries
    ├── LLMServerError                          5xx (not 504) / overloaded / 409, after retries
    ├── LLMConnectionError                      the connection failed or broke mid-stream
    │   └── LLMTimeoutError                     the request timed out (or 408, 504), or stalled
    ├── LLMAuthenticationError                  a missing or refused API key
    ├── LLMRequestError                         any other 4xx: the request was refused
    ├── LLMResponseError                        a malformed, incomplete or failed response stream
    ├── LLMToolRoundsError                      the model asked for tools more than max_tool_rounds
    │                                           times in a row (a runaway tool loop)
    ├── LLMOutputValidationError                the structured answer did not validate, after
    │                                           output_retries retries
    ├── LLMRefusalError                         the model refused to answer (OpenAI's refusal,
    │                                           Anthropic's stop_reason "refusal"); not retried
    ├── LLMBatchError                           a request of a batch did not run: the batch
    │                                           expired, was cancelled, or failed as a whole
    └── LLMCacheMissError (also LookupError)    a call cache that only replays had no
                                                recording of the call
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from miniagents.promising.errors import MiniAgentsError
from miniagents.root_error import ArgumentError

__all__ = [
    "BudgetExceededError",
    "LLMAuthenticationError",
    "LLMBatchError",
    "LLMCacheFileError",
    "LLMCacheLockedError",
    "LLMCacheMissError",
    "LLMConfigurationError",
    "LLMConnectionError",
    "LLMError",
    "LLMOutputValidationError",
    "LLMRateLimitError",
    "LLMRefusalError",
    "LLMRequestError",
    "LLMResponseError",
    "LLMSDKMissingError",
    "LLMServerError",
    "LLMTimeoutError",
    "LLMToolRoundsError",
]


class LLMError(MiniAgentsError):
    """An LLM call failed."""


class LLMConfigurationError(LLMError, ArgumentError):
    """An LLM agent is missing a setting it needs, such as the model."""


class LLMSDKMissingError(LLMError, ImportError):
    """The SDK of a provider is not installed; the message says how to install it."""


class LLMRateLimitError(LLMError):
    """The provider kept refusing the request for its rate limit (HTTP 429)."""


class LLMServerError(LLMError):
    """The provider kept failing with a server error (HTTP 5xx but 504, or overloaded), or a 409."""


class LLMConnectionError(LLMError, ConnectionError):
    """The connection to the provider failed, or broke while the reply streamed.

    A ``ConnectionError`` too, so ``except ConnectionError`` (and ``pipeline``'s default
    ``retry_on``) takes it.
    """


class LLMTimeoutError(LLMConnectionError, TimeoutError):
    """The request to the provider (or a gateway before it) timed out, or its reply stalled.

    HTTP 408 (the server's timeout) and 504 (a gateway's) are timeouts too.

    A reply stalls when no event of it arrives for the agent's ``stall_timeout`` (see
    ``MiniAgents(llm_stall_timeout=...)``); the call is then stopped and its HTTP stream
    closed.
    """


class LLMAuthenticationError(LLMError):
    """The provider refused the API key (or there was none)."""


class LLMRequestError(LLMError):
    """The provider refused the request (an HTTP 4xx other than 401, 403, 408, 409 and 429)."""


class LLMResponseError(LLMError):
    """The provider's response was malformed, incomplete, or reported an error mid-stream."""


class LLMToolRoundsError(LLMError):
    """The model kept asking for tools: more rounds of calls than the agent's ``max_tool_rounds``.

    The message names the agent and the limit; the calls and results of the rounds that
    ran were in the reply before it.
    """


class LLMOutputValidationError(LLMError):
    """The model's structured answer did not validate, even after ``output_retries`` retries.

    Each answer that did not validate went back to the model with its errors; the last
    one is here.

    Attributes:
        errors: The validation errors of the last answer, as pydantic gives them
            (``type``, ``loc``, ``msg``, ...); invalid JSON is one error of type
            ``json_invalid``.
        text: The last answer's text.
    """

    def __init__(
        self, message: str, errors: Sequence[Mapping[str, object]] = (), text: str = ""
    ) -> None:
        """Make the error from its message, the validation errors and the refused answer."""
        super().__init__(message)
        self.errors = tuple(errors)
        self.text = text


class LLMRefusalError(LLMError):
    """The model refused to answer, and said why: its refusal is not retried.

    OpenAI's APIs send a refusal apart from the text (Chat Completions: ``refusal``
    deltas; the Responses API: a ``refusal`` content part), Anthropic ends the reply with
    ``stop_reason="refusal"``. Asking again with the same prompt would most likely be
    refused again, so the reply fails at once (a structured answer too: a refusal is not
    JSON that did not validate).

    Attributes:
        text: What the model said when it refused (may be empty).
    """

    def __init__(self, message: str, text: str = "") -> None:
        """Make the error from its message and the model's refusal."""
        super().__init__(message)
        self.text = text


class BudgetExceededError(LLMError):
    """A ``Budget`` had no room for an LLM call, or a running call crossed one of its limits.

    The call was not made (or its stream was stopped at its next token, its connection
    closed); the message names the limit, what was used and how to raise it.

    Attributes:
        limit: The limit's name: ``max_requests``, ``max_total_tokens`` or ``max_cost_usd``.
        maximum: The limit's value.
        used: What was used when the call was refused or stopped (requests, tokens, USD).
    """

    def __init__(self, message: str, limit: str = "", maximum: float = 0, used: float = 0) -> None:
        """Make the error from its message and the limit it names."""
        super().__init__(message)
        self.limit = limit
        self.maximum = maximum
        self.used = used


class LLMBatchError(LLMError):
    """A request that batch mode queued did not run: its batch expired, was cancelled, or failed.

    A request the provider ran and answered with an HTTP error fails as that error does
    live (an ``LLMRateLimitError``, an ``LLMRequestError``, ...); this one is for a
    request the provider never ran (see :mod:`miniagents.ext.llm.batch`), after the
    retries its ``BatchMode`` allows.

    Attributes:
        batch_id: The provider's id of the batch (``None``: it was never created, e.g. its
            submission failed).
        reason: Why it did not run: ``"expired"``, ``"cancelled"`` or ``"failed"``.
    """

    def __init__(self, message: str, batch_id: str | None = None, reason: str = "failed") -> None:
        """Make the error from its message, the batch and the reason."""
        super().__init__(message)
        self.batch_id = batch_id
        self.reason = reason


class LLMCacheFileError(LLMError, OSError):
    """A call cache's SQLite file cannot be opened, is not a database, or is damaged.

    The message names the file and says what to do: move the file away (a new one is made
    there), or give the cache another path (a file in a folder you can write).
    """


class LLMCacheLockedError(LLMCacheFileError):
    """A call cache's SQLite file stayed locked by another connection past the store's wait.

    Another process (or store) held the file locked for writing longer than the store's
    ``timeout``. A call whose reply was delivered is answered all the same (its recording
    is skipped, and that is logged); a recording read before a call fails the call.
    """


class LLMCacheMissError(LLMError, LookupError):
    """A call cache that only replays (``mode="replay"``) had no recording of a call.

    The message names the nearest recorded call and how the call differs from it, so that
    a test run against recordings says which part of a prompt changed.

    Attributes:
        key: The call's key in the cache (a hash of its request).
        nearest: The nearest recorded call's key, if the cache has any.
        diff: How the call's request differs from the nearest's (a unified diff of their
            JSON), or ``""``.
    """

    def __init__(
        self, message: str, key: str = "", nearest: str | None = None, diff: str = ""
    ) -> None:
        """Make the error from its message, the call's key, and the nearest recording."""
        super().__init__(message)
        self.key = key
        self.nearest = nearest
        self.diff = diff
