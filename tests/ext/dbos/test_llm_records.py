"""The LLM layer's records in a SQL database: a call cache's recordings and a batch run's journal,
on SQLite and on a real Postgres (SQLAlchemy), shared by the caches and runs that open it."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import pytest
import sqlalchemy

from miniagents.ext.dbos import SQLCallStore, SQLRunJournal, llm_records, use_database
from miniagents.ext.dbos.errors import (
    DurableConfigurationError,
    DurableDatabaseError,
    DurableDataError,
    DurableRecordError,
)
from miniagents.ext.dbos.llm_records import CALLS_TABLE, JOURNAL_TABLE
from miniagents.ext.llm.batch import BatchMode
from miniagents.ext.llm.cache import RecordedCall
from miniagents.ext.llm.provider import Finish, ToolCallDelta, ToolCallStart
from tests.ext.dbos.descriptors import akept_until_let_go, open_files
from tests.ext.dbos.held import held_by_another_session
from tests.fakes.postgres import PostgresServer


def _recorded(key: str, model: str, text: str, at: float) -> RecordedCall:
    request = {"provider": "openai", "model": model, "messages": [{"role": "user", "text": text}]}
    events = (
        "It ",
        "is.",
        ToolCallStart("c1", "add"),
        ToolCallDelta("c1", '{"a": 1}'),
        Finish("stop", 10, 2, model=model, response_id="r-1", batch_id="b-1"),
    )
    return RecordedCall(key, request, events, at)


async def test_a_sql_call_store_keeps_recorded_calls_with_every_event(database_url: str) -> None:
    store = SQLCallStore(database_url)
    now = time.time()
    first = _recorded("k1", "m-1", "one", now - 10)
    await store.aput(first)
    await store.aput(_recorded("k2", "m-2", "two", now - 5))
    await store.aput(_recorded("k3", "m-1", "three", now))
    assert await store.aget("k1") == first
    assert await store.aget("none") is None
    replaced = _recorded("k1", "m-1", "one again", now + 1)
    await store.aput(replaced)
    assert await store.aget("k1") == replaced
    candidates = await store.acandidates("openai", "m-1", 10)
    assert [each.key for each in candidates] == ["k1", "k3", "k2"]  # the model's first, latest
    assert [each.key for each in await store.acandidates("openai", "m-1", 1)] == ["k1"]
    again = SQLCallStore(database_url)  # another store of the same database sees them
    assert await again.aget("k3") is not None
    await again.aclear()
    assert await store.acandidates("openai", "m-1", 10) == []


async def test_a_damaged_recorded_call_is_read_as_none_with_a_warning(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """(It raised json's ``JSONDecodeError`` from ``aget``, failing the cache's call, and from
    ``acandidates``, failing a replay-only cache's miss.)"""
    store = SQLCallStore(database_url)
    now = time.time()
    await store.aput(_recorded("k1", "m-1", "one", now - 10))
    await store.aput(_recorded("k2", "m-1", "two", now))
    engine = sqlalchemy.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.text(f"UPDATE {CALLS_TABLE} SET events = '[[\"te' WHERE key = 'k2'")
        )
    engine.dispose()
    assert await store.aget("k2") is None
    assert [each.key for each in await store.acandidates("openai", "m-1", 10)] == ["k1"]
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 2
    assert warned[0].startswith(
        f"The call cache's store table {CALLS_TABLE} holds a damaged recording under the key k2 "
    )


async def test_a_call_whose_key_is_longer_than_its_column_is_refused_with_the_fix(
    database_url: str,
) -> None:
    # (was: SQLite kept a key longer than its column's 64 characters, and PostgreSQL
    # refused it with its own words; request_key's keys are 64 hex digits, a key of one's
    # own may be longer)
    store = SQLCallStore(database_url)
    with pytest.raises(DurableDataError, match=r"its key has 65 characters .* at most 64"):
        await store.aput(_recorded("k" * 65, "m-1", "one", time.time()))
    # (was: aget of such a key found nothing, silently, though no call can be under it)
    with pytest.raises(DurableDataError, match=r"read a .* its key has 65 characters .* most 64"):
        await store.aget("k" * 65)
    fits = _recorded(hashlib.sha256(b"k" * 65).hexdigest(), "m-1", "one", time.time())
    await store.aput(fits)
    assert await store.aget(fits.key) == fits
    assert await store.acandidates("openai", "m-1", 10) == [fits]  # (nothing else written)


