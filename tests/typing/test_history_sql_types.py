"""Static typing tests for ``miniagents.ext.dbos.history``: ``ChatHistorySQL``.

The ``check_*`` functions are never called: they exist to be type-checked by mypy
(``mypy.ini`` is strict, with ``warn_unused_ignores``). ``assert_type`` pins the exact
inferred types, and each line that must be rejected carries a precise
``# type: ignore[code]``. :func:`test_history_sql_types_pass_mypy` runs mypy on this file.
"""

from __future__ import annotations

from typing import assert_type

from miniagents import Message, MessageTuple
from miniagents.ext.dbos.history import DEFAULT_DATABASE_URL, TABLE_NAME, ChatHistorySQL
from miniagents.ext.history import ChatHistory
from miniagents.ext.llm.messages import UserMessage
from tests.fakes.typecheck import assert_passes_mypy


class Note(Message):
    topic: str


async def check_chat_history_sql() -> None:
    history = ChatHistorySQL("chat")
    assert_type(history, ChatHistorySQL)
    as_base: ChatHistory = history
    assert_type(await as_base.load(), MessageTuple)
    assert_type(await history.load(), MessageTuple)
    assert_type(await history.append(UserMessage(text="Hi.")), None)
    assert_type(await history.store([UserMessage(text="Hi.")]), MessageTuple)
    assert_type(history.conversation, str)
    assert_type(history.database_url, str)
    assert_type(history.timeout, float)
    assert_type(DEFAULT_DATABASE_URL, str)
    assert_type(TABLE_NAME, str)
    ChatHistorySQL(
        "chat",
        database_url="postgresql://me@127.0.0.1:5432/chats",
        message_classes=[Note],
        timeout=5,
    )


async def check_chat_history_sql_errors() -> None:
    ChatHistorySQL()  # type: ignore[call-arg]
    ChatHistorySQL("chat", "sqlite:///c.sqlite")  # type: ignore[call-arg]
    ChatHistorySQL("chat", message_classes=[int])  # type: ignore[list-item]
    ChatHistorySQL("chat", timeout="5")  # type: ignore[arg-type]
    await ChatHistorySQL("chat").append("Hi.")  # type: ignore[arg-type]


def test_history_sql_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
