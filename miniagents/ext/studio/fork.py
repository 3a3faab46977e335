"""Forks: a run again from one of its model calls, edited, the calls before it replayed.

A fork runs the program of a recorded run again, with one call's reply (or prompt)
edited, every call before it replayed from the recording.

The recording is a call cache (:mod:`miniagents.ext.llm.cache`): each recorded call is
named by its full request, and the fork runs the program again with a ``CallCache`` over
the recorded calls (mode ``read_through``, no request made for a call recorded)::

    run 1:   A: call 1 "Paris"   B: call 2 "2.1 million"   C: call 3 (sees 1, 2) "..."
    fork:    A: call 1 replayed  B: call 2 EDITED "3 million"  C: call 3' (a new request:
             its prompt holds the edit) made live, and everything after it

- an edited **reply** is the recorded call's reply with its text replaced (its tool calls
  and ``Finish`` kept), replayed as if the model had given it;
- an edited **prompt** (the text of the call's last message; or its system prompt) makes
  the call's request another: a route (before the cache) changes the call's request and
  it is made live.

Every call whose request is unchanged is replayed (0 requests to the model, cost 0);
those whose requests differ (downstream of the edit) are made live. The program must be
deterministic apart from its model calls for its calls to meet the recorded ones (an
identical request made twice gets the first recording's reply, as from any call cache).

:func:`plan_fork` checks and names a fork (:class:`Fork`); :func:`afork` runs the
program again with it (its recorded command, in its folder, the store and the fork in the
environment: ``MINIAGENTS_STUDIO``, ``MINIAGENTS_STUDIO_FORK``), and the new run records
itself, as any, as a fork of the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import functools
import json
import os
import re
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from miniagents.arguments import check_count, check_seconds, refused_argument
from miniagents.ext.llm.cache import CallCache, RecordedCall
from miniagents.ext.llm.cache.keys import call_key
from miniagents.ext.llm.cache.stores import events_from_json
from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.prompt import PromptText
from miniagents.ext.llm.provider import LLMCall, LLMEvent, LLMOptions, LLMProvider
from miniagents.ext.llm.routing import LLMCallRoute, Proceed, install_llm_route
from miniagents.ext.studio.errors import (
    StudioConfigurationError,
    StudioForkError,
    StudioNotFoundError,
)
from miniagents.ext.studio.store import STORE_VARIABLE, RunStore, checked_store, new_run_id
from miniagents.ext.studio.tree import CallRecord, RunTree, checked_tree
from miniagents.root_error import ArgumentError

__all__ = [
    "FORK_VARIABLE",
    "MAX_EDIT_CHARS",
    "TOKEN_VARIABLE",
    "Fork",
    "ForkResult",
    "afork",
    "checked_environment",
    "plan_fork",
    "plan_fork_in",
    "program_environment",
    "recorded_calls",
    "replay_no_fork_here",
    "replay_recorded_calls",
    "replaying_fork",
]

FORK_VARIABLE = "MINIAGENTS_STUDIO_FORK"
"""The environment variable that tells a recorder its run is a fork (the fork, as JSON)."""

TOKEN_VARIABLE = "MINIAGENTS_STUDIO_TOKEN"
"""The environment variable of the studio's token (``miniagents studio`` reads it).

A fork's program never gets it (:func:`afork` leaves it out of the program's environment):
the program needs no token, and whoever reads its environment could use the studio.
"""

MAX_EDIT_CHARS = 100_000
"""The longest edited reply or prompt a fork takes."""

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""A surrogate left alone in a text (JSON's ``"\\ud800"``): UTF-8 cannot encode it."""

_OUTPUT_KEPT = 64 * 1024
"""The last bytes of a fork's output that :func:`afork` keeps."""


