"""The command line: `miniagents chat` (or `python -m miniagents chat`), a terminal chat.

`miniagents web [--provider ...] [--model ...] [--system ...] [--page FILE.html] [--host H]
[--port P] [--token T] [--allow-host NAME ...] [--allow-origin ORIGIN ...]
[--approval-edits] [--grace-period S] [--keep-runs-for S] [--max-live-runs N]
[--max-live-runs-per-principal N] [--max-live-run-bytes N] [--max-ended-runs N]
[--max-ended-run-bytes N] [--max-streams N] [--max-streams-per-principal N]
[--max-body-bytes N] [--max-body-values N] [--body-seconds S] [--max-connections N]
[--headers-seconds S] [--linger-seconds S] [--send-seconds S] [--trusted-proxy ADDRESS ...]`
serves the same
assistant on a chat page in the browser instead (``web_chat_app``, extra ``web``, whose
settings the options from ``--allow-host`` to ``--body-seconds`` set: one option per field
of ``WebSettings``, each named after it, the lists' in the singular and repeated; the last
five set the serving's, ``server_config``'s, alike: :mod:`~miniagents.ext.console.web_options`), at
http://127.0.0.1:8000 by default, until Ctrl+C. The page is ``--page``; without it, run from
a clone of the repository, the example's page (``examples/web_chat/index.html``). ``--port``
is from 0 to 65535 (0: a free port, the one announced); a port in use is a web chat that
cannot start. The token's holder is the one principal, so ``--max-live-runs-per-principal``
(10) bounds the answers at once before ``--max-live-runs`` (100) does.
The assistant answers only requests with its bearer token (``--token``, else
``MINIAGENTS_WEB_TOKEN``, else a new random one at each start): the address it prints
carries it (``/#token=...``, a fragment: never sent to the server, never in a log), and the
page sends it. It answers only to this machine's host names (``localhost``, ``127.0.0.1``,
``[::1]``), the ``--host`` it listens on, and the names ``--allow-host`` adds (the one a
browser on another machine uses for it, with ``--host 0.0.0.0``); pages of other origins
are refused unless ``--allow-origin`` names them.

The demo, installed: the user types, the assistant's reply streams token by token, and
the assistant sees the whole conversation each turn::

    miniagents chat [--provider {openai,anthropic,offline}] [--model MODEL]
                    [--system TEXT] [--history FILE.md]

Without ``--provider``, the environment chooses as ``llm_agent_from_env`` does: OpenAI
with ``OPENAI_API_KEY`` set, else Anthropic with ``ANTHROPIC_API_KEY`` (or
``ANTHROPIC_AUTH_TOKEN``) set, else the offline model (no key, no network), whose first
line names the provider the environment chooses for ``llm_agent_from_env`` if it is
another (Gemini, ...), which the chat does not talk with.
``--history FILE.md`` keeps the conversation in a markdown file
(:class:`~miniagents.ext.history.markdown.ChatHistoryMD`) and resumes it when the file
exists. Type ``exit``, or press Ctrl+D or Ctrl+C, to end. An LLM error (a wrong
key, no network) is shown in one line and the chat goes on.

Other packages add commands of their own through :func:`main`'s ``commands`` (the
``miniagents`` command of :mod:`miniagents.cli` adds ``eval``, from :mod:`miniagents.evals`,
which this layer may not import): each is listed in ``--help`` and gets its arguments.

Exit status: 0 when the user ends the chat; 2 when it cannot start (a bad argument, a
missing key or SDK, a file that is not a chat history or cannot be written), with one line
on stderr that says why; 1, with one such line, when the history file cannot be written
during the chat (e.g. a full disk); 141 (128 + SIGPIPE), and nothing on stderr, when the
reader of its output goes away (``miniagents chat | head``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import os
import secrets
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from miniagents.ext.console.agents import create_console_user_agent
from miniagents.ext.console.web_options import (
    SERVING_OPTIONS,
    SETTINGS_OPTIONS,
    add_web_options,
    option_flag,
    web_options_given,
)
from miniagents.ext.errors import WebConfigurationError
from miniagents.ext.history import ChatHistory, ChatHistoryError, InMemoryChatHistory
from miniagents.ext.history.markdown import ChatHistoryMD
from miniagents.ext.llm.anthropic import anthropic_agent
from miniagents.ext.llm.from_env import (
    DEFAULT_ANTHROPIC_MODEL,
    DEFAULT_OPENAI_MODEL,
    provider_from_env,
)
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.llm.openai import openai_agent
from miniagents.miniagents.agent import MiniAgent
from miniagents.miniagents.context import MiniAgents
from miniagents.utils.loops import adialog_loop

__all__ = ["BROKEN_PIPE_STATUS", "DEFAULT_SYSTEM_PROMPT", "PROVIDERS", "Command", "main"]

DEFAULT_SYSTEM_PROMPT = "You are a helpful and concise assistant."
"""The system prompt when ``--system`` is not given."""

PROVIDERS = ("openai", "anthropic", "offline")
"""The values of ``--provider``."""

BROKEN_PIPE_STATUS = 141
"""The exit status when the reader of the output goes away: 128 + SIGPIPE, as a shell shows
for a program that SIGPIPE ended."""

_OFFLINE_TOKEN_DELAY = 0.02
"""Seconds before each token of the offline model: it streams as a model would."""


@dataclass(frozen=True)
class Command:
    """A command of another package, run by :func:`main` (e.g. ``miniagents eval``).

    Attributes:
        help: Its line in ``--help``.
        run: Runs it with its arguments (those after its name) and its program name (e.g.
            ``miniagents eval``); returns the exit status.
    """

    help: str
    run: Callable[[list[str], str], int]


@dataclass(frozen=True)
class _Provider:
    name: str
    agent: MiniAgent[...]
    keys: tuple[str, ...] = ()
    """The environment variables of its credentials, any one of which will do (an API key)."""

    def key_set(self) -> bool:
        """Whether the environment has a credential for it (a variable set and not empty)."""
        return any(os.environ.get(name) for name in self.keys)

    sdk: str | None = None
    """The module of its SDK, also the name of the extra that installs it."""
    model_variable: str | None = None
    default_model: str = "offline"


_BY_NAME = {
    "openai": _Provider(
        name="OpenAI",
        agent=openai_agent,
        keys=("OPENAI_API_KEY",),
        sdk="openai",
        model_variable="OPENAI_MODEL",
        default_model=DEFAULT_OPENAI_MODEL,
    ),
    "anthropic": _Provider(
        name="Anthropic",
        agent=anthropic_agent,
        keys=("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"),  # a key, or a bearer token
        sdk="anthropic",
        model_variable="ANTHROPIC_MODEL",
        default_model=DEFAULT_ANTHROPIC_MODEL,
    ),
    "offline": _Provider(name="the offline model", agent=offline_agent),
}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: what is wrong, and where to look."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _CannotStart(Exception):
    """The chat cannot start: the message says why (and what to do)."""


def main(
    argv: Sequence[str] | None = None,
    *,
    prog: str | None = None,
    commands: Mapping[str, Command] | None = None,
) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    Args:
        argv: The arguments after the program's name.
        prog: The program's name in messages (default: ``miniagents``).
        commands: More commands, by name, besides ``chat`` and ``web`` (listed in
            ``--help``; the first argument naming one runs it with the rest).
    """
    given = list(sys.argv[1:] if argv is None else argv)
    more = dict(commands or {})
    if given and given[0] in more:
        return more[given[0]].run(given[1:], f"{prog or 'miniagents'} {given[0]}")
    parser = _parser(prog or "miniagents", more)
    args = parser.parse_args(given)
    chat_parser: _Parser = args.chat_parser
    try:
        if args.command == "web":
            return _web(
                args.provider,
                args.model,
                args.system,
                args.page,
                args.host,
                args.port,
                args.token,
                web_options_given(args, SETTINGS_OPTIONS),
                web_options_given(args, SERVING_OPTIONS),
            )
        return asyncio.run(_chat(args.provider, args.model, args.system, args.history))
    except _CannotStart as error:
        chat_parser.error(str(error))
    except ChatHistoryError as error:  # the history file could not be written mid-chat
        sys.stdout.flush()
        sys.stderr.write(f"{chat_parser.prog}: error: {' '.join(str(error).split())}\n")
        return 1
    except KeyboardInterrupt:  # Ctrl+C outside the dialog itself (e.g. as it starts)
        print()
        return 130
    except BrokenPipeError:  # the reader of the output went away, e.g. `miniagents chat | head`
        devnull = os.open(os.devnull, os.O_WRONLY)  # Python flushes stdout on exit: that
        os.dup2(devnull, sys.stdout.fileno())  # would fail again, with a message
        os.close(devnull)
        return BROKEN_PIPE_STATUS


