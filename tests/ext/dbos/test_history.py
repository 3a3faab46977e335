"""``ChatHistorySQL``: chat histories in SQLite and in a real PostgreSQL.

The contract every ``ChatHistory`` passes runs on both databases; then what a database
adds: two processes appending to one conversation at once, conversations kept apart, rows
that stay readable by a later program, and the errors (a server that does not answer, a
SQLite file another process keeps locked, values that would not come back the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import closing
from itertools import count
from pathlib import Path

import pytest
import sqlalchemy

from miniagents import Message, MiniAgentsError
from miniagents.ext.dbos.history import DEFAULT_DATABASE_URL, TABLE_NAME, ChatHistorySQL
from miniagents.ext.history import ChatHistory, ChatHistoryError, ChatHistoryOptionError
from miniagents.ext.llm.messages import AssistantMessage, TokenUsage, UserMessage
from miniagents.testing import ChatHistoryContract
from miniagents.testing.chat_history_contract import ContractNote
from tests.ext.dbos.descriptors import akept_until_let_go, open_files
from tests.fakes.postgres import (
    PostgresServer,
    free_port,
    session_ended_at_first_statement,
    session_idled_out,
)
from tests.subprocesses import ProcessGroups, python_env

_NAMES = count()


class TestOnSQLite(ChatHistoryContract):
    """The contract, on a SQLite file."""

    @pytest.fixture(autouse=True)
    def _database(self, tmp_path: Path) -> None:
        self.url = f"sqlite:///{tmp_path / 'chats.sqlite'}"
        self.conversation = f"chat-{next(_NAMES)}"

    def new_history(self) -> ChatHistory:
        return ChatHistorySQL(
            self.conversation, database_url=self.url, message_classes=self.message_classes
        )

    def reopen(self, history: ChatHistory) -> ChatHistory:
        return self.new_history()


class TestOnPostgres(ChatHistoryContract):
    """The contract, on a real PostgreSQL server (a database of its own per test)."""

    @pytest.fixture(autouse=True)
    def _database(self, postgres: PostgresServer) -> None:
        self.url = postgres.create_database(f"contract_{next(_NAMES)}")
        self.conversation = "chat"

    def new_history(self) -> ChatHistory:
        return ChatHistorySQL(
            self.conversation, database_url=self.url, message_classes=self.message_classes
        )

    def reopen(self, history: ChatHistory) -> ChatHistory:
        return self.new_history()


# -- two processes -------------------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from miniagents import Message
    from miniagents.ext.dbos.history import ChatHistorySQL

    async def main(url: str, writer: str, count: int) -> None:
        history = ChatHistorySQL("shared", database_url=url)
        await history.load()  # connected, the table made: ready
        print("ready", flush=True)
        assert sys.stdin.readline() == "go\\n"
        for n in range(count):
            await history.append(Message(text=f"{writer} {n}", role="user", writer=writer, n=n))

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)
_APPENDS = 40


def _two_writers(url: str, cwd: Path) -> None:
    """Two processes append ``_APPENDS`` messages each to one conversation, started at once."""
    pipe = subprocess.PIPE
    with ProcessGroups() as started:  # (ended with all they started, whatever happens)
        writers = [
            started.python(
                ["-c", _WRITER, url, name, str(_APPENDS)], cwd, stdin=pipe, stdout=pipe, stderr=pipe
            )
            for name in ("a", "b")
        ]
        for writer in writers:
            assert writer.stdout is not None
            assert writer.stdout.readline() == "ready\n", writer.communicate(timeout=60)
        for writer in writers:  # both are ready: let them go together
            assert writer.stdin is not None
            writer.stdin.write("go\n")
            writer.stdin.flush()
        for writer in writers:
            _, errors = writer.communicate(timeout=120)
            assert writer.returncode == 0, errors


def _check_both_kept(url: str) -> None:
    loaded = asyncio.run(ChatHistorySQL("shared", database_url=url).load())
    assert len(loaded) == 2 * _APPENDS
    for name in ("a", "b"):
        own = [message for message in loaded if getattr(message, "writer", None) == name]
        assert [message.text for message in own] == [f"{name} {n}" for n in range(_APPENDS)]


def test_two_processes_append_to_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    _two_writers(url, tmp_path)
    _check_both_kept(url)


def test_two_processes_append_to_one_postgres_database(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.create_database(f"shared_{next(_NAMES)}")
    _two_writers(url, tmp_path)
    _check_both_kept(url)


# -- what is kept, and where ---------------------------------------------------------------


def test_conversations_of_one_database_are_kept_apart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chats.sqlite'}"

    async def main() -> None:
        first, second = (ChatHistorySQL(name, database_url=url) for name in ("one", "two"))
        await first.append(UserMessage(text="To one."))
        await second.append(UserMessage(text="To two."))
        await first.append(UserMessage(text="One again."))
        assert [m.text for m in await first.load()] == ["To one.", "One again."]
        assert [m.text for m in await second.load()] == ["To two."]

    asyncio.run(main())


def test_the_engine_of_a_database_used_long_ago_is_disposed(tmp_path: Path) -> None:
    paths = [tmp_path / f"chats{index}.sqlite" for index in range(100)]
    histories = [ChatHistorySQL("chat", database_url=f"sqlite:///{path}") for path in paths]

    async def use(index: int) -> None:
        await histories[index].append(UserMessage(text=paths[index].name))

    async def main() -> None:
        kept = await akept_until_let_go(paths, use)  # one database too many: the oldest let go
        assert kept > 1
        assert open_files(paths[1]) == 1  # (the oldest only)
        assert open_files(paths[kept]) == 1
        assert [m.text for m in await histories[0].load()] == [paths[0].name]  # made again
        assert open_files(paths[0]) == 1
        assert open_files(paths[1]) == 0  # (then the next oldest let go)

    asyncio.run(main())


def test_a_row_holds_the_class_and_the_fields_as_json(tmp_path: Path) -> None:
    """The table is plain: another program reads a conversation with SQL and JSON."""
    path = tmp_path / "chats.sqlite"
    reply = AssistantMessage(
        text="Hello.", model="m", usage=TokenUsage(input_tokens=3, output_tokens=2)
    )
    asyncio.run(ChatHistorySQL("chat", database_url=f"sqlite:///{path}").append(reply))
    with closing(sqlite3.connect(path)) as connection:
        rows = connection.execute(
            f"SELECT conversation, class_name, fields FROM {TABLE_NAME}"
        ).fetchall()
    assert [(conversation, name) for conversation, name, _ in rows] == [
        ("chat", "AssistantMessage")
    ]
    fields = json.loads(rows[0][2])
    assert fields["text"] == "Hello."
    assert fields["model"] == "m"
    assert fields["usage"]["input_tokens"] == 3


def test_the_default_database_is_a_file_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    asyncio.run(ChatHistorySQL("chat").append(UserMessage(text="Kept.")))
    assert DEFAULT_DATABASE_URL == "sqlite:///miniagents.sqlite"
    assert (tmp_path / "miniagents.sqlite").is_file()


def test_a_class_of_ones_own_not_given_is_refused(tmp_path: Path) -> None:
    history = ChatHistorySQL("chat", database_url=f"sqlite:///{tmp_path / 'c.sqlite'}")
    with pytest.raises(ChatHistoryError, match=r"message_classes=\[ContractNote"):
        asyncio.run(history.append(ContractNote(text="Mine.", topic="t")))
    assert asyncio.run(history.load()) == ()


class OfflineNote(Message):
    """A class of one's own, named with a vowel."""


