"""The studio's commands: ``miniagents run`` (record a program) and ``miniagents studio``.

::

    miniagents run [--store FILE] [--name NAME] program.py [ARGS ...]
    miniagents studio [--store FILE] [--host H] [--port P] [--token T] [--allow-host HOST ...]
                      [--body-seconds S] [--max-connections N] [--headers-seconds S]
                      [--linger-seconds S] [--send-seconds S] [--trusted-proxy ADDRESS ...]
                      [--max-forks N] [--max-followers N] [--max-reads N] [--fork-timeout S]
                      [--max-run-events N] [--keepalive S]
    miniagents studio list [--store FILE]
    miniagents studio show [RUN] [--store FILE] [--max-events N]
    miniagents studio fork [RUN] (--call N | --call-with TEXT) (--reply TEXT | --prompt TEXT
                                                                | --system TEXT)
                                 [--timeout S] [--max-events N]
    miniagents studio diff [LEFT] [RIGHT] [--max-events N]

``run`` runs the program as ``python program.py ARGS`` would (its ``__name__`` is
``"__main__"``), recording its run (:class:`~miniagents.ext.studio.recorder.Recorder`);
its exit status is the program's, and so is its end: an error it does not catch (Ctrl+C's
``KeyboardInterrupt`` too, which ends the process by SIGINT) shows the program's own
traceback, without the frames of this command. ``studio`` serves the studio's page
(:func:`~miniagents.ext.studio.app.studio_app`, extra ``web``) at
``http://127.0.0.1:8100/#token=...`` until Ctrl+C (the token: ``--token``, else
``MINIAGENTS_STUDIO_TOKEN``, at least 16 characters, else a new random one);
``--allow-host`` names another host name it answers (when ``--host`` makes it reachable
by others); ``--body-seconds``, ``--max-connections``, ``--headers-seconds``,
``--linger-seconds``, ``--send-seconds`` and ``--trusted-proxy`` bound it as they bound
``miniagents web`` (:mod:`~miniagents.ext.console.web_options`); ``--max-forks``,
``--max-followers``, ``--max-reads``, ``--fork-timeout``, ``--max-run-events`` and
``--keepalive`` set the studio's own limits, the arguments of ``studio_app`` they are
named after. ``list`` lists the runs, ``show`` prints a run's tree (``RUN``: a run's id,
or ``last``, the default), ``fork`` runs a run's program again with a call's reply (or
prompt) edited, every call before it replayed (:mod:`~miniagents.ext.studio.fork`; the
call: its number, or the first whose reply has a text), and prints the two runs side by
side, as ``diff`` does (``RIGHT``
defaults to the last run, ``LEFT`` to the run it forked). ``show``, ``fork`` and ``diff``
read each run whole, up to ``--max-events`` events (200,000 by default, as the studio's
``max_run_events``): a run of more is refused, saying so, before it is read.

The store is ``--store``, else ``MINIAGENTS_STUDIO``, else ``miniagents_runs.sqlite`` in
the current folder. Exit status 2, with one line on stderr, for what cannot start: a bad
argument, a program that is not a file, a run the store does not have.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import math
import os
import pkgutil
import runpy
import secrets
import sys
import types
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from miniagents.ext.console.web_options import (
    SERVING_OPTIONS,
    SETTINGS_OPTIONS,
    WebOption,
    add_web_options,
    option_flag,
    web_options_given,
)
from miniagents.ext.studio.diff import render_diff
from miniagents.ext.studio.errors import StudioConfigurationError, StudioError
from miniagents.ext.studio.fork import TOKEN_VARIABLE, afork, plan_fork_in
from miniagents.ext.studio.recorder import Recorder
from miniagents.ext.studio.store import MAX_RUN_EVENTS, STORE_VARIABLE, RunStore, store_path
from miniagents.ext.studio.tree import RunTree

__all__ = ["DEFAULT_PORT", "TOKEN_VARIABLE", "run_main", "studio_main"]

DEFAULT_PORT = 8100


class _CannotStart(Exception):
    """What keeps a command from starting (its message is the line on stderr)."""


def run_main(argv: Sequence[str], prog: str, *, ends_the_process: bool = False) -> int:
    """``miniagents run``: run ``program.py`` with its arguments, recorded; its exit status.

    Args:
        argv: The arguments after the command's name.
        prog: The command's name in messages.
        ends_the_process: Whether an error the program does not catch ends this process
            (the ``miniagents`` command's own run): then ``sys.excepthook`` shows it with the
            program's frames only. Called in-process (the default), the error goes up to the
            caller, and ``sys.excepthook``, ``sys.argv`` and ``sys.path`` are left as they
            were before the call.
    """
    parser = _parser(
        prog,
        "Run a Python program as `python program.py ARGS` would, recording its run (its "
        "agents, messages, tokens, model calls, tools) for the studio.",
    )
    parser.add_argument("--name", help="the run's name (default: the program's file name)")
    parser.add_argument("program", help="the program's file")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the program's arguments")
    args = parser.parse_args(list(argv))
    program = Path(args.program)
    if not program.is_file():
        parser.error(f"{program}: there is no such file; give a Python program's file")
    name = args.name or program.name
    command = [sys.executable, "-m", "miniagents", "run", "--name", name, str(program), *args.args]
    try:
        recorder = Recorder(store_path(args.store), name=name, command=command).start()
    except StudioError as cannot:
        parser.error(str(cannot))
    argv_before, path_before = sys.argv, sys.path[0]
    sys.argv = [args.program, *args.args]  # (as typed, as `python program.py` has it)
    sys.path[0] = str(program.resolve().parent)  # (as `python program.py` has it)
    program_file = os.path.abspath(program)  # (its `__file__`, as `python program.py` has it)
    ended: BaseException | None = None
    try:
        _run_program(program_file)
    except BaseException as failure:  # (SystemExit too: the program's exit status)
        ended = failure
        if ends_the_process and not isinstance(failure, SystemExit):
            sys.excepthook = _ProgramsTraceback(sys.excepthook, failure, program_file)
        raise
    finally:
        if not ends_the_process:
            sys.argv, sys.path[0] = argv_before, path_before
        recorder.close(ended)
        print(
            f"[miniagents] recorded the run {recorder.run_id} in {recorder.store.path}",
            file=sys.stderr,
        )
    return 0


def _run_program(program_file: str) -> None:
    """Run the program at ``program_file`` (an absolute path) as its ``__main__`` module.

    Its ``__file__`` and its code's file are ``program_file``, and ``sys.argv`` is left as
    it is, as ``python program.py`` has them (``runpy.run_path`` would make ``sys.argv[0]``
    the absolute path); a zip file is run by ``runpy``.
    """
    if zipfile.is_zipfile(program_file):
        runpy.run_path(program_file, run_name="__main__")
        return
    with io.open_code(program_file) as source:
        code = pkgutil.read_code(source)  # (a compiled program)
    if code is None:
        with io.open_code(program_file) as source:
            code = compile(source.read(), program_file, "exec")
    main = types.ModuleType("__main__")
    main.__file__ = program_file
    main.__cached__ = None  # type: ignore[attr-defined]
    before = sys.modules["__main__"]
    sys.modules["__main__"] = main
    try:
        exec(code, vars(main))
    finally:
        sys.modules["__main__"] = before


class _ProgramsTraceback:
    """An excepthook that shows a program's uncaught error as ``python program.py`` would.

    The error goes up through this command's frames (and runpy's) to the interpreter, which
    shows it and ends the process as it would have ended the program's (exit status 1, or
    SIGINT for a ``KeyboardInterrupt``); this hook, set as it leaves the program, cuts the
    frames before the program's own from its traceback, and hands any other error to the
    hook it replaced as it is.
    """

    def __init__(
        self,
        hook: Callable[[type[BaseException], BaseException, TracebackType | None], object],
        failure: BaseException,
        program_file: str,
    ) -> None:
        self._hook = hook
        self._failure = failure
        self._program_file = program_file

    def __call__(
        self, kind: type[BaseException], error: BaseException, trace: TracebackType | None
    ) -> None:
        if error is self._failure:
            trace = self._from_program(trace)
            error.with_traceback(trace)  # (what the interpreter's hook shows)
        self._hook(kind, error, trace)

    def _from_program(self, trace: TracebackType | None) -> TracebackType | None:
        """``trace`` from the program's first frame on (all of it if the program has none)."""
        step = trace
        while step is not None and step.tb_frame.f_code.co_filename != self._program_file:
            step = step.tb_next
        return trace if step is None else step


