"""``ChatHistorySQL``: chat histories kept in SQLite or PostgreSQL, the store DBOS runs on.

Every conversation of a database is a set of rows of one table,
``miniagents_chat_messages`` (created at first use), one row per message: an identity that
only grows (it orders the messages), the conversation's name, the message's class name and
its fields as JSON (its text and images among them)::

    id | conversation | class_name       | fields
    ---+--------------+------------------+------------------------------------------
     1 | support-42   | UserMessage      | {"text": "Hi.", "role": "user"}
     2 | support-42   | AssistantMessage | {"text": "Hello!", "role": "assistant", ...}

A message comes back as its class, with its typed fields: the built-in message classes
(those of ``miniagents.ext.llm`` and ``miniagents.ext.tools``, and those the extensions
imported so far added, as ``miniagents.ext.a2a``'s: read at each look-up, so an extension
imported after the history was made counts too) and the ``message_classes`` given are
known by name (never imported); a name among neither gives a plain ``Message`` with all
the row's fields. A message whose fields would not come back equal (``inf``, a
dict with keys that are not strings, bytes that are not text) is refused before anything
is written.

The database is SQLite by default (a file, nothing to start) and PostgreSQL by a URL
(``postgresql://user:password@host/database``, driven by ``psycopg``): the same URL as the
durable agents' (:func:`miniagents.ext.dbos.durable`'s ``database_url``) keeps the
conversations beside the workflows. SQLAlchemy 2 talks to both; it comes with the ``dbos``
extra (``pip install "miniagents[dbos]"``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from miniagents.arguments import a_class, check_seconds, check_text
from miniagents.ext.dbos._bounds import bounded_url, lock_timed_out
from miniagents.ext.dbos._database_errors import connection_failure, sqlite_code
from miniagents.ext.dbos._kept_engines import KeptEngines, dispose_engine, let_go_of_damaged
from miniagents.ext.dbos._sqlite import id_column
from miniagents.ext.errors import MissingExtraError
from miniagents.ext.history.base import ChatHistory
from miniagents.ext.history.errors import (
    ChatHistoryError,
    ChatHistoryOptionError,
    MalformedChatHistoryError,
)
from miniagents.ext.history.storage import (
    MessageClassRegistry,
    SerialWorker,
)
from miniagents.messages.errors import MessageTypeError
from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageTuple

_HINT = 'ChatHistorySQL needs SQLAlchemy: pip install "miniagents[dbos]"'

try:
    import sqlalchemy
    from sqlalchemy import exc as sqlalchemy_errors
except ImportError as _error:  # pragma: no cover - the extra is installed for the tests
    raise MissingExtraError(f"{_HINT} ({_error}).") from _error

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = ["DEFAULT_DATABASE_URL", "TABLE_NAME", "ChatHistorySQL"]

DEFAULT_DATABASE_URL = "sqlite:///miniagents.sqlite"
"""The database of a ``ChatHistorySQL`` given none: the file ``miniagents.sqlite`` in the
current folder."""

TABLE_NAME = "miniagents_chat_messages"
"""The table that holds the messages of every conversation of a database."""

_MAX_NAME = 255
"""The longest conversation name (and class name) a row holds."""

# -- the table -----------------------------------------------------------------------------

_METADATA = sqlalchemy.MetaData()
_TABLE = sqlalchemy.Table(
    TABLE_NAME,
    _METADATA,
    id_column(),
    sqlalchemy.Column("conversation", sqlalchemy.String(_MAX_NAME), nullable=False),
    sqlalchemy.Column("class_name", sqlalchemy.String(_MAX_NAME), nullable=False),
    sqlalchemy.Column("fields", sqlalchemy.Text(), nullable=False),
    sqlalchemy.Index(f"ix_{TABLE_NAME}_conversation_id", "conversation", "id"),
    sqlite_autoincrement=True,  # ids never reused, so they order the messages for good
)
_ANOTHER = "give another database_url"
_SCHEMA_LOCK = 0x6D696E69  # a PostgreSQL advisory lock: one process creates the table at a time


# -- the engines: one per database and process, shared by its histories ----------------


class _Database:
    """An engine and whether the table is known to exist."""

    def __init__(self, engine: Engine, shown: str) -> None:
        self.engine = engine
        self.shown = shown
        """The URL without its password, for error messages."""
        self.ready = False
        self.lock = threading.Lock()


_DATABASES: KeptEngines[tuple[str, float], _Database] = KeptEngines(
    lambda key: _new_database(*key), lambda database: dispose_engine(database.engine)
)


def _database(url: str, timeout: float) -> _Database:
    """The shared engine of ``url`` (made at its first use; no connection is opened here).

    The engines of the :data:`~._kept_engines.ENGINES_KEPT` databases used last are kept;
    the one used longest ago is disposed (its pooled connections closed) when another is
    made, and made again if it is used again.
    """
    return _DATABASES.get((url, timeout))


def _new_database(url: str, timeout: float) -> _Database:
    try:
        parsed = sqlalchemy.make_url(url)
    except sqlalchemy_errors.ArgumentError as error:
        raise ChatHistoryOptionError(
            f"database_url {url!r} is not a database URL ({error}). Pass e.g. "
            '"sqlite:///chats.sqlite" or "postgresql://user:password@host:5432/database".'
        ) from error
    # (as written, unless it holds a password: rendering escapes ':' and '\\' in a path)
    shown = url if parsed.password is None else parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:") or (parsed.database or "").startswith(
            "file::memory:"
        ):
            raise ChatHistoryOptionError(
                f"database_url {shown!r} is an in-memory SQLite database, which each connection "
                'sees empty. Name a file (e.g. "sqlite:///chats.sqlite"), or use '
                "InMemoryChatHistory for a history that ends with the program."
            )
    elif backend != "postgresql":
        raise ChatHistoryOptionError(
            f"database_url {shown!r} names a database of the backend {backend!r}: "
            'ChatHistorySQL keeps chat histories in SQLite ("sqlite:///file.sqlite") or PostgreSQL '
            '("postgresql://user:password@host:5432/database").'
        )
    # a server that does not answer, a lock held by another session: an error after timeout
    parsed, connect_args = bounded_url(parsed, timeout)
    try:
        engine = sqlalchemy.create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
    except (sqlalchemy_errors.ArgumentError, sqlalchemy_errors.NoSuchModuleError) as error:
        raise ChatHistoryOptionError(
            f"database_url {shown!r} cannot be used ({error}). Check its driver part "
            '(e.g. "postgresql+psycopg://..."); the driver comes with pip install '
            '"miniagents[dbos]".'
        ) from error
    except ImportError as error:
        raise MissingExtraError(
            f"The database driver of {shown!r} is not installed ({error}): "
            'pip install "miniagents[dbos]".'
        ) from error
    return _Database(engine, shown)


# -- messages as rows ----------------------------------------------------------------------


class _Classes(MessageClassRegistry):
    """The message classes a row may name."""

    def __init__(self, extra: Iterable[type[Message]]) -> None:
        super().__init__(extra, store="a chat history")  # the extensions' classes too

    def encode(self, message: Message) -> tuple[str, str]:
        """The class name and the JSON fields of ``message``'s row."""
        name = type(message).__name__
        if name not in self.by_name:
            raise ChatHistoryError(
                f"Cannot keep {a_class(name)} in a ChatHistorySQL: the class is not known to "
                "it, so it would load back as a plain Message. Pass it in "
                f"message_classes=[{name}, ...]."
            )
        try:
            message.images  # noqa: B018 - checks them
            fields = json.dumps(
                message.model_dump(mode="json"), ensure_ascii=False, allow_nan=False
            )
            fields.encode()  # a lone surrogate: refused here, not by the database's driver
        except (ValueError, TypeError, RecursionError, MessageTypeError) as error:
            raise ChatHistoryError(
                f"Cannot keep this {name} in a ChatHistorySQL: its fields cannot be written "
                f"as JSON ({error}). Keep metadata to JSON values (text, finite numbers, "
                "booleans, lists and dicts with text keys); nothing was written."
            ) from error
        if len(name) > _MAX_NAME:
            raise ChatHistoryError(f"The class name {name!r} is longer than {_MAX_NAME}.")
        back = self.decode(name, fields)
        if back != message:
            raise ChatHistoryError(
                f"Cannot keep this {name} in a ChatHistorySQL: its fields would not load back "
                f"the same ({back!r} instead of {message!r}). Keep metadata to JSON values "
                "(text, finite numbers, booleans, lists, dicts with text keys); nothing was "
                "written."
            )
        return name, fields

    def decode(self, name: str, fields: str) -> Message:
        """The message of a row."""
        values = json.loads(fields)
        if not isinstance(values, dict):
            raise ChatHistoryError(f"its fields are not a JSON object: {fields[:100]!r}")
        return self.by_name.get(name, Message)(**values)  # (images' mappings: ImageParts)