def test_a_class_not_given_is_named_after_its_article(tmp_path: Path) -> None:
    # on main: "Cannot keep a OfflineNote"
    history = ChatHistorySQL("chat", database_url=f"sqlite:///{tmp_path / 'c.sqlite'}")
    with pytest.raises(ChatHistoryError, match=r"^Cannot keep an OfflineNote in a ChatHistorySQL"):
        asyncio.run(history.append(OfflineNote(text="Mine.")))


@pytest.mark.parametrize(
    ("field", "problem"),
    [(float("inf"), "JSON"), ({1: "a"}, "would not load back the same")],
)
def test_values_that_would_change_are_refused_before_anything_is_written(
    tmp_path: Path, field: object, problem: str
) -> None:
    history = ChatHistorySQL("chat", database_url=f"sqlite:///{tmp_path / 'c.sqlite'}")
    with pytest.raises(ChatHistoryError, match=problem):
        asyncio.run(history.append(Message(text="x", value=field)))
    assert asyncio.run(history.load()) == ()


@pytest.mark.parametrize(
    "message",
    [Message(text="half \ud800 a pair"), Message(text="x", note="half \udfff a pair")],
)
def test_text_that_is_not_valid_unicode_is_refused_before_anything_is_written(
    database_url: str, message: Message
) -> None:
    history = ChatHistorySQL("chat", database_url=database_url)
    with pytest.raises(ChatHistoryError, match=r"surrogates not allowed.*nothing was written"):
        asyncio.run(history.append(message))
    assert asyncio.run(history.load()) == ()


