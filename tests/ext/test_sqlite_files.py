"""A SQLite file that a user named and that is not a database: each store that opens one
says so as its own error, naming the file and the fix (``miniagents.ext.sqlite_files``).

Durable runs' database says it at the start (``tests/ext/dbos/test_durable_faults.py``).
A file damaged while a store holds it open is let go of at the error: the next use opens
the path again (a new file, if the damaged one was moved away as the error says).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from miniagents.errors import (
    DurableDatabaseError,
    LLMCacheFileError,
    MalformedChatHistoryError,
    MiniAgentsError,
    StudioStoreError,
)
from miniagents.ext.dbos import SQLCallStore, SQLRunJournal
from miniagents.ext.dbos.history import ChatHistorySQL
from miniagents.ext.llm.cache.stores import SQLiteCallStore
from miniagents.ext.sqlite_files import damaged_sqlite_file, is_damaged_sqlite
from miniagents.ext.studio.store import RunStore
from tests.subprocesses import ROOT

GARBAGE = b"this is not a database: " * 400


async def _read_sqlite_call_store(path: Path) -> object:
    store = SQLiteCallStore(path)
    try:
        return await store.aget("k1")
    finally:
        store.close()


async def _read_sql_call_store(path: Path) -> object:
    return await SQLCallStore(f"sqlite:///{path}").aget("k1")


async def _read_journal(path: Path) -> object:
    return await SQLRunJournal("P", f"sqlite:///{path}").aload()


async def _read_history(path: Path) -> object:
    return await ChatHistorySQL("chat", database_url=f"sqlite:///{path}").load()


async def _read_studio_store(path: Path) -> object:
    store = RunStore(path)
    try:
        return await asyncio.to_thread(store.runs)
    finally:
        store.close()


_Read = Callable[[Path], Coroutine[Any, Any, object]]

STORES: dict[str, tuple[_Read, type[MiniAgentsError], type[Exception], str]] = {
    "SQLiteCallStore": (_read_sqlite_call_store, LLMCacheFileError, OSError, "give another path"),
    "SQLCallStore": (
        _read_sql_call_store,
        DurableDatabaseError,
        OSError,
        "give the store another database_url",
    ),
    "SQLRunJournal": (
        _read_journal,
        DurableDatabaseError,
        OSError,
        "give the store another database_url",
    ),
    "ChatHistorySQL": (
        _read_history,
        MalformedChatHistoryError,
        ValueError,
        "give another database_url",
    ),
    "RunStore": (_read_studio_store, StudioStoreError, OSError, "--store"),
}


@pytest.mark.parametrize("name", list(STORES))
def test_a_file_that_is_not_a_database_is_our_error_naming_the_file_and_the_fix(
    tmp_path: Path, name: str
) -> None:
    read, error, builtin, another = STORES[name]
    path = tmp_path / "given.sqlite"
    path.write_bytes(GARBAGE)
    with pytest.raises(error) as caught:
        asyncio.run(read(path))
    assert isinstance(caught.value, builtin)
    said = str(caught.value)
    assert f"The SQLite file {str(path)!r} (" in said
    assert "is not a SQLite database, or is damaged (file is not a database)" in said
    assert "move it away" in said
    assert another in said
    cause = caught.value.__cause__
    assert isinstance(cause, (sqlite3.DatabaseError, sqlalchemy.exc.DatabaseError))
    assert path.read_bytes() == GARBAGE  # nothing written over what it held
    path.rename(tmp_path / "moved.sqlite")  # the fix it says: then the store works
    asyncio.run(read(path))


def test_the_durability_page_says_what_the_error_says() -> None:
    """The page's list of errors names a damaged file in the error's own words."""
    said = damaged_sqlite_file("runs.sqlite", sqlite3.DatabaseError("x"), "durable runs'")
    page = " ".join((ROOT / "docs" / "durability.md").read_text(encoding="utf-8").split())
    assert "is not a SQLite database, or is damaged" in said
    assert "is not a SQLite database, or is damaged" in page
    assert "move it away" in said
    assert "move it away" in page
    assert "corrupt" not in page.lower()  # (was: "is corrupt", a word the error never says)


def test_only_what_sqlite_says_of_a_damaged_file_is_told_as_such() -> None:
    damaged = sqlite3.DatabaseError("database disk image is malformed")
    assert is_damaged_sqlite(damaged)
    assert not is_damaged_sqlite(sqlite3.OperationalError("database is locked"))
    said = damaged_sqlite_file("f.sqlite", damaged, "a test's", "give up")
    assert said == (
        "The SQLite file 'f.sqlite' (a test's) is not a SQLite database, or is damaged "
        "(database disk image is malformed): move it away (its records are lost; the sqlite3 "
        "shell's .recover may save some), so that a new one is made there, or give up."
    )


def _error_of(path: Path, sql: str) -> sqlite3.Error:
    """What SQLite raises at ``sql`` run on the file ``path``."""
    with contextlib.closing(sqlite3.connect(path)) as database, pytest.raises(sqlite3.Error) as e:
        database.executescript(sql)
    return e.value


def test_a_damaged_file_is_told_by_sqlites_code_not_by_words(tmp_path: Path) -> None:
    not_a_database = tmp_path / "garbage.sqlite"
    not_a_database.write_bytes(GARBAGE)
    error = _error_of(not_a_database, "SELECT * FROM sqlite_master")
    assert error.sqlite_errorcode == sqlite3.SQLITE_NOTADB
    assert is_damaged_sqlite(error)
    assert is_damaged_sqlite(sqlalchemy.exc.DatabaseError("SELECT", None, error))

    damaged = tmp_path / "damaged.sqlite"
    with contextlib.closing(sqlite3.connect(damaged)) as database:
        database.executescript(
            "PRAGMA journal_mode=WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1)"
        )
    _damage_every_page_but_the_first(damaged)
    error = _error_of(damaged, "SELECT * FROM t")
    assert error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_CORRUPT
    assert is_damaged_sqlite(error)

    # a sound file whose error quotes SQLite's words (a table's name, a trigger's RAISE):
    # told by the words, each was "not a SQLite database, or damaged: move it away"
    sound = tmp_path / "sound.sqlite"
    quoted = _error_of(sound, 'SELECT * FROM "file is not a database"')
    assert str(quoted) == "no such table: file is not a database"
    assert not is_damaged_sqlite(quoted)
    raised = _error_of(
        sound,
        "CREATE TABLE t (x); CREATE TRIGGER r BEFORE INSERT ON t BEGIN "
        "SELECT RAISE(ABORT, 'database disk image is malformed'); END; INSERT INTO t VALUES (1)",
    )
    assert str(raised) == "database disk image is malformed"
    assert not is_damaged_sqlite(raised)
    # a driver that gives no code: SQLite's own first words, still
    assert is_damaged_sqlite(Exception("file is not a database"))
    assert not is_damaged_sqlite(Exception("no such table: file is not a database"))


def _opened(path: Path) -> list[str]:
    """The files of ``path`` (the database, its -wal and -shm) that this process holds open."""
    held = []
    for descriptor in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # (the listing's own descriptor, closed by now)
            target = os.readlink(f"/proc/self/fd/{descriptor}")
            if target == str(path) or target.startswith(f"{path}-"):
                held.append(target)
    return held


def _damage_every_page_but_the_first(path: Path) -> None:
    """Overwrite the tables' and indexes' pages of ``path``, as a store keeps it open.

    The pages are written into the file first (a checkpoint of the WAL journal), and a
    change made after (in the journal) makes the store's connection read them again.
    """
    with contextlib.closing(sqlite3.connect(path)) as database:
        database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (size,) = database.execute("PRAGMA page_size").fetchone()
    pages = path.stat().st_size // size
    with path.open("r+b") as file:
        file.seek(size)
        file.write(bytes(range(256)) * (size // 256) * (pages - 1))
    with contextlib.closing(sqlite3.connect(path)) as database:
        database.execute("PRAGMA user_version = 7")
        database.commit()


def _store_at(name: str, path: Path) -> tuple[SQLiteCallStore | RunStore, Callable[[], object]]:
    """The store ``name`` (of the two that keep their file open) at ``path``, and a read of it."""
    if name == "SQLiteCallStore":
        call_store = SQLiteCallStore(path)
        return call_store, lambda: asyncio.run(call_store.aget("k1"))
    run_store = RunStore(path)
    return run_store, run_store.runs


@pytest.mark.parametrize("name", ["SQLiteCallStore", "RunStore"])
def test_a_file_damaged_while_open_is_let_go_of_at_the_error(tmp_path: Path, name: str) -> None:
    # it was held open until close(): a moved file still read, its descriptors kept
    path = tmp_path / "given.sqlite"
    path.touch()
    error = STORES[name][1]
    store, read = _store_at(name, path)
    try:
        assert read() in (None, [])
        assert _opened(path)
        _damage_every_page_but_the_first(path)
        for _ in range(2):  # (opened again at the second: the same error)
            with pytest.raises(error, match="is not a SQLite database, or is damaged"):
                read()
            assert _opened(path) == []
        moved = tmp_path / "moved.sqlite"
        path.rename(moved)  # the fix the error says
        path.touch()
        assert read() in (None, [])  # a new file, opened at the path
        assert _opened(path)
        assert _opened(moved) == []
    finally:
        store.close()
    assert _opened(path) == []


def _connections() -> int:
    """The sqlite3 connections alive in this process (open or closed)."""
    return sum(isinstance(each, sqlite3.Connection) for each in gc.get_objects())


@pytest.mark.parametrize("name", ["SQLiteCallStore", "RunStore"])
def test_a_store_opened_again_and_again_keeps_no_closed_connection(
    tmp_path: Path, name: str
) -> None:
    # each opening registered a finalizer holding its connection: a store closed after each
    # use (or failing on a damaged file at each) kept every connection it had ever opened
    path = tmp_path / "given.sqlite"
    store, read = _store_at(name, path)
    gc.collect()
    before = _connections()
    for _ in range(20):
        assert read() in (None, [])
        store.close()
    path.write_bytes(GARBAGE)  # (and a file that fails each opening)
    for _ in range(20):
        with pytest.raises(STORES[name][1]):
            read()
    gc.collect()
    assert _connections() - before <= 1
    store.close()
    del store, read
    gc.collect()
    assert _connections() == before
