"""Errors of LLM agents; the whole hierarchy is drawn in :mod:`miniagents.errors`.

Errors of the provider SDKs (OpenAI, Anthropic) reach consumers translated into these,
with the SDK's exception kept as ``__cause__``::

    LLMError
    ├── LLMConfigurationError (also ValueError)  e.g. no model was given
    ├── LLMSDKMissingError (also ImportError)   the provider's SDK is not installed
    ├── LLMRateLimitError                       429, after the SDK's own retries
    ├── LLMServerError                          5xx / overloaded, after the SDK's own retries
    ├── LLMConnectionError                      the connection failed or broke mid-stream
    │   └── LLMTimeoutError                     the request timed out, or the reply stalled
    ├── LLMAuthenticationError                  a missing or refused API key
    ├── LLMRequestError                         any other 4xx: the request was refused
    ├── LLMResponseError                        a malformed, incomplete or failed response stream
    └── LLMToolRoundsError                      the model asked for tools more than max_tool_rounds
                                                times in a row (a runaway tool loop)
"""

from __future__ import annotations

from miniagents.promising.errors import MiniAgentsError

__all__ = [
    "LLMAuthenticationError",
    "LLMConfigurationError",
    "LLMConnectionError",
    "LLMError",
    "LLMRateLimitError",
    "LLMRequestError",
    "LLMResponseError",
    "LLMSDKMissingError",
    "LLMServerError",
    "LLMTimeoutError",
    "LLMToolRoundsError",
]


class LLMError(MiniAgentsError):
    """An LLM call failed."""


class LLMConfigurationError(LLMError, ValueError):
    """An LLM agent is missing a setting it needs, such as the model."""


class LLMSDKMissingError(LLMError, ImportError):
    """The SDK of a provider is not installed; the message says how to install it."""


class LLMRateLimitError(LLMError):
    """The provider kept refusing the request for its rate limit (HTTP 429)."""


class LLMServerError(LLMError):
    """The provider kept failing with a server error (HTTP 5xx, or overloaded)."""


class LLMConnectionError(LLMError):
    """The connection to the provider failed, or broke while the reply streamed."""


class LLMTimeoutError(LLMConnectionError):
    """The request to the provider timed out, or its reply stalled.

    A reply stalls when no event of it arrives for the agent's ``stall_timeout`` (see
    ``MiniAgents(llm_stall_timeout=...)``); the call is then stopped and its HTTP stream
    closed.
    """


class LLMAuthenticationError(LLMError):
    """The provider refused the API key (or there was none)."""


class LLMRequestError(LLMError):
    """The provider refused the request (an HTTP 4xx other than 401, 403 and 429)."""


class LLMResponseError(LLMError):
    """The provider's response was malformed, incomplete, or reported an error mid-stream."""


class LLMToolRoundsError(LLMError):
    """The model kept asking for tools: more rounds of calls than the agent's ``max_tool_rounds``.

    The message names the agent and the limit; the calls and results of the rounds that
    ran were in the reply before it.
    """