def test_text_with_a_nul_character_is_kept_on_postgres_too(database_url: str) -> None:
    # PostgreSQL keeps no NUL in text, but the fields are JSON, where it is an escape
    history = ChatHistorySQL("chat", database_url=database_url)
    message = Message(text="a\x00b", note="\x00")
    asyncio.run(history.append(message))
    assert asyncio.run(ChatHistorySQL("chat", database_url=database_url).load()) == (message,)


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"conversation": ""}, "conversation must be a non-empty str"),
        ({"conversation": "x" * 256}, "at most 255"),
        ({"conversation": "a\x00b"}, "a NUL character"),
        ({"conversation": "a\ud800b"}, "not valid Unicode"),
        ({"database_url": "not a url"}, "is not a database URL"),
        ({"database_url": "sqlite://"}, "in-memory SQLite"),
        ({"database_url": "sqlite:///:memory:"}, "^database_url 'sqlite:///:memory:' is an in-"),
        ({"database_url": "mysql://u@h/db"}, "SQLite .* or PostgreSQL"),
        ({"database_url": "oracle://u@h/db"}, "names a database of the backend 'oracle': "),
        ({"database_url": "postgresql+nosuchdriver://u@h/db"}, "driver"),
        ({"timeout": 0}, r"timeout must be a positive, finite number .* Pass e\.g\. timeout=10"),
        ({"message_classes": [int]}, "message_classes takes Message subclasses"),
    ],
)
def test_bad_options_are_refused_at_once(kwargs: dict[str, object], problem: str) -> None:
    options: dict[str, object] = {"conversation": "chat", **kwargs}
    with pytest.raises(ChatHistoryOptionError, match=problem) as raised:
        ChatHistorySQL(**options)  # type: ignore[arg-type]
    assert isinstance(raised.value, ValueError)


def test_a_server_that_does_not_answer_is_a_clear_error(tmp_path: Path) -> None:
    url = f"postgresql://nobody:secret@127.0.0.1:{free_port()}/nothing"
    history = ChatHistorySQL("chat", database_url=url, timeout=2)
    with pytest.raises(ChatHistoryError, match="cannot be reached") as raised:
        asyncio.run(history.append(UserMessage(text="Lost?")))
    assert "secret" not in str(raised.value)
    assert isinstance(raised.value, MiniAgentsError)


