"""The calls of a ``ChatHistoryMD`` that read its file first, for the tests of bad files."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from miniagents.ext.history.markdown import ChatHistoryMD
from miniagents.ext.llm.messages import UserMessage


def every_call(history: ChatHistoryMD) -> list[Callable[[], Awaitable[object]]]:
    """``load``, ``load`` again (a file that failed is read again) and ``append``."""
    return [history.load, history.load, lambda: history.append(UserMessage(text="new"))]
