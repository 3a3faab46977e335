"""What LLM calls used and cost, summed, and the budgets that limit them.

Every call of a model made by an LLM agent is counted, as it runs, in running sums (never a
record per call, so a pipeline over a million items holds a few numbers):

- in each active ``MiniAgents`` context (:func:`usage_totals`), inner contexts included;
- in every :class:`Budget` it is charged to: one given to an agent (``agent.fork(budget=...)``
  or ``inquire(..., budget=...)``), which covers everything the agent's interactions cause
  (its tool loop, the agents it calls as tools, their tools, retries), one given to a
  context (:func:`with_budget`), and one given to a block of code (:func:`charged_to`): the
  interactions started inside it and everything they cause.

A ``Budget`` without limits is a meter: ``budget.usage`` is the usage of what it covers,
e.g. of one interaction tree::

    budget = Budget()
    reply = await agent.inquire("...", budget=budget)   # an LLM agent
    with charged_to(budget):                            # or any agent
        reply = await orchestrator.inquire("...")
    budget.usage.cost_usd

**Limits.** A call starts only while every budget charged has room for it (fewer requests
than ``max_requests``, fewer tokens than ``max_total_tokens``, less cost than
``max_cost_usd``); otherwise the call is not made and the reply that needed it fails with a
``BudgetExceededError``. A streamed reply counts each piece it receives (a text token or a
piece of a tool call's arguments) as one output token, at the model's price, until the
provider's count replaces that at the end of the call; once a limit is exceeded, every
call still streaming stops at its next piece (its connection closed) with the same error.

**Overshoot.** ``max_requests`` is exact: a call is counted when it starts, so it is never
exceeded. Tokens and cost may end past their limit by at most what the calls in flight
when it was crossed report at their end beyond what they had streamed (their prompt
tokens, which providers report at the end, and the difference of their own count from the
pieces counted), plus one piece per call in flight; a call that does not stream is counted
whole at its end. No call starts once a limit is reached. ``budget.in_flight`` says how
many calls are running.

**Prices.** Costs come from :mod:`miniagents.ext.llm.pricing` (the ``genai-prices``
table). A call of a model without a known price adds no cost and counts in
``unpriced_requests``; a budget with ``max_cost_usd`` refuses such a call before it is
made (an ``LLMConfigurationError``): it could not keep its limit.

A budget counts the calls of this process: a Ray worker (:mod:`miniagents.ext.ray`) counts
its own.

**Progress bars.** A pipeline's progress bar (:mod:`miniagents.pipeline.progress`) shows the
tokens and the cost of the calls made in its ``MiniAgents`` context since it started
(``tokens=96,000, $0.0144``; ``≥$`` when some calls had no price), once any call was made.
"""

from __future__ import annotations

import contextvars
import math
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from miniagents.ext.llm.errors import BudgetExceededError, LLMConfigurationError
from miniagents.ext.llm.messages import TokenUsage
from miniagents.ext.llm.pricing import is_priced, output_token_price, prices_installed
from miniagents.miniagents.context import MiniAgents
from miniagents.miniagents.errors import NoActiveContextError
from miniagents.miniagents.lowlevel import enclosing_contexts
from miniagents.pipeline.progress import ProgressReading, add_progress_meter

__all__ = ["Budget", "UsageTotals", "charged_to", "usage_totals", "with_budget"]


@dataclass(frozen=True)
class UsageTotals:
    """The usage of many LLM calls, summed (a snapshot: it does not change afterwards).

    Attributes:
        requests: The calls of a model that were started.
        input_tokens: Their prompt tokens, the cached ones included.
        output_tokens: Their reply tokens, the reasoning ones included.
        cached_input_tokens: Prompt tokens read from the provider's cache.
        cache_write_tokens: Prompt tokens written to the provider's cache.
        reasoning_tokens: Output tokens spent reasoning.
        cost_usd: Their cost in US dollars (the calls of unpriced models add nothing).
        unpriced_requests: The calls whose cost is unknown (a model without a price, or
            a provider that did not report its tokens): when not 0, ``cost_usd`` is a
            lower bound.
    """

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_requests: int = 0

    @property
    def total_tokens(self) -> int:
        """Input and output tokens together."""
        return self.input_tokens + self.output_tokens


