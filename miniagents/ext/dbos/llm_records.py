"""The LLM layer's records in the database of durable runs: a call cache's, batch runs'.

Two tables beside DBOS's own, in the same database (or in any SQLite file or PostgreSQL
database given by URL), through SQLAlchemy:

- :class:`SQLCallStore`: a call cache's recordings (``miniagents.ext.llm.cache``), shared
  by every process that opens the database: a service's replicas, a test suite's workers;
- :class:`SQLRunJournal`: the journal of a batch run (``miniagents.ext.llm.batch``): a
  durable pipeline in batch mode keeps its batches there, beside its runs, so that a
  process started again re-attaches to the batches of the one that died. One run of a
  pipeline at a time holds its journal (:meth:`SQLRunJournal.ahold`), as a file journal
  is held.

Without a URL, both use the database of durable runs: ``use_database``'s, else
``DEFAULT_DATABASE_URL``. The tables are made at the first use.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from miniagents.ext.dbos._bounds import bounded_url, lock_timed_out
from miniagents.ext.dbos._database_errors import first_line, refused_value
from miniagents.ext.dbos._engine import checked_url, configured_url, redacted
from miniagents.ext.dbos._kept_engines import KeptEngines, dispose_engine, let_go_of_damaged
from miniagents.ext.dbos._sqlite import id_column
from miniagents.ext.dbos.errors import (
    DurableConfigurationError,
    DurableDatabaseError,
    DurableDataError,
    DurableError,
    DurableRecordError,
)
from miniagents.ext.llm.batch.journal import FileJournal, JournalHold
from miniagents.ext.llm.cache.stores import RecordedCall, events_to_json, recorded_call
from miniagents.ext.llm.errors import LLMConfigurationError

if TYPE_CHECKING:
    import sqlalchemy

__all__ = [
    "CALLS_TABLE",
    "JOURNAL_TABLE",
    "KEY_LENGTH",
    "SQLCallStore",
    "SQLJournalHold",
    "SQLRunJournal",
]

CALLS_TABLE = "miniagents_llm_calls"
"""The table of a ``SQLCallStore``'s recorded calls."""

KEY_LENGTH = 64
"""The most characters of a recorded call's key (``request_key``'s are 64 hex digits)."""

JOURNAL_TABLE = "miniagents_batch_journal"
"""The table of the batch runs' journals (a row per record, by pipeline)."""

T = TypeVar("T")

_ANOTHER = "give the store another database_url"

_FILE_WAIT = 30.0
"""The most seconds a connection waits for a SQLite file another process keeps locked."""

_SERVER_WAIT = 10.0
"""The most seconds a connection waits for a PostgreSQL server, or a lock another session holds."""