# -- the history ---------------------------------------------------------------------------


class ChatHistorySQL(ChatHistory):
    """A conversation kept in an SQL database: SQLite (a file, the default) or PostgreSQL.

    Each :meth:`append` writes one row and commits it before it returns, so a crash loses
    no message appended so far; each :meth:`load` reads the conversation anew, with what
    other histories (other processes too) appended to it. Appends from several processes
    at once each keep one whole message, in the order each process appended them. The
    database is read and written in worker threads, never on the event loop, one call
    of a history at a time in the order they were made; a cancelled :meth:`append` has
    either happened completely or not at all.

    Nothing is opened before the first call: the table is created then if it is missing,
    and a database that cannot be reached (or a SQLite file that another process keeps
    locked, or a PostgreSQL table or lock that another session holds) is an error after
    ``timeout`` seconds at most. The engines (a pool of connections per database) are
    shared by the histories of a process: those of the 8 databases used last are kept, and
    one used longer ago is disposed, its connections closed (made again at its next use).

    Args:
        conversation: The conversation's name, e.g. a user's or a session's id (at most
            255 characters). Histories of one name and database share the messages.
        database_url: The database: ``"sqlite:///path/to/file.sqlite"`` or
            ``"postgresql://user:password@host:5432/database"`` (SQLAlchemy URLs; the file
            ``miniagents.sqlite`` in the current folder by default).
        message_classes: Your own ``Message`` subclasses, so that their messages load back
            as themselves (the built-in classes always do); appending another class of
            your own is refused.
        timeout: Seconds to wait, at most, for a connection, a locked SQLite file or a lock
            another PostgreSQL session holds.

    Raises:
        ChatHistoryOptionError: for an empty or too long ``conversation`` (or one holding a
            NUL or a lone surrogate), a ``database_url``
            that is not a SQLite file or PostgreSQL URL, ``message_classes`` that are not
            ``Message`` subclasses (or two of one name), or a ``timeout`` that is not
            positive (a ``ValueError``).
    """

    def __init__(
        self,
        conversation: str,
        *,
        database_url: str | None = None,
        message_classes: Iterable[type[Message]] = (),
        timeout: float = 10.0,
    ) -> None:
        fix = "Name the conversation, e.g. by a user's or a session's id."
        self.conversation = check_text(
            conversation, "conversation", most=_MAX_NAME, fix=fix, error=ChatHistoryOptionError
        )
        try:
            conversation.encode()
        except UnicodeEncodeError as error:
            raise ChatHistoryOptionError(
                f"conversation {conversation!r} is not valid Unicode ({error.reason}), so no "
                f"database can keep it. {fix}"
            ) from error
        if "\x00" in conversation:
            raise ChatHistoryOptionError(
                f"conversation {conversation!r} holds a NUL character, which PostgreSQL cannot "
                f"keep. {fix}"
            )
        self.timeout = check_seconds(
            timeout,
            "timeout",
            fix="Pass e.g. timeout=10 (the default): the seconds to wait for the database.",
            error=ChatHistoryOptionError,
        )
        self.database_url = DEFAULT_DATABASE_URL if database_url is None else database_url
        self._classes = _Classes(message_classes)
        self._shown = _database(self.database_url, self.timeout).shown  # (the URL checked)
        self._worker = SerialWorker()

    async def load(self) -> MessageTuple:
        """Every message of the conversation, oldest first.

        Raises:
            ChatHistoryError: if the database cannot be reached or read (or stays locked
                longer than ``timeout``), or a row is not a message this library wrote.
        """
        return await self._worker.arun(self._load)

    async def append(self, message: Message) -> None:
        """Keep one more message after the others: written and committed when it returns.

        Raises:
            MessageTypeError: if ``message`` is not a ``Message`` (a ``TypeError`` too).
            ChatHistoryError: if its fields cannot be kept as they are (nothing is written),
                if its class is not known to this history, or if the database cannot be
                reached or written (or stays locked longer than ``timeout``).
        """
        name, fields = self._classes.encode(self.check_message(message))
        await self._worker.arun(lambda: self._append(name, fields))

    # -- in the worker thread -------------------------------------------------------------

    def _load(self) -> MessageTuple:
        query = (
            sqlalchemy.select(_TABLE.c.id, _TABLE.c.class_name, _TABLE.c.fields)
            .where(_TABLE.c.conversation == self.conversation)
            .order_by(_TABLE.c.id)
        )
        with self._connected("read") as connection:
            rows = connection.execute(query).all()
        messages = []
        for row_id, name, fields in rows:
            try:
                messages.append(self._classes.decode(name, fields))
            except (ValueError, TypeError, RecursionError, ChatHistoryError) as error:
                raise ChatHistoryError(
                    f"Row {row_id} of {TABLE_NAME} in {self._shown} is not a message "
                    f"({error}). The table holds rows written by something else than "
                    "ChatHistorySQL: fix or delete that row."
                ) from error
        return MessageTuple(messages)

    def _append(self, name: str, fields: str) -> None:
        with self._connected("write") as connection:
            if connection.dialect.name == "postgresql":  # ids then follow the commits
                key = zlib.crc32(self.conversation.encode())
                connection.execute(sqlalchemy.select(sqlalchemy.func.pg_advisory_xact_lock(key)))
            connection.execute(
                _TABLE.insert().values(
                    conversation=self.conversation, class_name=name, fields=fields
                )
            )
            connection.commit()

    def _connected(self, doing: str) -> _Connected:
        return _Connected(self, doing)

    def __repr__(self) -> str:
        """The class, the conversation and the database (without its password)."""
        return f"ChatHistorySQL({self.conversation!r}, database_url={self._shown!r})"