@pytest.mark.parametrize("name", ["unlocked_chats", "busy_chats"])
def test_a_missing_database_whose_name_says_locked_is_not_a_lock(
    postgres: PostgresServer, name: str
) -> None:
    # the driver's words quote the name ('database "unlocked_chats" does not exist'): told
    # by their words, this was "stayed locked for 2 s ... pass a longer timeout="
    history = ChatHistorySQL("chat", database_url=postgres.url(name), timeout=2)
    with pytest.raises(ChatHistoryError, match="refused the connection") as raised:
        asyncio.run(history.load())
    assert f'database "{name}" does not exist' in str(raised.value)
    assert "stayed locked" not in str(raised.value)


@pytest.mark.parametrize(
    ("user", "database", "said"),
    [
        ("miniagents", "no_such_chats", 'database "no_such_chats" does not exist'),
        ("no_such_role", "postgres", 'role "no_such_role" does not exist'),
    ],
)
def test_a_missing_database_or_role_is_a_refused_connection_not_an_unreached_server(
    postgres: PostgresServer, user: str, database: str, said: str
) -> None:
    # the server answered and refused: this was "cannot be reached ... check that the
    # server runs", though it runs; now the URL's names are what to check
    url = f"postgresql://{user}:secret@{postgres.host}:{postgres.port}/{database}"
    history = ChatHistorySQL("chat", database_url=url, timeout=2)
    with pytest.raises(ChatHistoryError) as raised:
        asyncio.run(history.append(UserMessage(text="Anyone?")))
    text = str(raised.value)
    assert "refused the connection" in text, text
    assert said in text, text
    assert "database name, user and password" in text, text
    assert "cannot be reached" not in text, text
    assert "secret" not in text, text


def test_a_statement_the_server_cancelled_is_not_an_unreached_server(
    postgres: PostgresServer,
) -> None:
    # the server cancels a write held up by another session's lock at the URL's own
    # statement_timeout (SQLSTATE 57014, not of class 08): this was "cannot be reached ...
    # check that the server runs", though it answered every statement
    name = f"cancelled_{next(_NAMES)}"
    url = postgres.create_database(name)
    asyncio.run(ChatHistorySQL("chat", database_url=url).append(UserMessage(text="First.")))
    holder = sqlalchemy.create_engine(postgres.url(name, driver="postgresql+psycopg"))
    try:
        with holder.connect() as connection:
            connection.execute(sqlalchemy.text(f"LOCK TABLE {TABLE_NAME} IN ACCESS EXCLUSIVE MODE"))
            hasty = f"{url}?options=-c%20statement_timeout%3D50"
            history = ChatHistorySQL("chat", database_url=hasty, timeout=30)
            with pytest.raises(ChatHistoryError) as raised:
                asyncio.run(history.append(UserMessage(text="Second.")))
            connection.rollback()
    finally:
        holder.dispose()
    text = str(raised.value)
    assert "failed (OperationalError: canceling statement due to statement timeout)" in text
    assert "cannot be reached" not in text, text
    assert "refused" not in text, text


def test_a_folder_that_does_not_exist_is_a_clear_error(tmp_path: Path) -> None:
    history = ChatHistorySQL("chat", database_url=f"sqlite:///{tmp_path / 'no' / 'c.sqlite'}")
    with pytest.raises(ChatHistoryError, match="folder exists"):
        asyncio.run(history.load())


def test_a_read_only_sqlite_file_says_so(tmp_path: Path) -> None:
    # every SQLite error not sorted was "cannot be reached ... check that the server runs"
    path = tmp_path / "kept.sqlite"
    asyncio.run(ChatHistorySQL("chat", database_url=f"sqlite:///{path}").append(Message()))
    url = f"sqlite:///file:{path}?mode=ro&uri=true"  # (read-only even for root)
    history = ChatHistorySQL("chat", database_url=url)
    with pytest.raises(ChatHistoryError) as raised:
        asyncio.run(history.append(UserMessage(text="Second.")))
    assert str(raised.value) == (
        f"Could not write the chat history 'chat': the SQLite file {url} is read-only "
        "(attempt to write a readonly database). Make the file and its folder writable by "
        "this process (their mode, their owner, a read-only mount, or a URL's mode=ro), or "
        "give database_url another file."
    )
    assert len(asyncio.run(history.load())) == 1  # (reading it works)


