"""File agents: write messages to a file as they stream.

- :data:`file_output_agent` writes its input to a file token by token and passes it on.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TextIO

from miniagents.arguments import check_flag, check_path
from miniagents.ext.errors import FileOutputError
from miniagents.ext.history.storage import SerialWorker
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
    message) leaves it as it was. The file is opened, written and closed in a worker
    thread, one operation after another, never on the event loop.

    Args:
        ctx: The interaction.
        file: The file to write (bind it with ``fork(file=...)``).
        append: Add to the end of the file instead of replacing it.

    Raises:
        MissingAgentArgumentError: if no file was given (a ``ValueError``).
        ArgumentError: if ``file`` is not a path (a ``str`` or a ``PathLike``), or ``append``
            is not ``True`` or ``False``.
        FileOutputError: if the file cannot be opened or written (a directory, a missing
            folder, no permission); it names the path and what to do.
    """
    if file is None:
        raise MissingAgentArgumentError(f"file_output_agent needs a file. {_BIND_FILE}")
    check_path(file, "file", owner="file_output_agent", fix=_BIND_FILE)
    check_flag(append, "append", owner="file_output_agent")
    ctx.reply(ctx.messages)
    worker = SerialWorker()  # in order, and a write begun ends before the file is closed
    output: TextIO | None = None
    try:
        async for message in ctx.message_promises:
            if output is None:  # opened at the first message: a failed input leaves it be
                output = await worker.arun(functools.partial(_open_for_writing, file, append))
            async for token in message:
                await worker.arun(functools.partial(_write, output, token, file))
            await worker.arun(functools.partial(_write, output, "\n", file))
    finally:
        if output is not None:
            await worker.arun(output.close)


def _open_for_writing(file: str | os.PathLike[str], append: bool) -> TextIO:
    try:
        return Path(file).open("a" if append else "w", encoding="utf-8")
    except OSError as error:
        raise _cannot_write(file, error) from error


def _write(output: TextIO, text: str, file: str | os.PathLike[str]) -> None:
    try:
        output.write(text)
        output.flush()
    except OSError as error:
        raise _cannot_write(file, error) from error


def _cannot_write(file: str | os.PathLike[str], error: OSError) -> FileOutputError:
    """Our error for ``error``, naming the path and what to do."""
    if isinstance(error, IsADirectoryError):
        fix = "It is a directory: give the path of a file, e.g. one inside it."
    elif isinstance(error, FileNotFoundError):
        fix = "Its folder does not exist: create the folder first, or give a path in one."
    else:
        fix = "Give a path of a file that can be written, or free what stops the writing."
    reason = error.strerror or type(error).__name__
    return FileOutputError(
        f"file_output_agent cannot write to {os.fspath(file)!r}: {reason}. {fix}"
    )
