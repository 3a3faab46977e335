"""A durable agent that must fail as its run starts, and the one-line sentence of its
``DurableDatabaseError``: what the database fault tests check."""

from __future__ import annotations

import pytest

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.ext.dbos import DurableDatabaseError, durable


@miniagent
async def remember(ctx: InteractionContext, item: object = None) -> None:
    """Reply with what it was given (it must not run when its inputs cannot be recorded)."""
    raise AssertionError("the agent ran although its inputs could not be recorded")


def said_in_one_line(error: BaseException) -> str:
    """The text of a ``DurableDatabaseError``, checked to be one line with no library's
    traceback chained to it (issue 51, item 8)."""
    assert type(error) is DurableDatabaseError
    text = str(error)
    assert "\n" not in text, text
    assert error.__cause__ is None, "a library's traceback"
    assert error.__context__ is None or error.__suppress_context__, "a library's traceback"
    assert "sqlalche.me" not in text, text
    assert "[SQL:" not in text, text
    return text


async def afailure_at_start(
    alias: str, database_url: str, *, match: str | None = None
) -> DurableDatabaseError:
    """The error of a durable fork of ``remember`` (named ``alias``) asked once.

    Asked in a ``MiniAgents`` context of its own, on ``database_url``: a run that must fail
    at start with a ``DurableDatabaseError`` (whose text matches ``match``, if given).
    """
    agent = durable(remember.fork(alias=alias), database_url=database_url)
    async with MiniAgents():
        with pytest.raises(DurableDatabaseError, match=match) as caught:
            await agent.inquire("Hi")
    return caught.value