@dataclass(frozen=True)
class Fork:
    """A fork of a recorded run at one of its model calls (see the module).

    Attributes:
        run: The run forked.
        call: The number of the call edited, in that run.
        key: That call's request key.
        child: The id of the new run (the fork's).
        reply: The call's reply, edited (``None``: not edited).
        prompt: The text of the call's last message, edited (``None``: not edited).
        system: The call's system prompt, edited (``None``: not edited).
        max_events: The most events of the run read, when it was planned and again when
            the fork's program reads its calls (``None``: no limit); a run grown past it
            meanwhile is refused there as it would have been here.
    """

    run: str
    call: int
    key: str
    child: str
    reply: str | None = None
    prompt: str | None = None
    system: str | None = None
    max_events: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The fork as JSON values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: object) -> Fork:
        """The fork that :meth:`as_json` wrote.

        Raises:
            StudioForkError: if ``data`` is not one.
        """
        names = {one.name for one in dataclasses.fields(cls)}
        if not isinstance(data, Mapping) or not {"run", "call", "key", "child"} <= data.keys():
            raise StudioForkError(
                f"A fork must be a JSON object with run, call, key and child, got {data!r:.80}."
            )
        fork = cls(**{name: value for name, value in data.items() if name in names})
        texts = (fork.run, fork.key, fork.child)
        edits = (fork.reply, fork.prompt, fork.system)
        if not all(isinstance(text, str) for text in texts) or not isinstance(fork.call, int):
            raise StudioForkError(
                f"A fork's run, key and child are texts and its call a number: {data!r:.80}."
            )
        if not all(edit is None or isinstance(edit, str) for edit in edits):
            raise StudioForkError(f"A fork's edits are texts: {data!r:.80}.")
        if fork.max_events is not None:
            try:
                check_count(
                    fork.max_events,
                    "max_events",
                    owner="A fork",
                    fix="Make the fork with plan_fork(), which sets it.",
                )
            except ArgumentError as error:
                raise StudioForkError(str(error)) from None
        return fork

    @classmethod
    def from_environment(cls) -> Fork | None:
        """The fork :data:`FORK_VARIABLE` names, if set.

        Raises:
            StudioForkError: if it is set to something else than a fork.
        """
        given = os.environ.get(FORK_VARIABLE)
        if not given:
            return None
        try:
            data = json.loads(given)
        except ValueError as error:
            raise StudioForkError(f"{FORK_VARIABLE} is not JSON: {error}.") from error
        return cls.from_json(data)


def plan_fork(
    store: RunStore,
    run_id: str,
    call: int,
    *,
    reply: str | None = None,
    prompt: str | None = None,
    system: str | None = None,
    max_events: int | None = None,
) -> Fork:
    """A fork of the run ``run_id`` at its call number ``call``, checked.

    ``max_events``: the most events of the run read to check it (``None``: no limit); the
    fork keeps it, and its program reads the run with the same bound.

    Raises:
        StudioNotFoundError: if the run, or the call in it, is not in the store.
        StudioRunTooLargeError: if the run has more than ``max_events`` events.
        StudioForkError: if nothing is edited, an edit is too long or holds a lone
            surrogate (no program can be given it), the call did not end
            with a reply (it cannot be replayed), is a reply of a realtime session (which a
            call cache replays whole), or the run cannot be run again (it was recorded
            without its command).
        StudioConfigurationError: if ``store`` is not a ``RunStore``, or ``call`` or
            ``max_events`` is not a whole number of at least 1.
    """
    checked_store(store, "plan_fork")
    _check_numbers(call, max_events, "plan_fork")
    tree = RunTree.of(store, run_id, max_events)
    return plan_fork_in(
        tree, call, reply=reply, prompt=prompt, system=system, max_events=max_events
    )