class _Connected:
    """A connection to a history's database, the table made sure of; errors made clear."""

    def __init__(self, history: ChatHistorySQL, doing: str) -> None:
        self._history = history
        self._doing = doing
        self._connection: Connection | None = None

    def __enter__(self) -> Connection:
        history = self._history
        database = _database(history.database_url, history.timeout)  # (made again if dropped)
        try:
            connection = database.engine.connect()
        except sqlalchemy_errors.SQLAlchemyError as error:
            raise self._sql_error(error) from error
        self._connection = connection
        try:
            if not database.ready:
                with database.lock:
                    if not database.ready:
                        _create_table(connection)
                        database.ready = True
        except sqlalchemy_errors.SQLAlchemyError as error:
            connection.close()
            raise self._sql_error(error) from error
        except BaseException:
            connection.close()
            raise
        return connection

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        assert self._connection is not None
        try:
            if error is not None:
                self._connection.rollback()
        finally:
            self._connection.close()
        if isinstance(error, sqlalchemy_errors.SQLAlchemyError):
            raise self._sql_error(error) from error

    def _sql_error(self, error: BaseException) -> ChatHistoryError:
        history = self._history
        shown = history._shown
        cause = _cause_of(error)
        path = sqlalchemy.make_url(history.database_url).database
        database = _database(history.database_url, history.timeout)
        if damaged := let_go_of_damaged(database, path, error, "ChatHistorySQL's", _ANOTHER):
            return MalformedChatHistoryError(
                f"Could not {self._doing} the chat history {history.conversation!r}. {damaged}"
            )
        if lock_timed_out(error):
            return ChatHistoryError(
                f"Could not {self._doing} the chat history {history.conversation!r}: the "
                f"database {shown} stayed locked for {history.timeout:g} s ({cause}). Another "
                "process holds a long transaction on it: end it, or pass a longer timeout=."
            )
        if sqlite_code(error) == sqlite3.SQLITE_LOCKED:  # (SQLite never waits for it)
            return ChatHistoryError(
                f"Could not {self._doing} the chat history {history.conversation!r}: another "
                f"connection of this process, sharing its cache, holds its table in {shown} "
                f"({cause}): a read cursor not read to its end, or a transaction that wrote to "
                "it; SQLite does not wait for it. Read that cursor to its end or close it, or "
                "end that transaction, then try again."
            )
        connecting = _connecting(history.database_url, error)
        if connecting is not None:
            told = _connection_words(connecting, shown, cause, type(error).__name__)
            return ChatHistoryError(
                f"Could not {self._doing} the chat history {history.conversation!r}: {told}"
            )
        return ChatHistoryError(
            f"Could not {self._doing} the chat history {history.conversation!r} in {shown} "
            f"({type(error).__name__}: {cause}). Check that its table {TABLE_NAME} is the one "
            "ChatHistorySQL made."
        )