async def test_calls_of_a_model_with_a_long_name_are_offered_first(database_url: str) -> None:
    # (the columns hold 255 characters: a longer name was cut there, so it never matched the
    # model asked for, and two long names that begin alike matched each other)
    store = SQLCallStore(database_url)
    one, two = "m" * 255 + "-one", "m" * 255 + "-two"
    now = time.time()
    await store.aput(_recorded("k1", one, "one", now - 10))
    await store.aput(_recorded("k2", two, "two", now - 5))
    await store.aput(_recorded("k3", "m-short", "short", now))
    assert [each.key for each in await store.acandidates("openai", one, 10)] == ["k1", "k3", "k2"]
    assert [each.key for each in await store.acandidates("openai", two, 1)] == ["k2"]
    assert await store.aget("k1") == _recorded("k1", one, "one", now - 10)  # read back whole


async def test_a_call_whose_texts_hold_a_lone_surrogate_is_recorded_and_read_back_the_same(
    database_url: str,
) -> None:
    store = SQLCallStore(database_url)
    broken = "caf\udce9 menu"  # (a file name read with surrogateescape, say)
    recorded = _recorded("k1", "m-1", broken, time.time())
    recorded = RecordedCall("k1", recorded.request, (broken, *recorded.events[1:]), 1.0)
    await store.aput(recorded)
    assert await store.aget("k1") == recorded


def _waits_for_a_lock(monitor: sqlalchemy.Connection) -> bool:
    query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    return bool(monitor.execute(sqlalchemy.text(query)).scalar())


async def test_two_processes_recording_one_call_at_once_keep_the_later(
    postgres: PostgresServer,
) -> None:
    # Two replicas that missed the same call both recorded it: the second's insert waited
    # for the first's, then failed on the key (a DurableDatabaseError: the call failed).
    url = postgres.create_database(f"calls_{time.monotonic_ns()}")
    store = SQLCallStore(url)
    await store.aput(_recorded("k0", "m-1", "zero", time.time()))  # the table made
    engine = sqlalchemy.create_engine(url.replace("postgresql:", "postgresql+psycopg:"))
    mine = _recorded("k1", "m-1", "mine", time.time())
    try:
        with engine.connect() as other, engine.connect() as monitor:
            other.execute(  # the other replica's recording, not committed yet
                sqlalchemy.text(
                    f"INSERT INTO {CALLS_TABLE} (key, provider, model, request, events, "
                    "recorded_at) VALUES ('k1', 'openai', 'm-1', '{}', '[]', 0)"
                )
            )
            put = asyncio.ensure_future(store.aput(mine))
            while not await asyncio.to_thread(_waits_for_a_lock, monitor):
                assert not put.done(), put.exception()  # (it did not wait: a failure)
            other.commit()
            await put
    finally:
        engine.dispose()
    assert await store.aget("k1") == mine


