"""What a SQLite database of durable runs holds (steps, runs), read as the tests' own files."""

from __future__ import annotations

import base64
import pickle
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any


def rows(database: Path, query: str) -> list[tuple[Any, ...]]:
    """The rows ``query`` reads from a SQLite file (opened for it, closed after)."""
    with closing(sqlite3.connect(database)) as connection:
        return connection.execute(query).fetchall()


def recorded_keys(database: Path) -> list[str]:
    """The keys of the steps recorded in a SQLite database of runs."""
    keys = []
    for (output,) in rows(
        database, "SELECT output FROM operation_outputs WHERE output IS NOT NULL"
    ):
        value = pickle.loads(base64.b64decode(output))  # our own test's file
        if isinstance(value, tuple) and value and isinstance(value[0], str):
            keys.append(value[0])
    return keys
