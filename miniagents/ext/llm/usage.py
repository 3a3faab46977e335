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

**Overshoot.** ``max_requests`` is exact: a call is counted when it starts (on a Ray
worker: when the driver admits it), so it is never exceeded. Tokens and cost may end past
their limit by at most, for each call in flight when it was crossed, what it reports at
its end beyond what it had streamed (its prompt tokens, which providers report at the end,
and the difference of its own count from the pieces counted), plus one piece, plus, for a
call on a Ray worker, ``W`` pieces (:data:`REMOTE_PIECES_AHEAD`: what it may have streamed
that the driver had not counted yet): with ``n`` local and ``m`` remote calls streaming,
``used <= limit + n + m * (W + 1) + their end reports``. A call that does not stream is
counted whole at its end. No call starts once a limit is reached. ``budget.in_flight``
says how many calls are running.

**Prices.** Costs come from :mod:`miniagents.ext.llm.pricing` (the ``genai-prices``
table). A call of a model without a known price adds no cost and counts in
``unpriced_requests``; a budget with ``max_cost_usd`` refuses such a call before it is
made (an ``LLMConfigurationError``): it could not keep its limit. A call of a priced
model whose provider did not report its tokens (a stream stopped or failed before the
count, a server that leaves the usage out) counts in ``unpriced_requests`` too, as its
cost is not known, and adds the price of the tokens counted of it: those the provider
reported, and its streamed pieces as output tokens (one each) for those it did not. That
part of ``cost_usd`` is an estimate, as it is while a call streams, and the one the
budgets keep their limits with; its prompt's price is left out when the prompt's tokens
were not reported, so ``cost_usd`` stays a lower bound while ``unpriced_requests`` is
not 0.