def studio_main(argv: Sequence[str], prog: str) -> int:
    """``miniagents studio``: serve the studio's page, or ``list``, ``show``, ``fork``, ``diff``."""
    given = list(argv)
    if given and given[0] in _VERBS:
        verb = _VERBS[given[0]]
        parser = _parser(f"{prog} {given[0]}", verb.description)
        for name, options in verb.arguments:
            parser.add_argument(name, **options)  # type: ignore[arg-type]
        args = parser.parse_args(given[1:])
        if getattr(args, "max_events", 1) < 1:
            parser.error(f"argument --max-events: {args.max_events} is not at least 1")
        timeout = getattr(args, "timeout", None)
        if timeout is not None and not 0 < timeout < math.inf:
            parser.error(f"argument --timeout: {timeout} is not a positive number of seconds")
        try:
            with contextlib.closing(RunStore(store_path(args.store))) as store:
                return verb.run(args, store)
        except (StudioError, _CannotStart) as error:
            parser.error(str(error))
    return _serve(given, prog)


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A command's parser, with the option every studio command has: ``--store``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--store",
        help=f"the store of runs (default: ${STORE_VARIABLE}, else miniagents_runs.sqlite)",
    )
    return parser


@dataclass(frozen=True)
class _Verb:
    """A verb of ``miniagents studio``: what it does, its arguments, and how it runs."""

    description: str
    arguments: tuple[tuple[str, dict[str, object]], ...]
    run: Callable[[argparse.Namespace, RunStore], int]


