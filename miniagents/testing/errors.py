"""Errors of the testing kit; the whole hierarchy is drawn in :mod:`miniagents.errors`.

::

    FakeLLMServerError                    the fake LLM server was misused (e.g. started twice)
    └── FakeLLMServerTimeout (also TimeoutError)  what a test waited for did not happen in time
    VirtualTimeError (also RuntimeError)  virtual time used where it cannot work
    ContractViolationError (also AssertionError)  code under a contract failed one of its checks
"""

from __future__ import annotations

from miniagents.promising.errors import MiniAgentsError

__all__ = [
    "ContractViolationError",
    "FakeLLMServerError",
    "FakeLLMServerTimeout",
    "VirtualTimeError",
]


class FakeLLMServerError(MiniAgentsError):
    """The fake LLM server was used in a way it does not support (the message says how)."""


class FakeLLMServerTimeout(FakeLLMServerError, TimeoutError):
    """A request, or the end of a response, that a test waited for did not come in time."""


class VirtualTimeError(MiniAgentsError, RuntimeError):
    """Virtual time was used where it cannot work (the message says what to do instead)."""


class ContractViolationError(MiniAgentsError, AssertionError):
    """A check of ``ChatHistoryContract`` or ``LLMProviderContract`` failed.

    The message says what the history or provider under the check did wrong. It is an
    ``AssertionError``, so pytest reports it as a failed test.
    """
