"""A session's replies metered: each charged to the budgets, shown to tracing, priced.

A reply of the model is a call of the model to the budgets (a ``CallCharge``: its tokens,
its cost) and to the LLM call observers (tracing: a watch of the call, its text streamed,
its ``Finish`` at its end); one reply is metered at a time (a reply the API never said the
end of is ended as the next starts, or as the session ends).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from miniagents.ext.llm.charging import CallCharge, Exceeded, charged_budgets
from miniagents.ext.llm.errors import BudgetExceededError
from miniagents.ext.llm.observing import LLMCallWatch, end_llm_call, watch_llm_call
from miniagents.ext.llm.pricing import finish_usage, reported_count, reported_usage
from miniagents.ext.llm.provider import AudioTokens, Finish, LLMCall, LLMEvent
from miniagents.ext.llm.usage import Budget
from miniagents.ext.realtime._recording import observed_session
from miniagents.ext.realtime.pieces import RealtimeUsage
from miniagents.ext.realtime.provider import (
    ObservedSession,
    RealtimeProvider,
    ReplyEnded,
    SessionSetup,
)
from miniagents.promising.lowlevel import spawn

__all__ = ["ReplyMeter"]


class _ReplyWatch:
    """A reply of the model shown to the LLM call observer (tracing), as a call of the model.

    Its task is one of ``owner`` (the meter's: the session waits for them as it ends).
    """

    def __init__(self, watch: LLMCallWatch, owner: set[asyncio.Task[None]]) -> None:
        self.events: asyncio.Queue[LLMEvent | None] = asyncio.Queue()
        self._watch = watch
        spawn(self._drive(), "realtime reply trace", owner)

    async def _drive(self) -> None:
        failure: BaseException | None = None
        try:
            async for _event in self._watch.events(self._take()):
                pass
        except BaseException as error:
            failure = error
            raise
        finally:
            end_llm_call(self._watch, failure)

    async def _take(self) -> AsyncIterator[LLMEvent]:
        while (event := await self.events.get()) is not None:
            yield event


class ReplyMeter:
    """The replies of one session, metered one at a time (see the module).

    Args:
        alias: The agent's alias.
        model: The model asked for.
        provider: The API (its ``price_provider`` prices the replies).
        setup: The session's setup (tracing shows its instructions and tools).

    Attributes:
        traces: The tasks showing its replies to tracing, until each ends (once
            :meth:`end` has ended its reply): the session waits for them as it ends.
    """

    def __init__(
        self, alias: str, model: str, provider: RealtimeProvider[Any], setup: SessionSetup
    ) -> None:
        self._alias = alias
        self._model = model
        self._provider = provider
        self._setup = setup
        self._charge: CallCharge | None = None
        self._trace: _ReplyWatch | None = None
        self._observed: ObservedSession | None = None
        self.traces: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """A reply started (the one under way, if the API never said its end, ends here)."""
        self.end()
        self._charge = CallCharge(self._alias, self._model, self._provider.price_provider)
        if self._observed is None:  # (the provider its replies are shown with: once)
            self._observed = observed_session(self._provider, self._setup)
        call = LLMCall(self._model, True, self._setup.instructions, (), {}, self._setup.tools)
        watch = watch_llm_call(self._alias, self._observed, call)  # type: ignore[arg-type]
        self._trace = None if watch is None else _ReplyWatch(watch, self.traces)

    def piece(self, text: str) -> None:
        """A piece of the reply's text: charged, and shown to tracing.

        Raises:
            BudgetExceededError: a budget's limit was crossed.
        """
        if self._charge is not None:
            self._charge.piece()
        if self._trace is not None:
            self._trace.events.put_nowait(text)

    def finish(self, event: ReplyEnded, replayed: bool) -> RealtimeUsage | None:
        """The reply ended (``replayed``: by a call cache): its usage, priced, charged, shown.

        The cost is its ``Finish``'s (:func:`_finish`), priced as the evals' trees and the
        studio price it (``pricing.finish_usage``: by ``pricing.audio_cost_usd``, as the
        model that answered if the table knows it): ``None`` if unknown, 0.0 for a call
        cache's replay (no request made).
        """
        usage = None
        if event.usage is not None:
            usage = _counted(event.usage)
            price = self._provider.price_provider
            cost = finish_usage(_finish(event, usage, replayed), self._model, price).cost_usd
            usage = usage if cost is None else usage.model_copy(update={"cost_usd": cost})
        charge, self._charge = self._charge, None
        if charge is not None and usage is not None:
            charge.finish(usage, _audio(usage))
        if self._trace is not None:
            self._trace.events.put_nowait(_finish(event, usage, replayed))
        self.end()
        return usage

    def end(self) -> None:
        """End the reply under way (uncharged for what it did not say), and its trace."""
        if self._charge is not None:
            self._charge.end()
            self._charge = None
        if self._trace is not None:
            self._trace.events.put_nowait(None)
            self._trace = None

    def check_budgets(self) -> None:
        """Stop the session once a budget it is charged to is past a limit.

        Raises:
            BudgetExceededError: naming the limit.
        """
        for budget in charged_budgets():
            exceeded = _exceeded(budget)
            if exceeded is not None:
                name, maximum, used = exceeded
                raise BudgetExceededError(
                    f"The realtime agent {self._alias} stopped its session with {self._model!r}: "
                    f"its budget's {name} of {maximum:g} was exceeded ({used:g} used). Raise it "
                    f"with Budget({name}=...) where the budget is given, or give a new Budget.",
                    name,
                    maximum,
                    used,
                )


def _finish(event: ReplyEnded, usage: RealtimeUsage | None, replayed: bool) -> Finish:
    """The reply's end as a call's (``replayed``: by a call cache, as a cached call's is).

    Its model is the one the API said answered (``None`` if it said none), as a call's is:
    the model asked for is the call's, not the reply's. Its ``audio`` says the reply's
    audio counts, so that ``pricing.finish_usage`` prices it as the session does.
    """
    model = event.model
    if usage is None:
        return Finish(event.status, model=model, response_id=event.response_id, replayed=replayed)
    return Finish(
        event.status,
        usage.input_tokens,
        usage.output_tokens,
        usage.cached_input_tokens,
        model=model,
        response_id=event.response_id,
        replayed=replayed,
        audio=_audio(usage),
    )


def _audio(usage: RealtimeUsage) -> AudioTokens:
    """The audio counts of ``usage``, as a ``Finish`` says them."""
    return AudioTokens(
        usage.input_audio_tokens, usage.output_audio_tokens, usage.cached_audio_tokens
    )


def _counted(usage: RealtimeUsage) -> RealtimeUsage:
    """``usage`` with each count that is no count unknown, as ``pricing.reported_usage`` has it.

    A count a misbehaving server reported negative (or not a whole number) is ``None``:
    neither priced nor charged to a budget. (An audio count unknown leaves the reply's
    price unknown: ``pricing.audio_cost_usd``'s rule, through ``finish_usage``.)
    """
    tokens = reported_usage(usage)
    return usage.model_copy(
        update={
            "input_tokens": tokens.input_tokens,
            "output_tokens": tokens.output_tokens,
            "cached_input_tokens": tokens.cached_input_tokens,
            "cache_write_tokens": tokens.cache_write_tokens,
            "reasoning_tokens": tokens.reasoning_tokens,
            "input_audio_tokens": reported_count(usage.input_audio_tokens),
            "output_audio_tokens": reported_count(usage.output_audio_tokens),
            "cached_audio_tokens": reported_count(usage.cached_audio_tokens),
        }
    )


def _exceeded(budget: Budget) -> Exceeded | None:
    usage = budget.usage
    for name, maximum, used in (
        ("max_total_tokens", budget.max_total_tokens, usage.total_tokens),
        ("max_cost_usd", budget.max_cost_usd, usage.cost_usd),
    ):
        if maximum is not None and used > maximum:
            return name, float(maximum), float(used)
    return None
