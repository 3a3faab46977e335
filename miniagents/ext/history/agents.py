"""History agents: store the messages they get, reply with the whole conversation.

Give one to ``adialog_loop(..., history_agent=...)`` and the assistant sees the whole
conversation each turn, not only the user's last message:

- :data:`in_memory_history_agent` keeps it in memory (one history per ``MiniAgents``
  context, unless you bind your own ``chat_history``);
- :data:`markdown_history_agent` keeps it in a markdown file
  (``fork(history_md_file="CHAT.md")``), read back when the program starts again;
- :data:`history_agent` works with any :class:`~miniagents.ext.history.ChatHistory`.
"""

from __future__ import annotations

import os
from pathlib import Path

from miniagents.arguments import check_path
from miniagents.ext.history.base import ChatHistory
from miniagents.ext.history.errors import ChatHistoryOptionError
from miniagents.ext.history.in_memory import InMemoryChatHistory
from miniagents.ext.history.markdown import ChatHistoryMD
from miniagents.miniagents import InteractionContext
from miniagents.miniagents.agent import miniagent
from miniagents.miniagents.context import MiniAgents
from miniagents.miniagents.errors import MissingAgentArgumentError

__all__ = ["history_agent", "in_memory_history_agent", "markdown_history_agent"]


@miniagent(alias="HISTORY_AGENT")
async def history_agent(
    ctx: InteractionContext, /, chat_history: ChatHistory | None = None
) -> None:
    """Stores each incoming message in ``chat_history`` once complete; replies with all of it.

    Raises:
        MissingAgentArgumentError: if no chat history was given (a ``ValueError``).
        ChatHistoryOptionError: if ``chat_history`` is not a ``ChatHistory`` (e.g. a path).
    """
    if chat_history is None:
        raise MissingAgentArgumentError(
            "history_agent needs a chat history. Bind one, e.g. "
            "history_agent.fork(chat_history=InMemoryChatHistory())."
        )
    checked = ChatHistory.check_argument(
        chat_history, taken_by="history_agent", bind="history_agent.fork"
    )
    await _store_and_reply(ctx, checked)


@miniagent(alias="IN_MEMORY_HISTORY_AGENT")
async def in_memory_history_agent(
    ctx: InteractionContext, /, chat_history: InMemoryChatHistory | None = None
) -> None:
    """Stores the incoming messages in memory and replies with the whole history.

    Args:
        ctx: The interaction.
        chat_history: Where to keep them; by default one history shared by every call of
            this agent in the current ``MiniAgents`` context.

    Raises:
        ChatHistoryOptionError: if ``chat_history`` is not a ``ChatHistory`` (e.g. a path),
            before any message is stored.
    """
    if chat_history is None:
        chat_history = MiniAgents.get_current().resource(
            "in-memory-chat-history", InMemoryChatHistory, _nothing_to_close
        )
    checked = ChatHistory.check_argument(
        chat_history, taken_by="in_memory_history_agent", bind="in_memory_history_agent.fork"
    )
    await _store_and_reply(ctx, checked)


@miniagent(alias="MARKDOWN_HISTORY_AGENT")
async def markdown_history_agent(
    ctx: InteractionContext, /, history_md_file: str | os.PathLike[str] = "CHAT.md"
) -> None:
    """Appends the incoming messages to a markdown file and replies with the whole history.

    The file (see :class:`~miniagents.ext.history.markdown.ChatHistoryMD`) is read at the
    first call, so a conversation goes on where it stopped when the program ran last.

    Args:
        ctx: The interaction.
        history_md_file: The markdown file.

    Raises:
        ChatHistoryOptionError: if ``history_md_file`` is not a path (a ``str`` or a
            ``PathLike``).
    """
    path = check_path(
        history_md_file,
        "history_md_file",
        owner="markdown_history_agent",
        fix='Bind one, e.g. markdown_history_agent.fork(history_md_file="CHAT.md").',
        error=ChatHistoryOptionError,
    )
    await _store_and_reply(ctx, _markdown_history(Path(path)))


def _markdown_history(path: Path) -> ChatHistoryMD:
    """One ``ChatHistoryMD`` per file in a context, so the file is read only once."""
    made = ChatHistoryMD(path)  # a path no file can have: refused here, not by resolve()
    return MiniAgents.get_current().resource(
        ("markdown-chat-history", path.resolve()), lambda: made, _nothing_to_close
    )


async def _store_and_reply(ctx: InteractionContext, chat_history: ChatHistory) -> None:
    async for message in ctx.message_promises:
        await chat_history.append(await message)
    ctx.reply(await chat_history.load())


async def _nothing_to_close(_: object) -> None:
    return None