def plan_fork_in(
    tree: RunTree,
    call: int,
    *,
    reply: str | None = None,
    prompt: str | None = None,
    system: str | None = None,
    max_events: int | None = None,
) -> Fork:
    """The fork :func:`plan_fork` plans, of a run whose tree is read already.

    For a caller that reads the run once, to plan the fork and to show or compare the run
    (``miniagents studio fork``): ``tree`` read with ``max_events``, the bound the fork
    keeps (its program reads the run with it).

    Raises:
        StudioNotFoundError: if the call is not in the run.
        StudioForkError: as :func:`plan_fork` says.
        StudioConfigurationError: if ``tree`` is not a ``RunTree``, or ``call`` or
            ``max_events`` is not a whole number of at least 1.
    """
    checked_tree(tree, "tree", "plan_fork_in")
    _check_numbers(call, max_events, "plan_fork_in")
    recorded = tree.calls.get(call)
    if recorded is None:
        numbers = [str(number) for number in sorted(tree.calls)]
        if len(numbers) > 6:  # (bounded: a long run has thousands)
            numbers = [*numbers[:3], "...", *numbers[-3:]]
        raise StudioNotFoundError(
            f"The run {tree.run.id} has no call {call}; its calls are numbered "
            f"{', '.join(numbers) or 'none'} ({len(tree.calls):,} calls; see them with "
            f"miniagents studio show {tree.run.id})."
        )
    if recorded.request.get("realtime"):
        raise StudioForkError(
            f"The call {call} of the run {tree.run.id} is a reply of a realtime session, "
            "which a fork cannot edit: a call cache replays a session whole, from its "
            f"recording (the key {str(recorded.key)[:12]}), not reply by reply. Fork the "
            "run at another call: its session is replayed from the program's own call "
            "cache if that holds its recording, and made again otherwise."
        )
    _check_edits({"reply": reply, "prompt": prompt, "system": system})
    if reply is not None and recorded.finish is None:
        raise StudioForkError(
            f"The call {call} of the run {tree.run.id} did not end with a reply "
            f"({(recorded.error or {}).get('type', 'still running')}): its reply cannot be edited."
        )
    if prompt is not None and not any(
        isinstance(item, Mapping) and "text" in item and "role" in item
        for item in recorded.request.get("messages", ())
    ):
        raise StudioForkError(
            f"The call {call} of the run {tree.run.id} has no message whose text could be edited."
        )
    unkeyed = [each for each in tree.calls.values() if each.key is None]
    if recorded.key is None or unkeyed:
        first = recorded if recorded.key is None else unkeyed[0]
        raise StudioForkError(
            f"The run {tree.run.id} cannot be forked: a fork replays its calls through a call "
            f"cache, by their keys, and its call {first.id} has none. "
            f"{first.unkeyed or 'The call cache cannot key it.'}"
        )
    if not tree.run.command:
        raise StudioForkError(
            f"The run {tree.run.id} was recorded without the command that ran it, so it "
            "cannot be run again: record the program with miniagents run, or with "
            "record_runs() in a program started from its file."
        )
    return Fork(tree.run.id, call, recorded.key, new_run_id(), reply, prompt, system, max_events)


def _check_edits(edits: Mapping[str, str | None]) -> None:
    """Refuse a fork that edits nothing, or an edit that is no text a program can be given.

    Raises:
        StudioForkError: if every edit is ``None``, or one is no text of at most
            :data:`MAX_EDIT_CHARS` characters, or holds a lone surrogate.
    """
    if all(edit is None for edit in edits.values()):
        raise StudioForkError(
            "A fork edits the call's reply, its prompt or its system prompt; give one."
        )
    for name, edit in edits.items():
        if edit is not None and (not isinstance(edit, str) or len(edit) > MAX_EDIT_CHARS):
            raise StudioForkError(
                f"The edited {name} must be a text of at most {MAX_EDIT_CHARS:,} characters."
            )
        if edit is not None and (lone := _LONE_SURROGATE.search(edit)) is not None:
            # (was: planned, and the fork's program failed to start, unable to encode it)
            raise StudioForkError(
                f"The edited {name} holds a lone surrogate (U+{ord(lone[0]):04X}, at "
                f"character {lone.start():,}), which no program can be given: send text "
                "only (a character past U+FFFF as a pair of surrogates, as JSON writes it)."
            )


