"""Where a call cache keeps its recorded calls: in memory, or in a SQLite file (the default).

A recorded call is a request (:mod:`~miniagents.ext.llm.cache.keys`) and the reply it got,
as it streamed: its text tokens, tool calls (start, then argument pieces), refusal pieces
and its ``Finish`` (finish reason, tokens, model, response id), in order, as JSON::

    [["text", "It "], ["text", "is 5."], ["finish", {"reason": "stop", "input_tokens": 12, ...}]]

A store is a :class:`CallStore`: :class:`MemoryCallStore` (a bounded dictionary, for one
process), :class:`SQLiteCallStore` (a file, shared by the processes that open it: a test
suite's recordings), or ``miniagents.ext.dbos.SQLCallStore`` (the database of durable runs,
or any Postgres or SQLite URL, through SQLAlchemy).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from miniagents.arguments import check_count, check_seconds
from miniagents.ext.llm.errors import (
    LLMCacheFileError,
    LLMCacheLockedError,
    LLMConfigurationError,
)
from miniagents.ext.llm.provider import (
    AudioTokens,
    Finish,
    LLMEvent,
    Refusal,
    ToolCallDelta,
    ToolCallStart,
)
from miniagents.ext.sqlite_files import (
    SQLiteFile,
    damaged_sqlite_file,
    is_damaged_sqlite,
    is_locked_sqlite,
)
from miniagents.promising.lowlevel import logger

__all__ = [
    "CallStore",
    "MemoryCallStore",
    "RecordedCall",
    "SQLiteCallStore",
    "events_from_json",
    "events_to_json",
    "recorded_call",
]


@dataclass(frozen=True)
class RecordedCall:
    """A call as a cache keeps it: its request, and the events of the reply it got.

    Attributes:
        key: The request's key (see ``request_key``).
        request: The request, canonically (see ``canonical_request``).
        events: The reply's events, in order, ending with its ``Finish``.
        recorded_at: When it was recorded (seconds since the epoch).
    """

    key: str
    request: Mapping[str, Any]
    events: tuple[LLMEvent, ...]
    recorded_at: float

    @property
    def provider(self) -> str:
        """The request's provider."""
        return str(self.request.get("provider"))

    @property
    def model(self) -> str:
        """The request's model."""
        return str(self.request.get("model"))


class CallStore(Protocol):
    """Where a call cache keeps its recorded calls.

    A store may also have ``async def acheck() -> None``, which fails if it cannot be used
    (a ``SQLiteCallStore``'s damaged file): a recording cache calls it once, before its
    first call is made (a store without it is read once instead).
    """

    async def aget(self, key: str) -> RecordedCall | None:
        """The call recorded under ``key``, if any."""
        ...

    async def aput(self, recorded: RecordedCall) -> None:
        """Keep ``recorded`` (in place of one of the same key)."""
        ...

    async def acandidates(self, provider: str, model: str, limit: int) -> list[RecordedCall]:
        """Recorded calls to compare a missing one with, at most ``limit``.

        Those of the provider and model first, the latest first, then others.
        """
        ...

    async def aclear(self) -> None:
        """Forget every recorded call."""
        ...


def events_to_json(events: Sequence[LLMEvent]) -> list[list[Any]]:
    """The events of a reply as JSON values (signs of life, empty texts, left out)."""
    shown: list[list[Any]] = []
    for event in events:
        if isinstance(event, str):
            if event:
                shown.append(["text", event])
        elif isinstance(event, ToolCallStart):
            called: list[Any] = ["call", event.call_id, event.tool_name]
            if event.thought_signature is not None:  # (a record without it: none)
                called.append(event.thought_signature)
            shown.append(called)
        elif isinstance(event, ToolCallDelta):
            shown.append(["arguments", event.call_id, event.text])
        elif isinstance(event, Refusal):
            shown.append(["refusal", event.text])
        else:
            shown.append(["finish", asdict(event)])
    return shown


def events_from_json(shown: Sequence[Sequence[Any]]) -> tuple[LLMEvent, ...]:
    """The events that :func:`events_to_json` wrote.

    Raises:
        LLMConfigurationError: for a record that is not one (a store that holds something
            else).
    """
    events: list[LLMEvent] = []
    for item in shown:
        event = _event_from_json(item)
        if event is None:
            raise LLMConfigurationError(
                f"A call cache's store holds an event it cannot read: {item!r:.80}. Is it the "
                "store of a call cache (of this version of MiniAgents)? Clear it, or give the "
                "cache another one."
            )
        events.append(event)
    return tuple(events)


