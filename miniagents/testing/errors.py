"""Errors of the testing kit, under their own root (not the product's ``MiniAgentsError``).

The testing kit is a tool for the tests of code built on MiniAgents, not part of what that
code runs: its errors say that a test used the kit wrongly or that code under a contract
failed it. So they are not ``MiniAgentsError`` s (an ``except MiniAgentsError`` in the code
under test never swallows them) and :mod:`miniagents.errors` does not list them; they are
public here and in :mod:`miniagents.testing`::

    TestingKitError
    ├── FakeLLMServerError                        the fake LLM server was misused
    │   └── FakeLLMServerTimeout (also TimeoutError)  what a test waited for did not come in time
    ├── VirtualTimeError (also RuntimeError)      virtual time used where it cannot work
    └── ContractViolationError (also AssertionError)  code under a contract failed a check
"""

from __future__ import annotations

__all__ = [
    "ContractViolationError",
    "FakeLLMServerError",
    "FakeLLMServerTimeout",
    "TestingKitError",
    "VirtualTimeError",
]


class TestingKitError(Exception):
    """The root of the testing kit's errors (see the module docstring)."""

    __test__ = False  # not a test class, whatever pytest's name patterns say


class FakeLLMServerError(TestingKitError):
    """The fake LLM server was used in a way it does not support (the message says how)."""


class FakeLLMServerTimeout(FakeLLMServerError, TimeoutError):
    """A request, or the end of a response, that a test waited for did not come in time."""


class VirtualTimeError(TestingKitError, RuntimeError):
    """Virtual time was used where it cannot work (the message says what to do instead)."""


class ContractViolationError(TestingKitError, AssertionError):
    """A check of ``ChatHistoryContract`` or ``LLMProviderContract`` failed.

    The message says what the history or provider under the check did wrong. It is an
    ``AssertionError``, so pytest reports it as a failed test.
    """