def _parser(prog: str, more: Mapping[str, Command]) -> _Parser:
    parser = _Parser(
        prog=prog,
        description="MiniAgents on the command line: typed, streaming LLM agents.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(
        title="commands", dest="command", required=True, metavar="COMMAND"
    )
    _add_chat(commands)
    _add_web(commands)
    for name, command in more.items():  # run by main() before parsing: listed here only
        commands.add_parser(name, help=command.help, add_help=False)
    return parser


def _chat_command(
    commands: Any, name: str, summary: str, description: str, *, described: bool
) -> argparse.ArgumentParser:
    """A chatting command's parser, with the assistant's choice: --provider, --model, --system."""
    command: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=description
    )
    command.set_defaults(chat_parser=command)
    command.add_argument(
        "--provider",
        choices=PROVIDERS,
        help="who answers (default: chosen by the API keys set, as described above)"
        if described
        else "who answers (as for chat)",
    )
    command.add_argument(
        "--model",
        help=(
            f"the model (default: $OPENAI_MODEL or {DEFAULT_OPENAI_MODEL} for OpenAI, "
            f"$ANTHROPIC_MODEL or {DEFAULT_ANTHROPIC_MODEL} for Anthropic)"
        )
        if described
        else "the model (as for chat)",
    )
    command.add_argument(
        "--system",
        default=DEFAULT_SYSTEM_PROMPT,
        metavar="TEXT",
        help=f'the system prompt (default: "{DEFAULT_SYSTEM_PROMPT}"; "" for none)',
    )
    return command


