"""The contract ``pipeline`` and ``ray_pipeline`` share: the same cases, run through both.

Each case is a function of a *runner* (``pipeline``, or ``ray_pipeline`` with its task
options), so that the local pipeline and the one on Ray cannot drift apart:
``tests/pipeline/test_pipeline_contract.py`` runs every case through ``pipeline``, and
``tests/ext/ray/test_pipeline_contract.py`` through ``ray_pipeline`` on the local cluster.
The agents live here, so that Ray's workers can import them.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import cast
from unittest import mock

import pytest
import tqdm
from typing_extensions import Protocol

from miniagents import InteractionContext, ItemResult, MiniAgent, MiniAgents, miniagent
from miniagents.errors import MessageTypeError, ProgressBarMissingError


class ContractError(ValueError):
    """The error :func:`contract_picky` raises for the item ``"bad"``."""


@miniagent
async def contract_prefix(ctx: InteractionContext, prefix: str = "") -> None:
    """Reply with the input, after ``prefix``."""
    ctx.reply(prefix + str(await ctx.message_promises))


@miniagent
async def contract_upper(ctx: InteractionContext) -> None:
    """Reply with the input upper-cased."""
    ctx.reply(str(await ctx.message_promises).upper())


@miniagent
async def contract_picky(ctx: InteractionContext) -> None:
    """Reply with the input, or fail on ``"bad"``."""
    text = str(await ctx.message_promises)
    if text == "bad":
        raise ContractError("the item 'bad' is refused")
    ctx.reply(text)


class Results(Protocol):
    """What both pipelines return: iterable with ``for`` and ``async for``."""

    def __iter__(self) -> Iterator[ItemResult[str]]: ...

    def __aiter__(self) -> AsyncIterator[ItemResult[str]]: ...


class Runner(Protocol):
    """``pipeline`` or ``ray_pipeline``, with the arguments both take."""

    def __call__(
        self,
        agents: MiniAgent[...] | Sequence[MiniAgent[...]],
        items: Iterable[str],
        /,
        *,
        max_in_flight: int = ...,
        ordered: bool = ...,
        progress: bool | None = ...,
        description: str | None = ...,
    ) -> Results: ...


class Breaking:
    """Items that raise after ``fail_at`` of them."""

    def __init__(self, count: int, fail_at: int) -> None:
        self.count = count
        self.fail_at = fail_at

    def __iter__(self) -> Iterator[str]:
        for i in range(self.count):
            if i == self.fail_at:
                raise RuntimeError("the source broke")
            yield f"item {i}"


def a_chain_runs_over_every_item_in_the_input_order(run: Runner) -> None:
    items = [f"item {i}" for i in range(8)]
    chain: list[MiniAgent[...]] = [contract_prefix.fork(prefix="> "), contract_upper]
    results = list(run(chain, items, max_in_flight=3))
    assert [result.index for result in results] == list(range(8))
    assert [result.item for result in results] == items
    assert [str(result.get()) for result in results] == [f"> ITEM {i}" for i in range(8)]
    assert all(result.ok and result.attempts == 1 for result in results)


def unordered_results_hold_every_item_once(run: Runner) -> None:
    items = [f"x{i}" for i in range(6)]
    results = list(run(contract_upper, items, max_in_flight=2, ordered=False))
    assert sorted((r.index, r.item, str(r.get())) for r in results) == [
        (i, f"x{i}", f"X{i}") for i in range(6)
    ]


def a_failed_item_holds_its_error_and_the_others_go_on(run: Runner) -> None:
    results = list(run(contract_picky, ["a", "bad", "c"]))
    assert [result.ok for result in results] == [True, False, True]
    assert isinstance(results[1].error, ContractError)
    with pytest.raises(ContractError, match="'bad' is refused"):
        results[1].get()
    assert [str(results[0].get()), str(results[2].get())] == ["a", "c"]


def async_for_gives_the_same_results(run: Runner) -> None:
    async def collect() -> list[str]:
        async with MiniAgents():
            return [str(r.get()) async for r in run(contract_upper, ["a", "b", "c"])]

    assert asyncio.run(collect()) == ["A", "B", "C"]


def an_items_iterable_that_raises_gives_the_results_before_it_then_its_error(
    run: Runner,
) -> None:
    seen: list[int] = []

    def consume() -> None:
        for result in run(contract_upper, Breaking(10, fail_at=4), max_in_flight=2):
            seen.append(result.index)

    with pytest.raises(RuntimeError, match="the source broke"):
        consume()
    assert seen == [0, 1, 2, 3]


def leaving_the_loop_early_closes_the_items(run: Runner) -> None:
    closed: list[str] = []

    def items() -> Iterator[str]:
        try:
            for i in range(1000):
                yield f"item {i}"
        finally:  # e.g. the file the items are read from, closed
            closed.append("closed")

    results = run(contract_upper, items(), max_in_flight=2)  # (held: the loop's owner keeps it)
    for result in results:
        assert str(result.get()) == "ITEM 0"
        break
    assert closed == ["closed"]


def a_pipeline_runs_once(run: Runner) -> None:
    results = run(contract_upper, ["a"])
    assert [str(result.get()) for result in results] == ["A"]
    with pytest.raises(RuntimeError, match="runs once"):
        list(results)


def bad_arguments_are_refused_at_once(run: Runner) -> None:
    with pytest.raises(ValueError, match="at least one agent"):
        run([], ["a"])
    with pytest.raises(ValueError, match="max_in_flight"):
        run(contract_upper, ["a"], max_in_flight=0)
    with pytest.raises(ValueError, match=r"needs progress to be True or False; got 'yes'"):
        run(contract_upper, ["a"], progress="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"needs description to be a str .*; got 5\.$"):
        run(contract_upper, ["a"], description=5)  # type: ignore[arg-type]


def _noting(items: list[str], read: list[object]) -> Iterator[str]:
    """The items, lazily, each noted in ``read`` as the pipeline reads it."""
    for item in items:
        read.append(item)
        yield item


def _read_into(seen: list[str], results: Results) -> None:
    """Note each result's replies in ``seen``, until the results end (or raise)."""
    for result in results:
        seen.append(str(result.get()))


