"""Agents nested in one another to any depth: each hands the conversation on to the next.

An agent that replies, then replies with a new agent's replies (a hand-off, a turn at a
time) makes a chain of reply streams nested in one another, one per turn. A message and an
end reach the reader through every stream of the chain synchronously; before the nesting
was bounded (``_nesting.NESTED``), past about 160 turns the end exceeded Python's recursion
limit, was dropped as a broken observer's error, and the reader waited forever (a
``DeadlockError`` on the deadlock watch). Past about 330 turns a message did the same.

Every program runs on a virtual clock, so a hang ends at once as a ``DeadlockError``; each
checks that no virtual time passed (the watch never stepped in).
"""

from __future__ import annotations

import asyncio

import pytest

from miniagents import InteractionContext, MiniAgents, miniagent
from tests.fakes.unaided import run_unaided


class BottomError(ValueError):
    """What the last turn of a failing chain raises."""


@miniagent
async def turn(ctx: InteractionContext, n: int, fail_at: int = 0) -> None:
    await asyncio.sleep(0)  # each turn runs in a step of its own, after its parent's
    if n == fail_at:
        raise BottomError(f"turn {n} failed")
    ctx.reply(f"turn {n}")
    if n > 1:
        ctx.reply(turn.inquire(n=n - 1, fail_at=fail_at))


async def _read(n: int, fail_at: int = 0) -> tuple[list[str], BaseException | None]:
    texts: list[str] = []
    error: BaseException | None = None
    async with MiniAgents():
        try:
            async for promise in turn.inquire(n=n, fail_at=fail_at):
                texts.append(str(await promise))
        except BottomError as raised:
            error = raised
    return texts, error


# both sides of the depth where the nesting is cut (16), then past the old limits of an
# end (about 160 turns) and of a message (about 330)
@pytest.mark.parametrize("turns", [15, 17, 200, 2_000])
def test_a_conversation_handed_on_turn_by_turn_ends_with_every_turn_in_order(
    turns: int,
) -> None:
    texts, error = run_unaided(_read(turns))
    assert error is None
    assert texts == [f"turn {n}" for n in range(turns, 0, -1)]


def test_an_error_at_the_bottom_of_a_deep_chain_reaches_the_reader_after_every_turn() -> None:
    texts, error = run_unaided(_read(1_000, fail_at=1))
    assert texts == [f"turn {n}" for n in range(1_000, 1, -1)]
    assert isinstance(error, BottomError)
    assert str(error) == "turn 1 failed"


def test_a_deep_chain_replays_whole_to_a_reader_that_comes_after_its_end() -> None:
    async def main() -> tuple[list[str], list[str]]:
        async with MiniAgents():
            replies = turn.inquire(n=500)
            first = [str(message) for message in await replies]
            again = [str(await promise) async for promise in replies]
        return first, again

    first, again = run_unaided(main())
    expected = [f"turn {n}" for n in range(500, 0, -1)]
    assert first == expected
    assert again == expected


def test_two_deep_chains_one_after_the_other_both_end() -> None:
    async def main() -> tuple[int, int]:
        first, _ = await _read(300)
        second, _ = await _read(400)
        return len(first), len(second)

    assert run_unaided(main()) == (300, 400)