def _list(_args: argparse.Namespace, store: RunStore) -> int:
    for run in store.runs():
        fork = f"  fork of {run.forked_from}" if run.forked_from else ""
        print(f"{run.id}  {run.status:<8} {run.name}{fork}")
    return 0


def _show(args: argparse.Namespace, store: RunStore) -> int:
    print(RunTree.of(store, args.run, args.max_events).render())
    return 0


def _fork(args: argparse.Namespace, store: RunStore) -> int:
    if (args.call is None) == (args.call_with is None):
        raise _CannotStart("name the call to edit: --call N (see show) or --call-with TEXT")
    tree = RunTree.of(store, args.run, args.max_events)  # (read once: planned, then compared)
    call = args.call if args.call is not None else tree.call_with(args.call_with).id
    planned = plan_fork_in(
        tree,
        call,
        reply=args.reply,
        prompt=args.prompt,
        system=args.system,
        max_events=args.max_events,
    )
    try:
        result = asyncio.run(afork(store, planned, timeout=args.timeout))
    except TimeoutError:
        raise _CannotStart(
            f"the fork's program ran past --timeout {args.timeout:g} seconds and was killed (its "
            f"run {planned.child} shows what it recorded until then); give a longer --timeout"
        ) from None
    sys.stdout.write(result.output)
    if result.returncode:
        print(
            f"[miniagents] the fork's program ended with status {result.returncode}",
            file=sys.stderr,
        )
    print(render_diff(tree, RunTree.of(store, planned.child, args.max_events)))
    return result.returncode


def _diff(args: argparse.Namespace, store: RunStore) -> int:
    right = RunTree.of(store, args.right, args.max_events)
    left = args.left or right.run.forked_from
    if left is None:
        raise _CannotStart(f"the run {right.run.id} is no fork: give the run to compare it with")
    print(render_diff(RunTree.of(store, left, args.max_events), right))
    return 0


_RUN: tuple[str, dict[str, object]] = (
    "run",
    {"nargs": "?", "default": "last", "help": "the run's id (default: last)"},
)


_MAX_EVENTS: tuple[str, dict[str, object]] = (
    "--max-events",
    {
        "type": int,
        "default": MAX_RUN_EVENTS,
        "metavar": "N",
        "help": f"the most events of a run read (default: {MAX_RUN_EVENTS:,}); a run of more "
        "is refused",
    },
)

_VERBS = {
    "list": _Verb("List the recorded runs, the latest first.", (), _list),
    "show": _Verb(
        "Print a recorded run as a tree: its agents and tool calls, with their time and "
        "cost, and each call of a model with its number (the one to fork at) and reply.",
        (_RUN, _MAX_EVENTS),
        _show,
    ),
    "fork": _Verb(
        "Run a recorded run's program again with one call's reply (or prompt) edited: the "
        "calls before it are replayed from the recording, the others made live.",
        (
            _RUN,
            ("--call", {"type": int, "help": "the call's number (see show)"}),
            ("--call-with", {"metavar": "TEXT", "help": "or the first call whose reply has TEXT"}),
            ("--reply", {"help": "the call's reply, edited"}),
            ("--prompt", {"help": "the text of the call's last message, edited"}),
            ("--system", {"help": "the call's system prompt, edited"}),
            (
                "--timeout",
                {
                    "type": float,
                    "metavar": "SECONDS",
                    "help": "the most seconds the fork's program may run (then it is killed; "
                    "default: no limit)",
                },
            ),
            _MAX_EVENTS,
        ),
        _fork,
    ),
    "diff": _Verb(
        "Show two runs side by side: each node, how it compares, and how the right one's "
        "model calls were made (replayed, edited, live).",
        (
            ("left", {"nargs": "?", "help": "the first run (default: the one RIGHT forked)"}),
            ("right", {"nargs": "?", "default": "last", "help": "the second run (default: last)"}),
            _MAX_EVENTS,
        ),
        _diff,
    ),
}