**Across processes (Ray workers).** A budget holds also for the calls an agent makes on a
Ray worker (:func:`miniagents.ext.ray.ray_agent`): the budgets of the driver stay the one
account. When an interaction of a ray agent starts where a ``Budget`` applies
(``charged_to``, ``with_budget``, an orchestrator's ``budget=``, or a ``Budget`` in the ray
agent's own arguments, ``ray_agent(llm).fork(budget=...)``), the call carries a *live link*
(:func:`miniagents.miniagents.lowlevel.outgoing_links`); on the worker, the calls made in
that interaction (and everything it causes there) are charged through it:

- **before each call**, the worker asks the driver, whose budgets admit or refuse it as
  they would a call of their own (a refused call is not made: its reply fails with the
  driver's ``BudgetExceededError``). This is one round trip per call start: the request
  rides with the worker's next batch of reply events (:mod:`miniagents.ext.ray._wire`), the
  verdict comes back through the driver's mailbox actor: three Ray messages, measured at
  about 10 ms per call on one 2-core machine under heavy load (less on an idle one), small
  beside a model's time to first token. Budgets without limits (meters, ``Budget()``)
  give no verdict: their calls start at once, and are reported;
- **while it streams**, what the call uses goes to the driver with the reply events, in
  running sums (one report per batch, never one per token), and is charged there to the
  same budgets, before the reply events sent after it; the driver's
  :func:`usage_totals` count the calls too;
- **once a limit is crossed**, by a call there or here, the driver tells every worker call
  charged to that budget to stop: it stops at its next piece after that (its connection
  closed) with the ``BudgetExceededError`` naming the limit.

A call that a token or cost limit charges may stream at most :data:`REMOTE_PIECES_AHEAD`
(``W``, 32) pieces beyond those the driver has counted; it then waits for the driver's
count (so a slow driver slows such a stream, never the reverse). Without a ``Budget`` (the
common case) nothing more crosses the wire and no round trip is made: the worker counts
its calls in its own context, and the driver's :func:`usage_totals` do not include them
(give the context a meter, ``with_budget(context, Budget())``, to count them). Budgets
given to a ray agent's sub-agents that run on further workers are charged hop by hop, each
worker's link admitting its own calls. ``ray_pipeline`` carries no budget: run where one
applies, or with a ``Budget`` bound in one of its agents, it refuses to start
(``RayPipelineLinkError``) rather than let the budget not hold. A ``Budget`` pickled
travels as a reference to itself with its limits: unpickled in its own process, or copied,
it is itself; in another one, a stand-in that charges it through a live link, or, where no
link runs (a durable run of :mod:`miniagents.ext.dbos` recovered by a new process, a
budget read back from a file), a stand-in that holds the same limits for the calls made
there, counted from zero. To keep what a budget used, pickle its ``usage`` (a
``UsageTotals``).

**Progress bars.** A pipeline's progress bar (:mod:`miniagents.pipeline.progress`) shows the
tokens and the cost of the calls made in its ``MiniAgents`` context since it started
(``tokens=96,000, $0.0144``; ``≥$`` when some calls had no price), once any call was made.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import itertools
import math
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from miniagents.ext.llm.errors import BudgetExceededError, LLMConfigurationError, LLMError
from miniagents.ext.llm.messages import TokenUsage
from miniagents.ext.llm.pricing import cost_usd, is_priced, output_token_price, prices_installed
from miniagents.miniagents.context import MiniAgents
from miniagents.miniagents.errors import NoActiveContextError
from miniagents.miniagents.lowlevel import add_link_opener, enclosing_contexts, note_sent
from miniagents.pipeline.progress import ProgressReading, add_progress_meter
from miniagents.promising.lowlevel import spawn

__all__ = [
    "REMOTE_PIECES_AHEAD",
    "Budget",
    "UsageTotals",
    "charged_to",
    "usage_totals",
    "with_budget",
]


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
        cost_usd: Their cost in US dollars: the price of their tokens counted (the calls
            of unpriced models add nothing; a call whose provider did not report its
            tokens adds the price of what was counted of it, its streamed pieces as output
            tokens: an estimate).
        unpriced_requests: The calls whose cost is not known (a model without a price, or
            a provider that did not report its tokens: its streamed output is in
            ``cost_usd``, estimated, its prompt's price is not): when not 0, ``cost_usd``
            is a lower bound.
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
    calls in flight report at their end, and a window of pieces per call on a Ray worker).
    It holds for the calls of ray agents on Ray workers too: pickled, it travels as a
    reference to itself, and the calls there are charged here.

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
        "_budget_export",
        "_budget_in_flight",
        "_budget_input",
        "_budget_limited",
        "_budget_open",
        "_budget_output",
        "_budget_reasoning",
        "_budget_requests",
        "_budget_unpriced",
        "_budget_watched",
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
        self._budget_limited = not (  # whether it has a limit (they are fixed)
            self._max_requests is None
            and self._max_total_tokens is None
            and self._max_cost_usd is None
        )
        self._budget_requests = 0
        self._budget_in_flight = 0
        self._budget_input = 0
        self._budget_output = 0
        self._budget_cached = 0
        self._budget_written = 0
        self._budget_reasoning = 0
        self._budget_cost = 0.0
        self._budget_unpriced = 0
        self._budget_export: int | None = None  # its number in _EXPORTED, once pickled
        self._budget_watched = 0  # calls in other processes stopped when a limit is crossed
        self._budget_open: dict[_CallCharge, None] = {}  # streaming calls counted on reading

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
        output = self._budget_output
        cost = self._budget_cost
        for charge in self._budget_open:  # the pieces of its quiet calls, counted here
            output += charge.pieces
            cost += charge.pieces * charge.piece_cost
        return UsageTotals(
            requests=self._budget_requests,
            input_tokens=self._budget_input,
            output_tokens=output,
            cached_input_tokens=self._budget_cached,
            cache_write_tokens=self._budget_written,
            reasoning_tokens=self._budget_reasoning,
            cost_usd=cost,
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

    def __reduce__(self) -> tuple[Callable[[str, int, _Limits], Budget], tuple[str, int, _Limits]]:
        """Pickled, a budget stays one account: it travels as a reference to itself.

        Unpickled in this process (a copy, too), it is the budget itself; in another one
        (a Ray worker), a stand-in whose calls are charged here, through a live link; where
        no link runs (e.g. a durable run recovered by a new process), a stand-in that holds
        the same limits for the calls made there, counted from zero.
        """
        if self._budget_export is None:
            self._budget_export = next(_EXPORT_NUMBERS)
            _EXPORTED[self._budget_export] = self
        note_sent(self)  # a call that carries it elsewhere needs a link
        return (_budget_of, (_PROCESS, self._budget_export, self._limits()))

    def _limits(self) -> _Limits:
        return (self._max_requests, self._max_total_tokens, self._max_cost_usd)

    # -- the accounting (each call's _CallCharge does it) ---------------------------------

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


class _ContextAccount:
    """What a ``MiniAgents`` context's calls used, and the budget given to it.

    Attributes:
        meter: What the context's calls used (a budget without limits).
        budget: The budget given to the context, if any (see :func:`with_budget`).
        charged: The meter, then the budget: what a call of this context alone is charged
            to (one tuple per context, not a list per call).
    """

    __slots__ = ("budget", "charged", "meter")

    def __init__(self, meter: Budget) -> None:
        self.meter = meter
        self.budget: Budget | None = None
        self.charged: tuple[Budget, ...] = (meter,)

    def give(self, budget: Budget) -> None:
        """Give the context ``budget`` (in place of the one it had)."""
        self.budget = budget
        self.charged = (self.meter, budget)


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
    _context_account(context).give(budget)
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


# -- the calls of an agent's own loop (fallback_agent) ---------------------------------------

_Counted = tuple["list[TokenUsage]", "asyncio.Task[object] | None"]
"""A list counting the calls of a loop, and the task whose calls it counts (``None``: the
first task that finishes a call where it is current)."""

_LOOPS: contextvars.ContextVar[tuple[_Counted, ...]] = contextvars.ContextVar(
    "miniagents_llm_loops_counted", default=()
)


@contextmanager
def _loops_counted(usages: list[TokenUsage]) -> Iterator[list[TokenUsage]]:
    """Count in ``usages`` the calls of the LLM agents' own loops started inside the block.

    For ``fallback_agent``: the usage of each call that ended with one (its ``Finish``) is
    appended, for the interactions started inside the block (as for :func:`charged_to`)
    but not for what their tools start: the calls counted are those of the task that
    finishes the first call in each line of tasks from the block (an LLM agent's, whose
    tool loop makes every call of its reply there), told so in its context, which the
    tasks it starts afterwards (its tools, the agents they ask) copy. Blocks nest: a call
    is counted in each list around it whose loop it belongs to.

    Yields:
        ``usages``.
    """
    token = _LOOPS.set((*_LOOPS.get(), (usages, None)))
    try:
        yield usages
    finally:
        _LOOPS.reset(token)


def _count_in_loops(usage: TokenUsage) -> None:
    """Count a call of this task that ended with ``usage`` in the loops it belongs to.

    A list whose task is not known yet takes this one, in this task's context only (so the
    agent's tools, started after its first call, see that the list is not theirs).
    """
    task = asyncio.current_task()
    counted = _LOOPS.get()
    claimed = False
    for usages, owner in counted:
        if owner is None:
            claimed = True
            usages.append(usage)
        elif owner is task:
            usages.append(usage)
    if claimed:
        _LOOPS.set(tuple((usages, task if owner is None else owner) for usages, owner in counted))


def _charged_budgets() -> tuple[Budget, ...]:
    """The budgets a call made here is charged to, each once: the contexts', then the scopes'.

    For the LLM calls of :mod:`miniagents.ext.llm` (a provider of yours is charged by them
    already).
    """
    contexts = enclosing_contexts()
    scopes = _SCOPES.get()
    if len(contexts) == 1 and not scopes:  # the common case: the context's own tuple
        return _context_account(contexts[0]).charged
    budgets: list[Budget] = []
    for context in contexts:
        budgets.extend(_context_account(context).charged)
    budgets.extend(scopes)
    return tuple({id(budget): budget for budget in budgets}.values())  # each once, in order


def _refuse_past_limits(
    limited: list[Budget], alias: str, model: str, price_provider: str | None
) -> None:
    """Refuse a call that the limited budgets ``limited`` have no room for.

    Raises:
        BudgetExceededError: if a budget has no room for the call.
        LLMConfigurationError: if a budget has ``max_cost_usd`` and the model has no
            known price.
    """
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


class _CallCharge:
    """What one call of a model is charged, as it runs, to every budget around it.

    For the LLM calls of :mod:`miniagents.ext.llm`: made before the request (which it
    refuses when a budget of this process has no room), admitted by the budgets kept by
    another process (:meth:`aadmit`: a round trip, only when there are any), told of each
    streamed piece (:meth:`piece`, which stops the call once a limit is exceeded), then of
    the provider's count (:meth:`finish`) or of the call's end without one (:meth:`end`).
    A call of another process (a Ray worker) is charged here by the link to it, with the
    budgets it names and what it reports (``_add``).

    A call is *quiet* when no budget around it has a limit and none is kept by another
    process (the common case: the context's meter alone). Its pieces are then only counted
    (``pieces``), and its budgets add that count up when read (``Budget.usage``), until
    its end charges them the rest: a streamed token costs one addition, not one per budget.

    Raises:
        BudgetExceededError: if a budget has no room for the call.
        LLMConfigurationError: if a budget has ``max_cost_usd`` and the model has no
            known price, or a budget of another process cannot be reached from here.
    """

    __slots__ = (
        "_alias",
        "_budgets",
        "_far",
        "_limited",
        "_model",
        "_open",
        "_price_provider",
        "piece_cost",
        "pieces",
        "quiet",
    )

    def __init__(
        self,
        alias: str,
        model: str,
        price_provider: str | None,
        budgets: Sequence[Budget] | None = None,
        away: _AwayEnd | None = None,
    ) -> None:
        if budgets is None:
            budgets = _charged_budgets()
            away = _AWAY.get()
        limited = [budget for budget in budgets if budget._budget_limited]
        if limited:  # (none: nothing to refuse the call for, e.g. the context's meter alone)
            _refuse_past_limits(limited, alias, model, price_provider)
        for budget in budgets:
            budget._budget_requests += 1
            budget._budget_in_flight += 1
        self._alias = alias
        self._model = model
        self._price_provider = price_provider
        self._budgets = budgets
        self._limited: Sequence[Budget] = limited or ()  # (an empty list not kept per call)
        self._open = True
        self.pieces = 0
        """The streamed pieces counted so far."""
        self.piece_cost = (output_token_price(model, price_provider) or 0.0) if budgets else 0.0
        """The cost of one output token (0.0: not known)."""
        self._far: _FarCall | None = None
        if away is not None:  # else: the limits of budgets of another process hold here
            far = [budget for budget in budgets if isinstance(budget, _FarBudget)]
            if far:  # (see _FarBudget)
                self._far = away.start(tuple(far), alias, model, price_provider)
        self.quiet = not limited and self._far is None
        """Whether only ``pieces`` counts a piece (its budgets read it: see the class)."""
        if self.quiet:
            for budget in budgets:
                budget._budget_open[self] = None

    async def aadmit(self) -> None:
        """Wait until the budgets kept by other processes admit the call (at once: none).

        Raises:
            BudgetExceededError: if one of them has no room (the call is not counted).
            LLMConfigurationError: if one of them has ``max_cost_usd`` and the model no
                known price.
        """
        far = self._far
        if far is None:
            return
        try:
            await far.averdict()
        except Exception:  # refused there: the call is not made, nor counted here
            self._far = None
            self._open = False
            for budget in self._budgets:
                budget._budget_requests -= 1
                budget._budget_in_flight -= 1
            raise

    def piece(self) -> None:
        """Count one streamed piece as an output token.

        Raises:
            BudgetExceededError: if a token or cost limit is exceeded (by this call or
                another one, here or in another process).
        """
        self.pieces += 1
        if self.quiet:  # its budgets read the count
            return
        for budget in self._budgets:
            budget._budget_output += 1
            budget._budget_cost += self.piece_cost
        stopped = None if self._far is None else self._far.piece(self.piece_cost)
        for budget in self._limited:
            exceeded = budget._over_limit()
            if exceeded is not None:
                if budget._budget_watched:  # calls of other processes stop too
                    _crossed(budget, exceeded)
                stopped = stopped or exceeded
        if stopped is not None:
            raise _stopped(self._alias, self._model, *stopped)

    @property
    def far(self) -> bool:
        """Whether budgets kept by another process charge the call (known once admitted)."""
        return self._far is not None

    @property
    def behind(self) -> bool:
        """Whether the call must wait for a budget of another process to count its pieces."""
        far = self._far
        return far is not None and far.behind

    async def acaught_up(self) -> None:
        """Wait until the budgets of other processes have counted enough of the pieces."""
        if self._far is not None:
            await self._far.acaught_up()

    def finish(self, usage: TokenUsage) -> None:
        """Replace the pieces counted by the provider's count (``usage``, with its cost).

        A count without a cost (a model without a price, or a provider that left out its
        input or output tokens: the call is then unpriced) is charged the price of the
        tokens counted: those it reported, the pieces streamed for output it did not (an
        estimate, as while it streamed).
        """
        if not self._open:
            return
        self._open = False
        if _LOOPS.get():  # in an attempt of a fallback agent (see _loops_counted)
            _count_in_loops(usage)
        output = self.pieces if usage.output_tokens is None else usage.output_tokens
        cost = usage.cost_usd
        if cost is None:
            cost = self._counted_cost(usage, output)
        told = 0 if self.quiet else self.pieces  # the pieces its budgets were charged already
        self._add(
            (
                usage.input_tokens or 0,
                output - told,
                usage.cached_input_tokens or 0,
                usage.cache_write_tokens or 0,
                usage.reasoning_tokens or 0,
                cost - told * self.piece_cost,
                1 if usage.cost_usd is None else 0,
                1,
            )
        )

    def _counted_cost(self, usage: TokenUsage, output: int) -> float:
        """The price of the tokens counted of an unpriced call (0.0: its model has none)."""
        if not self.piece_cost:  # no price known (or nothing to charge)
            return 0.0
        if not usage.input_tokens:  # its output alone: (output_token_price's, linear)
            return output * self.piece_cost
        counted = TokenUsage(
            input_tokens=usage.input_tokens,
            output_tokens=output,
            cached_input_tokens=usage.cached_input_tokens,
            cache_write_tokens=usage.cache_write_tokens,
        )
        priced = cost_usd(self._model, counted, self._price_provider)
        return output * self.piece_cost if priced is None else priced

    def end(self) -> None:
        """End a call that reported no count (failed or stopped): its pieces stay counted."""
        if not self._open:
            return
        self._open = False
        # its prompt tokens are unknown, so is its cost (a quiet call's pieces charged now)
        pieces = self.pieces if self.quiet else 0
        self._add((0, pieces, 0, 0, 0, pieces * self.piece_cost, 1 if self.pieces else 0, 1))

    def _add(self, delta: _Delta) -> None:
        """Charge ``delta`` (for a call of another process: what it reported)."""
        input_tokens, output, cached, written, reasoning, cost, unpriced, ended = delta
        for budget in self._budgets:
            budget._budget_input += input_tokens
            budget._budget_output += output
            budget._budget_cached += cached
            budget._budget_written += written
            budget._budget_reasoning += reasoning
            budget._budget_cost += cost
            budget._budget_unpriced += unpriced
            budget._budget_in_flight -= ended
        if ended:
            self._open = False
            if self.quiet:  # its pieces are in the budgets' own count now
                for budget in self._budgets:
                    budget._budget_open.pop(self, None)
        if self._far is not None:
            self._far.add(delta)
        for budget in self._limited:
            if budget._budget_watched:
                exceeded = budget._over_limit()
                if exceeded is not None:
                    _crossed(budget, exceeded)


# -- across processes ----------------------------------------------------------------------

REMOTE_PIECES_AHEAD = 32
"""How many streamed pieces a call in another process (a Ray worker) may receive beyond
those the budgets' own process has counted, when a token or cost limit charges it (the
``W`` of the overshoot bound); it then waits for the count (a round trip)."""

_Limits = tuple["int | None", "int | None", "float | None"]
"""A budget's limits as pickled: requests, total tokens, cost."""

_Delta = tuple[int, int, int, int, int, float, int, int]
"""What a call adds to its budgets: input, output, cached and cache-written tokens,
reasoning tokens, cost, unpriced calls, ended calls."""

_PROCESS = uuid.uuid4().hex
"""This process's name in the references of its budgets pickled for another one."""

_EXPORT_NUMBERS = itertools.count(1)
_EXPORTED: weakref.WeakValueDictionary[int, Budget] = weakref.WeakValueDictionary()
_STAND_INS: weakref.WeakValueDictionary[tuple[str, int], _FarBudget] = weakref.WeakValueDictionary()
_AWAY: contextvars.ContextVar[_AwayEnd | None] = contextvars.ContextVar(
    "miniagents_llm_budget_link", default=None
)
_WATCHERS: dict[int, dict[tuple[_HomeEnd, int], None]] = {}
"""By ``id`` of a budget: the calls of other processes to stop once it is exceeded."""


def _budget_of(home: str, number: int, limits: _Limits = (None, None, None)) -> Budget:
    """The budget a pickled reference names: itself in its process, else its stand-in."""
    requests, tokens, cost = limits
    if home == _PROCESS:
        budget = _EXPORTED.get(number)
        if budget is None:  # dropped there: nobody reads it, its limits still hold here
            return Budget(max_requests=requests, max_total_tokens=tokens, max_cost_usd=cost)
        return budget
    stand_in = _STAND_INS.get((home, number))
    if stand_in is None:
        stand_in = _STAND_INS[home, number] = _FarBudget(home, number, limits)
    return stand_in


class _FarBudget(Budget):
    """A budget of another process, as it is here.

    Its limits hold in its own process, through a live link; its usage here is what was
    charged to it from here. Where no link runs, its limits hold here, on that usage.
    """

    __slots__ = ("_far_home", "_far_number")

    def __init__(self, home: str, number: int, limits: _Limits) -> None:
        requests, tokens, cost = limits
        super().__init__(max_requests=requests, max_total_tokens=tokens, max_cost_usd=cost)
        self._far_home = home
        self._far_number = number

    def __reduce__(self) -> tuple[Callable[[str, int, _Limits], Budget], tuple[str, int, _Limits]]:
        return (_budget_of, (self._far_home, self._far_number, self._limits()))

    def __repr__(self) -> str:
        return "Budget(kept by another process)"


def _crossed(budget: Budget, exceeded: tuple[str, float, float]) -> None:
    """``budget`` is past a limit: the calls of other processes charged to it stop."""
    for home, number in list(_WATCHERS.get(id(budget), ())):
        home.stop(number, exceeded)


def _watch(budget: Budget, home: _HomeEnd, number: int, on: bool) -> None:
    watchers = _WATCHERS.setdefault(id(budget), {})
    if on:
        watchers[home, number] = None
        budget._budget_watched += 1
    elif watchers.pop((home, number), 0) is None:
        budget._budget_watched -= 1
        if not watchers:
            del _WATCHERS[id(budget)]


_Start = tuple[int, tuple[Budget, ...], str, str, "str | None"]
"""A call that asks to start: its number, its budgets, the agent, the model, the pricing."""


class _FarCall:
    """A call made here and charged to budgets of another process, through a link."""

    __slots__ = ("_acked", "_link", "_number", "_pieces", "_room", "_stopped", "_verdict", "window")

    def __init__(self, link: _AwayEnd, number: int) -> None:
        self._link = link
        self._number = number
        self._verdict: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if not link.admits:  # no limit there: the call starts at once, and is reported
            self._verdict.set_result(0)
        self.window = 0  # 0: no wait for the count
        self._pieces = 0
        self._acked = 0
        self._stopped: tuple[str, float, float] | None = None
        self._room: asyncio.Event | None = None

    async def averdict(self) -> None:
        try:
            self.window = await self._verdict
        except BaseException:
            self._link.forget(self._number)
            raise

    def admitted(self, verdict: int | BaseException) -> None:
        if not self._verdict.done():
            if isinstance(verdict, BaseException):
                self._verdict.set_exception(verdict)
            else:
                self._verdict.set_result(verdict)

    def piece(self, cost: float) -> tuple[str, float, float] | None:
        self._pieces += 1
        self._link.charge(self._number, (0, 1, 0, 0, 0, cost, 0, 0))
        return self._stopped

    def add(self, delta: _Delta) -> None:
        self._pieces += max(0, delta[1])
        self._link.charge(self._number, delta)
        if delta[7]:
            self._link.forget(self._number)

    @property
    def behind(self) -> bool:
        return (
            self.window > 0
            and self._stopped is None
            and not self._link.closed
            and self._pieces - self._acked >= self.window
        )

    async def acaught_up(self) -> None:
        while self.behind:
            self._room = asyncio.Event()
            await self._room.wait()

    def counted(self, pieces: int) -> None:
        self._acked = max(self._acked, pieces)
        self._let_go()

    def stop(self, exceeded: tuple[str, float, float]) -> None:
        self._stopped = exceeded
        self._let_go()

    def _let_go(self) -> None:
        if self._room is not None:
            self._room.set()


class _AwayEnd:
    """The link to the budgets of the caller, in the process that runs its interaction.

    In a Ray worker, say: the calls made there ask it to start, and report what they use.
    """

    def __init__(self, home: str, ambient: tuple[Budget, ...], admits: bool) -> None:
        self._home = home
        self._ambient = ambient  # pickled as references: here, their stand-ins
        self.admits = admits  # whether a call waits for the caller's verdict (limits there)
        self._wake: Callable[[], None] | None = None
        self._calls: dict[int, _FarCall] = {}
        self._numbers = itertools.count(1)
        self._starts: list[_Start] = []
        self._deltas: dict[int, list[float]] = {}
        self._reports = 0
        self._uncounted: collections.deque[tuple[int, list[tuple[_FarCall, int]]]] = (
            collections.deque()
        )
        self.closed = False

    def __reduce__(self) -> tuple[type[_AwayEnd], tuple[str, tuple[Budget, ...], bool]]:
        return (_AwayEnd, (self._home, self._ambient, self.admits))

    def open(self, wake: Callable[[], None]) -> None:
        """Charge the calls made in the current context to the caller's budgets, through it."""
        self._wake = wake
        _AWAY.set(self)
        _SCOPES.set((*_SCOPES.get(), *self._ambient))

    def start(
        self, budgets: tuple[Budget, ...], alias: str, model: str, price_provider: str | None
    ) -> _FarCall:
        number = next(self._numbers)
        call = self._calls[number] = _FarCall(self, number)
        self._starts.append((number, budgets, alias, model, price_provider))
        self._poke()
        return call

    def charge(self, number: int, delta: _Delta) -> None:
        pending = self._deltas.get(number)
        if pending is None:
            self._deltas[number] = list(delta)
        else:
            for index, value in enumerate(delta):
                pending[index] += value
        self._poke()

    def forget(self, number: int) -> None:
        self._calls.pop(number, None)

    def _poke(self) -> None:
        if self._wake is not None and not self.closed:
            self._wake()

    def drain(self) -> object | None:
        """The calls that ask to start and what the others used since the last report."""
        if not (self._starts or self._deltas):
            return None
        self._reports += 1
        waiting = [
            (call, call._pieces)
            for number in self._deltas
            if (call := self._calls.get(number)) is not None and call.window
        ]
        if waiting:
            self._uncounted.append((self._reports, waiting))
        deltas = [(number, tuple(delta)) for number, delta in self._deltas.items()]
        report = (self._reports, self._starts, deltas)
        self._starts, self._deltas = [], {}
        return report

    def receive(self, message: object) -> None:
        """Verdicts on calls that asked to start, counts of reports, stops."""
        assert isinstance(message, list)
        for kind, number, value in message:
            if kind == _VERDICT:
                call = self._calls.get(number)
                if call is not None:
                    call.admitted(value)
            elif kind == _COUNTED:
                while self._uncounted and self._uncounted[0][0] <= number:
                    for call, pieces in self._uncounted.popleft()[1]:
                        call.counted(pieces)
            else:  # _STOP
                call = self._calls.get(number)
                if call is not None:
                    call.stop(value)

    def close(self) -> None:
        """The interaction has ended: calls still asking to start are refused."""
        self.closed = True
        for call in list(self._calls.values()):
            call.admitted(
                LLMError(
                    "An LLM call did not start: the interaction that made it has ended, and "
                    "with it the link to the budgets that charge it."
                )
            )
            call._let_go()


_VERDICT = 0
_COUNTED = 1
_STOP = 2


class _HomeEnd:
    """The link of an interaction run in another process, in the process that started it.

    It charges the calls made there to the budgets here, as they would be charged here.
    """

    def __init__(self, ambient: tuple[Budget, ...], away: _AwayEnd | None, admits: bool) -> None:
        self._ambient = ambient
        self._admits = admits
        self._away = away  # the link of this process to its own caller, if any
        self._wake: Callable[[], None] | None = None
        self._charges: dict[int, _CallCharge] = {}
        self._watched: dict[int, list[Budget]] = {}
        self._admitting: set[asyncio.Task[None]] = set()
        self._outgoing: list[tuple[int, int, object]] = []
        self._counted = 0
        self._stopped: set[int] = set()

    def away(self) -> _AwayEnd:
        """The far end, for the process that runs the interaction."""
        return _AwayEnd(_PROCESS, self._ambient, self._admits)

    def open(self, wake: Callable[[], None]) -> None:
        """The interaction starts elsewhere."""
        self._wake = wake

    def receive(self, message: object) -> None:
        """A report of the far end: calls to start, what the others used."""
        assert isinstance(message, tuple)
        report, starts, deltas = message
        for number, budgets, alias, model, price_provider in starts:
            self._start(
                number, tuple({id(b): b for b in budgets}.values()), alias, model, price_provider
            )
        counted = False
        for number, delta in deltas:
            charge = self._charges.get(number)
            if charge is None:  # refused, or ended already
                continue
            charge._add(delta)
            counted = counted or number in self._watched
            if delta[7]:
                self._end(number)
        if counted:
            self._counted = report
            self._poke()

    def _start(
        self,
        number: int,
        budgets: Sequence[Budget],
        alias: str,
        model: str,
        price_provider: str | None,
    ) -> None:
        try:
            charge = _CallCharge(alias, model, price_provider, budgets, self._away)
        except Exception as error:  # refused: the far end raises it
            self._send(_VERDICT, number, error)
            return
        self._charges[number] = charge
        watched = [
            budget
            for budget in charge._limited
            if budget.max_total_tokens is not None or budget.max_cost_usd is not None
        ]
        if watched:
            self._watched[number] = watched
            for budget in watched:
                _watch(budget, self, number, on=True)
        if charge._far is None:
            self._send(_VERDICT, number, REMOTE_PIECES_AHEAD if watched else 0)
        else:  # charged to budgets of this process's own caller too: they admit it first
            spawn(self._admit(number, charge), "a budget's admission", self._admitting)

    async def _admit(self, number: int, charge: _CallCharge) -> None:
        try:
            await charge.aadmit()
        except Exception as error:
            self._end(number)
            self._send(_VERDICT, number, error)
            return
        far = charge._far
        window = number in self._watched or (far is not None and far.window > 0)
        self._send(_VERDICT, number, REMOTE_PIECES_AHEAD if window else 0)

    def _end(self, number: int) -> None:
        self._charges.pop(number, None)
        for budget in self._watched.pop(number, ()):
            _watch(budget, self, number, on=False)

    def stop(self, number: int, exceeded: tuple[str, float, float]) -> None:
        """Stop a call of the far end at its next piece (once)."""
        if number in self._charges and number not in self._stopped:
            self._stopped.add(number)
            self._send(_STOP, number, exceeded)

    def _send(self, kind: int, number: int, value: object) -> None:
        self._outgoing.append((kind, number, value))
        self._poke()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake()

    def drain(self) -> object | None:
        """Verdicts, the last report counted, stops."""
        messages = self._outgoing
        if self._counted:
            messages.append((_COUNTED, self._counted, None))
            self._counted = 0
        if not messages:
            return None
        self._outgoing = []
        return messages

    def close(self) -> None:
        """The interaction has ended there: the calls it left open end (pieces stay counted)."""
        for task in self._admitting:
            task.cancel()
        for number, charge in list(self._charges.items()):
            charge.end()
            self._end(number)
        self._wake = None


def _open_link(sent: Sequence[object]) -> _HomeEnd | None:
    """The link for an interaction about to run elsewhere, if a budget applies or travels.

    Its calls wait for a verdict (a round trip) only if a budget that may charge them has
    a limit (a budget of another process may).
    """
    travelling = [value for value in sent if isinstance(value, Budget)]
    given = (
        bool(_SCOPES.get())
        or bool(travelling)
        or any(
            account is not None and account.budget is not None
            for account in map(_CONTEXT_ACCOUNTS.get, enclosing_contexts())
        )
    )
    if not given:
        return None
    ambient = _charged_budgets()
    admits = any(
        budget._budget_limited or isinstance(budget, _FarBudget)
        for budget in (*ambient, *travelling)
    )
    return _HomeEnd(ambient, _AWAY.get(), admits)


add_link_opener(_open_link)


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
