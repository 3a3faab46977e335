"""A lock that another session of a real PostgreSQL holds, in an open transaction, for a block."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import sqlalchemy

HELD_AT_MOST = 30.0
"""Seconds the other session holds its lock at most: a call that waits for it, instead of
failing after its own bound, then goes on and fails its test (rather than hanging it)."""


@contextlib.contextmanager
def held_by_another_session(url: str, statement: str) -> Iterator[None]:
    """``statement`` run by another session (in a thread of its own), its transaction open.

    The session rolls back when the block ends (or after :data:`HELD_AT_MOST` seconds).
    """
    holding, done = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def hold() -> None:
        engine = sqlalchemy.create_engine(url.replace("postgresql:", "postgresql+psycopg:"))
        try:
            with engine.connect() as connection:
                connection.execute(sqlalchemy.text(statement))
                holding.set()
                done.wait(timeout=HELD_AT_MOST)
                connection.rollback()
        except BaseException as error:
            failed.append(error)
            holding.set()
        finally:
            engine.dispose()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(timeout=HELD_AT_MOST)
        assert not failed, failed
        yield
    finally:
        done.set()
        holder.join()
