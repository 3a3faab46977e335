"""The progress bar of a pipeline: its figures, and the meters that add theirs (tokens, cost).

The bar is drawn by tqdm on stderr; here it is asked for (``progress=True``) and stderr is
captured, or a recording stand-in takes tqdm's place.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from miniagents import InteractionContext, MiniAgents, miniagent, pipeline
from miniagents.ext.llm.offline import create_offline_agent
from miniagents.ext.llm.usage import usage_totals
from miniagents.pipeline.progress import ProgressBar, ProgressReading, add_progress_meter


class RecordedBar:
    """What a ``ProgressBar`` did to its tqdm bar."""

    def __init__(self) -> None:
        self.updates = 0
        self.postfixes: list[str] = []
        self.closed = False

    def update(self, n: float | None = 1) -> bool | None:
        self.updates += 1
        return None

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfixes.append(s)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def meter() -> Iterator[list[str | None]]:
    """A registered meter that reads the last value of the list it yields."""
    values: list[str | None] = [None]
    started: list[int] = []

    def start() -> ProgressReading:
        started.append(1)
        return lambda: values[-1]

    remove = add_progress_meter(start)
    try:
        yield values
    finally:
        remove()


def test_a_drawn_bar_shows_what_its_meters_read_after_the_failures(
    meter: list[str | None],
) -> None:
    recorded = RecordedBar()
    bar = ProgressBar(recorded)
    meter.append("tokens=5")
    bar.advance(failed=True)  # a failure shows at once, with the meters
    meter.append("tokens=9")
    bar.close()  # the meters are read a last time
    assert recorded.postfixes == ["failed=1, tokens=5", "failed=1, tokens=9"]
    assert recorded.updates == 1
    assert recorded.closed


def test_a_meter_with_nothing_to_show_adds_nothing(meter: list[str | None]) -> None:
    recorded = RecordedBar()
    bar = ProgressBar(recorded)
    bar.advance(failed=True)
    bar.close()
    assert recorded.postfixes == ["failed=1", "failed=1"]


def test_a_bar_that_only_counts_starts_no_meter() -> None:
    started: list[int] = []

    def start() -> ProgressReading | None:
        started.append(1)
        return None

    remove = add_progress_meter(start)
    try:
        bar = ProgressBar()
        bar.advance(failed=True)
        bar.close()
        assert (bar.done, bar.failed) == (1, 1)
        assert started == []
        ProgressBar(RecordedBar())
        assert started == [1]
    finally:
        remove()
    ProgressBar(RecordedBar())
    assert started == [1]  # removed: later bars do not start it


async def test_the_bar_shows_the_tokens_and_the_cost_of_the_llm_calls(
    capsys: pytest.CaptureFixture[str],
) -> None:
    priced = create_offline_agent(model="gpt-4o-mini", token_delay=0)  # priced as gpt-4o-mini
    async with MiniAgents():
        await priced.inquire("a call before the run: not the bar's")
        before = usage_totals()
        results = [
            result
            async for result in pipeline(priced, [f"item {n}" for n in range(5)], progress=True)
        ]
        after = usage_totals()
    assert all(result.ok for result in results)
    tokens = after.total_tokens - before.total_tokens
    cost = after.cost_usd - before.cost_usd
    assert tokens > 0
    assert cost > 0
    drawn = capsys.readouterr().err
    last = drawn.replace("\r", "\n").strip().splitlines()[-1]
    assert re.search(r"5/5 \[", last), last
    assert f"tokens={tokens:,}, ${cost:.4f}]" in last


async def test_a_run_without_llm_calls_shows_no_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    async with MiniAgents():
        priced = create_offline_agent(model="gpt-4o-mini", token_delay=0)
        await priced.inquire("before the run")

        @miniagent
        async def echo(ctx: InteractionContext) -> None:
            ctx.reply(str(await ctx.message_promises))

        results = [result async for result in pipeline(echo, ["a", "b"], progress=True)]
    assert [str(result.get()) for result in results] == ["a", "b"]
    assert "tokens=" not in capsys.readouterr().err


class _UnsizableRows:
    """Rows that iterate but whose ``__len__`` fails (as a lazy query's may)."""

    def __iter__(self) -> Iterator[str]:
        return iter(["a", "b"])

    def __len__(self) -> int:
        raise TypeError("this query does not know its length before it runs")


async def test_items_whose_len_fails_run_with_the_total_unknown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the TypeError of __len__ ended the run before (from the bar's total)
    @miniagent
    async def echo(ctx: InteractionContext) -> None:
        ctx.reply(str(await ctx.message_promises))

    async with MiniAgents():
        results = [result async for result in pipeline(echo, _UnsizableRows(), progress=True)]
    assert [str(result.get()) for result in results] == ["a", "b"]
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert re.search(r"\b2item \[", last), last  # a count with no total ("2/2" with one)
