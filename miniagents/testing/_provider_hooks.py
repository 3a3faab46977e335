"""What a test class of ``LLMProviderContract`` implements: the provider, and its script.

The checks (:mod:`miniagents.testing.llm_provider_contract`) call these hooks, in the
check's event loop: the provider and its options class to make the agent of, arguments for
that agent, how to make the service answer, fail or hang at the next call, and what to
await to tell that a call reached the service and was closed there.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, Generic, TypeVar

from miniagents.ext.llm.provider import LLMOptions, LLMProvider

__all__ = ["ProviderHooks"]

OptionsT = TypeVar("OptionsT", bound=LLMOptions)


class ProviderHooks(ABC, Generic[OptionsT]):
    """The hooks of the LLM provider contract (``OptionsT``: the provider's options class)."""

    @abstractmethod
    def provider(self) -> LLMProvider[OptionsT]:
        """The provider under the checks."""

    @abstractmethod
    def options_class(self) -> Callable[..., OptionsT]:
        """Its options class (what ``make_llm_agent`` takes with it)."""

    def agent_arguments(self) -> Mapping[str, object]:
        """Arguments for the agent of every call (e.g. the model, a client): none by default."""
        return {}

    @abstractmethod
    def script_reply(self, tokens: Sequence[str]) -> Mapping[str, object]:
        """Make the next call answer ``tokens``: one text event each, then a normal end.

        Returns:
            Arguments for the agent of that call (none if the service was scripted).
        """

    @abstractmethod
    def script_failure(self) -> Mapping[str, object]:
        """Make the next call fail as the service fails (e.g. an HTTP error, not retried).

        Returns:
            Arguments for the agent of that call (none if the service was scripted).
        """

    @abstractmethod
    def script_hang(self) -> Mapping[str, object]:
        """Make the next call start, then send nothing (no token) until it is closed.

        Returns:
            Arguments for the agent of that call (none if the service was scripted).
        """

    def call_sent(self) -> Awaitable[object] | None:
        """What to await until the call being made has reached the service (``None``: nothing).

        The checks await it while the provider waits for its first event, before they give
        up on the call. In the stall check the loop's clock is stopped: wait from a thread
        (``asyncio.to_thread(server.wait_requests, 1)``), not with ``asyncio.sleep``.
        """
        return None

    def call_closed(self) -> Awaitable[object] | None:
        """What to await until the call given up on is closed at the service (``None``: nothing).

        E.g. ``asyncio.to_thread(server.wait_disconnected, 0)``: if it gives ``False`` (the
        response ended at the service before the call was closed), the check fails, as it
        does if the call stays open longer than the check waits (``wait``) or the awaitable
        raises (``FakeLLMServerTimeout``). The loop's clock may be stopped (as above).
        """
        return None

    def run(self, check: Coroutine[Any, Any, None]) -> None:
        """Run one check to its end: in a new event loop by default (``asyncio.run``)."""
        asyncio.run(check)