def test_a_sqlite_file_with_no_room_left_says_so(tmp_path: Path) -> None:
    # SQLITE_FULL was "cannot be reached ... check that the server runs"
    path = tmp_path / "small.sqlite"
    url = f"sqlite:///{path}"
    history = ChatHistorySQL("chat", database_url=url)
    asyncio.run(history.append(UserMessage(text="First.")))
    # another timeout is another engine: its connections, all new, hold no page more
    full = ChatHistorySQL("chat", database_url=url, timeout=history.timeout + 1)

    def no_page_more(connection: sqlite3.Connection, _record: object) -> None:
        (_, _, file), *_ = connection.execute("PRAGMA database_list").fetchall()
        if file == str(path):
            connection.execute("PRAGMA max_page_count = 1")  # (it stays at the pages used)

    sqlalchemy.event.listen(sqlalchemy.Engine, "connect", no_page_more)
    try:
        with pytest.raises(ChatHistoryError) as raised:
            asyncio.run(full.append(UserMessage(text="x" * 100_000)))
    finally:
        sqlalchemy.event.remove(sqlalchemy.Engine, "connect", no_page_more)
    text = str(raised.value)
    assert text.startswith(
        f"Could not write the chat history 'chat': the SQLite file {url} has no room left "
        "(database or disk is full): its disk is full, or the file reached its most pages "
    ), text
    assert "cannot be reached" not in text, text
    assert [message.text for message in asyncio.run(history.load())] == ["First."]


def test_a_server_with_no_connection_left_is_busy_not_refusing(postgres: PostgresServer) -> None:
    # SQLSTATE 53300 (too many connections) was "refused the connection ... check
    # database_url's database name, user and password", though they are right
    role = "chat_busy_role"
    url = postgres.role_without_connections(role, password="secret")
    history = ChatHistorySQL("chat", database_url=url, timeout=2)
    with pytest.raises(ChatHistoryError) as raised:
        asyncio.run(history.load())
    text = str(raised.value)
    assert "has all the connections it takes" in text, text
    assert f'too many connections for role "{role}"' in text, text
    assert "max_connections" in text, text
    assert "refused the connection" not in text, text
    assert "secret" not in text, text


def test_a_session_ended_by_the_server_is_a_lost_connection_not_a_failure(
    postgres: PostgresServer,
) -> None:
    # SQLSTATE 57P01 (pg_terminate_backend, or the server stopped) was "failed
    # (OperationalError: ...), though it was reached: fix what its words say"
    history = ChatHistorySQL("chat", database_url=postgres.url(), timeout=2)
    with (
        session_ended_at_first_statement(postgres) as ended,
        pytest.raises(ChatHistoryError) as raised,
    ):
        asyncio.run(history.load())
    assert len(ended) == 1
    assert str(raised.value) == (
        f"Could not read the chat history 'chat': the database {postgres.url()} lost its "
        "connection (terminating connection due to administrator command): the server was "
        "stopped, or it ended this session (an administrator's pg_terminate_backend, or a "
        "crash of the server). Check that the server runs and accepts connections, then try "
        "again."
    )
    assert [message.text for message in asyncio.run(history.load())] == []  # (back again)