def _check_numbers(call: int, max_events: int | None, owner: str) -> None:
    """Refuse a ``call`` or ``max_events`` that is not a whole number of at least 1."""
    check_count(call, "call", owner=owner, error=StudioConfigurationError)
    if max_events is not None:
        check_count(max_events, "max_events", owner=owner, error=StudioConfigurationError)


def recorded_calls(tree: RunTree) -> dict[str, RecordedCall]:
    """The calls of a run that ended with a reply, by their request keys (the first of each).

    A realtime session's replies are not among them: its key is its recording's, in a call
    cache, which replays the session whole (a reply alone is no recording of it).
    """
    found: dict[str, RecordedCall] = {}
    for call in tree.calls.values():
        if call.request.get("realtime"):
            continue
        if call.finish is not None and call.key is not None and call.key not in found:
            found[call.key] = RecordedCall(call.key, call.request, _events(call), call.started)
    return found


def _events(call: CallRecord, text: str | None = None) -> tuple[LLMEvent, ...]:
    """The events of a recorded call (its text replaced by ``text``, if given)."""
    pieces: list[list[Any]] = [] if text is None else [["text", text]]
    for _, item in call.items:
        if isinstance(item, str):
            if text is None:
                pieces.append(["text", item])
        else:
            pieces.append(list(item))
    pieces.append(["finish", call.finish or {}])  # (read as a call cache reads one)
    return events_from_json(pieces)


class _RecordedRun:
    """The calls of a recorded run as a call cache's store (read only), one reply edited."""

    def __init__(self, calls: Mapping[str, RecordedCall]) -> None:
        self._calls = dict(calls)

    async def aget(self, key: str) -> RecordedCall | None:
        return self._calls.get(key)

    async def aput(self, recorded: RecordedCall) -> None:
        return None  # (the fork's own run records its calls)

    async def acandidates(self, provider: str, model: str, limit: int) -> list[RecordedCall]:
        alike = [
            call
            for call in self._calls.values()
            if (call.provider, call.model) == (provider, model)
        ]
        return alike[:limit]

    async def aclear(self) -> None:
        return None


_EDIT_RANK = -2
"""The edited prompt's place among the routes of a call: before the recorded calls (they see
the edited request, a miss)."""

_REPLAY_RANK = -1
"""The recorded calls' place: before every other route (a call cache of the program's own,
rank 0, answers neither a call the fork replays nor the edited one)."""


class _EditedPrompt:
    """The route that makes the forked call's request another: its prompt edited."""

    rank = _EDIT_RANK

    def __init__(self, key: str, prompt: str | None, system: str | None) -> None:
        self.key = key
        self.prompt = prompt
        self.system = system

    def llm_call(
        self, provider: LLMProvider[Any, Any], call: LLMCall, options: LLMOptions, proceed: Proceed
    ) -> AsyncIterator[LLMEvent]:
        if _key_of(provider, call, options) == self.key:
            call = self._edited(call)
        return proceed(call, options)

    def _edited(self, call: LLMCall) -> LLMCall:
        messages = list(call.messages)
        if self.prompt is not None:
            for index in range(len(messages) - 1, -1, -1):
                item = messages[index]
                if isinstance(item, PromptText):
                    messages[index] = PromptText(item.role, self.prompt, item.images)
                    break
        system = call.system if self.system is None else self.system
        return dataclasses.replace(call, messages=tuple(messages), system=system)


def _key_of(provider: object, call: LLMCall, options: LLMOptions) -> str | None:
    """The key the call cache gives ``call`` (as the recorder did), ``None``: it has none.

    (A call the cache cannot key is not the edited one, which has a key: the recorded
    calls' cache refuses it next.)
    """
    try:
        return call_key(provider, call, options)[1]
    except LLMConfigurationError:
        return None