def _add_chat(commands: Any) -> None:
    """The ``chat`` command: a chat in the terminal."""
    chat = _chat_command(
        commands,
        "chat",
        "chat with an LLM in your terminal",
        "Chat with an LLM in your terminal; its replies stream token by token. Type exit, or "
        "press Ctrl+D or Ctrl+C, to end. Without --provider: OpenAI if OPENAI_API_KEY is set, "
        "else Anthropic if ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN) is set, else the "
        "offline model (no key, no network).",
        described=True,
    )
    chat.add_argument(
        "--history",
        metavar="FILE.md",
        help="keep the conversation in this markdown file, and resume it if it exists",
    )


def _add_web(commands: Any) -> None:
    """The ``web`` command: a chat page served to the browser, behind a bearer token."""
    web = _chat_command(
        commands,
        "web",
        "chat with an LLM on a page in your browser",
        "Serve a chat page (its replies stream token by token; tool calls, nested output and "
        "approvals show in place; a reload resumes the answer) until Ctrl+C. The model is "
        "chosen as for chat.",
        described=False,
    )
    web.add_argument(
        "--page",
        metavar="FILE.html",
        help="the chat page (default: examples/web_chat/index.html of the repository)",
    )
    web.add_argument("--host", default="127.0.0.1", help="the address (default: 127.0.0.1)")
    web.add_argument("--port", type=int, default=8000, help="the port (default: 8000)")
    web.add_argument(
        "--token",
        help="the bearer token the page must send (default: MINIAGENTS_WEB_TOKEN, else a "
        "new random one; the address printed carries it)",
    )
    add_web_options(web, {**SETTINGS_OPTIONS, **SERVING_OPTIONS})


def _provider(chosen: str | None) -> _Provider:
    """The provider named, or the one the environment has a key for, else the offline model."""
    if chosen is not None:
        return _BY_NAME[chosen]
    for provider in _BY_NAME.values():  # the choice of llm_agent_from_env
        if provider.key_set():
            return provider
    return _BY_NAME["offline"]  # it needs no key


