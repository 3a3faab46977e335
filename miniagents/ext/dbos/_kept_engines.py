"""The SQLAlchemy engines a process keeps: those of the databases it used last.

An engine keeps a pool of connections (a SQLite file's descriptor, a PostgreSQL session)
for as long as it lives, so one kept per URL for the life of the process grows without
end in a program that opens many databases (a database per tenant, per test). The
modules that share an engine per database (``history``, ``llm_records``) keep theirs in
a :class:`KeptEngines`, which keeps those of the :data:`ENGINES_KEPT` databases used last::

    get(a) ... get(h)  ->  8 kept, a used longest ago
    get(i)             ->  i made, a disposed (its pooled connections closed)
    get(a)             ->  a made again, b disposed

:func:`dispose_engine` disposes an engine let go of: SQLAlchemy's ``Engine.dispose()``
closes its pooled connections but gives one lent at that moment (in use by another thread)
back to the disposed pool when it is returned, where it stays open until the garbage
collector's cycle pass frees the pool (never, with ``gc.disable()``); this closes it then.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from miniagents.ext.sqlite_files import damaged_sqlite_file, is_damaged_sqlite

if TYPE_CHECKING:
    import sqlalchemy
    from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["ENGINES_KEPT", "KeptEngines", "Opened", "dispose_engine", "let_go_of_damaged"]

ENGINES_KEPT = 8
"""How many engines a process keeps (those of the databases used last); the others are disposed."""

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class KeptEngines(Generic[K, V]):
    """What each database is used through (its engine), by key; only the last used are kept.

    Args:
        make: Makes the value of a key at its first use (or again after it was let go of);
            it should open no connection.
        dispose: Closes a value let go of (its engine's pooled connections); a connection
            it lent is closed when given back.
        kept: How many values are kept at most.
    """

    def __init__(
        self, make: Callable[[K], V], dispose: Callable[[V], None], kept: int = ENGINES_KEPT
    ) -> None:
        self._make_engine = make
        self._dispose_engine = dispose
        self._most_engines = kept
        self._engines: OrderedDict[K, V] = OrderedDict()
        self._engines_lock = threading.Lock()

    def get(self, key: K) -> V:
        """The value of ``key``, made if it is not kept; the one used longest ago is disposed.

        Raises:
            Exception: whatever ``make`` raises (nothing is kept then).
        """
        dropped: list[V] = []
        with self._engines_lock:
            value = self._engines.get(key)
            if value is None:
                value = self._engines[key] = self._make_engine(key)
                while len(self._engines) > self._most_engines:
                    dropped.append(self._engines.popitem(last=False)[1])
            else:
                self._engines.move_to_end(key)
        for each in dropped:  # (outside the lock: disposing waits for no other caller)
            self._dispose_engine(each)
        return value


def dispose_engine(engine: sqlalchemy.Engine) -> None:
    """Close ``engine``'s pooled connections, and each lent one when it is given back.

    The engine stays usable: it opens new connections, in a new pool.
    """
    from sqlalchemy import event

    disposed = engine.pool
    engine.dispose()  # (a new pool: the listener below is not copied to it)
    event.listen(disposed, "checkin", _close_returned)
    disposed.dispose()  # (one given back between the two calls)


class Opened(Protocol):
    """An engine, and whether its tables are known to exist."""

    engine: sqlalchemy.Engine
    ready: bool


def let_go_of_damaged(
    opened: Opened, path: str | None, error: BaseException, whose: str, another: str
) -> str | None:
    """``damaged_sqlite_file``'s sentence if ``error`` says ``path`` is damaged, else ``None``."""
    if not path or not is_damaged_sqlite(error):
        return None
    dispose_engine(opened.engine)  # (its connections would read the file moved away)
    opened.ready = False
    return damaged_sqlite_file(path, error, whose, another)


def _close_returned(_connection: object, entry: ConnectionPoolEntry) -> None:
    """Close the connection of a disposed pool given back to it."""
    entry.close()