class _Replay:
    """One fork's replay: its routes, by the rank of the process's route that runs each."""

    def __init__(self, fork: Fork | None, routes: dict[int, LLMCallRoute]) -> None:
        self.fork = fork
        self.routes = routes
        self.live = fork is not None


_NO_FORK = _Replay(None, {})
"""The replay of a context that records a run of no fork: none (its calls are made as
they are, not the process's only fork's)."""


class _Forks:
    """The forks replaying in this process, and the two routes (installed while any is)."""

    def __init__(self) -> None:
        self.here: contextvars.ContextVar[_Replay | None] = contextvars.ContextVar(
            "miniagents_studio_fork", default=None
        )
        self.live: tuple[_Replay, ...] = ()
        self._lock = threading.Lock()
        self._routes = (_Forked(_EDIT_RANK, self), _Forked(_REPLAY_RANK, self))
        self._removers: list[Callable[[], None]] = []

    def start(self, replay: _Replay) -> None:
        """Replay ``replay`` in the current context (and where no other is, if alone)."""
        with self._lock:
            if not self.live:
                self._removers = [install_llm_route(route) for route in self._routes]
            self.live = (*self.live, replay)
        self.here.set(replay)  # (one slot per context: a later fork here takes it over)

    def stop(self, replay: _Replay) -> None:
        """Stop ``replay`` (once): its routes let go, the process's removed after the last."""
        with self._lock:
            if not replay.live:
                return
            replay.live = False
            replay.routes = {}  # (a context may keep the replay: not its recorded calls)
            self.live = tuple(one for one in self.live if one is not replay)
            if not self.live:
                for remove in self._removers:
                    remove()

    def keep_none(self) -> None:
        """Replay no fork in the current context, even while one is the process's only one."""
        self.here.set(_NO_FORK)

    def current(self) -> _Replay | None:
        """The replay of the calls made here: the context's, else the process's only one."""
        own = self.here.get()
        if own is not None:  # (a fork started here, stopped or not: not another's)
            return own if own.live else None
        live = self.live
        return live[0] if len(live) == 1 else None


class _Forked:
    """A route of the process that gives a call to the route of its rank of the fork here."""

    def __init__(self, rank: int, forks: _Forks) -> None:
        self.rank = rank
        self.forks = forks

    def llm_call(
        self, provider: LLMProvider[Any, Any], call: LLMCall, options: LLMOptions, proceed: Proceed
    ) -> AsyncIterator[LLMEvent]:
        replay = self.forks.current()
        route = None if replay is None else replay.routes.get(self.rank)
        if route is None:
            return proceed(call, options)
        return route.llm_call(provider, call, options, proceed)


_FORKS = _Forks()


def replay_recorded_calls(store: RunStore, fork: Fork) -> Callable[[], None]:
    """Replay the calls of the run ``fork`` forks, edited, in the calls made from here on.

    It replays in the current context: the calls of the interactions started in it from
    now on, and of everything they cause, until stopped (another fork started later in
    this context takes it over). A call made in a context where no fork was started, as
    in a ``threading.Thread`` or ``loop.run_in_executor`` (which do not copy the context),
    is replayed by the process's only fork, if exactly one replays; with several, by none
    of them (it is made as it is); a run recorded beside it (no fork: its recorder calls
    :func:`replay_no_fork_here`) makes its calls as they are. So two forks run side by
    side in one process, each in a task of its own, each replay their own run, and a
    thread of theirs replays neither.
    Once stopped, nothing of it is left among the routes of a call, and the calls of its
    context are made as they are, even while another fork is the process's only one (its
    replay is for its own context's calls, and for those where no fork was started).

    Returns:
        A function that stops it.

    The run is read up to ``fork.max_events`` events, the bound it was planned with.

    Raises:
        StudioNotFoundError: if the store has no such run, or no such call.
        StudioRunTooLargeError: if the run has more than ``fork.max_events`` events (it
            grew since the fork was planned).
    """
    tree = RunTree.of(store, fork.run, fork.max_events)
    calls = recorded_calls(tree)
    edited = next((call for call in tree.calls.values() if call.key == fork.key), None)
    if edited is None:
        raise StudioNotFoundError(
            f"The run {fork.run} has no call whose request key is {fork.key[:12]}."
        )
    if fork.reply is not None and edited.finish is not None:
        calls[fork.key] = RecordedCall(
            fork.key, edited.request, _events(edited, fork.reply), edited.started
        )
    routes: dict[int, LLMCallRoute] = {_REPLAY_RANK: CallCache(_RecordedRun(calls))}
    if fork.prompt is not None or fork.system is not None:
        routes[_EDIT_RANK] = _EditedPrompt(fork.key, fork.prompt, fork.system)
    replay = _Replay(fork, routes)
    _FORKS.start(replay)
    return functools.partial(_FORKS.stop, replay)