def test_a_server_that_takes_no_connection_yet_is_not_ready_not_refusing(
    postgres_standby: PostgresServer,
) -> None:
    # SQLSTATE 57P03 (starting up, in recovery, shutting down) was "refused the connection
    # ... Check database_url's database name, user and password", though they are right
    history = ChatHistorySQL("chat", database_url=postgres_standby.url(), timeout=2)
    with pytest.raises(ChatHistoryError) as raised:
        asyncio.run(history.load())
    text = str(raised.value)
    assert text.startswith(
        f"Could not read the chat history 'chat': the server of {postgres_standby.url()} is "
        "not ready for connections (connection failed: "
    ), text
    assert "FATAL:  the database system is not accepting connections" in text, text
    assert "Try again once it has started" in text, text
    assert "refused the connection" not in text, text
    assert "ChatHistorySQL made" not in text, text


@pytest.fixture
def locked_sqlite(tmp_path: Path) -> Iterator[str]:
    """A SQLite file that another connection keeps locked (an exclusive transaction)."""
    path = tmp_path / "locked.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        yield f"sqlite:///{path}"
    finally:
        holder.rollback()
        holder.close()


def test_a_locked_sqlite_file_is_an_error_after_the_timeout(locked_sqlite: str) -> None:
    history = ChatHistorySQL("chat", database_url=locked_sqlite, timeout=0.2)
    with pytest.raises(ChatHistoryError, match=r"stayed locked for 0\.2 s"):
        asyncio.run(history.append(UserMessage(text="Waiting.")))


def test_a_table_held_by_another_connection_of_this_process_says_so(tmp_path: Path) -> None:
    # SQLite's "database table is locked" (SQLITE_LOCKED, which never waits) was told as a
    # database that "cannot be reached": check that the server runs, or the folder exists
    path = tmp_path / "shared.sqlite"
    url = f"sqlite:///file:{path}?cache=shared&uri=true"  # (one cache for this process)
    history = ChatHistorySQL("chat", database_url=url, timeout=5)
    asyncio.run(history.append(UserMessage(text="First.")))
    with closing(sqlite3.connect(f"file:{path}?cache=shared", uri=True)) as reader:
        reading = reader.execute(f"SELECT id FROM {TABLE_NAME}")  # (not read to its end)
        with pytest.raises(ChatHistoryError) as raised:
            asyncio.run(history.append(UserMessage(text="Second.")))
        reading.close()
    assert str(raised.value) == (
        "Could not write the chat history 'chat': another connection of this process, "
        f"sharing its cache, holds its table in {url} (database table is locked: "
        f"{TABLE_NAME}): a read cursor not read to its end, or a transaction that wrote to it; "
        "SQLite does not wait for it. Read that cursor to its end or close it, or end that "
        "transaction, then try again."
    )
    asyncio.run(history.append(UserMessage(text="Second.")))  # (the cursor closed: written)
    assert [message.text for message in asyncio.run(history.load())] == ["First.", "Second."]


def test_a_first_call_on_a_locked_file_waits_for_the_lock_once(locked_sqlite: str) -> None:
    """Making the table sure of (a new history's first call) does not wait a second time."""
    looks: list[str] = []  # (the statements that name the table: each waits for the lock)

    def executed(_connection: object, _cursor: object, statement: str, *_args: object) -> None:
        if TABLE_NAME in statement:
            looks.append(statement)

    sqlalchemy.event.listen(sqlalchemy.Engine, "before_cursor_execute", executed)
    try:
        history = ChatHistorySQL("chat", database_url=locked_sqlite, timeout=0.1)
        with pytest.raises(ChatHistoryError, match=r"stayed locked for 0\.1 s"):
            asyncio.run(history.load())
    finally:
        sqlalchemy.event.remove(sqlalchemy.Engine, "before_cursor_execute", executed)
    assert len(looks) == 1, looks  # (it looked again after the lock's timeout: twice in all)