def _connection_words(connecting: _Connecting, shown: str, cause: str, kind: str) -> str:
    """What a failure of the database's connection is, and what to do (after "Could not ...: ").

    Args:
        connecting: What the error says of the connection (:func:`_connecting`).
        shown: The database's URL as errors show it.
        cause: The first line of what the driver said.
        kind: The error's class name.
    """
    if connecting == "readonly":
        return (
            f"the SQLite file {shown} is read-only ({cause}). Make the file and its folder "
            "writable by this process (their mode, their owner, a read-only mount, or a "
            "URL's mode=ro), or give database_url another file."
        )
    if connecting == "full":
        return (
            f"the SQLite file {shown} has no room left ({cause}): its disk is full, or the file "
            "reached its most pages (max_page_count). Free room on that disk, or give "
            "database_url a file on another disk."
        )
    if connecting == "unwritable":
        return (
            f"the SQLite file {shown} could not be read or written ({cause}). Check that this "
            "process may read and write the file and its folder, and that their disk works."
        )
    if connecting == "busy":
        return (
            f"the server of {shown} has all the connections it takes ({cause}); it is busy, "
            "not refusing this URL. Try again once other clients have closed theirs, or "
            "raise the server's max_connections (or the role's or the database's "
            "CONNECTION LIMIT)."
        )
    if connecting == "unready":
        return (
            f"the server of {shown} is not ready for connections ({cause}); it is starting "
            "up, in recovery or shutting down, not refusing this URL. Try again once it "
            "has started (a standby in recovery takes connections only with hot_standby "
            "on, or once it is promoted)."
        )
    if connecting == "lost":
        return (
            f"the database {shown} lost its connection ({cause}): the server was stopped, or "
            "it ended this session (an administrator's pg_terminate_backend, or a crash of the "
            "server). Check that the server runs and accepts connections, then try again."
        )
    if connecting == "idle":
        return (
            f"the server of {shown} ended this session for being idle ({cause}): its "
            "idle_session_timeout (or idle_in_transaction_session_timeout, for a transaction "
            "left open) is shorter than a connection stays unused. Raise it on the server, or "
            "for the role or database (0 turns it off), or call again: the next call opens a "
            "new connection."
        )
    if connecting == "refused":
        return (
            f"the server of {shown} refused the connection ({cause}). Check database_url's "
            "database name, user and password, and that the server lets that user "
            "connect to that database."
        )
    if connecting == "unreached":
        return (
            f"the database {shown} cannot be reached ({cause}). Check that the server runs "
            "(or that the file's folder exists and is writable) and that database_url is right."
        )
    return (  # "failed": of another kind (its SQLSTATE, or SQLite's code, says)
        f"the database {shown} failed ({kind}: {cause}), though it was reached: fix what its "
        "words say (a setting of the URL's options or of the server, such as a "
        "statement_timeout), then try again."
    )