def an_item_that_cannot_be_an_agents_input_takes_its_place_after_the_results_before_it(
    run: Runner,
) -> None:
    items = cast("list[str]", ["a", "b", 5, "c"])  # (what mypy refuses: the user's code)
    for ordered in (True, False):
        read: list[object] = []
        seen: list[str] = []
        with pytest.raises(MessageTypeError) as raised:
            _read_into(seen, run(contract_upper, _noting(items, read), ordered=ordered))
        assert re.match(
            r"(ray_)?pipeline\(\) got item 2, an int \(5\), which cannot be an agent's "
            "input",
            str(raised.value),
        )
        assert (seen if ordered else sorted(seen)) == ["A", "B"]  # every result before it
        assert read == ["a", "b", 5]  # nothing after it is read, so nothing after it starts


def the_progress_bar_counts_items_and_failures_when_asked(run: Runner) -> None:
    items = ["a", "bad", "c"]
    quiet = io.StringIO()  # not a terminal: no bar unless asked
    with contextlib.redirect_stderr(quiet):
        list(run(contract_picky, items))
    assert quiet.getvalue() == ""
    shown = io.StringIO()
    with contextlib.redirect_stderr(shown):
        list(run(contract_picky, items, progress=True, description="checking"))
    assert "checking: 100%" in shown.getvalue()
    assert "3/3" in shown.getvalue()
    assert "failed=1" in shown.getvalue()


@contextlib.contextmanager
def _without_tqdm() -> Iterator[None]:
    """As if tqdm were not installed (its entry in ``sys.modules`` alone, put back after)."""
    kept = sys.modules["tqdm"]
    sys.modules["tqdm"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.modules["tqdm"] = kept


def a_progress_bar_that_cannot_be_made_closes_the_items(run: Runner) -> None:
    """Without tqdm, or with tqdm failing, the run's error is raised and its items closed."""

    def failing_tqdm(*args: object, **kwargs: object) -> None:
        raise OSError("stderr is gone")

    unmade: list[tuple[contextlib.AbstractContextManager[object], type[Exception]]] = [
        (_without_tqdm(), ProgressBarMissingError),
        (mock.patch.object(tqdm, "tqdm", failing_tqdm), OSError),
    ]
    for patched, expected in unmade:
        closed: list[str] = []

        def lines(closed: list[str] = closed) -> Iterator[str]:
            try:
                yield "header"
                yield "a"
            finally:  # e.g. the file the items are read from, closed
                closed.append("closed")

        items = lines()
        assert next(items) == "header"  # (the items' owner read the first one: begun)
        with patched, pytest.raises(expected):
            list(run(contract_upper, items, progress=True))
        assert closed == ["closed"]


CASES: list[Callable[[Runner], None]] = [
    a_chain_runs_over_every_item_in_the_input_order,
    unordered_results_hold_every_item_once,
    a_failed_item_holds_its_error_and_the_others_go_on,
    async_for_gives_the_same_results,
    an_items_iterable_that_raises_gives_the_results_before_it_then_its_error,
    leaving_the_loop_early_closes_the_items,
    a_pipeline_runs_once,
    bad_arguments_are_refused_at_once,
    an_item_that_cannot_be_an_agents_input_takes_its_place_after_the_results_before_it,
    the_progress_bar_counts_items_and_failures_when_asked,
    a_progress_bar_that_cannot_be_made_closes_the_items,
]
"""Every case of the contract, run through each pipeline."""