def _event_from_json(item: object) -> LLMEvent | None:
    """The event ``item`` was written as, or ``None`` for what no event is written as."""
    if not isinstance(item, Sequence) or isinstance(item, str) or not item:
        return None
    kind, values = item[0], item[1:]
    if len(values) not in _FIELDS_OF.get(kind, ()):
        return None  # (an event's fields missing, or too many: another store's record)
    if kind == "text":
        return str(values[0])
    if kind == "call":
        signed = str(values[2]) if len(values) > 2 else None
        return ToolCallStart(str(values[0]), str(values[1]), thought_signature=signed)
    if kind == "arguments":
        return ToolCallDelta(str(values[0]), str(values[1]))
    if kind == "refusal":
        return Refusal(str(values[0]))
    if not isinstance(values[0], Mapping):
        return None
    return _finish_from_json(values[0])


def _finish_from_json(values: Mapping[str, Any]) -> Finish | None:
    """The ``Finish`` written as ``values`` (its ``audio`` too), or ``None`` if it is none."""
    given = {name: value for name, value in values.items() if name in _FINISH_FIELDS}
    audio = given.get("audio")
    if audio is not None:
        if not isinstance(audio, Mapping):
            return None  # (another store's record)
        given["audio"] = AudioTokens(
            **{name: value for name, value in audio.items() if name in _AUDIO_FIELDS}
        )
    return Finish(**given)


_FIELDS_OF: dict[object, tuple[int, ...]] = {
    "text": (1,),
    "call": (2, 3),
    "arguments": (2,),
    "refusal": (1,),
    "finish": (1,),
}
"""How many fields each kind of event is written with (a call: with its signature or not)."""

_FINISH_FIELDS = frozenset(Finish.__dataclass_fields__)
_AUDIO_FIELDS = frozenset(AudioTokens.__dataclass_fields__)


class MemoryCallStore:
    """Recorded calls in this process's memory: the ``max_entries`` used last.

    Args:
        max_entries: How many calls it keeps, at most (the one used longest ago goes
            first); ``None``: no limit.
    """

    def __init__(self, max_entries: int | None = 10_000) -> None:
        """Empty.

        Raises:
            LLMConfigurationError: for a ``max_entries`` that is not a whole number of at
                least 1 (nor ``None``).
        """
        self.max_entries = (
            None
            if max_entries is None
            else check_count(
                max_entries,
                "max_entries",
                owner="MemoryCallStore",
                fix="Or pass None for no limit.",
                error=LLMConfigurationError,
            )
        )
        self._calls: OrderedDict[str, RecordedCall] = OrderedDict()

    def __len__(self) -> int:
        return len(self._calls)

    async def aget(self, key: str) -> RecordedCall | None:
        """The call recorded under ``key``, if any (it becomes the latest used)."""
        recorded = self._calls.get(key)
        if recorded is not None:
            self._calls.move_to_end(key)
        return recorded

    async def aput(self, recorded: RecordedCall) -> None:
        """Keep ``recorded``; the one used longest ago goes if it is full."""
        self._calls[recorded.key] = recorded
        self._calls.move_to_end(recorded.key)
        while self.max_entries is not None and len(self._calls) > self.max_entries:
            self._calls.popitem(last=False)

    async def acandidates(self, provider: str, model: str, limit: int) -> list[RecordedCall]:
        """The calls of ``provider`` and ``model`` first, the latest first, then others."""
        alike: list[RecordedCall] = []
        others: list[RecordedCall] = []
        for each in reversed(self._calls.values()):  # (one pass: no recording compared)
            (alike if each.provider == provider and each.model == model else others).append(each)
        return [*alike, *others][:limit]

    async def aclear(self) -> None:
        """Forget every call."""
        self._calls.clear()