def _assistant(provider: _Provider, model: str, system: str) -> MiniAgent[...]:
    """The provider's agent, with the model and the system prompt bound.

    Raises:
        _CannotStart: if the provider's SDK is not installed, or its API key not set.
    """
    system_prompt = system or None
    if provider.agent is offline_agent:
        return offline_agent.fork(
            model=model, system=system_prompt, token_delay=_OFFLINE_TOKEN_DELAY
        )
    if provider.sdk is not None and importlib.util.find_spec(provider.sdk) is None:
        raise _CannotStart(
            f"{provider.name} needs its SDK, which is not installed; install it with "
            f'pip install "miniagents[{provider.sdk}]"'
        )
    if provider.keys and not provider.key_set():
        also = "".join(f" (or {name})" for name in provider.keys[1:])
        raise _CannotStart(f"{provider.name} needs an API key; set {provider.keys[0]}{also}")
    return provider.agent.fork(model=model, system=system_prompt)


async def _chat(
    chosen: str | None, model: str | None, system: str, history_file: str | None
) -> int:
    provider = _provider(chosen)
    if model is not None and not model.strip():
        raise _CannotStart("--model is empty; give a model name, e.g. --model gpt-4o-mini")
    model = model or os.environ.get(provider.model_variable or "") or provider.default_model
    assistant = _assistant(provider, model, system)
    history: ChatHistory = InMemoryChatHistory()
    if history_file is not None:
        if not history_file.strip():
            raise _CannotStart("--history is empty; give a file, e.g. --history CHAT.md")
        _check_writable(history_file)
        try:
            history = ChatHistoryMD(history_file)
            earlier = await history.load()
        except ChatHistoryError as error:
            raise _CannotStart(f"--history {history_file}: {error}") from error
        if earlier:
            print(f"Resuming the conversation in {history_file} ({len(earlier)} messages so far).")
    print(f"Chatting with {_who(provider, model, chosen)}. Type exit or press Ctrl+D to end.")
    async with MiniAgents():
        await adialog_loop(create_console_user_agent(chat_history=history), assistant)
    if history_file is not None:
        print(f"The conversation is saved in {history_file}.")
    print("Bye!")
    return 0


def _check_writable(history_file: str) -> None:
    """Check, before the chat starts, that the history file can be written where it is.

    Raises:
        _CannotStart: if its folder does not exist, or it (or its folder) is not writable.
    """
    path = Path(history_file)
    folder = path.parent
    if not folder.is_dir():
        raise _CannotStart(
            f"--history {history_file}: there is no folder {folder}; create it, or give a "
            "file in a folder that exists"
        )
    written = path if path.exists() else folder
    if not os.access(written, os.W_OK):
        raise _CannotStart(
            f"--history {history_file}: {written} cannot be written (no permission); give a "
            "file that you can write"
        )


_EXAMPLE_PAGE = Path(__file__).resolve().parents[3] / "examples" / "web_chat" / "index.html"
"""The example's chat page, in a clone of the repository (an installed package has none)."""


def _page(given: str | None) -> Path:
    """The chat page to serve.

    Raises:
        _CannotStart: if it is not a file (or none was given and the example's is not here).
    """
    if given is None:
        if _EXAMPLE_PAGE.is_file():
            return _EXAMPLE_PAGE
        raise _CannotStart(
            "give the chat page with --page FILE.html (e.g. examples/web_chat/index.html of "
            "the MiniAgents repository: the installed package ships no page)"
        )
    if not Path(given).is_file():
        raise _CannotStart(f"--page {given}: there is no such file; give an HTML page")
    return Path(given)


def _chosen_token(given: str | None) -> str:
    """``--token``, else ``MINIAGENTS_WEB_TOKEN``, else a new random token.

    Raises:
        _CannotStart: if the token given is empty or has spaces.
    """
    token = given if given is not None else os.environ.get(_TOKEN_VARIABLE)
    if token is None:
        return secrets.token_urlsafe(24)
    if not token or any(character.isspace() for character in token):
        raise _CannotStart(
            f"the token ({'--token' if given is not None else _TOKEN_VARIABLE}) is "
            "empty or has spaces; give one without (or none, for a random one)"
        )
    return token