class Budget:
    """Limits on the LLM calls of what it is given to, and what those calls used so far.

    A budget is an account: every call charged to it adds up, across every interaction of
    every agent it is given to, until you make a new one. See :mod:`miniagents.ext.llm.usage`
    for what is charged, when a call is refused or stopped, and by how much parallel calls
    may overshoot a limit (``max_requests`` never; tokens and cost by at most what the
    calls in flight report at their end).

    Args:
        max_requests: The most calls of a model (each round of a tool loop, each retry of
            a structured answer is one).
        max_total_tokens: The most input and output tokens, together.
        max_cost_usd: The most cost in US dollars (calls of models without a known price
            are refused).

    Raises:
        LLMConfigurationError: if a limit is negative, NaN, or not a number (the request
            and token limits: not a whole number).
    """

    __slots__ = (
        "__weakref__",
        "_budget_cached",
        "_budget_cost",
        "_budget_in_flight",
        "_budget_input",
        "_budget_output",
        "_budget_reasoning",
        "_budget_requests",
        "_budget_unpriced",
        "_budget_written",
        "_max_cost_usd",
        "_max_requests",
        "_max_total_tokens",
    )

    def __init__(
        self,
        *,
        max_requests: int | None = None,
        max_total_tokens: int | None = None,
        max_cost_usd: float | None = None,
    ) -> None:
        self._max_requests = _whole("max_requests", max_requests)
        self._max_total_tokens = _whole("max_total_tokens", max_total_tokens)
        self._max_cost_usd = _amount(max_cost_usd)
        self._budget_requests = 0
        self._budget_in_flight = 0
        self._budget_input = 0
        self._budget_output = 0
        self._budget_cached = 0
        self._budget_written = 0
        self._budget_reasoning = 0
        self._budget_cost = 0.0
        self._budget_unpriced = 0

    @property
    def max_requests(self) -> int | None:
        """The most calls of a model, or ``None``: no limit."""
        return self._max_requests

    @property
    def max_total_tokens(self) -> int | None:
        """The most input and output tokens together, or ``None``: no limit."""
        return self._max_total_tokens

    @property
    def max_cost_usd(self) -> float | None:
        """The most cost in US dollars, or ``None``: no limit."""
        return self._max_cost_usd

    @property
    def usage(self) -> UsageTotals:
        """What the calls charged to the budget used so far (streaming ones included)."""
        return UsageTotals(
            requests=self._budget_requests,
            input_tokens=self._budget_input,
            output_tokens=self._budget_output,
            cached_input_tokens=self._budget_cached,
            cache_write_tokens=self._budget_written,
            reasoning_tokens=self._budget_reasoning,
            cost_usd=self._budget_cost,
            unpriced_requests=self._budget_unpriced,
        )

    @property
    def in_flight(self) -> int:
        """How many calls charged to the budget are running now."""
        return self._budget_in_flight

    def __repr__(self) -> str:
        limits = [
            f"{name}={value!r}"
            for name, value in (
                ("max_requests", self._max_requests),
                ("max_total_tokens", self._max_total_tokens),
                ("max_cost_usd", self._max_cost_usd),
            )
            if value is not None
        ]
        return f"Budget({', '.join(limits)})"

    # -- the accounting (each call's _CallCharge does it) ---------------------------------

    @property
    def _limited(self) -> bool:
        return not (
            self._max_requests is None
            and self._max_total_tokens is None
            and self._max_cost_usd is None
        )

    def _measures(self) -> tuple[tuple[str, float | None, float], ...]:
        return (
            ("max_requests", self._max_requests, self._budget_requests),
            ("max_total_tokens", self._max_total_tokens, self._budget_input + self._budget_output),
            ("max_cost_usd", self._max_cost_usd, self._budget_cost),
        )

    def _used_up(self) -> tuple[str, float, float] | None:
        """The limit a call would start past (name, maximum, used), or ``None``: it has room."""
        for name, maximum, used in self._measures():
            if maximum is not None and used >= maximum:
                return name, maximum, used
        return None

    def _over_limit(self) -> tuple[str, float, float] | None:
        """The token or cost limit exceeded (name, maximum, used), or ``None``."""
        for name, maximum, used in self._measures()[1:]:
            if maximum is not None and used > maximum:
                return name, maximum, used
        return None


def _refused(alias: str, model: str, name: str, maximum: float, used: float) -> BudgetExceededError:
    return _exceeded(
        f"The agent {alias} did not call the model {model!r}: its budget's {name} of "
        f"{_shown(name, maximum)} is used up ({_shown(name, used)} used).",
        name,
        maximum,
        used,
    )