class _Tables:
    """The engine of one database and its two tables (made again if it was let go of)."""

    def __init__(self, url: str) -> None:
        import sqlalchemy

        self.shown = redacted(url)
        parsed = sqlalchemy.make_url(url)
        self.path = parsed.database if parsed.get_backend_name() == "sqlite" else None
        """The SQLite file, for a URL of one."""
        self.waited = _FILE_WAIT if self.path is not None else _SERVER_WAIT
        """The most seconds a connection waits to connect, or for a lock another holds."""
        parsed, connect_args = bounded_url(parsed, self.waited)
        self.engine = sqlalchemy.create_engine(
            parsed, connect_args=connect_args, pool_pre_ping=True
        )
        metadata = sqlalchemy.MetaData()
        self.calls = sqlalchemy.Table(
            CALLS_TABLE,
            metadata,
            sqlalchemy.Column("key", sqlalchemy.String(KEY_LENGTH), primary_key=True),
            sqlalchemy.Column("provider", sqlalchemy.String(255), nullable=False),
            sqlalchemy.Column("model", sqlalchemy.String(255), nullable=False),
            sqlalchemy.Column("request", sqlalchemy.Text(), nullable=False),
            sqlalchemy.Column("events", sqlalchemy.Text(), nullable=False),
            sqlalchemy.Column("recorded_at", sqlalchemy.Float(), nullable=False),
            sqlalchemy.Index(f"ix_{CALLS_TABLE}_model", "provider", "model", "recorded_at"),
        )
        self.journal = sqlalchemy.Table(
            JOURNAL_TABLE,
            metadata,
            id_column(),
            sqlalchemy.Column("pipeline", sqlalchemy.String(255), nullable=False),
            sqlalchemy.Column("record", sqlalchemy.Text(), nullable=False),
            sqlalchemy.Index(f"ix_{JOURNAL_TABLE}_pipeline", "pipeline", "id"),
            sqlite_autoincrement=True,
        )
        self.metadata = metadata
        self.lock = threading.Lock()
        self.ready = False

    def run(self, work: Callable[[sqlalchemy.Connection], T], doing: str, table: str) -> T:
        """``work`` on ``table`` in a transaction (the tables made first, once).

        Raises:
            DurableDataError: if the database refused a value or a constraint, or its driver
                could not encode a text (nothing written).
            DurableDatabaseError: if the database cannot be reached or written.
        """
        try:
            if not self.ready:
                with self.lock:
                    if not self.ready:
                        self.metadata.create_all(self.engine, checkfirst=True)
                        self.ready = True
            with self.engine.begin() as connection:
                return work(connection)
        except UnicodeError as error:  # (the driver's own, raised as it is by SQLAlchemy)
            raise DurableDataError(
                f"Could not {doing} in the database {self.shown}: its driver could not "
                f"convert a text of the table {table} ({type(error).__name__}: "
                f"{first_line(error)}). A text with a lone surrogate (e.g. a file name read "
                "with surrogateescape) cannot be written: give that value as proper text, "
                "e.g. text.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')."
            ) from error
        except Exception as error:
            if type(error).__module__.startswith("sqlalchemy"):
                raise self._told(error, doing, table) from error
            raise

    def _told(self, error: Exception, doing: str, table: str) -> DurableError:
        """What a SQLAlchemy ``error`` means, as the library's error (one sentence or two)."""
        from sqlalchemy import exc

        if damaged := let_go_of_damaged(self, self.path, error, f"where {table} is kept", _ANOTHER):
            return DurableDatabaseError(f"Could not {doing}. {damaged}")
        refused = refused_value(error, doing, self.shown, table)
        if refused is not None:
            return refused
        original = getattr(error, "orig", None)
        said = f"{type(error).__name__}: {first_line(original or error)}"
        if lock_timed_out(error):
            return DurableDatabaseError(
                f"Could not {doing}: the table {table} of the database {self.shown} stayed "
                f"locked for {self.waited:g} s ({said}). Another process or session holds a "
                "transaction open on it: end that transaction, then try again."
            )
        if isinstance(error, (exc.OperationalError, exc.InterfaceError)):
            return DurableDatabaseError(
                f"Could not {doing}: could not reach the database {self.shown} ({said}). Check "
                "that it runs and accepts connections (a SQLite file: that its folder exists, "
                "and no other process keeps it locked), and its URL."
            )
        return DurableDatabaseError(
            f"Could not {doing} in the database {self.shown} ({said}). Check that its table "
            f"{table} is as this library makes it: drop a changed one so that it is made again."
        )


_TABLES: KeptEngines[str, _Tables] = KeptEngines(
    _Tables, lambda tables: dispose_engine(tables.engine)
)


def _tables(url: str | None) -> _Tables:
    """The tables of ``url`` (else the configured database's), with its shared engine.

    Those of the :data:`~._kept_engines.ENGINES_KEPT` databases used last are kept; the
    engine of the one used longest ago is disposed when another is made.
    """
    return _TABLES.get(checked_url(url if url is not None else configured_url()))


