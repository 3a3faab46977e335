"""What it means that a SQLite file a user named is not a database (or a damaged one).

The extensions keep records in SQLite files that a user names: a call cache's
(``SQLiteCallStore``, ``SQLCallStore`` on a ``sqlite:///`` URL), a batch run's journal,
``ChatHistorySQL``'s, the studio's store of runs, the database of durable runs. Where such a
file holds something else (garbage, another program's data) or was partly overwritten,
SQLite says ``file is not a database`` or ``database disk image is malformed``, a line that
names neither the file nor what to do. :func:`damaged_sqlite_file` tells it once for them
all; each store raises the sentence as its own error::

    sqlite3.DatabaseError: file is not a database
      -> "The SQLite file 'calls.sqlite' (a call cache's) is not a SQLite database, or is
          damaged (file is not a database): move it away ..., or give another path."
"""

from __future__ import annotations

import os

__all__ = ["damaged_sqlite_file", "is_damaged_sqlite"]

_DAMAGED = ("file is not a database", "database disk image is malformed", "malformed database")
"""What SQLite says (lower case) of a file that is not a database, or a damaged one."""


def is_damaged_sqlite(error: BaseException) -> bool:
    """Whether SQLite said ``error`` of a file that is not a database, or a damaged one.

    Args:
        error: The driver's error (``sqlite3.DatabaseError``), or SQLAlchemy's around it.
    """
    said = str(getattr(error, "orig", None) or error).lower()
    return any(words in said for words in _DAMAGED)


def damaged_sqlite_file(
    path: str | os.PathLike[str],
    error: BaseException,
    whose: str,
    another: str = "give another path",
) -> str:
    """The sentence for a SQLite file that is not a database, or a damaged one.

    Args:
        path: The file.
        error: What SQLite said (the driver's error, or SQLAlchemy's around it).
        whose: Whose file it is, e.g. ``"a call cache's"``.
        another: How to give the store another file, for the message's end.
    """
    text = str(getattr(error, "orig", None) or error).strip()
    said = text.splitlines()[0].strip() if text else type(error).__name__
    return (
        f"The SQLite file {os.fspath(path)!r} ({whose}) is not a SQLite database, or is "
        f"damaged ({said}): move it away (its records are lost; the sqlite3 shell's .recover "
        f"may save some), so that a new one is made there, or {another}."
    )