async def test_a_call_store_blocked_by_another_sessions_lock_fails_within_its_bound(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table another session keeps locked (its transaction open) is an error, not a hang."""
    monkeypatch.setattr(llm_records, "_SERVER_WAIT", 0.5)  # (read when the engine is made)
    url = postgres.create_database(f"calls_locked_{time.monotonic_ns()}")
    store = SQLCallStore(url)
    await store.aput(_recorded("k0", "m-1", "zero", time.time()))  # the table made
    with held_by_another_session(url, f"LOCK TABLE {CALLS_TABLE} IN ACCESS EXCLUSIVE MODE"):
        with pytest.raises(DurableDatabaseError, match=r"stayed locked for 0.5 s.*end that"):
            await store.aput(_recorded("k1", "m-1", "one", time.time()))
        with pytest.raises(DurableDatabaseError, match="stayed locked"):
            await store.aget("k0")
    assert (await store.aget("k0")) is not None


async def test_the_engine_of_a_database_used_long_ago_is_disposed(tmp_path: Path) -> None:
    # (one engine was kept per URL for the life of the process: a pool of connections each,
    # a descriptor of each SQLite file that was ever used, kept open)
    paths = [tmp_path / f"records{index}.sqlite" for index in range(100)]
    stores = [SQLCallStore(f"sqlite:///{path}") for path in paths]
    now = time.time()

    async def use(index: int) -> None:
        await stores[index].aput(_recorded(paths[index].name, "m", paths[index].name, now))

    kept = await akept_until_let_go(paths[:-1], use)  # one database too many: the oldest let go
    assert kept > 2
    assert open_files(paths[1]) == 1  # (the oldest only)
    journal = SQLRunJournal("p", f"sqlite:///{paths[-1]}")  # (the journals share the engines)
    await journal.aappend({"at": 1})
    assert open_files(paths[1]) == 0  # one database too many again: the oldest let go
    assert open_files(paths[-1]) == 1
    assert await stores[0].aget(paths[0].name) is not None  # made again
    assert open_files(paths[0]) == 1
    assert open_files(paths[2]) == 0  # (then the next oldest let go)
    assert await journal.aload() == [{"at": 1}]


async def test_a_sql_run_journal_keeps_each_pipelines_records_in_order(database_url: str) -> None:
    one = SQLRunJournal("PIPE>ONE", database_url)
    two = SQLRunJournal("PIPE>TWO", database_url)
    assert await one.aload() == []
    await one.aappend({"kind": "submitting", "tag": "t1", "requests": [["k", "c"]]})
    await two.aappend({"kind": "submitting", "tag": "t9"})
    await one.aappend({"kind": "submitted", "tag": "t1", "batch": "b-1"})
    assert await SQLRunJournal("PIPE>ONE", database_url).aload() == [
        {"kind": "submitting", "tag": "t1", "requests": [["k", "c"]]},
        {"kind": "submitted", "tag": "t1", "batch": "b-1"},
    ]
    await one.aclear()
    assert await one.aload() == []
    assert await two.aload() == [{"kind": "submitting", "tag": "t9"}]


async def test_a_journal_record_whose_text_holds_a_lone_surrogate_is_kept_and_read_back(
    database_url: str,
) -> None:
    # (was: the record was written as UTF-8 JSON text, which no driver can encode with a
    # lone surrogate in it: the append failed, where a recorded call's text was escaped)
    journal = SQLRunJournal("PIPE", database_url)
    await journal.aappend({"kind": "submitting", "tag": "caf\ud800", "note": "é"})
    assert await SQLRunJournal("PIPE", database_url).aload() == [
        {"kind": "submitting", "tag": "caf\ud800", "note": "é"}
    ]


async def test_pipelines_whose_long_names_begin_alike_keep_their_journals_apart(
    database_url: str,
) -> None:
    # (the column holds 255 characters: a longer name was cut there, so two such names
    # shared one journal, and one pipeline's batch run read the other's records)
    one = SQLRunJournal("P" * 255 + "-one", database_url)
    two = SQLRunJournal("P" * 255 + "-two", database_url)
    await one.aappend({"kind": "submitting", "tag": "t1"})
    assert await two.aload() == []
    await two.aappend({"kind": "submitting", "tag": "t2"})
    assert await SQLRunJournal("P" * 255 + "-one", database_url).aload() == [
        {"kind": "submitting", "tag": "t1"}
    ]
    await one.aclear()
    assert await two.aload() == [{"kind": "submitting", "tag": "t2"}]


@pytest.mark.parametrize(
    "name", ["caf\udce9", "P" * 189 + "\udce9" + "P" * 100], ids=["short", "long"]
)
async def test_a_pipeline_whose_name_holds_a_lone_surrogate_keeps_its_journal(
    database_url: str, name: str
) -> None:
    # (was: a name of 255 characters or fewer was written as it is, and a longer one kept
    # its first 190 characters before its hash: no driver can encode a lone surrogate, so
    # every use of the journal failed with a raw UnicodeEncodeError)
    journal = SQLRunJournal(name, database_url)
    await journal.aappend({"kind": "submitting", "tag": "t1"})
    escaped = SQLRunJournal(name.encode("utf-8", "backslashreplace").decode(), database_url)
    await escaped.aappend({"kind": "submitting", "tag": "t2"})  # (its escape, as text)
    assert await SQLRunJournal(name, database_url).aload() == [{"kind": "submitting", "tag": "t1"}]
    assert await escaped.aload() == [{"kind": "submitting", "tag": "t2"}]
    await journal.aclear()
    assert await journal.aload() == []
    assert await escaped.aload() == [{"kind": "submitting", "tag": "t2"}]


async def test_the_keys_of_ordinary_names_stay_as_they_were(database_url: str) -> None:
    # (names kept before the surrogates were escaped are found again under the same key)
    long = "P" * 300
    await SQLRunJournal("PIPE", database_url).aappend({"kind": "submitting", "tag": "t1"})
    await SQLRunJournal(long, database_url).aappend({"kind": "submitting", "tag": "t2"})
    engine = sqlalchemy.create_engine(database_url.replace("postgresql:", "postgresql+psycopg:"))
    with engine.connect() as connection:
        keys = connection.execute(
            sqlalchemy.text(f"SELECT pipeline FROM {JOURNAL_TABLE} ORDER BY id")
        ).scalars()
        assert list(keys) == [
            "PIPE",
            "P" * 190 + "#" + hashlib.sha256(long.encode()).hexdigest(),
        ]
    engine.dispose()


async def test_a_text_the_driver_cannot_encode_is_told_with_the_fix(database_url: str) -> None:
    # (was: the driver's UnicodeEncodeError, raw, where a database's refusal is a
    # DurableDataError that names the table and the fix)
    store = SQLCallStore(database_url)
    with pytest.raises(DurableDataError) as refused:
        await store.aget("caf\udce9")
    message = str(refused.value)
    assert message.startswith("Could not read a recorded call in the database ")
    assert f"a text of the table {CALLS_TABLE} (UnicodeEncodeError: " in message
    assert "give that value as proper text" in message
    assert isinstance(refused.value, ValueError)  # (as UnicodeEncodeError is)
    assert await store.aget("cafe") is None  # the store works on


async def test_a_journal_record_that_is_not_json_is_refused_with_the_fix(tmp_path: Path) -> None:
    # (was: json.dumps's own TypeError, which said neither whose record nor what to do)
    journal = SQLRunJournal("PIPE", f"sqlite:///{tmp_path / 'records.sqlite'}")
    with pytest.raises(DurableRecordError) as refused:
        await journal.aappend({"kind": "submitting", "at": {1, 2}})
    message = str(refused.value)
    assert "'PIPE' must be JSON" in message
    assert "Convert its values" in message
    assert isinstance(refused.value, TypeError)  # (as json.dumps's was)
    await journal.aappend({"kind": "submitted"})
    assert await journal.aload() == [{"kind": "submitted"}]  # nothing of the refused one


async def test_a_record_the_database_refuses_is_told_as_such_not_as_a_connection_problem(
    database_url: str,
) -> None:
    # a journal table made by something else: one record per pipeline (a unique constraint)
    engine = sqlalchemy.create_engine(database_url.replace("postgresql:", "postgresql+psycopg:"))
    identity = "SERIAL" if database_url.startswith("postgresql") else "INTEGER"
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.text(
                f"CREATE TABLE {JOURNAL_TABLE} (id {identity} PRIMARY KEY, "
                "pipeline VARCHAR(255) NOT NULL UNIQUE, record TEXT NOT NULL)"
            )
        )
    engine.dispose()
    journal = SQLRunJournal("PIPE", database_url)
    await journal.aappend({"kind": "submitting", "tag": "t1"})
    with pytest.raises(DurableDataError) as refused:
        await journal.aappend({"kind": "submitted", "tag": "t1"})
    assert not isinstance(refused.value, DurableDatabaseError)
    message = str(refused.value)
    assert "refused it (IntegrityError" in message
    assert f"its table {JOURNAL_TABLE} is not as this library makes it" in message
    assert "reach" not in message
    assert await journal.aload() == [{"kind": "submitting", "tag": "t1"}]  # nothing half-written


async def test_a_database_that_cannot_be_reached_is_told_as_such(tmp_path: Path) -> None:
    store = SQLCallStore(f"sqlite:///{tmp_path / 'missing' / 'calls.sqlite'}")
    with pytest.raises(DurableDatabaseError, match="could not reach the database") as failed:
        await store.aget("k1")
    assert not isinstance(failed.value, DurableDataError)


async def test_without_a_url_they_use_the_database_of_durable_runs(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    use_database(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    try:
        await SQLRunJournal("P").aappend({"kind": "submitting", "tag": "t"})
        assert await SQLRunJournal("P", f"sqlite:///{tmp_path / 'runs.sqlite'}").aload() == [
            {"kind": "submitting", "tag": "t"}
        ]
    finally:
        from miniagents.ext.dbos import DEFAULT_DATABASE_URL

        use_database(DEFAULT_DATABASE_URL)


def test_a_url_that_cannot_hold_them_is_refused() -> None:
    with pytest.raises(DurableConfigurationError):
        SQLCallStore("mysql://somewhere/db")
    with pytest.raises(DurableConfigurationError):
        SQLRunJournal("P", "sqlite:///:memory:")


@pytest.mark.parametrize("what", ["call", "journal"])
async def test_a_nul_character_that_postgres_refuses_is_told_with_the_table_and_the_fix(
    postgres: PostgresServer, what: str
) -> None:
    # PostgreSQL keeps no NUL in text (SQLite does): our error, not psycopg's DataError
    url = postgres.create_database(f"nul_{what}_{time.monotonic_ns()}")
    if what == "call":
        table = CALLS_TABLE
        store = SQLCallStore(url)
        with pytest.raises(DurableDataError) as refused:
            await store.aput(_recorded("k1", "m\x00-1", "one", time.time()))
        assert await store.aget("k1") is None  # nothing written
    else:
        table = JOURNAL_TABLE
        journal = SQLRunJournal("PIPE\x00", url)
        with pytest.raises(DurableDataError) as refused:
            await journal.aappend({"kind": "submitting", "tag": "t1"})
        assert await SQLRunJournal("PIPE", url).aload() == []
    message = str(refused.value)
    assert "refused it (DataError" in message
    assert "a NUL character" in message
    assert f"its table {table}" in message
    assert "remove that value" in message
    assert type(refused.value.__cause__).__module__.startswith("sqlalchemy")


async def test_one_run_of_a_pipeline_at_a_time_holds_its_sql_journal(database_url: str) -> None:
    # (was: only a file journal was held: two runs of one durable pipeline in batch mode
    # both opened its journal in the database, the second took the first's batches as its
    # own, and the first to end cleared the other's records)
    mode = BatchMode()
    first = mode.start("PIPE", SQLRunJournal("PIPE", database_url))
    await first.aopen()
    await SQLRunJournal("PIPE", database_url).aappend({"kind": "submitting", "tag": "t1"})
    second = mode.start("PIPE", SQLRunJournal("PIPE", database_url))
    with pytest.raises(DurableConfigurationError) as refused:
        await second.aopen()
    await second.aclose("stopped")  # refused: it clears nothing of the first's
    assert await SQLRunJournal("PIPE", database_url).aload() == [
        {"kind": "submitting", "tag": "t1"}
    ]
    message = str(refused.value)
    assert message.startswith("Another run of the pipeline 'PIPE'")
    assert "pipeline(..., durable='other-id')" in message
    other = await SQLRunJournal("OTHER", database_url).ahold("OTHER")  # another pipeline's
    await other.arelease()
    await first.aclose("completed")  # lets go of it, its records cleared
    assert await SQLRunJournal("PIPE", database_url).aload() == []
    hold = await SQLRunJournal("PIPE", database_url).ahold("PIPE")  # the next run holds it
    await hold.arelease()
    await hold.arelease()  # (again: nothing)
    await (await SQLRunJournal("PIPE", database_url).ahold("PIPE")).arelease()