def _stopped(alias: str, model: str, name: str, maximum: float, used: float) -> BudgetExceededError:
    return _exceeded(
        f"The agent {alias} stopped its call of the model {model!r}: its budget's {name} of "
        f"{_shown(name, maximum)} was exceeded ({_shown(name, used)} used).",
        name,
        maximum,
        used,
    )


def _exceeded(text: str, name: str, maximum: float, used: float) -> BudgetExceededError:
    return BudgetExceededError(
        f"{text} Raise it with Budget({name}=...) where the budget is given "
        "(agent.fork(budget=...), with_budget(context, ...) or charged_to(...)), or give "
        "a new Budget.",
        name,
        maximum,
        used,
    )


def _shown(name: str, value: float) -> str:
    if name == "max_cost_usd":
        return f"${value:,.6f}".rstrip("0").rstrip(".")
    count = int(value)
    unit = "call" if name == "max_requests" else "token"
    return f"{count:,} {unit}{'' if count == 1 else 's'}"


def _whole(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LLMConfigurationError(
            f"A Budget's {name} must be a whole number of at least 0 (or None: no limit), "
            f"got {value!r}. E.g. Budget({name}=100)."
        )
    return value


def _amount(value: object) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or math.isnan(value)
        or value < 0
    ):
        raise LLMConfigurationError(
            "A Budget's max_cost_usd must be a number of US dollars of at least 0 (or None: "
            f"no limit), got {value!r}. E.g. Budget(max_cost_usd=0.50)."
        )
    return float(value)


# -- where the budgets are -----------------------------------------------------------------


@dataclass
class _ContextAccount:
    """What a ``MiniAgents`` context's calls used, and the budget given to it."""

    meter: Budget
    budget: Budget | None = None


_CONTEXT_ACCOUNTS: weakref.WeakKeyDictionary[MiniAgents, _ContextAccount] = (
    weakref.WeakKeyDictionary()
)
_SCOPES: contextvars.ContextVar[tuple[Budget, ...]] = contextvars.ContextVar(
    "miniagents_llm_budgets", default=()
)


def _context_account(context: MiniAgents) -> _ContextAccount:
    account = _CONTEXT_ACCOUNTS.get(context)
    if account is None:
        account = _CONTEXT_ACCOUNTS[context] = _ContextAccount(Budget())
    return account


def usage_totals(context: MiniAgents | None = None) -> UsageTotals:
    """What the LLM calls made in a ``MiniAgents`` context used, inner contexts included.

    Args:
        context: The context (also after it has ended); ``None``: the current one.

    Raises:
        NoActiveContextError: with no ``context``, outside of every context.
    """
    if context is None:
        context = MiniAgents.get_current()
    return _context_account(context).meter.usage


def with_budget(context: MiniAgents, budget: Budget) -> MiniAgents:
    """Give ``context`` a budget for every LLM call made in it (inner contexts included).

    E.g. ``async with with_budget(MiniAgents(), Budget(max_cost_usd=5)):``. A context holds
    one budget: giving another replaces it (the calls made count from then on).

    Returns:
        ``context``.
    """
    _context_account(context).budget = budget
    return context


@contextmanager
def charged_to(budget: Budget) -> Iterator[Budget]:
    """Charge ``budget`` for the LLM calls of what is started inside the block.

    Every interaction started in the block (inquired, eagerly or lazily), and everything
    it causes, is charged, also after the block ends; so is a call made in the block
    itself. Blocks nest: a call is charged to each budget around it.

    Yields:
        ``budget``.
    """
    token = _SCOPES.set((*_SCOPES.get(), budget))
    try:
        yield budget
    finally:
        _SCOPES.reset(token)


def _charged_budgets() -> list[Budget]:
    """The budgets a call made here is charged to, each once: the contexts', then the scopes'.

    For the LLM calls of :mod:`miniagents.ext.llm` (a provider of yours is charged by them
    already).
    """
    budgets: list[Budget] = []
    for context in enclosing_contexts():
        account = _context_account(context)
        budgets.append(account.meter)
        if account.budget is not None:
            budgets.append(account.budget)
    budgets.extend(_SCOPES.get())
    return list({id(budget): budget for budget in budgets}.values())  # each once, in order