def _serve(argv: list[str], prog: str) -> int:
    parser = _parser(
        prog,
        "See recorded runs in the browser: the runs, each as a live tree of agent calls, and "
        "forks side by side. Also: list, show, fork, diff (each with --help).",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"the port (default: {DEFAULT_PORT}; 0: a free one)",
    )
    parser.add_argument(
        "--token", help=f"the bearer token (default: ${TOKEN_VARIABLE}, else a random one)"
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="another Host name to answer besides the local ones (repeatable)",
    )
    add_web_options(parser, {**_LIMITS, **_SETTINGS_OPTIONS, **SERVING_OPTIONS})
    args = parser.parse_args(argv)
    try:
        return _served(args)
    except _CannotStart as error:
        parser.error(str(error))


_LIMITS: dict[str, WebOption] = {
    "max_forks": ("N", int, "the most fork programs running at once (default: 2; one more: a 429)"),
    "max_followers": (
        "N",
        int,
        "the most event streams open at once (default: 64; one more: a 503)",
    ),
    "max_reads": (
        "N",
        int,
        "the most diffs and forks reading their runs at once (default: 4; one more: a 503)",
    ),
    "fork_timeout": (
        "SECONDS",
        float,
        "seconds a fork's program may run before it is killed (default: 600)",
    ),
    "max_run_events": (
        "N",
        int,
        f"the most events of a run one diff or fork reads (default: {MAX_RUN_EVENTS:,}; a run "
        "of more: a 413)",
    ),
    "keepalive": (
        "SECONDS",
        float,
        "seconds an event stream may be quiet before it sends a comment (default: 15)",
    ),
}
"""The options of ``studio_app``'s own limits, each named after its argument."""

_SETTINGS_OPTIONS = {"body_seconds": SETTINGS_OPTIONS["body_seconds"]}
"""The options of the web apps' settings that apply to the studio (its page takes no other
origin, and its own limits bound its runs and bodies), beside every one of the serving's."""


def _served(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise _CannotStart(f"argument --port: {args.port} is not a port; give one from 0 to 65535")
    token = (
        args.token
        if args.token is not None
        else os.environ.get(TOKEN_VARIABLE) or secrets.token_urlsafe(24)
    )
    try:
        import uvicorn

        from miniagents.ext.errors import WebConfigurationError
        from miniagents.ext.studio.app import check_token, studio_app
        from miniagents.ext.web.serving import listening_socket, server_config
        from miniagents.ext.web.settings import LOCAL_HOSTS, checked_host
    except ImportError as error:
        raise _CannotStart(
            'the studio needs the web extra; install it with pip install "miniagents[web]"'
        ) from error
    try:
        check_token(token)  # (the app's own check, before anything is opened)
    except StudioConfigurationError as error:
        raise _CannotStart(f"argument --token: {error} Or give none, for a random one.") from error
    try:
        shown = checked_host(args.host)  # (as a URL writes it: an IPv6 address in brackets)
    except WebConfigurationError as error:
        raise _CannotStart(
            f"argument --host: {args.host!r} is no host name nor address; give the address to "
            "listen on, e.g. 127.0.0.1, or 0.0.0.0 for every one"
        ) from error
    # (the host it listens on too, as its address is printed: was refused, host_not_allowed)
    hosts = list(dict.fromkeys([*LOCAL_HOSTS, shown, *args.allow_host]))
    with contextlib.ExitStack() as ending:  # (the store, closed as serving ends: was left open)
        try:  # (a directory as the store: refused, naming --store)
            store = ending.enter_context(contextlib.closing(RunStore(store_path(args.store))))
            settings = web_options_given(args, {**_LIMITS, **_SETTINGS_OPTIONS})
            app = studio_app(store, token=token, allowed_hosts=hosts, **settings)
            config = server_config(app, **web_options_given(args, SERVING_OPTIONS))
        except (StudioConfigurationError, WebConfigurationError) as error:  # (a host, a bound)
            named = option_flag(error.parameter or "allowed_hosts")  # (the token: checked above)
            raise _CannotStart(f"argument {named}: {error}") from error
        try:
            listener = listening_socket(args.host, args.port)
        except OSError as error:
            raise _CannotStart(
                f"cannot listen on {args.host}:{args.port}: {error.strerror or error}; give "
                "another --port"
            ) from error
        port = listener.getsockname()[1]
        print(f"The studio of {store.path} is at http://{shown}:{port}/#token={token}", flush=True)
        server = uvicorn.Server(config)  # (bounded: the apps' one serving)
        with listener, contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[listener])
        return 0 if server.started else 1
