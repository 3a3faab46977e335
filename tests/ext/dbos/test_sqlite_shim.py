"""DBOS on a SQLite without ``unixepoch('subsec')`` (before 3.42), on Python 3.12 and later.

There DBOS stamps its rows with ``unixepoch('subsec') * 1000``, which such a SQLite answers
with ``NULL``: DBOS cannot launch (``NOT NULL constraint failed:
application_versions.version_timestamp``) and a client cannot send a decision. CI runs the
suite on Python 3.11 (DBOS uses ``strftime`` there) and again on the newest Python it has
(3.13 on this machine), both with SQLite 3.40. So that the shim is checked on 3.11 too, the
tests take DBOS's Python 3.12 column definition to that SQLite directly, check the shim's
answers against SQLite's own, and run a durable run with an approval with the shim forced
on, so that every engine that writes DBOS's tables is seen to use its connections. (On
Python 3.12 and 3.13 with SQLite 3.40, this folder's tests fail at DBOS's launch without
the shim, and pass with it.)
"""

from __future__ import annotations

import sqlite3
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from miniagents.ext.dbos import _sqlite
from miniagents.ext.dbos._sqlite import (
    ShimConnection,
    engine_options,
    needs_shim,
    shim_arguments,
    sqlite_has_subsec,
    sqlite_path,
)
from tests.ext.dbos.cleaner_program import SAME_PROCESS
from tests.subprocesses import run_python

STAMPED = (  # DBOS's column on Python 3.12 and later (its dbos._migration)
    "CREATE TABLE stamped (name TEXT, stamp INTEGER NOT NULL DEFAULT (unixepoch('subsec') * 1000))"
)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///runs/agents.sqlite", "runs/agents.sqlite"),
        ("sqlite:////tmp/agents.sqlite", "/tmp/agents.sqlite"),
        ("sqlite:///:memory:", ":memory:"),
        ("sqlite://", ""),
    ],
)
def test_a_sqlite_url_names_its_file_after_three_slashes(url: str, path: str) -> None:
    assert sqlite_path(url) == path


def test_this_sqlite_has_subsec_as_its_version_says() -> None:
    assert sqlite_has_subsec() is (sqlite3.sqlite_version_info >= (3, 42, 0))


def test_the_shim_is_needed_on_sqlite_from_python_3_12_where_subsec_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "sqlite:///runs.sqlite"
    monkeypatch.setattr(sys, "version_info", (3, 11, 9, "final", 0))
    assert not needs_shim(url)
    assert engine_options(url) == {}
    assert shim_arguments(url) == {}
    monkeypatch.setattr(sys, "version_info", (3, 12, 1, "final", 0))
    assert needs_shim(url) is not sqlite_has_subsec()
    assert not needs_shim("postgresql://someone@127.0.0.1/runs")
    monkeypatch.setattr(_sqlite, "sqlite_has_subsec", lambda: False)
    assert needs_shim(url)
    assert engine_options(url) == {"connect_args": {"factory": ShimConnection}}
    assert shim_arguments(url) == {"factory": ShimConnection}
    assert not needs_shim("postgresql://someone@127.0.0.1/runs")


def test_dbos_s_python_3_12_column_fails_on_this_sqlite_unless_its_connection_is_a_shim() -> None:
    with closing(sqlite3.connect(":memory:")) as plain:
        plain.execute(STAMPED)
        if sqlite_has_subsec():
            plain.execute("INSERT INTO stamped (name) VALUES ('plain')")
        else:
            with pytest.raises(sqlite3.IntegrityError, match=r"NOT NULL constraint failed"):
                plain.execute("INSERT INTO stamped (name) VALUES ('plain')")
    with closing(sqlite3.connect(":memory:", factory=ShimConnection)) as shimmed:
        shimmed.execute(STAMPED)
        before = time.time() * 1000
        shimmed.execute("INSERT INTO stamped (name) VALUES ('shimmed')")
        after = time.time() * 1000
        [(stamp,)] = shimmed.execute("SELECT stamp FROM stamped").fetchall()
    assert before <= stamp <= after  # milliseconds, with their fraction (as 3.42 gives)


@pytest.mark.parametrize(
    "argument",
    ["2020-01-01", "2020-01-01 12:34:56.789", "1970-01-02", 2459000.5, "not a date", None],
)
def test_the_shim_answers_any_other_argument_as_sqlite_does(argument: object) -> None:
    with (
        closing(sqlite3.connect(":memory:")) as plain,
        closing(sqlite3.connect(":memory:", factory=ShimConnection)) as shimmed,
    ):
        query = "SELECT unixepoch(?)"
        assert shimmed.execute(query, (argument,)).fetchone() == (
            plain.execute(query, (argument,)).fetchone()
        )


def test_the_shim_gives_subsec_its_meaning_in_either_case() -> None:
    with closing(sqlite3.connect(":memory:", factory=ShimConnection)) as shimmed:
        before = time.time()
        subsec, subsecond = shimmed.execute(
            "SELECT unixepoch('subsec'), unixepoch('SUBSECOND')"
        ).fetchone()
        after = time.time()
    assert before <= subsec <= after
    assert before <= subsecond <= after


FORCED = """
import traceback

from miniagents.ext.dbos import _sqlite

opened_in = set()  # who opened a shim connection: DBOS's launch, a client, the claims
_shim_init = _sqlite.ShimConnection.__init__


def counted(self, *args, **kwargs):
    _shim_init(self, *args, **kwargs)
    names = {frame.name for frame in traceback.extract_stack()}
    opened_in.update(names & {"launch", "new_client", "_claims"})


_sqlite.ShimConnection.__init__ = counted
_sqlite.needs_shim = lambda url: url.startswith("sqlite")  # as on Python 3.12, SQLite 3.40
"""


def test_a_durable_run_and_a_decision_by_its_ids_go_through_the_shim(tmp_path: Path) -> None:
    program = SAME_PROCESS.replace(
        "asyncio.run(main())", "asyncio.run(main())\nprint('opened in:', sorted(opened_in))"
    )
    done = run_python(["-c", FORCED + program], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        'LLMToolCallMessage | {"name": "a.txt"}',
        'LLMToolApprovalRequest | Approve the call of remove with {"name": "a.txt"}?',
        "waits: remove {'name': 'a.txt'}",
        "removing b.txt",
        "LLMToolResultMessage | removed b.txt",
        "OfflineMessage | Done.",
        "request pending: False",
        "approve here: The call 'offline_call_1' of remove was approved already; a call is "
        "decided once.",
        "waits now: []",
        "opened in: ['_claims', 'launch', 'new_client']",
    ]