def _create_table(connection: Connection) -> None:
    """Create the table and its index if they are missing (one process at a time).

    Looked for again once if another session made them meanwhile (a race: see
    :func:`_raced`); any other error is raised as it is, for the caller to tell: retrying it
    on the same connection would hide it (a session the server ended is opened again
    without the schema's lock, and a transaction it ended fails the next statement).
    """
    for last in (False, True):
        if connection.dialect.name == "postgresql":
            lock = sqlalchemy.func.pg_advisory_xact_lock(_SCHEMA_LOCK)
            connection.execute(sqlalchemy.select(lock))
        try:
            _METADATA.create_all(connection, checkfirst=True)
            connection.commit()
            return
        except sqlalchemy_errors.SQLAlchemyError as error:
            if last or not _raced(error):
                raise
            connection.rollback()  # made by another session meanwhile: look again


_RACES = frozenset({"42P07", "42710", "23505"})
"""PostgreSQL's SQLSTATEs of a table or index that another session made meanwhile:
duplicate_table, duplicate_object, and unique_violation (two ``CREATE TABLE`` of one name
at once collide in the catalog's own unique index)."""


def _raced(error: BaseException) -> bool:
    """Whether ``error`` says that another session made the table (or its index) meanwhile.

    Told by the code the driver gives, as the module's other errors are: PostgreSQL's
    SQLSTATE (:data:`_RACES`), or SQLite's SQLITE_ERROR (its code of "table ... already
    exists"; a lock, a read-only or full file have codes of their own).
    """
    original = getattr(error, "orig", None) or error
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if isinstance(state, str) and state:
        return state in _RACES
    return sqlite_code(error) == sqlite3.SQLITE_ERROR