@contextlib.contextmanager
def _table_locked(url: str) -> Iterator[None]:
    """The history table locked by another session (in a thread of its own) until the end.

    The session lets go when the block ends, or after a minute at most: a call that waits
    for the lock, instead of failing after its timeout, then ends and fails its test.
    """
    locked, done = threading.Event(), threading.Event()

    def hold() -> None:
        engine = sqlalchemy.create_engine(url.replace("postgresql:", "postgresql+psycopg:"))
        try:
            with engine.connect() as connection:
                lock = f"LOCK TABLE {TABLE_NAME} IN ACCESS EXCLUSIVE MODE"
                connection.execute(sqlalchemy.text(lock))
                locked.set()
                done.wait(timeout=60)
                connection.rollback()
        finally:
            engine.dispose()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(timeout=60)
        yield
    finally:
        done.set()
        holder.join()


@pytest.mark.parametrize("doing", ["read", "write"])
def test_a_locked_postgres_table_is_an_error_after_the_timeout(
    postgres: PostgresServer, doing: str
) -> None:
    """A table another session keeps locked is an error after ``timeout``, not a hang."""
    url = postgres.create_database(f"locked_{doing}_{next(_NAMES)}")
    history = ChatHistorySQL("chat", database_url=url, timeout=0.5)
    asyncio.run(history.append(UserMessage(text="Kept.")))  # the table made
    with _table_locked(url):
        call = history.load() if doing == "read" else history.append(UserMessage(text="W"))
        with pytest.raises(ChatHistoryError, match=rf"Could not {doing} .* stayed locked"):
            asyncio.run(call)
    assert [message.text for message in asyncio.run(history.load())] == ["Kept."]


def test_the_event_loop_goes_on_while_the_database_is_locked(locked_sqlite: str) -> None:
    """The waiting is in a worker thread: the loop runs other tasks meanwhile."""

    async def main() -> None:
        history = ChatHistorySQL("chat", database_url=locked_sqlite, timeout=2)
        append = asyncio.ensure_future(history.append(UserMessage(text="Waiting.")))
        other = asyncio.Event()
        asyncio.get_running_loop().call_soon(other.set)
        await other.wait()
        assert not append.done()
        with pytest.raises(ChatHistoryError, match="locked"):
            await append

    asyncio.run(main())


