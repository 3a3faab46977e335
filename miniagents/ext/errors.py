"""Errors of the extensions' own modules; the whole hierarchy is in :mod:`miniagents.errors`.

The extension packages have their own errors modules too: :mod:`miniagents.ext.llm.errors`,
:mod:`miniagents.ext.tools.errors`, :mod:`miniagents.ext.mcp.errors` and
:mod:`miniagents.ext.ray.errors`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import ClassVar

from miniagents.promising.errors import MiniAgentsError
from miniagents.root_error import ArgumentError

__all__ = [
    "FileOutputError",
    "InputEndedError",
    "InputRequestError",
    "MissingExtraError",
    "WebChatPageError",
    "WebConfigurationError",
    "WebRunTooLargeError",
    "WebServerStoppedError",
]


class FileOutputError(MiniAgentsError, OSError):
    """``file_output_agent`` could not open or write its file (the message names the path).

    An ``OSError``, raised from the operating system's (a directory, a missing folder, no
    permission, a full disk).
    """


class InputEndedError(MiniAgentsError, EOFError):
    """The user ended the console input: the end of input (Ctrl+D), or ``exit`` typed.

    An ``EOFError``, so it ends ``adialog_loop`` and ``achain_loop`` cleanly.
    """


class InputRequestError(MiniAgentsError, RuntimeError):
    """An input request answered when it is not pending, or withdrawn while an agent waited.

    See :mod:`miniagents.ext.input_requests`: a request is answered once; one that nobody
    can answer where it is served (or whose reply was given up on) is withdrawn, and the
    agent that awaited its answer gets this error, which says why.

    Its text is the library's own sentence, written for whoever awaited the answer (an
    agent used as a tool passes it to the model), so it is told as written everywhere
    (:attr:`told_as_written`).
    """

    told_as_written: ClassVar[bool] = True
    """Whether a server tells its clients the error's text as the model reads it, as for a
    ``ToolError`` (see ``miniagents.ext.tools.errors.ToolError.told_as_written``): a tool
    that fails with it (an agent whose question was withdrawn, as an agent used as a tool's
    is) has its text told, not its class and a reference."""


class MissingExtraError(MiniAgentsError, ImportError):
    """An optional dependency is not installed; the message gives the ``pip install`` command."""

    @staticmethod
    def unless_importable(modules: Iterable[str], hint: str) -> None:
        """Import each of ``modules``; raise one for the first that cannot be imported.

        Args:
            modules: The modules' names (e.g. ``["starlette", "sse_starlette"]``).
            hint: The message: what needs them and the ``pip install`` command that installs
                them; ``{module}`` in it stands for the missing one's top-level package.

        Raises:
            MissingExtraError: ``hint``, raised from the ``ImportError``.
        """
        for module in modules:
            try:
                importlib.import_module(module)
            except ImportError as error:
                missing = module.partition(".")[0]
                raise MissingExtraError(hint.replace("{module}", missing)) from error


class WebChatPageError(MiniAgentsError, FileNotFoundError):
    """The chat page given to ``web_chat_app`` (or ``miniagents web --page``) is not a file."""


class WebConfigurationError(ArgumentError):
    """A web app made with options that cannot work (e.g. ``allowed_origins=["*"]``).

    Attributes:
        parameter: The app's parameter that cannot work (e.g. ``"max_live_runs"``), so that
            a command line can name its own option for it.
    """

    def __init__(self, message: str, *, parameter: str = "") -> None:
        super().__init__(message)
        self.parameter = parameter


class WebRunTooLargeError(MiniAgentsError, RuntimeError):
    """A live web run's events grew past the app's ``max_live_run_bytes``: it was cut there.

    The run's agent is cancelled, and its client (and every later reader of the run) gets
    the error in its protocol's own terms (AG-UI's ``RUN_ERROR``, the AI SDK's error part).
    """

    told_as_written: ClassVar[bool] = True
    """Whether a server tells its clients the error's text as written: the library wrote it
    for them (see ``InputRequestError.told_as_written``)."""


class WebServerStoppedError(MiniAgentsError, RuntimeError):
    """The server of a live web run stopped while its client followed the run.

    The client's stream ends with it in its protocol's own terms (AG-UI's ``RUN_ERROR`` of
    code ``WebServerStoppedError``, the AI SDK's error part), never as a finished run. Its
    message says whether the run can be read again: a durable agent's run goes on after
    the restart (or on another server sharing its database), so its client reconnects
    with its ``Last-Event-ID``; any other run stopped with the server, and is asked again.
    """

    told_as_written: ClassVar[bool] = True
    """Whether a server tells its clients the error's text as written: the library wrote it
    for them (see ``InputRequestError.told_as_written``)."""
