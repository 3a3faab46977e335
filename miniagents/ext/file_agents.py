"""File agents: write messages to a file as they stream.

- :data:`file_output_agent` writes its input to a file token by token and passes it on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from miniagents.arguments import check_flag, check_path
from miniagents.miniagents import InteractionContext
from miniagents.miniagents.agent import miniagent
from miniagents.miniagents.errors import MissingAgentArgumentError

__all__ = ["file_output_agent"]

_BIND_FILE = 'Bind one, e.g. file_output_agent.fork(file="answer.md").'


@miniagent(alias="FILE_OUTPUT_AGENT")
async def file_output_agent(
    ctx: InteractionContext,
    /,
    file: str | os.PathLike[str] | None = None,
    append: bool = False,
) -> None:
    """Writes each incoming message to ``file`` token by token, and replies with them.

    Each message's text is followed by a line break; tokens are flushed as they come. The
    file is opened when the first message arrives, so an input that fails (or holds no
    message) leaves it as it was.

    Args:
        ctx: The interaction.
        file: The file to write (bind it with ``fork(file=...)``).
        append: Add to the end of the file instead of replacing it.

    Raises:
        MissingAgentArgumentError: if no file was given (a ``ValueError``).
        ArgumentError: if ``file`` is not a path (a ``str`` or a ``PathLike``), or ``append``
            is not ``True`` or ``False``.
    """
    if file is None:
        raise MissingAgentArgumentError(f"file_output_agent needs a file. {_BIND_FILE}")
    check_path(file, "file", owner="file_output_agent", fix=_BIND_FILE)
    check_flag(append, "append", owner="file_output_agent")
    ctx.reply(ctx.messages)
    output: TextIO | None = None
    try:
        async for message in ctx.message_promises:
            if output is None:  # opened at the first message: a failed input leaves it be
                output = _open_for_writing(file, append)
            async for token in message:
                output.write(token)
                output.flush()
            output.write("\n")
            output.flush()
    finally:
        if output is not None:
            output.close()


def _open_for_writing(file: str | os.PathLike[str], append: bool) -> TextIO:
    return Path(file).open("a" if append else "w", encoding="utf-8")