def test_a_missing_sqlalchemy_is_an_error_with_the_install_hint(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["sqlalchemy"] = None
        try:
            import miniagents.ext.dbos.history
        except ImportError as error:
            print(type(error).__name__, error)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("MissingExtraError")
    assert 'pip install "miniagents[dbos]"' in done.stdout


def test_repr_names_the_conversation_and_hides_the_password() -> None:
    history = ChatHistorySQL("chat", database_url="postgresql://me:secret@127.0.0.1:1/db")
    assert repr(history) == (
        "ChatHistorySQL('chat', database_url='postgresql://me:***@127.0.0.1:1/db')"
    )
    windows = r"sqlite:///C:\chats\chats.sqlite"  # (a URL without a password: as written)
    assert repr(ChatHistorySQL("chat", database_url=windows)) == (
        f"ChatHistorySQL('chat', database_url={windows!r})"
    )


def test_a_row_that_is_not_a_message_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "chats.sqlite"
    history = ChatHistorySQL("chat", database_url=f"sqlite:///{path}")
    asyncio.run(history.append(UserMessage(text="Fine.")))
    with closing(sqlite3.connect(path)) as connection, connection:  # closed, committed
        connection.execute(
            f"INSERT INTO {TABLE_NAME} (conversation, class_name, fields) "
            "VALUES ('chat', 'UserMessage', '[1, 2]')"
        )
    with pytest.raises(ChatHistoryError, match=r"Row 2 of miniagents_chat_messages .* not a"):
        asyncio.run(history.load())


def test_a_session_the_server_ended_for_being_idle_says_so_and_its_timeouts(
    postgres: PostgresServer,
) -> None:
    # SQLSTATE 57P05 was "failed (OperationalError: terminating connection due to
    # idle-session timeout), though it was reached: fix what its words say"
    with session_idled_out(postgres, "chat_idler") as (url, ended):
        history = ChatHistorySQL("chat", database_url=url, timeout=2)
        with pytest.raises(ChatHistoryError) as raised:
            asyncio.run(history.load())
        assert len(ended) == 1
        assert str(raised.value) == (
            f"Could not read the chat history 'chat': the server of {url} ended this session "
            "for being idle (terminating connection due to idle-session timeout): its "
            "idle_session_timeout (or idle_in_transaction_session_timeout, for a transaction "
            "left open) is shorter than a connection stays unused. Raise it on the server, or "
            "for the role or database (0 turns it off), or call again: the next call opens a "
            "new connection."
        )
        assert [message.text for message in asyncio.run(history.load())] == []  # (back again)


def test_a_session_ended_while_the_table_is_made_is_a_lost_connection(
    postgres: PostgresServer,
) -> None:
    # it was looked for again on the same connection, which SQLAlchemy opened again: a new
    # session, without the schema's lock, and no word of the one the server ended
    url = postgres.create_database(f"ended_making_{next(_NAMES)}")
    history = ChatHistorySQL("chat", database_url=url, timeout=2)
    with (
        session_ended_at_first_statement(postgres, holding="pg_catalog.pg_class") as ended,
        pytest.raises(ChatHistoryError) as raised,
    ):
        asyncio.run(history.load())
    assert len(ended) == 1
    assert str(raised.value).startswith(
        f"Could not read the chat history 'chat': the database {url} lost its connection "
        "(terminating connection due to administrator command): "
    ), raised.value
    asyncio.run(history.append(UserMessage(text="Back.")))  # (the next call makes the table)
    assert [message.text for message in asyncio.run(history.load())] == ["Back."]


def test_a_transaction_idled_out_while_the_table_is_made_says_so(
    postgres: PostgresServer,
) -> None:
    # SQLSTATE 25P03 (idle_in_transaction_session_timeout) was swallowed the same way
    with session_idled_out(postgres, "chat_maker", in_transaction=True) as (url, ended):
        history = ChatHistorySQL("chat", database_url=url, timeout=2)
        with pytest.raises(ChatHistoryError) as raised:
            asyncio.run(history.load())
        assert len(ended) == 1
    assert str(raised.value).startswith(
        f"Could not read the chat history 'chat': the server of {url} ended this session "
        "for being idle (terminating connection due to idle-in-transaction timeout): "
    ), raised.value


def test_a_table_another_session_made_meanwhile_is_used(database_url: str) -> None:
    """The race worth looking again for: the table made between the look and CREATE TABLE."""
    other = sqlalchemy.create_engine(
        database_url.replace("postgresql:", "postgresql+psycopg:"), poolclass=sqlalchemy.NullPool
    )
    identity = (
        "BIGSERIAL PRIMARY KEY"
        if other.dialect.name == "postgresql"
        else ("INTEGER PRIMARY KEY AUTOINCREMENT")
    )
    made: list[str] = []

    def make_it_first(
        connection: sqlalchemy.Connection, _cursor: object, sql: str, *_: object
    ) -> None:
        if made or connection.engine is other or not sql.lstrip().startswith("CREATE TABLE"):
            return
        made.append(sql)
        with other.begin() as making:
            making.execute(
                sqlalchemy.text(
                    f"CREATE TABLE {TABLE_NAME} (id {identity}, "
                    "conversation VARCHAR(255) NOT NULL, class_name VARCHAR(255) NOT NULL, "
                    "fields TEXT NOT NULL)"
                )
            )

    history = ChatHistorySQL("chat", database_url=database_url, timeout=5)
    sqlalchemy.event.listen(sqlalchemy.Engine, "before_cursor_execute", make_it_first)
    try:
        asyncio.run(history.append(UserMessage(text="Kept.")))
    finally:
        sqlalchemy.event.remove(sqlalchemy.Engine, "before_cursor_execute", make_it_first)
        other.dispose()
    assert len(made) == 1
    assert [message.text for message in asyncio.run(history.load())] == ["Kept."]
