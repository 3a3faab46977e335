"""Recording the calls of the model: the hook that durable runs (``miniagents.ext.dbos``) plug into.

An :class:`LLMCallRecorder`, once set with :func:`record_llm_calls`, is given every call of
a model that an LLM agent makes (each call of a tool loop, each retry of a structured
answer), in the agent's task, before the request is sent. It returns the events the agent
streams from: those of the live call (which it may record as they pass), or those it
recorded before (the call is then not made again), or ``None`` to decline the call::

    agent:     call 1 .......... | tools ... | call 2 .......... |
    recorder:  live, recorded        ...       replayed (no request)

A live call's events end with its outcome: the end of the stream, or the error the call
failed with (the provider's own, which ``provider.translate`` makes an ``LLMError``; a
stall past the agent's ``stall_timeout`` is an ``LLMTimeoutError`` raised by the stream in
the task that reads it), so that a recorder can record a failure too, and replay it by
raising it again.

A recorder that has nothing to do with a call (a durable recorder given a call made outside
any durable run) returns ``None``: the call then runs exactly as with no recorder set,
charged in the agent's own loop, with no layer of the recorder's between the provider and
the reader.

With no recorder set (the default) a call costs one call of :func:`recorded_llm_call` (or
:func:`recorder_events`, which the LLM agents call) that finds none. Unlike an observer, a
recorder's error fails the call: a durable run must not go on unrecorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from miniagents.ext.llm.provider import LLMCall, LLMEvent, LLMProvider
from miniagents.miniagents import InteractionContext
from miniagents.miniagents.lowlevel import Hook

__all__ = ["LLMCallRecorder", "record_llm_calls", "recorded_llm_call", "recorder_events"]


class LLMCallRecorder(Protocol):
    """Given every call of a model that starts while it is set."""

    def llm_call(
        self,
        ctx: InteractionContext,
        provider: LLMProvider[Any, Any],
        call: LLMCall,
        start: Callable[[], AsyncIterator[LLMEvent]],
    ) -> AsyncIterator[LLMEvent] | None:
        """The events of ``call`` in the interaction ``ctx``: ``start()``'s, or recorded ones.

        Args:
            ctx: The interaction of the LLM agent that makes the call.
            provider: The provider the call is made with (its ``translate`` makes a
                provider's error an ``LLMError``).
            call: The call: model, messages, tools.
            start: Makes the call and returns its live events; call it at most once.

        Returns:
            The events the agent streams from, or ``None`` to decline the call (``start``
            not called): the call is then made as with no recorder set. A recorder that
            never returns ``None`` is given every call, as before declining existed.
        """
        ...


_recorder: Hook[LLMCallRecorder] = Hook("the LLM call recorder")


def record_llm_calls(recorder: LLMCallRecorder | None) -> LLMCallRecorder | None:
    """Set the recorder of the calls that start from now on; return the one before."""
    return _recorder.set(recorder)


def recorded_llm_call(
    ctx: InteractionContext,
    provider: LLMProvider[Any, Any],
    call: LLMCall,
    start: Callable[[], AsyncIterator[LLMEvent]],
) -> AsyncIterator[LLMEvent]:
    """The events of ``call``: the recorder's, else (none set, or it declined) ``start()``'s."""
    events = recorder_events(ctx, provider, call, start)
    return start() if events is None else events


def recorder_events(
    ctx: InteractionContext,
    provider: LLMProvider[Any, Any],
    call: LLMCall,
    start: Callable[[], AsyncIterator[LLMEvent]],
) -> AsyncIterator[LLMEvent] | None:
    """The recorder's events of ``call``, or ``None``: no recorder is set, or it declined.

    For an agent that makes a declined call itself, in its own way (the LLM agents charge
    and watch a live call as they take its events, with no layer around them): ``start``
    is what the recorder calls if it takes the call (see :meth:`LLMCallRecorder.llm_call`).
    """
    recorder = _recorder.current
    return None if recorder is None else recorder.llm_call(ctx, provider, call, start)