class _CallCharge:
    """What one call of a model is charged, as it runs, to every budget around it.

    For the LLM calls of :mod:`miniagents.ext.llm`: made before the request (which it
    refuses when a budget has no room), told of each streamed piece (:meth:`piece`, which
    stops the call once a limit is exceeded), then of the provider's count
    (:meth:`finish`) or of the call's end without one (:meth:`end`).

    Raises:
        BudgetExceededError: if a budget has no room for the call.
        LLMConfigurationError: if a budget has ``max_cost_usd`` and the model has no
            known price.
    """

    __slots__ = ("_alias", "_budgets", "_limited", "_model", "_open", "_piece_cost", "_pieces")

    def __init__(self, alias: str, model: str, price_provider: str | None) -> None:
        budgets = _charged_budgets()
        limited = [budget for budget in budgets if budget._limited]
        if any(budget.max_cost_usd is not None for budget in limited) and not is_priced(
            model, price_provider
        ):
            missing = (
                'genai-prices is not installed (pip install genai-prices, or "miniagents[openai]")'
                if not prices_installed()
                else f"the price table (genai-prices) has no price for {model!r}"
                + (f" of {price_provider!r}" if price_provider else "")
            )
            raise LLMConfigurationError(
                f"The agent {alias} did not call the model {model!r}: a budget with "
                f"max_cost_usd charges the call, and {missing}, so the budget could not be "
                "kept. Use a model with a known price, update genai-prices, or limit the "
                "budget by max_total_tokens instead."
            )
        for budget in limited:
            used_up = budget._used_up()
            if used_up is not None:
                raise _refused(alias, model, *used_up)
        for budget in budgets:
            budget._budget_requests += 1
            budget._budget_in_flight += 1
        self._alias = alias
        self._model = model
        self._budgets = budgets
        self._limited = limited
        self._open = True
        self._pieces = 0
        self._piece_cost = (output_token_price(model, price_provider) or 0.0) if budgets else 0.0

    def piece(self) -> None:
        """Count one streamed piece as an output token.

        Raises:
            BudgetExceededError: if a token or cost limit is exceeded (by this call or
                another one).
        """
        self._pieces += 1
        for budget in self._budgets:
            budget._budget_output += 1
            budget._budget_cost += self._piece_cost
        for budget in self._limited:
            exceeded = budget._over_limit()
            if exceeded is not None:
                raise _stopped(self._alias, self._model, *exceeded)

    def finish(self, usage: TokenUsage) -> None:
        """Replace the pieces counted by the provider's count (``usage``, with its cost)."""
        if not self._open:
            return
        self._open = False
        output = self._pieces if usage.output_tokens is None else usage.output_tokens
        streamed_cost = self._pieces * self._piece_cost
        for budget in self._budgets:
            budget._budget_in_flight -= 1
            budget._budget_input += usage.input_tokens or 0
            budget._budget_output += output - self._pieces
            budget._budget_cached += usage.cached_input_tokens or 0
            budget._budget_written += usage.cache_write_tokens or 0
            budget._budget_reasoning += usage.reasoning_tokens or 0
            if usage.cost_usd is None:
                budget._budget_unpriced += 1
            else:
                budget._budget_cost += usage.cost_usd - streamed_cost

    def end(self) -> None:
        """End a call that reported no count (failed or stopped): its pieces stay counted."""
        if not self._open:
            return
        self._open = False
        for budget in self._budgets:
            budget._budget_in_flight -= 1
            if self._pieces:  # its prompt tokens are unknown, so is its cost
                budget._budget_unpriced += 1


# -- on progress bars ----------------------------------------------------------------------


def _progress_meter() -> ProgressReading | None:
    """The usage of the calls made in the current context since a progress bar started."""
    try:
        context = MiniAgents.get_current()
    except NoActiveContextError:  # e.g. a bar of ray_pipeline's driver: its workers count
        return None
    start = usage_totals(context)

    def read() -> str | None:
        now = usage_totals(context)
        requests = now.requests - start.requests
        if not requests:
            return None
        text = f"tokens={now.total_tokens - start.total_tokens:,}"
        unpriced = now.unpriced_requests - start.unpriced_requests
        if unpriced < requests:
            text += f", {'≥' if unpriced else ''}${now.cost_usd - start.cost_usd:.4f}"
        return text

    return read


add_progress_meter(_progress_meter)