class SQLiteCallStore:
    """Recorded calls in a SQLite file, which processes may share (WAL journal).

    Args:
        path: The file (made with its folder when first opened).
        timeout: Seconds a read or a write waits for a lock another connection holds (a
            process writing the same file), before it fails with an ``LLMCacheLockedError``.

    Raises:
        LLMConfigurationError: for a ``timeout`` that is not a positive number of seconds.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        fix = "E.g. SQLiteCallStore('calls.sqlite', timeout=60)."
        waits = check_seconds(
            timeout, "timeout", owner="SQLiteCallStore", fix=fix, error=LLMConfigurationError
        )
        self._file = SQLiteFile(path, _set_up, self._failed, waits)

    def __repr__(self) -> str:
        return f"SQLiteCallStore({str(self.path)!r})"

    async def aget(self, key: str) -> RecordedCall | None:
        """The call recorded under ``key``, if any."""
        rows = await self._run(
            "SELECT key, request, events, recorded_at FROM llm_calls WHERE key = ?", (key,)
        )
        return self._recorded(rows[0]) if rows else None

    async def acheck(self) -> None:
        """Open the file, if it is not open yet: fail now if it cannot be (damaged, locked)."""
        await self._run("SELECT 1", ())

    async def aput(self, recorded: RecordedCall) -> None:
        """Keep ``recorded`` (in place of one of the same key)."""
        await self._run(
            "INSERT OR REPLACE INTO llm_calls "
            "(key, provider, model, request, events, recorded_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                recorded.key,
                recorded.provider,
                recorded.model,
                json.dumps(recorded.request, ensure_ascii=False),
                json.dumps(events_to_json(recorded.events), ensure_ascii=False),
                recorded.recorded_at,
            ),
        )

    async def acandidates(self, provider: str, model: str, limit: int) -> list[RecordedCall]:
        """The calls of ``provider`` and ``model`` first, the latest first, then others."""
        rows = await self._run(
            "SELECT key, request, events, recorded_at FROM llm_calls "
            "ORDER BY (provider = ? AND model = ?) DESC, recorded_at DESC LIMIT ?",
            (provider, model, limit),
        )
        return [each for each in map(self._recorded, rows) if each is not None]

    async def aclear(self) -> None:
        """Forget every call."""
        await self._run("DELETE FROM llm_calls", ())

    def close(self) -> None:
        """Close the file (it opens again at the next use)."""
        self._file.close()

    async def _run(self, sql: str, parameters: tuple[object, ...]) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(
            self._file.using, lambda connection: connection.execute(sql, parameters).fetchall()
        )

    def _recorded(self, row: tuple[Any, ...]) -> RecordedCall | None:
        key, request, events, recorded_at = row
        return recorded_call(key, request, events, recorded_at, f"file {str(self.path)!r}")

    def _failed(self, error: OSError | sqlite3.Error, opening: bool) -> BaseException:
        if is_damaged_sqlite(error):
            return LLMCacheFileError(damaged_sqlite_file(self.path, error, "a call cache's"))
        if is_locked_sqlite(error):
            return LLMCacheLockedError(
                f"The call cache's file {self.path} stayed locked by another connection (a "
                f"process writing it) past the store's timeout of {self._file.timeout:g} s: "
                f"{error}. Let the other process finish or close the file, give the store a "
                "longer wait (SQLiteCallStore(path, timeout=...)), or give the cache a file of "
                "its own."
            )
        if opening:
            return LLMCacheFileError(
                f"Cannot open the call cache's file {self.path}: {error}. Give the cache a "
                "file (not a folder) in a folder you can write, e.g. CallCache('calls.sqlite')."
            )
        return error


def _set_up(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(_CREATE)
    connection.execute(_INDEX)


_CREATE = (
    "CREATE TABLE IF NOT EXISTS llm_calls (key TEXT PRIMARY KEY, provider TEXT NOT NULL, "
    "model TEXT NOT NULL, request TEXT NOT NULL, events TEXT NOT NULL, recorded_at REAL NOT NULL)"
)
_INDEX = "CREATE INDEX IF NOT EXISTS llm_calls_by_model ON llm_calls (provider, model, recorded_at)"


def recorded_call(
    key: str, request: str, events: str, recorded_at: float, where: str
) -> RecordedCall | None:
    """The call a store's row holds (its request and events as JSON text), if it can be read.

    A row that cannot be (damaged: its JSON cut short, an event of no kind, a time that is
    no number) is no recording: a miss, made again and recorded in its place. That is
    logged as a warning naming ``where`` (the store's file or database) and the key, so
    that a damaged recording fails no call, before or while its reply is given.
    """
    try:
        asked = json.loads(str(request))
        recorded = RecordedCall(
            str(key), asked, events_from_json(json.loads(str(events))), float(recorded_at)
        )
    except (ValueError, TypeError, LLMConfigurationError) as error:
        why = f"{type(error).__name__}: {error}"
    else:
        if isinstance(asked, Mapping):
            return recorded
        why = f"its request is a JSON {type(asked).__name__}, not an object"
    logger.warning(
        "The call cache's store %s holds a damaged recording under the key %.12s (%.200s); "
        "it is taken as a miss: the call is made and recorded in its place.",
        where,
        key,
        why,
    )
    return None