_TOKEN_VARIABLE = "MINIAGENTS_WEB_TOKEN"


def _web(
    chosen: str | None,
    model: str | None,
    system: str,
    page: str | None,
    host: str,
    port: int,
    token_given: str | None,
    settings: dict[str, Any],
    serving: dict[str, Any],
) -> int:
    if not 0 <= port <= 65535:
        raise _CannotStart(f"argument --port: {port} is not a port; give one from 0 to 65535")
    provider = _provider(chosen)
    if model is not None and not model.strip():
        raise _CannotStart("--model is empty; give a model name, e.g. --model gpt-4o-mini")
    model = model or os.environ.get(provider.model_variable or "") or provider.default_model
    assistant = _assistant(provider, model, system)
    page_file = _page(page)
    token = _chosen_token(token_given)
    try:
        import uvicorn

        from miniagents.ext.web import BearerTokenAuth, WebSettings, web_chat_app
        from miniagents.ext.web.auth import MIN_TOKEN_LENGTH
        from miniagents.ext.web.serving import server_config
        from miniagents.ext.web.settings import LOCAL_HOSTS, checked_host
    except ImportError as error:
        raise _CannotStart(
            'the web chat needs the web extra; install it with pip install "miniagents[web]"'
        ) from error
    if len(token) < MIN_TOKEN_LENGTH:
        raise _CannotStart(
            f"the token (--token or {_TOKEN_VARIABLE}) has {len(token)} characters, too few "
            f"(guessed); give one of at least {MIN_TOKEN_LENGTH} (or none, for a random one)"
        )
    try:
        shown = checked_host(host)  # (as a URL writes it: an IPv6 address in brackets)
    except WebConfigurationError as error:
        raise _CannotStart(
            f"--host {host!r} is no host name nor address; give the address to listen on, "
            "e.g. 127.0.0.1, or 0.0.0.0 for every one"
        ) from error
    named = [*LOCAL_HOSTS, shown, *settings.get("allowed_hosts", [])]  # (--host's too)
    settings["allowed_hosts"] = list(dict.fromkeys(named))
    try:
        app = web_chat_app(
            assistant,
            page=page_file,
            authentication=BearerTokenAuth({token: "you"}),
            settings=WebSettings(**settings),
        )
        config = server_config(app, **serving)  # (bounded: the apps' one serving)
    except WebConfigurationError as error:  # (an --allow-origin that is no origin, a limit)
        raise _CannotStart(f"{option_flag(error.parameter)}: {error}") from error
    listener = _listen(host, port)
    port = listener.getsockname()[1]  # the one chosen, for --port 0
    address = f"http://{shown}:{port}/#token={token}"
    print(f"Chatting with {_who(provider, model, chosen)} at {address}", flush=True)
    server = uvicorn.Server(config)
    with listener, contextlib.suppress(KeyboardInterrupt):  # Ctrl+C: the server stopped
        server.run(sockets=[listener])
    return 0 if server.started else 1


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host`` and ``port``, for the web chat.

    Raises:
        _CannotStart: if it cannot listen there (the port is in use, the host unknown, ...).
    """
    from miniagents.ext.web.serving import listening_socket

    try:
        return listening_socket(host, port)
    except OSError as error:
        raise _CannotStart(
            f"cannot listen on {host}:{port}: {error.strerror or error}; give another --port "
            "(or --host)"
        ) from error


def _who(provider: _Provider, model: str, chosen: str | None) -> str:
    if provider.keys:
        return f"{provider.name} ({model})"
    if chosen is None:
        other = provider_from_env()  # a provider of llm_agent_from_env the chat lacks
        if other is not None:
            return (
                f"{provider.name} (the environment chooses {other}, which this chat does not "
                "talk with: set OPENAI_API_KEY or ANTHROPIC_API_KEY, or use llm_agent_from_env "
                "in a program of your own)"
            )
        return f"{provider.name} (set OPENAI_API_KEY to talk with OpenAI)"
    return provider.name


def _version() -> str:
    try:
        return importlib.metadata.version("miniagents")
    except importlib.metadata.PackageNotFoundError:  # run from a clone, not installed
        return "(not installed)"
