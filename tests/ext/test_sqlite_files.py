"""A SQLite file that a user named and that is not a database: each store that opens one
says so as its own error, naming the file and the fix (``miniagents.ext.sqlite_files``).

Durable runs' database says it at the start (``tests/ext/dbos/test_durable_faults.py``).
"""

from __future__ import annotations

import asyncio
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