_Connecting = Literal[
    "unreached",
    "refused",
    "busy",
    "unready",
    "lost",
    "idle",
    "failed",
    "readonly",
    "full",
    "unwritable",
]
"""What an error says of the database's connection (see :func:`_connecting`)."""

_SQLITE_KINDS: dict[int, _Connecting] = {
    sqlite3.SQLITE_CANTOPEN: "unreached",
    sqlite3.SQLITE_READONLY: "readonly",
    sqlite3.SQLITE_FULL: "full",
    sqlite3.SQLITE_PERM: "unwritable",
    sqlite3.SQLITE_IOERR: "unwritable",
}
"""What SQLite's primary result codes say of its file (a lock is told before)."""


def _connecting(url: str, error: BaseException) -> _Connecting | None:
    """What SQLAlchemy's ``error`` says of the database's connection, if it is of one.

    ``"refused"`` for a server that answered and refused it (no such database or role, a
    wrong password), ``"busy"`` for one that has all the connections it takes,
    ``"unready"`` for one starting up, in recovery or shutting down, ``"lost"`` for a session
    that the server ended (stopped, or killed by an administrator), ``"idle"`` for one it
    ended for being idle (its idle timeouts), ``"unreached"`` for a
    server that did not answer (or a connection lost), as ``connection_failure`` sorts them;
    ``"failed"`` for another failure of a server's (its SQLSTATE of another class). On
    SQLite, by its result code (``sqlite_code``): a file that could not be opened
    (``"unreached"``), a read-only one (``"readonly"``), no room left (``"full"``), no
    permission or a failed read or write (``"unwritable"``); another code is ``"failed"``,
    but SQLITE_ERROR, a statement the table did not take, is
    ``None``, as is an error of neither kind. PostgreSQL's SQLSTATE is read whatever
    SQLAlchemy's class of the error (psycopg gives 25P03 as an ``InternalError``).
    """
    if isinstance(error, sqlalchemy_errors.InterfaceError):
        return "unreached"  # (a driver's connection gone, or unusable)
    if not isinstance(error, sqlalchemy_errors.DBAPIError):
        return None
    if url.startswith("sqlite"):
        if not isinstance(error, sqlalchemy_errors.OperationalError):
            return None
        code = sqlite_code(error)
        if code is None:
            return "unreached"  # (no code: the file was not opened)
        return None if code == sqlite3.SQLITE_ERROR else _SQLITE_KINDS.get(code, "failed")
    # (by its SQLSTATE whatever its class: psycopg gives 25P03 as an InternalError)
    told = connection_failure(getattr(error, "orig", None) or error)
    if told is not None:
        return told
    return "failed" if isinstance(error, sqlalchemy_errors.OperationalError) else None


def _cause_of(error: BaseException) -> str:
    """The first line of what the database driver said (or of ``error``)."""
    return str(getattr(error, "orig", None) or error).strip().splitlines()[0]
