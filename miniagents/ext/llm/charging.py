"""What each call of a model is charged, and the hook that links budgets of another process.

::

    call:      charge (refused?) | piece piece piece (stopped past a limit?) | finish(usage)
    budgets:   requests += 1       output += 1 each                            the rest

Every call an LLM agent makes is charged, as it runs, to the budgets around it
(:mod:`miniagents.ext.llm.usage` says which, and what the limits mean) by a
:class:`CallCharge`: made before the request (refused when a budget has no room), told of
each streamed piece (stopped once a limit is exceeded), then of the provider's count or of
the call's end without one.

**Budgets of another process.** A call made in a process that runs an interaction for
another one (a Ray worker, :mod:`miniagents.ext.ray`) is charged to the caller's budgets
too, through a *link* that the transport keeps (this module declares its two ends; the
transport carries their messages):

- where the interaction runs, the transport sets its :class:`BudgetLink` for the
  interaction's context (:func:`link_budgets`): each call charged to a budget of the
  caller (a stand-in here) asks it to start (:meth:`BudgetLink.start`, a
  :class:`FarCall`), waits for its verdict, reports its pieces and its end, and waits when
  it is far ahead of what the caller has counted;
- where the caller is, the link charges each such call with :func:`charge_far_call` (the
  caller's budgets admit or refuse it as a call of their own), adds what it reports
  (:meth:`CallCharge.add`), and stops it when a budget it is charged to crosses a limit
  (:func:`watch_limits`).

**Who should use it.** The LLM agents (each call's charge) and a transport of interactions
to another process (the link). Every name in ``__all__`` keeps its name and meaning.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

from miniagents.ext.llm.errors import BudgetExceededError, LLMConfigurationError
from miniagents.ext.llm.messages import TokenUsage
from miniagents.ext.llm.pricing import cost_usd, is_priced, output_token_price, prices_installed
from miniagents.ext.llm.provider import AudioTokens
from miniagents.ext.llm.usage import (
    Budget,
    _budgets_given,
    _charge_here,
    _charged_budgets,
    _count,
    _count_piece,
    _count_start,
    _Delta,
    _Exceeded,
    _FarBudget,
    _limited,
    _over_limit,
    _uncount_start,
    _used_up,
)

__all__ = [
    "BudgetLink",
    "CallCharge",
    "Delta",
    "Exceeded",
    "FarCall",
    "budget_link",
    "budgets_given",
    "charge_far_call",
    "charged_budgets",
    "link_budgets",
    "must_admit",
    "unwatch_limits",
    "watch_limits",
]

Delta = _Delta
"""What a call adds to its budgets: input, output, cached and cache-written tokens,
reasoning tokens, input, output and cached audio tokens, cost, unpriced calls, ended calls
(the budgets' module's type)."""

Exceeded = _Exceeded
"""A limit exceeded: its name (``max_total_tokens``, ...), its maximum, what was used (the
budgets' module's type)."""


# -- the link to budgets of another process -------------------------------------------------


class FarCall(Protocol):
    """A call made here and charged to budgets of another process, through a link."""

    @property
    def window(self) -> int:
        """The pieces it may stream beyond those counted there (0: no wait; once admitted)."""
        ...

    async def averdict(self) -> None:
        """Wait until the budgets there admit the call.

        Raises:
            BudgetExceededError: if they refuse it (another ``LLMError`` if the link ended;
                the error of its transport if it broke, e.g. a ``RayWorkerDiedError``).
        """
        ...

    def piece(self, cost: float) -> Exceeded | None:
        """Report one streamed piece of ``cost``; the limit that stops the call, if any.

        Raises:
            LLMError: if the link has ended (the interaction that made the call has ended,
                so what the call uses next would reach no budget): the call stops; the
                error of the link's transport if it broke, e.g. a ``RayWorkerDiedError``.
        """
        ...

    def add(self, delta: Delta) -> None:
        """Report what the call adds (its end: ``delta``'s last field is 1).

        Once the link has ended, what it adds still goes with the link's last report to
        the budgets there; after that report, it is logged as not charged.
        """
        ...

    @property
    def behind(self) -> bool:
        """Whether the call must wait until the budgets there count more of its pieces."""
        ...

    async def acaught_up(self) -> None:
        """Wait until the budgets there have counted enough of its pieces (or it stops)."""
        ...


class BudgetLink(Protocol):
    """The link to the budgets of the caller, in the process that runs its interaction."""

    def start(
        self, budgets: tuple[Budget, ...], alias: str, model: str, price_provider: str | None
    ) -> FarCall:
        """A call of the agent ``alias`` charged to ``budgets`` (stand-ins of the caller's)."""
        ...


_LINK: contextvars.ContextVar[BudgetLink | None] = contextvars.ContextVar(
    "miniagents_llm_budget_link", default=None
)
_WATCHERS: dict[int, dict[Hashable, Callable[[Exceeded], None]]] = {}
"""By ``id`` of a budget: what stops the calls of other processes once it is exceeded."""


def link_budgets(link: BudgetLink, budgets: tuple[Budget, ...]) -> None:
    """Charge the calls made in the current context through ``link``, and to ``budgets``.

    ``budgets``: the caller's budgets that applied where it started the interaction (here,
    their stand-ins), as if given with ``charged_to``.
    """
    _LINK.set(link)
    _charge_here(budgets)


def budget_link() -> BudgetLink | None:
    """The link of the current context to budgets of another process, if any."""
    return _LINK.get()


def charged_budgets() -> tuple[Budget, ...]:
    """The budgets a call made here is charged to, each once: the contexts', then the scopes'."""
    return _charged_budgets()


def budgets_given() -> bool:
    """Whether a budget is given here: to a block (``charged_to``) or to a context."""
    return _budgets_given()


def must_admit(budgets: Sequence[Budget]) -> bool:
    """Whether a call charged to ``budgets`` waits for their verdict before it starts.

    It does if one of them has a limit, or is a budget of another process (which may).
    """
    return bool(_limited(budgets)) or any(isinstance(budget, _FarBudget) for budget in budgets)


def charge_far_call(
    budgets: Sequence[Budget],
    alias: str,
    model: str,
    price_provider: str | None,
    link: BudgetLink | None,
) -> CallCharge:
    """The charge of a call of another process to ``budgets`` (each once), made here.

    ``link``: this process's own link to its caller, if any (budgets of the caller's
    caller are charged hop by hop).

    Raises:
        BudgetExceededError: if a budget has no room for the call.
        LLMConfigurationError: if a budget has ``max_cost_usd`` and the model has no
            known price.
    """
    unique = tuple({id(budget): budget for budget in budgets}.values())
    return CallCharge(alias, model, price_provider, unique, link)


def watch_limits(budget: Budget, key: Hashable, stop: Callable[[Exceeded], None]) -> None:
    """Call ``stop`` once ``budget`` exceeds a token or cost limit, until unwatched by ``key``."""
    _WATCHERS.setdefault(id(budget), {})[key] = stop


def unwatch_limits(budget: Budget, key: Hashable) -> None:
    """Stop watching ``budget`` for ``key`` (nothing if it was not watched)."""
    watchers = _WATCHERS.get(id(budget))
    if watchers is not None and watchers.pop(key, None) is not None and not watchers:
        del _WATCHERS[id(budget)]


def _crossed(budget: Budget, exceeded: Exceeded) -> None:
    """``budget`` is past a limit: the calls of other processes charged to it stop."""
    for stop in list(_WATCHERS.get(id(budget), {}).values()):
        stop(exceeded)


# -- the charge of a call ---------------------------------------------------------------------


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
        used_up = _used_up(budget)
        if used_up is not None:
            raise _budget_error(alias, model, used_up, stopped=False)


class CallCharge:
    """What one call of a model is charged, as it runs, to every budget around it.

    For the LLM calls of :mod:`miniagents.ext.llm`: made before the request (which it
    refuses when a budget of this process has no room), admitted by the budgets kept by
    another process (:meth:`aadmit`: a round trip, only when there are any), told of each
    streamed piece (:meth:`piece`, which stops the call once a limit is exceeded), then of
    the provider's count (:meth:`finish`) or of the call's end without one (:meth:`end`).
    A call of another process (a Ray worker) is charged here by the link to it, with the
    budgets it names and what it reports (:func:`charge_far_call`, :meth:`add`).

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
        "_model",
        "_open",
        "_price_provider",
        "limited",
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
        link: BudgetLink | None = None,
    ) -> None:
        if budgets is None:
            budgets = _charged_budgets()
            link = _LINK.get()
        limited = _limited(budgets)
        if limited:  # (none: nothing to refuse the call for, e.g. the context's meter alone)
            _refuse_past_limits(limited, alias, model, price_provider)
        self._alias = alias
        self._model = model
        self._price_provider = price_provider
        self._budgets = budgets
        self.limited: Sequence[Budget] = limited or ()  # (an empty list not kept per call)
        """The budgets with a limit among those charged."""
        self._open = True
        self.pieces = 0
        """The streamed pieces counted so far."""
        self.piece_cost = (output_token_price(model, price_provider) or 0.0) if budgets else 0.0
        """The cost of one output token (0.0: not known)."""
        self._far: FarCall | None = None
        if link is not None:  # else: the limits of budgets of another process hold here
            far = [budget for budget in budgets if isinstance(budget, _FarBudget)]
            if far:  # (see _FarBudget)
                self._far = link.start(tuple(far), alias, model, price_provider)
        self.quiet = not limited and self._far is None
        """Whether only ``pieces`` counts a piece (its budgets read it: see the class)."""
        _count_start(budgets, model, self if self.quiet else None)  # (quiet: they read its pieces)

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
            _uncount_start(self._budgets, self._model)
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
        _count_piece(self._budgets, self._model, self.piece_cost)
        stopped = None if self._far is None else self._far.piece(self.piece_cost)
        for budget in self.limited:
            exceeded = _over_limit(budget)
            if exceeded is not None:
                if id(budget) in _WATCHERS:  # calls of other processes stop too
                    _crossed(budget, exceeded)
                stopped = stopped or exceeded
        if stopped is not None:
            raise _budget_error(self._alias, self._model, stopped, stopped=True)

    @property
    def model(self) -> str:
        """The model called."""
        return self._model

    @property
    def far(self) -> bool:
        """Whether budgets kept by another process charge the call (known once admitted)."""
        return self._far is not None

    @property
    def far_window(self) -> int:
        """The pieces the call may stream beyond what budgets of another process counted.

        0: it need not wait for their count (none charges it, or none has a token or cost
        limit); known once admitted.
        """
        far = self._far
        return 0 if far is None else far.window

    @property
    def behind(self) -> bool:
        """Whether the call must wait for a budget of another process to count its pieces."""
        far = self._far
        return far is not None and far.behind

    async def acaught_up(self) -> None:
        """Wait until the budgets of other processes have counted enough of the pieces."""
        if self._far is not None:
            await self._far.acaught_up()

    def finish(self, usage: TokenUsage, audio: AudioTokens | None = None) -> None:
        """Replace the pieces counted by the provider's count (``usage``, with its cost).

        ``audio``: the part of its tokens that was audio, if the call said it (its counts
        not said: 0).

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
        heard = (0, 0, 0)
        if audio is not None:
            heard = (
                audio.input_tokens or 0,
                audio.output_tokens or 0,
                audio.cached_input_tokens or 0,
            )
        self.add(
            (
                usage.input_tokens or 0,
                output - told,
                usage.cached_input_tokens or 0,
                usage.cache_write_tokens or 0,
                usage.reasoning_tokens or 0,
                *heard,
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
        """End a call that reported no count (failed or stopped): its pieces stay counted.

        The call is unpriced, whether or not it streamed: nothing it reported says its cost
        (its prompt's tokens are not known), so even with no piece it is no known 0.
        """
        if not self._open:
            return
        self._open = False
        # a quiet call's pieces are charged now (the others' were, as they streamed)
        pieces = self.pieces if self.quiet else 0
        self.add((0, pieces, 0, 0, 0, 0, 0, 0, pieces * self.piece_cost, 1, 1))

    def add(self, delta: Delta) -> None:
        """Charge ``delta`` (for a call of another process: what it reported)."""
        ended = delta[-1]
        # (a quiet call that ends: its pieces are in the budgets' own count now)
        _count(self._budgets, self._model, delta, self if ended and self.quiet else None)
        if ended:
            self._open = False
        if self._far is not None:
            self._far.add(delta)
        for budget in self.limited:
            if id(budget) in _WATCHERS:
                exceeded = _over_limit(budget)
                if exceeded is not None:
                    _crossed(budget, exceeded)


def _budget_error(
    alias: str, model: str, exceeded: Exceeded, *, stopped: bool
) -> BudgetExceededError:
    """The error of a call refused (``stopped``: stopped mid-reply) past a budget's limit."""
    name, maximum, used = exceeded
    limit = f"its budget's {name} of {_shown(name, maximum)}"
    what = (
        f"stopped its call of the model {model!r}: {limit} was exceeded"
        if stopped
        else f"did not call the model {model!r}: {limit} is used up"
    )
    return BudgetExceededError(
        f"The agent {alias} {what} ({_shown(name, used)} used). Raise it with "
        f"Budget({name}=...) where the budget is given (agent.fork(budget=...), "
        "with_budget(context, ...) or charged_to(...)), or give a new Budget.",
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


# -- the calls of an agent's own loop (fallback_agent) -------------------------------------

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
