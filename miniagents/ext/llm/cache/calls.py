"""``CallCache``: a model call's full request names its recorded reply, replayed at no cost.

::

    cache = CallCache("recordings.sqlite")
    with cache.active():                      # the calls of what starts in the block
        reply = await agent.inquire("2 + 3?")     # a miss: called live, recorded
        reply = await agent.inquire("2 + 3?")     # a hit: replayed, token by token, no request

Each call of a model made where the cache is active (a route of
:mod:`miniagents.ext.llm.routing`) is named by its request (:mod:`.keys`): provider,
model, API, prompt, tools, options (a call whose options hold an object keyed by a
``repr`` that names its address in memory, another in every process, is refused with an
``LLMConfigurationError``: its recording could never be replayed). A call recorded
before is replayed from its store (:mod:`.stores`): its tokens, tool calls and ``Finish``
as they came, into a reply of the agent's own message class, its usage kept and its cost 0
(``Finish.replayed``; traced with ``miniagents.llm.cached``). Modes:

- ``"read_through"`` (the default): replay a recorded call; make any other, and record it;
- ``"record"``: make every call, and record it (in place of an older recording);
- ``"replay"``: replay only: a call not recorded fails with an ``LLMCacheMissError``
  naming the nearest recorded call and how the call differs from it, and no request is
  ever made (a test suite runs with no key and no network).

Two identical calls in flight in one event loop make one request: the second waits for the
first (with signs of life, for its stall watch), then replays its reply; if the first fails
or is given up, the second makes the call itself. A call in another thread's event loop (a
cache installed for the process, used by two ``MiniAgents`` contexts in two threads) makes
its own: a loop cannot wait on another's. A call that fails is not recorded; a call whose
recording cannot be written (a file locked too long, a full disk) is answered all the same,
and that is logged once for the cache. ``namespace``
separates recordings (change it to invalidate them all), ``max_age`` makes old ones
misses; ``aclear`` forgets them.

The same request always gets the same reply from a cache: an agent that samples a model
several times on purpose (the same prompt, at a temperature) gets one sample.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeAlias

from miniagents.arguments import check_seconds
from miniagents.ext.llm.cache.keys import call_key, request_diff, similarity
from miniagents.ext.llm.cache.stores import CallStore, RecordedCall, SQLiteCallStore
from miniagents.ext.llm.errors import (
    LLMCacheLockedError,
    LLMCacheMissError,
    LLMConfigurationError,
)
from miniagents.ext.llm.provider import (
    Finish,
    LLMCall,
    LLMEvent,
    LLMOptions,
    LLMProvider,
    aclose_events,
)
from miniagents.ext.llm.routing import Proceed, install_llm_route, route_llm_calls
from miniagents.promising.errors import MiniAgentsError
from miniagents.promising.lowlevel import logger
from miniagents.utils.blocks import PlainWithBlock, RefusedBlocks

__all__ = ["DEFAULT_CACHE_PATH", "CacheMode", "CacheStats", "CallCache"]

CacheMode: TypeAlias = Literal["read_through", "record", "replay"]
"""How a call cache answers a call (see the module)."""

DEFAULT_CACHE_PATH = Path("miniagents_llm_calls.sqlite")
"""The SQLite file a ``CallCache()`` keeps its recordings in, in the current folder."""

_CANDIDATES = 200
"""Recorded calls compared with a missing one, at most, to find the nearest."""


@dataclass(frozen=True)
class CacheStats:
    """What a call cache did so far (a snapshot).

    Attributes:
        hits: Calls replayed from a recording.
        misses: Calls made (not recorded, or in ``record`` mode).
        recorded: Calls recorded (the misses that ended well).
        shared: Calls that waited for an identical one in flight and replayed its reply.
    """

    hits: int = 0
    misses: int = 0
    recorded: int = 0
    shared: int = 0


class _Flight:
    """A call being made, that identical calls wait for.

    Each change sets the event the waiters wait on and puts a fresh one in its place: the
    waker replaces it, never a waiter (a waiter that did would hand the others an event
    nobody sets, and one of them would wait for ever).
    """

    def __init__(self) -> None:
        self.done = False
        self.recorded: RecordedCall | None = None
        self._changed = asyncio.Event()

    def poke(self) -> None:
        """Wake the calls that wait (an event came: a sign of life for them)."""
        self._wake()

    def end(self, recorded: RecordedCall | None) -> None:
        """The call ended: recorded, or not (failed, given up)."""
        self.done = True
        self.recorded = recorded
        self._wake()

    async def await_change(self) -> None:
        """Wait for the next event of the call, or its end."""
        await self._changed.wait()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


_WITH_ACTIVE = (
    "A CallCache is activated by its block: write `with cache.active():` (a plain `with`, "
    "in async code too), not `with cache:` nor `async with`."
)


class CallCache(RefusedBlocks, error=LLMConfigurationError, sentence=_WITH_ACTIVE):
    """Replays recorded calls of models, records the others (see the module).

    Args:
        store: Where the recordings are kept: a ``CallStore``, or the path of a SQLite
            file; ``None``: :data:`DEFAULT_CACHE_PATH`.
        mode: ``"read_through"``, ``"record"`` or ``"replay"`` (see :data:`CacheMode`).
        namespace: Part of every key: recordings of another namespace are not seen
            (change it to invalidate every recording at once).
        max_age: Seconds a recording stays good (an older one is a miss, recorded again);
            ``None``: for ever.

    Raises:
        LLMConfigurationError: for an unknown mode, a ``max_age`` that is not a positive
            number of seconds, or a ``store`` of the wrong kind.
    """

    rank = 0
    """Its place among the routes of a call: first, so that a replayed call is neither
    queued into a batch nor made."""

    def __init__(
        self,
        store: CallStore | str | os.PathLike[str] | None = None,
        *,
        mode: CacheMode = "read_through",
        namespace: str = "",
        max_age: float | None = None,
    ) -> None:
        if mode not in ("read_through", "record", "replay"):
            raise LLMConfigurationError(
                f"A CallCache's mode must be 'read_through', 'record' or 'replay', got {mode!r}."
            )
        if max_age is not None:
            fix = "Or pass None to keep the recordings for ever."
            check_seconds(
                max_age,
                "max_age",
                forever=True,
                owner="A CallCache",
                fix=fix,
                error=LLMConfigurationError,
            )
        if not isinstance(namespace, str):
            raise LLMConfigurationError(
                f"A CallCache's namespace must be a str, got {namespace!r}."
            )
        if store is None:
            store = SQLiteCallStore(DEFAULT_CACHE_PATH)
        elif isinstance(store, (str, os.PathLike)):
            store = SQLiteCallStore(store)
        elif isinstance(store, type):  # (a class has the methods too, unbound)
            raise LLMConfigurationError(
                f"A CallCache's store must be a CallStore object, got the class "
                f"{store.__name__}: make one, e.g. CallCache({store.__name__}())."
            )
        elif not all(hasattr(store, name) for name in ("aget", "aput", "acandidates", "aclear")):
            raise LLMConfigurationError(
                f"A CallCache's store must be a CallStore (aget, aput, acandidates, aclear) "
                f"or the path of a SQLite file, got {store!r:.60}."
            )
        self.store: CallStore = store
        self.mode: CacheMode = mode
        self.namespace = namespace
        self.max_age = None if max_age is None else float(max_age)
        self._flights: dict[tuple[asyncio.AbstractEventLoop, str], _Flight] = {}
        """The calls in flight, by event loop and key (only a loop's own calls wait on them)."""
        self._counts = dict.fromkeys(("hits", "misses", "recorded", "shared"), 0)
        """What :attr:`stats` says, counted under ``_counts_lock`` (which also guards
        ``_unwritable_logged``): the cache may serve the event loops of several threads at
        once (installed for the process)."""
        self._counts_lock = threading.Lock()
        self._unwritable_logged = False
        self._store_checked = False  # (record mode: see _acheck_store)

    def __repr__(self) -> str:
        return f"CallCache({self.store!r}, mode={self.mode!r}, namespace={self.namespace!r})"

    @property
    def stats(self) -> CacheStats:
        """What the cache did so far."""
        with self._counts_lock:
            return CacheStats(**self._counts)

    def active(self) -> AbstractContextManager[CallCache]:
        """Route the calls of models made by what starts inside the block through the cache.

        A plain ``with`` block, in async code too: ``async with`` is refused with an
        ``LLMConfigurationError`` that says so (where Python's own error is a bare
        ``TypeError``).

        Returns:
            The block; it gives the cache.
        """
        return PlainWithBlock(
            self._routed(),
            LLMConfigurationError,
            "cache.active() is a plain `with` block, not an `async with` one: write "
            "`with cache.active():` (in async code too).",
        )

    @contextmanager
    def _routed(self) -> Iterator[CallCache]:
        with route_llm_calls(self):
            yield self

    def install(self) -> Callable[[], None]:
        """Route every call of a model in this process through the cache, until removed.

        Returns:
            A function that removes it again.
        """
        return install_llm_route(self)

    async def aclear(self) -> None:
        """Forget every recording of the store."""
        await self.store.aclear()

    # -- the route -------------------------------------------------------------------------

    def llm_call(
        self, provider: LLMProvider[Any, Any], call: LLMCall, options: LLMOptions, proceed: Proceed
    ) -> AsyncIterator[LLMEvent]:
        """The call's events: replayed if recorded, else made (and recorded)."""
        return self._events(provider, call, options, proceed)

    async def _events(
        self, provider: LLMProvider[Any, Any], call: LLMCall, options: LLMOptions, proceed: Proceed
    ) -> AsyncIterator[LLMEvent]:
        request, key = call_key(provider, call, options, self.namespace)
        in_flight = (asyncio.get_running_loop(), key)
        if self.mode == "record" and not self._store_checked:
            await self._acheck_store(key)
        while True:
            recorded = None if self.mode == "record" else await self._fresh(key)
            if recorded is not None:
                self._count("hits")
                for event in _replayed(recorded.events):
                    yield event
                return
            if self.mode == "replay":
                await self._amiss(key, request)
            flight = self._flights.get(in_flight)
            if flight is None:
                break
            while not flight.done:  # an identical call is being made: its reply, after it
                await flight.await_change()
                yield ""  # a sign of life
            if flight.recorded is not None:
                self._count("shared")
                for event in _replayed(flight.recorded.events):
                    yield event
                return
            # it failed, or was given up: look again (another may be under way), or make it
        flight = self._flights[in_flight] = _Flight()
        self._count("misses")
        events: list[LLMEvent] = []
        recorded = None
        made = proceed(call, options)
        try:
            async for event in made:
                if event != "":
                    events.append(event)
                flight.poke()
                yield event
            if events and isinstance(events[-1], Finish):
                recorded = RecordedCall(key, request, tuple(events), time.time())
                if await self._akeep(recorded):
                    self._count("recorded")
        finally:
            try:
                await aclose_events(made)  # (its request ended now if this stopped part-way)
            finally:
                if self._flights.get(in_flight) is flight:
                    del self._flights[in_flight]
                flight.end(recorded)

    def _count(self, what: str) -> None:
        """One more of ``what`` (a field of :class:`CacheStats`), whichever thread counts it."""
        with self._counts_lock:
            self._counts[what] += 1

    async def _akeep(self, recorded: RecordedCall) -> bool:
        """Record a call whose answer was delivered; whether it could be.

        A store that cannot be written (a file locked past the store's wait, a full disk, a
        read-only file) must not fail a call already answered: that is logged, once for the
        cache. Another error of ours (a file that cannot be opened, or is damaged) is raised.
        """
        try:
            await self.store.aput(recorded)
        except (LLMCacheLockedError, OSError, sqlite3.Error) as error:
            if not _unwritable(error):
                raise
            with self._counts_lock:  # (checked and set in one step: threads may share it)
                first, self._unwritable_logged = not self._unwritable_logged, True
            if first:
                logger.warning(
                    "The call cache cannot record its calls in %r (%s: %s); their answers "
                    "are delivered, unrecorded. Let the cache write its file: free it (another "
                    "process may hold it locked), make room on its disk or make it writable, or "
                    "give the cache another file. This is logged once for the cache.",
                    self.store,
                    type(error).__name__,
                    error,
                )
            return False
        return True

    async def _acheck_store(self, key: str) -> None:
        """Fail a recording call before it is made if its store cannot be used (a damaged file).

        Once for the cache, not per call: by the store's ``acheck()`` (a ``SQLiteCallStore``
        opens its file), or, for a store without one, by reading it under ``key``.
        """
        check = getattr(self.store, "acheck", None)
        await (check() if check is not None else self.store.aget(key))
        self._store_checked = True

    async def _fresh(self, key: str) -> RecordedCall | None:
        recorded = await self.store.aget(key)
        if recorded is None:
            return None
        if self.max_age is not None and time.time() - recorded.recorded_at > self.max_age:
            return None
        return recorded

    async def _amiss(self, key: str, request: Mapping[str, Any]) -> NoReturn:
        """Fail a call that a replay-only cache has no recording of.

        Raises:
            LLMCacheMissError: always, naming the nearest recording and the difference.
        """
        provider, model = str(request.get("provider")), str(request.get("model"))
        candidates = await self.store.acandidates(provider, model, _CANDIDATES)
        nearest = await asyncio.to_thread(_nearest, candidates, request)  # (off the loop)
        about = f"a call of the model {model!r} ({provider})"
        if nearest is None:
            found = "It has no recording at all. "
            diff = ""
        else:
            diff = request_diff(nearest.request, request)
            found = (
                f"The nearest recording ({nearest.key[:12]}, a call of "
                f"{nearest.model!r}) differs so:\n{diff}\n"
            )
        raise LLMCacheMissError(
            f"The call cache replays only, and has no recording of {about}. {found}"
            "Record it: make the call with the cache in mode 'record' or 'read_through' "
            "(with the testing kit's pytest plugin: pytest --llm-cache=record), or undo the "
            "change of the request.",
            key,
            None if nearest is None else nearest.key,
            diff,
        )


def _unwritable(error: BaseException) -> bool:
    """Whether ``error`` says a store cannot be written now (not that it is no store)."""
    return isinstance(error, LLMCacheLockedError) or not isinstance(error, MiniAgentsError)


def _nearest(candidates: list[RecordedCall], request: Mapping[str, Any]) -> RecordedCall | None:
    """The recording whose request is most like ``request``, if any."""
    return max(candidates, key=lambda each: similarity(each.request, request), default=None)


def _replayed(events: tuple[LLMEvent, ...]) -> Iterator[LLMEvent]:
    """A recorded reply's events, its ``Finish`` marked replayed (no request: no cost)."""
    for event in events:
        if isinstance(event, Finish):
            yield dataclasses.replace(event, replayed=True)
        else:
            yield event
