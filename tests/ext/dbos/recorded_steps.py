"""The steps recorded in a SQLite database of durable runs, read as the tests' own files."""

from __future__ import annotations

import base64
import pickle
import sqlite3
from pathlib import Path


def recorded_keys(database: Path) -> list[str]:
    """The keys of the steps recorded in a SQLite database of runs."""
    connection = sqlite3.connect(database)
    try:
        rows = connection.execute(
            "SELECT output FROM operation_outputs WHERE output IS NOT NULL"
        ).fetchall()
    finally:
        connection.close()
    keys = []
    for (output,) in rows:
        value = pickle.loads(base64.b64decode(output))  # our own test's file
        if isinstance(value, tuple) and value and isinstance(value[0], str):
            keys.append(value[0])
    return keys
