"""The budgets of the caller, kept across processes: the link that charges a worker's calls.

The budgets of :mod:`miniagents.ext.llm.usage` hold for the calls an agent makes on a Ray
worker too (see that module for what a user sees): the interaction carries a *live link*
(:func:`miniagents.miniagents.lowlevel.outgoing_links`), whose two ends implement the hook
of :mod:`miniagents.ext.llm.charging`:

- on the worker, :class:`_AwayEnd` (a ``BudgetLink``): each call charged to a budget of the
  caller asks to start (a :class:`_FarCall`), and reports what it uses, in running sums,
  with the worker's next batch of reply events (``drain``);
- on the driver, :class:`_HomeEnd`: it charges each such call to the budgets there as a
  call of their own (``charge_far_call``), sends back the verdicts, the counts of the
  reports (a call that a token or cost limit charges streams at most
  ``REMOTE_PIECES_AHEAD`` pieces beyond them) and the stops of the calls whose budget
  crossed a limit (``watch_limits``)::

    worker:  start(c1) ............ pieces 1..32 | wait | pieces 33.. | end
    driver:            verdict(c1, 32)              counted(1)              (charged)

The messages ride the links of :mod:`miniagents.ext.ray._wire`; :func:`open_link` opens
one for an interaction about to run on a worker, when a budget applies there or travels
with it.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
from collections.abc import Callable, Sequence
from functools import partial

from miniagents.ext.llm.charging import (
    BudgetLink,
    CallCharge,
    Delta,
    Exceeded,
    budget_link,
    budgets_given,
    charge_far_call,
    charged_budgets,
    link_budgets,
    must_admit,
    unwatch_limits,
    watch_limits,
)
from miniagents.ext.llm.errors import LLMError
from miniagents.ext.llm.usage import REMOTE_PIECES_AHEAD, Budget
from miniagents.promising.lowlevel import spawn

__all__ = ["open_link"]


_Start = tuple[int, tuple[Budget, ...], str, str, "str | None"]
"""A call that asks to start: its number, its budgets, the agent, the model, the pricing."""


class _FarCall:
    """A call made here and charged to budgets of another process, through a link.

    (A :class:`~miniagents.ext.llm.charging.FarCall`.)
    """

    __slots__ = (
        "_acked",
        "_link",
        "_made",
        "_number",
        "_pieces",
        "_room",
        "_stopped",
        "_verdict",
        "window",
    )

    def __init__(self, link: _AwayEnd, number: int, made: tuple[str, str]) -> None:
        self._link = link
        self._number = number
        self._made = made  # (the agent and the model, for the log of a count not charged)
        self._verdict: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if not (link.admits or link.closed):  # no limit there: it starts at once, reported
            self._verdict.set_result(0)
        self.window = 0  # 0: no wait for the count
        self._pieces = 0
        self._acked = 0
        self._stopped: Exceeded | None = None
        self._room: asyncio.Event | None = None

    async def averdict(self) -> None:
        try:
            self.window = await self._verdict
        except BaseException:
            self._link.forget(self._number)
            raise

    def admitted(self, verdict: int | BaseException) -> None:
        if not self._verdict.done():
            if isinstance(verdict, BaseException):  # (one error may refuse several calls:
                # each raises it afresh, not on the frames of one that raised it before)
                self._verdict.set_exception(verdict.with_traceback(None))
            else:
                self._verdict.set_result(verdict)

    def piece(self, cost: float) -> Exceeded | None:
        """Report one streamed piece (see the protocol).

        Raises:
            LLMError: if the link has closed (the interaction that made the call has ended):
                what the call used next would reach no budget, so it stops (the error of
                the link's transport if it broke, e.g. a ``RayWorkerDiedError``).
        """
        if self._link.halt is not None:
            raise self._link.halt.with_traceback(None)
        self._pieces += 1
        self._link.charge(self._number, (0, 1, 0, 0, 0, 0, 0, 0, cost, 0, 0))
        return self._stopped

    def add(self, delta: Delta) -> None:
        """Report what the call adds (its end: ``delta``'s last field is 1).

        Once the link has closed, the worker's last batch of reply events still carries it
        (:meth:`_AwayEnd.drain`); after that batch, nothing carries it to the budgets any
        more: what it adds is logged as not charged (the end alone, which the caller's end
        has charged when the link closed, is not).
        """
        if self._link.sealed:
            self._link.forget(self._number)
            if any(delta[:9]):
                logging.getLogger("miniagents").warning(
                    "The agent %s's LLM call of the model %r counted %d input and %d more "
                    "output tokens ($%.6f) %s",
                    *self._made,
                    delta[0],
                    delta[1],
                    delta[8],
                    self._link.lost(),
                )
            return
        self._pieces += max(0, delta[1])
        self._link.charge(self._number, delta)
        if delta[-1]:
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

    def stop(self, exceeded: Exceeded) -> None:
        self._stopped = exceeded
        self._let_go()

    def _let_go(self) -> None:
        if self._room is not None:
            self._room.set()


class _AwayEnd:
    """The link to the budgets of the caller, in the process that runs its interaction.

    In a Ray worker: the calls made there ask it to start, and report what they use (a
    :class:`~miniagents.ext.llm.charging.BudgetLink`).
    """

    def __init__(self, ambient: tuple[Budget, ...], admits: bool) -> None:
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
        self.sealed = False
        """Whether its last report has gone (the first drain once closed): nothing goes after."""
        self._broken: BaseException | None = None
        """Why the link broke while its interaction ran on (closed with an error), if it did."""
        self._refusal: BaseException | None = None
        """Why the calls asking to start once it has closed fail."""
        self.halt: BaseException | None = None
        """Why the calls still running once it has closed stop at their next piece."""

    def __reduce__(self) -> tuple[type[_AwayEnd], tuple[tuple[Budget, ...], bool]]:
        return (_AwayEnd, (self._ambient, self.admits))

    def open(self, wake: Callable[[], None]) -> None:
        """Charge the calls made in the current context to the caller's budgets, through it."""
        self._wake = wake
        link_budgets(self, self._ambient)

    def start(
        self, budgets: tuple[Budget, ...], alias: str, model: str, price_provider: str | None
    ) -> _FarCall:
        number = next(self._numbers)
        call = self._calls[number] = _FarCall(self, number, (alias, model))
        if self._refusal is not None:  # closed: nothing would carry what it uses, so it fails
            call.admitted(self._refusal)
            return call
        self._starts.append((number, budgets, alias, model, price_provider))
        self._poke()
        return call

    def charge(self, number: int, delta: Delta) -> None:
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
        """The calls that ask to start and what the others used since the last report.

        Once the link has closed, the transport drains it once more, for its last batch to
        the caller (the counts that came until then included), and never again. A link that
        broke (closed with an error, while its interaction runs on) is so drained at the
        worker's next batch: what comes after it reaches no budget, for the error that broke
        it (see :meth:`lost`), not for an end of the interaction.
        """
        broken = None  # the error that broke it, told the caller's end by its last report
        if self.closed and not self.sealed and self._broken is not None:
            broken = _named(self._broken)
        self.sealed = self.closed
        if not (self._starts or self._deltas or broken):
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
        report = (self._reports, self._starts, deltas, broken)
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

    def close(self, error: BaseException | None = None) -> None:
        """The interaction has ended (or the link broke: ``error``): calls asking to start fail.

        So do the calls that ask later, with or without a limit: they would wait for a verdict
        for ever, or run with what they use reaching no budget. The calls still running (a
        call in the background, outliving its interaction) stop at their next piece: what
        they use from now on would reach no budget either (their reports ride the
        interaction's replies, which have ended; the caller's end ends their charges once
        it has read the last batch), and waiting for them would hold the interaction's end
        for work that is not its own. A count they report before that last batch goes (see
        :meth:`drain`).
        """
        self.closed = True
        self._broken = error
        ended = "the interaction that made it has ended, and with it the link to the budgets"
        refusal = self._refusal = error or LLMError(
            f"An LLM call did not start: {ended} that charge it."
        )
        self.halt = error or LLMError(
            f"An LLM call was stopped: {ended} that charge it, so what the call used next "
            "would reach no budget. Await the LLM calls an agent makes before its "
            "interaction ends."
        )
        for call in list(self._calls.values()):
            call.admitted(refusal)
            call._let_go()

    async def asettled(self) -> None:
        """Nothing that :meth:`close` stopped ends later: at once."""

    def lost(self) -> str:
        """When and why what a call counts reaches no budget any more, once it is sealed."""
        if self._broken is None:
            return (
                "after the interaction that made it had ended: its caller's budgets were not "
                "charged them, as the link to them had closed. Await the LLM calls an agent "
                "makes before its interaction ends."
            )
        return (
            "after the link to its caller's budgets broke, while its interaction ran on: "
            f"they were not charged them. The link broke with this error: {_named(self._broken)}"
        )


def _named(error: BaseException) -> str:
    """An error as a log names it: its type and its message."""
    return f"{type(error).__name__}: {error}"


_VERDICT = 0
_COUNTED = 1
_STOP = 2


class _HomeEnd:
    """The link of an interaction run in another process, in the process that started it.

    It charges the calls made there to the budgets here, as they would be charged here.
    """

    def __init__(self, ambient: tuple[Budget, ...], away: BudgetLink | None, admits: bool) -> None:
        self._ambient = ambient
        self._admits = admits
        self._away = away  # the link of this process to its own caller, if any
        self._wake: Callable[[], None] | None = None
        self._charges: dict[int, CallCharge] = {}
        self._watched: dict[int, list[Budget]] = {}
        self._admitting: set[asyncio.Task[None]] = set()
        self._outgoing: list[tuple[int, int, object]] = []
        self._counted = 0
        self._stopped: set[int] = set()
        self._broken: str | None = None
        """The error that broke the link, as the far end told it (see :meth:`close`)."""

    def away(self) -> _AwayEnd:
        """The far end, for the process that runs the interaction."""
        return _AwayEnd(self._ambient, self._admits)

    def open(self, wake: Callable[[], None]) -> None:
        """The interaction starts elsewhere."""
        self._wake = wake

    def receive(self, message: object) -> None:
        """A report of the far end: calls to start, what the others used."""
        assert isinstance(message, tuple)
        report, starts, deltas, broken = message
        self._broken = self._broken or broken
        for number, budgets, alias, model, price_provider in starts:
            self._start(number, budgets, alias, model, price_provider)
        counted = False
        for number, delta in deltas:
            charge = self._charges.get(number)
            if charge is None:  # refused, or ended already
                continue
            charge.add(delta)
            counted = counted or number in self._watched
            if delta[-1]:
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
            charge = charge_far_call(budgets, alias, model, price_provider, self._away)
        except Exception as error:  # refused: the far end raises it
            self._send(_VERDICT, number, error)
            return
        self._charges[number] = charge
        watched = [
            budget
            for budget in charge.limited
            if budget.max_total_tokens is not None or budget.max_cost_usd is not None
        ]
        if watched:
            self._watched[number] = watched
            for budget in watched:
                watch_limits(budget, (self, number), partial(self.stop, number))
        if not charge.far:
            self._send(_VERDICT, number, REMOTE_PIECES_AHEAD if watched else 0)
        else:  # charged to budgets of this process's own caller too: they admit it first
            spawn(self._admit(number, charge), "a budget's admission", self._admitting)

    async def _admit(self, number: int, charge: CallCharge) -> None:
        try:
            await charge.aadmit()
        except Exception as error:
            self._end(number)
            self._send(_VERDICT, number, error)
            return
        window = number in self._watched or charge.far_window > 0
        self._send(_VERDICT, number, REMOTE_PIECES_AHEAD if window else 0)

    def _end(self, number: int) -> None:
        self._charges.pop(number, None)
        for budget in self._watched.pop(number, ()):
            unwatch_limits(budget, (self, number))

    def stop(self, number: int, exceeded: Exceeded) -> None:
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

    def close(self, error: BaseException | None = None) -> None:
        """The interaction has ended there: the calls it left open end (pieces stay counted).

        They end unpriced (``unpriced_requests``), as calls that reported no count. If the
        link broke (``error``: its transport failed; or the far end told so), a warning
        names the error: their counts may have been lost with it, not only left out by
        calls outliving their interaction. The admissions still waiting for this process's
        own caller are cancelled: they end a loop turn later (:meth:`asettled` waits for them).
        """
        broken = self._broken if error is None else _named(error)
        if broken is not None and self._charges:
            logging.getLogger("miniagents").warning(
                "The link to the budgets of an interaction run in another process broke "
                "(%s): its %d LLM call(s) still open were charged what they had reported, "
                "unpriced, and the rest of what they used was not charged.",
                broken,
                len(self._charges),
            )
        for task in self._admitting:
            task.cancel()
        for number, charge in list(self._charges.items()):
            charge.end()
            self._end(number)
        self._wake = None

    async def asettled(self) -> None:
        """Wait until the admissions that :meth:`close` cancelled have ended (none: at once)."""
        if self._admitting:
            await asyncio.wait(list(self._admitting))


def open_link(sent: Sequence[object]) -> _HomeEnd | None:
    """The link for an interaction about to run elsewhere, if a budget applies or travels.

    Its calls wait for a verdict (a round trip) only if a budget that may charge them has
    a limit (a budget of another process may).
    """
    travelling = [value for value in sent if isinstance(value, Budget)]
    if not (travelling or budgets_given()):
        return None
    ambient = charged_budgets()
    return _HomeEnd(ambient, budget_link(), must_admit((*ambient, *travelling)))