def replay_no_fork_here() -> None:
    """Replay no fork's calls in the calls made in the current context from now on.

    What a recorder of a run that is no fork does as it starts: the calls of its program
    are made as they are, even while a fork replays in another task of the process (its
    only one, which would otherwise replay them, as those of a context where no fork was
    started: see :func:`replay_recorded_calls`). A fork started in this context later
    takes it over.
    """
    _FORKS.keep_none()


def replaying_fork() -> Fork | None:
    """The fork that replays the calls made here (see :func:`replay_recorded_calls`)."""
    replay = _FORKS.current()
    return None if replay is None else replay.fork


@dataclass(frozen=True)
class ForkResult:
    """How a fork's program ended.

    Attributes:
        run_id: The fork's run.
        returncode: The program's exit status.
        output: The end of what it wrote (stdout and stderr), at most 64 KB (from the first
            whole character).
        cut: Whether it wrote more, and ``output`` leaves its beginning out.
    """

    run_id: str
    returncode: int
    output: str
    cut: bool = False


def checked_environment(environment: Mapping[str, str] | None, owner: str) -> dict[str, str]:
    """``environment`` (``None``: none) as a dict, if its names and values are all ``str``.

    Raises:
        StudioConfigurationError: for anything else (e.g. a port given as a number), which a
            program's environment cannot hold.
    """
    given: object = {} if environment is None else environment  # (typed so; may be anything)
    fix = "Write each value as text, e.g. environment={'PORT': '8000'}."
    if not isinstance(given, Mapping):
        raise refused_argument(
            given,
            "environment",
            "a mapping of names to values",
            owner=owner,
            fix=fix,
            error=StudioConfigurationError,
        )
    for name, value in given.items():
        if not (isinstance(name, str) and isinstance(value, str)):
            raise refused_argument(
                {name: value},
                "environment",
                "a mapping of str names to str values",
                owner=owner,
                fix=fix,
                error=StudioConfigurationError,
            )
    return dict(given)


def program_environment(added: Mapping[str, str]) -> dict[str, str]:
    """The environment a fork's program inherits: this process's, with ``added`` over it.

    The studio's token (:data:`TOKEN_VARIABLE`) is left out: the program needs none.
    (:func:`afork` adds the store and the fork to it.)
    """
    inherited = {name: value for name, value in os.environ.items() if name != TOKEN_VARIABLE}
    return {**inherited, **added}