def _json_text(value: object, *, compact: bool = False) -> str:
    """``value`` as JSON text that every driver can encode (``compact``: with no spaces).

    Where the text has a lone surrogate (which no driver can encode), it and every other
    character beyond ASCII are escaped.

    Raises:
        TypeError: if ``value`` holds a value that is not JSON.
        ValueError: if ``value`` holds itself.
    """
    separators = (",", ":") if compact else None
    text = json.dumps(value, separators=separators, ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:  # (read back the same: JSON escapes are decoded)
        return json.dumps(value, separators=separators)
    return text


class SQLCallStore:
    """A call cache's recordings in a SQL database (a ``CallStore``).

    Args:
        database_url: A ``sqlite:///`` file or a ``postgresql://`` URL; ``None``: the
            database of durable runs (``use_database``'s, else the default).

    Raises:
        DurableConfigurationError: for a URL that is neither.
    """

    def __init__(self, database_url: str | None = None) -> None:
        if database_url is not None:
            checked_url(database_url)
        self._url = database_url

    def __repr__(self) -> str:
        return f"SQLCallStore({redacted(self._url or configured_url())!r})"

    async def aget(self, key: str) -> RecordedCall | None:
        """The call recorded under ``key``, if any.

        Raises:
            DurableDataError: if ``key`` is longer than :data:`KEY_LENGTH` characters (no
                call is recorded under such a key: :meth:`aput` refuses it).
        """
        _check_key(key, "read a recorded call")
        tables = _tables(self._url)
        table = tables.calls

        def work(connection: sqlalchemy.Connection) -> RecordedCall | None:
            row = connection.execute(table.select().where(table.c.key == key)).mappings().first()
            return None if row is None else _recorded(row)

        return await asyncio.to_thread(tables.run, work, "read a recorded call", CALLS_TABLE)

    async def aput(self, recorded: RecordedCall) -> None:
        """Keep ``recorded`` (in place of one of the same key).

        Raises:
            DurableDataError: if its key is longer than :data:`KEY_LENGTH` characters
                (nothing written).
        """
        _check_key(recorded.key, "record a call")
        tables = _tables(self._url)
        table = tables.calls
        row = {
            "key": recorded.key,
            "provider": _column_key(recorded.provider),  # (a long name: a prefix and its hash)
            "model": _column_key(recorded.model),
            "request": _json_text(recorded.request),
            "events": _json_text(events_to_json(recorded.events)),
            "recorded_at": recorded.recorded_at,
        }

        def work(connection: sqlalchemy.Connection) -> None:
            # one statement: another process recording the same call at once is replaced,
            # not a duplicate key (a delete, then an insert, raced on PostgreSQL)
            if connection.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert
            else:
                from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
            upsert = insert(table).values(**row)
            replaced = {name: upsert.excluded[name] for name in row if name != "key"}
            connection.execute(upsert.on_conflict_do_update(index_elements=["key"], set_=replaced))

        await asyncio.to_thread(tables.run, work, "record a call", CALLS_TABLE)

    async def acandidates(self, provider: str, model: str, limit: int) -> list[RecordedCall]:
        """The calls of ``provider`` and ``model`` first, the latest first, then others."""
        import sqlalchemy

        tables = _tables(self._url)
        table = tables.calls
        alike = sqlalchemy.and_(
            table.c.provider == _column_key(provider), table.c.model == _column_key(model)
        )
        order = sqlalchemy.case((alike, 0), else_=1)

        def work(connection: sqlalchemy.Connection) -> list[RecordedCall]:
            query = table.select().order_by(order, table.c.recorded_at.desc()).limit(limit)
            rows = connection.execute(query).mappings()
            return [each for each in map(_recorded, rows) if each is not None]

        return await asyncio.to_thread(tables.run, work, "read recorded calls", CALLS_TABLE)

    async def aclear(self) -> None:
        """Forget every recorded call."""
        tables = _tables(self._url)
        table = tables.calls

        def work(connection: sqlalchemy.Connection) -> None:
            connection.execute(table.delete())

        await asyncio.to_thread(tables.run, work, "clear the recorded calls", CALLS_TABLE)


def _check_key(key: str, doing: str) -> None:
    """Refuse ``key`` as a recorded call's if it is longer than its column.

    (PostgreSQL would refuse it in its own words, SQLite keep it.)

    Raises:
        DurableDataError: if it is longer than :data:`KEY_LENGTH` characters.
    """
    if len(key) > KEY_LENGTH:
        raise DurableDataError(
            f"Could not {doing} in the table {CALLS_TABLE}: its key has {len(key)} "
            f"characters ({key[:24]!r}...), and a key has at most {KEY_LENGTH} (request_key's "
            "are 64 hex digits). Make a longer key of your own one that fits, e.g. "
            "hashlib.sha256(key.encode()).hexdigest()."
        )


def _recorded(row: Mapping[Any, Any]) -> RecordedCall | None:
    key, request, events, at = (row[name] for name in ("key", "request", "events", "recorded_at"))
    return recorded_call(key, request, events, at, f"table {CALLS_TABLE}")


def _column_key(name: str) -> str:
    r"""``name`` as a key of at most 255 characters that every driver can write.

    A name that fits, and is text a driver can encode, is itself (the keys written before
    stay). A longer name is a prefix of it and the SHA-256 of the whole, so two long names
    that begin alike keep apart; so is a name with a lone surrogate (which no driver can
    encode, e.g. a file name read with ``surrogateescape``), whose surrogates are written
    as escapes (``\udce9``) in the prefix: the hash keeps it apart from a name that
    holds those escapes as text.
    """
    try:
        name.encode()
    except UnicodeEncodeError:
        shown = name.encode("utf-8", "backslashreplace").decode("utf-8")  # (surrogates only)
    else:
        if len(name) <= 255:
            return name
        shown = name
    return f"{shown[:190]}#{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()}"


class SQLRunJournal:
    """The journal of a batch run of the pipeline ``pipeline``, in a SQL database.

    One run of the pipeline at a time holds it (:meth:`ahold`, which a batch run calls
    as it opens), in any process: a second run of the pipeline while the first runs is
    refused, as a file journal's is (it would take the first's batches as its own, and the
    first to end would clear the other's records).

    Args:
        pipeline: The pipeline's name (its durable id): its records are its own.
        database_url: A ``sqlite:///`` file or a ``postgresql://`` URL; ``None``: the
            database of durable runs.

    Raises:
        DurableConfigurationError: for a URL that is neither.
    """

    def __init__(self, pipeline: str, database_url: str | None = None) -> None:
        if database_url is not None:
            checked_url(database_url)
        self.pipeline = pipeline
        self._url = database_url
        self._key = _column_key(pipeline)

    def __repr__(self) -> str:
        return f"SQLRunJournal({self.pipeline!r})"

    async def aload(self) -> list[dict[str, object]]:
        """The pipeline's records, in order."""
        tables = _tables(self._url)
        table = tables.journal

        def work(connection: sqlalchemy.Connection) -> list[dict[str, object]]:
            query = table.select().where(table.c.pipeline == self._key).order_by(table.c.id)
            records: list[dict[str, object]] = []
            for row in connection.execute(query).mappings():
                record = json.loads(row["record"])
                if isinstance(record, dict):
                    records.append(record)
            return records

        return await asyncio.to_thread(
            tables.run, work, "read a batch run's journal", JOURNAL_TABLE
        )

    async def aappend(self, record: Mapping[str, object]) -> None:
        """Add a record (committed before this returns).

        Raises:
            DurableRecordError: if the record is not JSON (a value of another type, or one
                that holds itself); nothing is written.
        """
        try:
            text = _json_text(dict(record), compact=True)
        except (TypeError, ValueError) as error:
            raise DurableRecordError(
                f"A record of the batch run journal of the pipeline {self.pipeline!r} must be "
                f"JSON (dicts, lists, strings, numbers, booleans, None): {error}. Convert its "
                "values (a datetime to its isoformat(), a set to a list) before appending it."
            ) from error
        tables = _tables(self._url)
        table = tables.journal

        def work(connection: sqlalchemy.Connection) -> None:
            connection.execute(table.insert().values(pipeline=self._key, record=text))

        await asyncio.to_thread(tables.run, work, "write a batch run's journal", JOURNAL_TABLE)

    async def aclear(self) -> None:
        """Drop the pipeline's records."""
        tables = _tables(self._url)
        table = tables.journal

        def work(connection: sqlalchemy.Connection) -> None:
            connection.execute(table.delete().where(table.c.pipeline == self._key))

        await asyncio.to_thread(tables.run, work, "clear a batch run's journal", JOURNAL_TABLE)

    async def ahold(self, run: str) -> SQLJournalHold:
        """Hold the pipeline's journal for one run, until the hold is released.

        A SQLite database's journal is held by a lock on a file beside the database
        (``<database>-batch-<pipeline's hash>.lock``), a PostgreSQL database's by an
        advisory lock of a connection kept for the run: either is let go of when the
        process ends, however it ends, so a run started again after a crash holds it at
        once.

        Args:
            run: What the run is (the pipeline's name), for the error of another run.

        Returns:
            The hold: release it when the run ends.

        Raises:
            DurableConfigurationError: while another run of the pipeline holds the journal
                (of this process or another), naming the pipeline and how to run both.
            DurableDatabaseError: if the database cannot be reached.
        """
        tables = _tables(self._url)
        digest = hashlib.sha256(self.pipeline.encode("utf-8", "surrogatepass")).hexdigest()
        if tables.path is not None:
            locked = FileJournal(Path(f"{tables.path}-batch-{digest[:32]}"))
            try:
                return SQLJournalHold(await locked.ahold(run), None)
            except LLMConfigurationError as error:
                holder = await asyncio.to_thread(_holder_of, locked.lock_path)
                raise DurableConfigurationError(self._why_refused(run, holder)) from error
        key = int.from_bytes(bytes.fromhex(digest[:16]), "big", signed=True)
        connection = await asyncio.to_thread(_advisory_lock, tables, key)
        if connection is None:
            raise DurableConfigurationError(self._why_refused(run, ""))
        return SQLJournalHold(None, (connection, key))

    @staticmethod
    def _why_refused(run: str, holder: str) -> str:
        """Why another run of the pipeline ``run`` is refused (``holder``: its process)."""
        by = f" (process {holder})" if holder.isdigit() else ""
        return (
            f"Another run of the pipeline {run!r}{by} is using its batch journal in the "
            "database of durable runs: two runs of one pipeline at once would take each "
            "other's batches, and the first to end would clear the other's records. Wait "
            "for the other run to end, or give this one a pipeline id of its own: "
            "pipeline(..., durable='other-id')."
        )


class SQLJournalHold:
    """A run's hold of a :class:`SQLRunJournal` (see :meth:`SQLRunJournal.ahold`)."""

    def __init__(
        self, file: JournalHold | None, advisory: tuple[sqlalchemy.Connection, int] | None
    ) -> None:
        self._file = file
        self._advisory = advisory

    async def arelease(self) -> None:
        """Let go of the journal; released again: nothing."""
        file, self._file = self._file, None
        advisory, self._advisory = self._advisory, None
        if file is not None:
            await file.arelease()
        if advisory is not None:
            await asyncio.to_thread(_advisory_unlock, *advisory)


def _holder_of(lock_path: Path) -> str:
    """What a held lock file says of its holder: its process's id ("" if unread)."""
    try:
        return lock_path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def _advisory_lock(tables: _Tables, key: int) -> sqlalchemy.Connection | None:
    """A connection holding PostgreSQL's session advisory lock ``key`` (``None``: taken).

    ``None`` when another session holds it.

    Raises:
        DurableDatabaseError: if the database cannot be reached.
    """
    import sqlalchemy

    doing = "hold a batch run's journal"
    try:
        connection = tables.engine.connect()
    except Exception as error:
        if type(error).__module__.startswith("sqlalchemy"):
            raise tables._told(error, doing, JOURNAL_TABLE) from error
        raise
    try:
        query = sqlalchemy.text("SELECT pg_try_advisory_lock(:key)")
        held = bool(connection.execute(query, {"key": key}).scalar())
        connection.commit()
    except BaseException as error:
        connection.invalidate()
        if isinstance(error, Exception) and type(error).__module__.startswith("sqlalchemy"):
            raise tables._told(error, doing, JOURNAL_TABLE) from error
        raise
    if not held:
        connection.close()
        return None
    return connection


def _advisory_unlock(connection: sqlalchemy.Connection, key: int) -> None:
    """Let go of the advisory lock ``key`` that ``connection`` holds, and of the connection.

    Unlocked before the connection goes back to its pool: a closed session's locks are
    let go of by the server a moment later, not before the next run may ask for them.
    """
    import sqlalchemy

    try:
        connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        connection.commit()
    except Exception:  # (the connection was lost: its session's locks went with it)
        connection.invalidate()
    connection.close()
