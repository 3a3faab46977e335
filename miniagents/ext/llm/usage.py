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

``Budget(by_model=True)`` keeps it per model too (``budget.usage_by_model``): what the web
apps report of each run.

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
(:func:`miniagents.miniagents.lowlevel.outgoing_links`: the Ray agents' link, which
implements the hook of :mod:`miniagents.ext.llm.charging`); on the worker, the calls made
in that interaction (and everything it causes there) are charged through it:

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

import contextvars
import itertools
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Protocol

from miniagents.arguments import check_count, check_number
from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.miniagents.context import MiniAgents
from miniagents.miniagents.errors import NoActiveContextError
from miniagents.miniagents.lowlevel import enclosing_contexts, note_sent
from miniagents.pipeline.progress import ProgressReading, add_progress_meter

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
        input_audio_tokens: Prompt tokens of audio, part of ``input_tokens`` (the calls
            that split their audio: realtime replies, a provider's ``Finish(audio=...)``,
            ``ModelCall.input_audio_tokens``; 0 for the others).
        output_audio_tokens: Reply tokens of audio, part of ``output_tokens`` (so too).
        cached_audio_tokens: Prompt tokens of audio read from the provider's cache, part of
            ``cached_input_tokens`` (so too).
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
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    cached_audio_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input and output tokens together."""
        return self.input_tokens + self.output_tokens

    @classmethod
    def summed(cls, usages: Iterable[UsageTotals]) -> UsageTotals:
        """The ``usages`` summed, field by field (e.g. a budget's ``usage_by_model``'s values).

        No usages sum to a ``UsageTotals()`` (nothing used).
        """
        known = tuple(usages)
        nothing = cls()
        return cls(
            **{
                field.name: sum(
                    (getattr(usage, field.name) for usage in known), getattr(nothing, field.name)
                )
                for field in fields(cls)
            }
        )

    def since(self, earlier: UsageTotals) -> UsageTotals:
        """What was used since ``earlier``, a reading of the same account before this one.

        E.g. ``budget.usage.since(start)``: the calls charged to ``budget`` after ``start``
        was read (field by field: this one's counts less ``earlier``'s).
        """
        return UsageTotals(
            **{
                field.name: getattr(self, field.name) - getattr(earlier, field.name)
                for field in fields(self)
            }
        )


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
        by_model: Whether it keeps its usage per model too (:attr:`usage_by_model`).

    Raises:
        LLMConfigurationError: if a limit is negative, NaN, or not a number (the request
            and token limits: not a whole number).
    """

    __slots__ = (
        "__weakref__",
        "_budget_cached",
        "_budget_cached_audio",
        "_budget_cost",
        "_budget_export",
        "_budget_in_flight",
        "_budget_input",
        "_budget_input_audio",
        "_budget_limited",
        "_budget_models",
        "_budget_open",
        "_budget_output",
        "_budget_output_audio",
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
        by_model: bool = False,
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
        self._budget_input_audio = 0
        self._budget_output_audio = 0
        self._budget_cached_audio = 0
        self._budget_cost = 0.0
        self._budget_unpriced = 0
        self._budget_export: int | None = None  # its number in _EXPORTED, once pickled
        self._budget_open: dict[_OpenCall, None] = {}  # streaming calls counted on reading
        # by_model: the book of each model's calls (in the order first called), a budget
        # without limits charged only its counts (the pieces of quiet calls are read here)
        self._budget_models: dict[str, Budget] | None = {} if by_model else None

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
        return self._totals(output, cost)

    @property
    def usage_by_model(self) -> dict[str, UsageTotals]:
        """What the calls charged to the budget used so far, per model (in the order first called).

        Raises:
            LLMConfigurationError: if the budget keeps no usage per model (made without
                ``by_model=True``).
        """
        models = self._budget_models
        if models is None:
            raise LLMConfigurationError(
                "This budget keeps no usage per model, so it cannot say it: make it with "
                "Budget(by_model=True) to read usage_by_model (its usage says the total)."
            )
        # its books' output and cost, with the pieces of its quiet calls counted here
        read = {model: (book._budget_output, book._budget_cost) for model, book in models.items()}
        for charge in self._budget_open:
            counted = read.get(charge.model)
            if counted is not None:
                output, cost = counted
                read[charge.model] = (
                    output + charge.pieces,
                    cost + charge.pieces * charge.piece_cost,
                )
        return {model: book._totals(*read[model]) for model, book in models.items()}

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

    def _totals(self, output_tokens: int, cost_usd: float) -> UsageTotals:
        """Its counts as a ``UsageTotals``, its output and cost as read (pieces added)."""
        return UsageTotals(
            requests=self._budget_requests,
            input_tokens=self._budget_input,
            output_tokens=output_tokens,
            cached_input_tokens=self._budget_cached,
            cache_write_tokens=self._budget_written,
            reasoning_tokens=self._budget_reasoning,
            cost_usd=cost_usd,
            unpriced_requests=self._budget_unpriced,
            input_audio_tokens=self._budget_input_audio,
            output_audio_tokens=self._budget_output_audio,
            cached_audio_tokens=self._budget_cached_audio,
        )


class _OpenCall(Protocol):
    """A quiet call that streams: its pieces are counted by the call, read by its budgets."""

    @property
    def pieces(self) -> int: ...

    @property
    def piece_cost(self) -> float: ...

    @property
    def model(self) -> str: ...


def _whole(name: str, value: object) -> int | None:
    if value is None:
        return None
    fix = f"E.g. Budget({name}=100), or None for no limit."
    return check_count(value, name, least=0, owner="A Budget", fix=fix, error=LLMConfigurationError)


def _amount(value: object) -> float | None:
    if value is None:
        return None
    fix = "E.g. Budget(max_cost_usd=0.50), or None for no limit."
    return check_number(
        value,
        "max_cost_usd",
        unit="US dollars",
        owner="A Budget",
        fix=fix,
        error=LLMConfigurationError,
    )


# -- the books of a call's charge ---------------------------------------------------------
# What a call's charge (``CallCharge``, :mod:`miniagents.ext.llm.charging`) does to the
# budgets it is charged to: only these functions write a budget's counts (the charge decides
# when: it refuses, stops and links calls), so the budgets' module owns them, and the type of
# what a call adds to them (``charging`` re-exports it as ``Delta``).

_Delta = tuple[int, int, int, int, int, int, int, int, float, int, int]
"""What a call adds to its budgets: input, output, cached and cache-written tokens,
reasoning tokens, input, output and cached audio tokens, cost, unpriced calls, ended
calls."""

_Exceeded = tuple[str, float, float]
"""A limit exceeded: its name (``max_total_tokens``, ...), its maximum, what was used."""


def _limited(budgets: Sequence[Budget]) -> list[Budget]:
    """Those of ``budgets`` that have a limit."""
    return [budget for budget in budgets if budget._budget_limited]


def _used_up(budget: Budget) -> _Exceeded | None:
    """The limit a call would start past (name, maximum, used), or ``None``: it has room."""
    tokens = budget._budget_input + budget._budget_output
    for name, maximum, used in (
        ("max_requests", budget._max_requests, budget._budget_requests),
        ("max_total_tokens", budget._max_total_tokens, tokens),
        ("max_cost_usd", budget._max_cost_usd, budget._budget_cost),
    ):
        if maximum is not None and used >= maximum:
            return name, maximum, used
    return None


def _over_limit(budget: Budget) -> _Exceeded | None:
    """The token or cost limit ``budget`` exceeds (name, maximum, used), or ``None``."""
    maximum: float | None = budget._max_total_tokens
    if maximum is not None:
        used: float = budget._budget_input + budget._budget_output
        if used > maximum:
            return "max_total_tokens", maximum, used
    maximum = budget._max_cost_usd
    if maximum is not None and budget._budget_cost > maximum:
        return "max_cost_usd", maximum, budget._budget_cost
    return None


def _count_start(budgets: Sequence[Budget], model: str, call: _OpenCall | None) -> None:
    """Count a call of ``model`` started; ``call``: a quiet one, whose pieces they read of it."""
    for budget in budgets:
        budget._budget_requests += 1
        budget._budget_in_flight += 1
        models = budget._budget_models
        if models is not None:  # (kept per model: a web run's meter)
            _book_of(models, model)._budget_requests += 1
        if call is not None:
            budget._budget_open[call] = None


def _uncount_start(budgets: Sequence[Budget], model: str) -> None:
    """Take back a call of ``model`` counted started that was not made (refused elsewhere)."""
    for budget in budgets:
        budget._budget_requests -= 1
        budget._budget_in_flight -= 1
        models = budget._budget_models
        if models is not None:
            _book_of(models, model)._budget_requests -= 1


def _count_piece(budgets: Sequence[Budget], model: str, cost: float) -> None:
    """Count a streamed piece of a call of ``model`` that is not quiet: one output token."""
    for budget in budgets:
        budget._budget_output += 1
        budget._budget_cost += cost
        models = budget._budget_models
        if models is not None:
            book = _book_of(models, model)
            book._budget_output += 1
            book._budget_cost += cost


def _add(budget: Budget, delta: _Delta) -> None:
    """Add what a call adds (``delta``, but its calls ended) to a budget's counts, or a book's."""
    input_tokens, output, cached, written, reasoning = delta[:5]
    heard, said, cached_heard, cost, unpriced = delta[5:10]  # (heard, said: audio)
    budget._budget_input += input_tokens
    budget._budget_output += output
    budget._budget_cached += cached
    budget._budget_written += written
    budget._budget_reasoning += reasoning
    budget._budget_input_audio += heard
    budget._budget_output_audio += said
    budget._budget_cached_audio += cached_heard
    budget._budget_cost += cost
    budget._budget_unpriced += unpriced


def _count(
    budgets: Sequence[Budget],
    model: str,
    delta: _Delta,
    ended: _OpenCall | None,
) -> None:
    """Count what a call of ``model`` adds (``delta``).

    ``ended``: a quiet call that ends with it, whose pieces are in ``delta`` now.
    """
    for budget in budgets:
        _add(budget, delta)
        budget._budget_in_flight -= delta[-1]  # (its calls that end with it)
        models = budget._budget_models
        if models is not None:
            _add(_book_of(models, model), delta)
        if ended is not None:
            budget._budget_open.pop(ended, None)


def _book_of(models: dict[str, Budget], model: str) -> Budget:
    """The book a budget keeps of ``model`` (see ``Budget.usage_by_model``), made at first."""
    book = models.get(model)
    if book is None:
        book = models[model] = Budget()
    return book


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


def _budgets_given() -> bool:
    """Whether a budget is given here: to a block (``charged_to``) or to a context."""
    return bool(_SCOPES.get()) or any(
        account is not None and account.budget is not None
        for account in map(_CONTEXT_ACCOUNTS.get, enclosing_contexts())
    )


def _charge_here(budgets: tuple[Budget, ...]) -> None:
    """Charge the calls made in the current context to ``budgets`` too, as ``charged_to``."""
    _SCOPES.set((*_SCOPES.get(), *budgets))


# -- a budget pickled for another process ----------------------------------------------------

REMOTE_PIECES_AHEAD = 32
"""How many streamed pieces a call in another process (a Ray worker) may receive beyond
those the budgets' own process has counted, when a token or cost limit charges it (the
``W`` of the overshoot bound); it then waits for the count (a round trip)."""

_Limits = tuple["int | None", "int | None", "float | None"]
"""A budget's limits as pickled: requests, total tokens, cost."""

_PROCESS = uuid.uuid4().hex
"""This process's name in the references of its budgets pickled for another one."""

_EXPORT_NUMBERS = itertools.count(1)
_EXPORTED: weakref.WeakValueDictionary[int, Budget] = weakref.WeakValueDictionary()
_STAND_INS: weakref.WeakValueDictionary[tuple[str, int], _FarBudget] = weakref.WeakValueDictionary()


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