async def afork(
    store: RunStore,
    fork: Fork,
    *,
    environment: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> ForkResult:
    """Run the program of the run ``fork.run`` again as the fork ``fork``; wait for its exit.

    The fork ends as the program exits, with what it wrote until then: a child the program
    left running (a server it started, holding its output) is not waited for.

    The program runs with its recorded command, in its recorded folder, in this process's
    environment with ``environment`` over it, and the store and the fork in
    ``MINIAGENTS_STUDIO`` and ``MINIAGENTS_STUDIO_FORK``; its run is ``fork.child``. The
    studio's token (:data:`TOKEN_VARIABLE`) is left out of the environment it inherits:
    the program needs none. The
    program reads the run's calls up to ``fork.max_events`` events: a run that grew past
    it since the fork was planned is refused there (``StudioRunTooLargeError``, as
    :func:`plan_fork` refuses it), and the program ends without running (``miniagents
    run``: with status 2 and the error's message in its output).

    Args:
        store: The store that holds the run.
        fork: The fork (see :func:`plan_fork`).
        environment: Variables the program gets (e.g. a model server's address).
        timeout: Seconds it may take (then it is killed); ``None``: no limit.

    Raises:
        StudioForkError: if the program cannot be started.
        StudioConfigurationError: if ``store`` is not a ``RunStore``, ``timeout`` is not a
            positive, finite number of seconds (nor ``None``), or ``environment`` is not a
            mapping of ``str`` to ``str``.
    """
    if timeout is not None:
        check_seconds(timeout, "timeout", owner="afork", error=StudioConfigurationError)
    added = checked_environment(environment, "afork")
    run = checked_store(store, "afork").run(fork.run)
    variables = {
        **program_environment(added),
        STORE_VARIABLE: str(store.path.resolve()),
        FORK_VARIABLE: json.dumps(fork.as_json(), ensure_ascii=False),
    }
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[None] = loop.create_future()
    try:
        transport, output = await loop.subprocess_exec(
            lambda: _Output(exited),
            *run.command,
            cwd=run.cwd,
            env=variables,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as error:
        raise StudioForkError(
            f"The program of the run {run.id} cannot be started again ({' '.join(run.command)} "
            f"in {run.cwd}): {error}."
        ) from error
    try:
        await asyncio.wait_for(asyncio.shield(exited), timeout)
    except BaseException:  # a timeout, or the caller gave up: the program goes too
        if transport.get_returncode() is None:
            transport.kill()
            await exited
        raise
    finally:
        transport.close()
    kept, written = output.kept, output.written
    cut = written > len(kept)
    if cut:  # (from its first whole character: not the bytes left of one cut in two)
        whole = next((at for at, byte in enumerate(kept[:4]) if byte & 0xC0 != 0x80), 0)
        del kept[:whole]
    return ForkResult(
        fork.child, transport.get_returncode() or 0, kept.decode(errors="replace"), cut
    )


class _Output(asyncio.SubprocessProtocol):
    """A fork's program as it runs: the end of what it writes (stdout and stderr), its exit.

    Its exit ends it: what the pipe holds then is read and the pipe closed, so that a child
    the program left holding its output (a server it started) does not keep the fork running.
    That last read takes the pipe's file descriptor, on POSIX only: on Windows the output is
    what was read as the program exited (the rest of a tail still in the pipe is lost).
    """

    def __init__(self, exited: asyncio.Future[None]) -> None:
        self.exited = exited
        self.kept = bytearray()
        self.written = 0
        self.pipe: asyncio.ReadTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.SubprocessTransport)
        pipe = transport.get_pipe_transport(1)
        assert isinstance(pipe, asyncio.ReadTransport)
        self.pipe = pipe

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        assert isinstance(data, bytes)
        self.written += len(data)
        self.kept.extend(data)
        del self.kept[:-_OUTPUT_KEPT]

    def process_exited(self) -> None:
        pipe = self.pipe
        if pipe is not None and not pipe.is_closing():  # (else it was read to its end)
            if os.name == "posix":  # (Windows' pipe is a handle, not a file descriptor)
                with contextlib.suppress(OSError):  # (BlockingIOError: all it held is read)
                    while chunk := os.read(pipe.get_extra_info("pipe").fileno(), 65_536):
                        self.pipe_data_received(1, chunk)
            pipe.close()
        if not self.exited.done():
            self.exited.set_result(None)
