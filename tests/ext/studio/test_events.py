"""A run's chunks: what a recorder writes, read back as the page reads it.

What a recorder writes is read back as the JSON values the page reads, and a chunk that
names anything but a plain value's type is refused, never followed.
"""

from __future__ import annotations

import enum
import json
import pickle
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from miniagents import Message
from miniagents.ext.llm.pricing import finish_usage
from miniagents.ext.llm.provider import Finish, ToolCallStart
from miniagents.ext.studio import RunStore
from miniagents.ext.studio.errors import StudioStoreError
from miniagents.ext.studio.events import CallEnded, batch_json, decode_batch, encode_batch
from miniagents.ext.studio.store import RunInfo
from miniagents.ext.tools.approval import ToolDecision


class Mood(str, enum.Enum):  # noqa: UP042  (its str() is "Mood.CALM"; JSON writes "calm")
    CALM = "calm"


class Level(enum.IntEnum):
    HIGH = 3


class Note(Message):
    mood: Mood = Mood.CALM


class Odd:
    def __repr__(self) -> str:
        return "Odd()"


def test_a_batch_is_read_back_as_the_json_values_of_what_was_queued() -> None:
    batch = [
        ("node", 1, None, "agent", "WRITER", 1_800_000_000_000_000_000, None),
        ("message", 1, "reply", 0, None, 5, "plain text", None),
        ("message", 1, "reply", 1, 4, 5, Note(text="hi"), None),
        ("end", 1, 6, ValueError("no"), None),
        ("token", 2, 7, ToolCallStart("c1", "search")),
        ("decision", 3, 8, ToolDecision(approved=False, reason="no", decided_by="ann")),
        ("odd", Mood.CALM, Level.HIGH, [1, (2, 3)], {"k": (4,)}, 2.5, True, Odd()),
    ]
    expected = [
        ["node", 1, None, "agent", "WRITER", 1_800_000_000_000_000_000, None],
        ["message", 1, "reply", 0, None, 5, "plain text", None],
        [
            "message",
            1,
            "reply",
            1,
            4,
            5,
            {"class": "Note", "text": "hi", "fields": {"mood": "calm"}},
            None,
        ],
        ["end", 1, 6, {"type": "ValueError", "message": "no"}, None],
        ["token", 2, 7, ["call", "c1", "search"]],
        [
            "decision",
            3,
            8,
            {"approved": False, "decided_by": "ann", "reason": "no", "edited": False},
        ],
        ["odd", "calm", 3, [1, [2, 3]], {"k": [4]}, 2.5, True, "Odd()"],
    ]
    chunk = encode_batch(batch)
    assert json.loads(batch_json(chunk)) == expected  # (what the page reads)
    assert json.loads(json.dumps(decode_batch(chunk))) == expected
    assert decode_batch(batch_json(chunk)) == expected  # (a chunk kept as JSON text reads too)


class _Runs:
    """A pickle whose loading would call ``os.system`` (what a foreign chunk might hold)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (f"touch {self.marker}",)


def _store_with_chunk(path: Path, data: bytes | str, count: int = 1) -> RunStore:
    store = RunStore(path)
    store.open_run(
        RunInfo(
            id="r1",
            name="run",
            command=(),
            cwd=".",
            started=0.0,
            ended=None,
            status="running",
            error=None,
            forked_from=None,
            fork=None,
        )
    )
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute(
            "INSERT INTO studio_chunks (run, first, count, data) VALUES ('r1', 1, ?, ?)",
            (count, data),
        )
    return store


def test_a_chunk_that_names_a_function_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    store = _store_with_chunk(tmp_path / "runs.sqlite", pickle.dumps([_Runs(marker)]))
    try:
        with pytest.raises(
            StudioStoreError,
            match=r"cannot be read \(StudioStoreError: A recorded chunk names posix\.system",
        ):
            store.chunks("r1")
        with pytest.raises(StudioStoreError, match="Delete the run, or give another store"):
            store.events("r1")
    finally:
        store.close()
    assert not marker.exists()


def test_a_chunk_kept_as_json_text_is_read_as_it_is(tmp_path: Path) -> None:
    text = '[["node",1,null,"agent","OLD",1000000000,null]]'
    store = _store_with_chunk(tmp_path / "runs.sqlite", text)
    try:
        assert store.chunks("r1") == [(1, 1, text)]
        [event] = store.events("r1")
        assert (event.kind, event.t, event.data["name"]) == ("node", 1.0, "OLD")
    finally:
        store.close()


def test_a_reader_that_has_part_of_a_chunk_gets_the_rest_of_it(tmp_path: Path) -> None:
    batch = [("end", node, node * 10, None, None) for node in (1, 2, 3)]
    store = _store_with_chunk(tmp_path / "runs.sqlite", encode_batch(batch), count=3)
    try:
        [(first, count, text)] = store.chunks("r1", after=1)
        assert (first, count, json.loads(text)) == (
            2,
            2,
            [["end", 2, 20, None, None], ["end", 3, 30, None, None]],
        )
        assert [event.data["id"] for event in store.events("r1", after=2)] == [3]
    finally:
        store.close()


@pytest.mark.parametrize(
    ("data", "said"),
    [
        ("5", "holds int where a recorder writes a list of events"),
        ('{"node": 1}', "holds dict where"),
        ('"abc"', "holds str where"),
        ("[1, 2]", "holds the event '1', not an array that starts with its kind"),
        ('[["node",1,null,"agent","A",1000,null], []]', "holds the event '[]', not an array"),
        ('[["node", 1]]', "of 2 values; a recorder writes one of kind 'node' as 7"),
        (pickle.dumps([(1, 2)]), "holds the event '(1, 2)', not an array"),
        (pickle.dumps({"node": 1}), "holds dict where"),
    ],
)
def test_a_chunk_not_shaped_as_a_recorder_writes_one_is_refused_saying_what_is_wrong(
    tmp_path: Path, data: str | bytes, said: str
) -> None:
    """A chunk of JSON (or plain values) that is no list of events as a recorder writes
    them is refused as the store's error, saying what is wrong, to the page and to
    :meth:`RunStore.events`. (It was read: a number failed deep in Python with a bare
    ``TypeError``, an object gave its keys as events, a short event reached the page.)"""
    store = _store_with_chunk(tmp_path / "runs.sqlite", data)
    try:
        with pytest.raises(StudioStoreError, match="cannot be read") as raised:
            store.chunks("r1")
        assert said in str(raised.value)
        with pytest.raises(StudioStoreError, match="Delete the run, or give another store"):
            store.events("r1")
    finally:
        store.close()


@pytest.mark.parametrize(
    "text",
    [
        '[["end",1,"noon",null,null]]',
        '[["call",1,null,1000,null]]',
        '[["call_end",1,1000,[1],null]]',
    ],
)
def test_an_event_whose_values_are_not_a_recorders_is_refused_as_the_store_reads_it(
    tmp_path: Path, text: str
) -> None:
    """An event of its kind's length whose values are not what a recorder writes (a time
    that is no number, an object that is not one) is refused by :meth:`RunStore.events` as
    the store's error (it raised Python's ``TypeError`` or ``ValueError``); the page gets
    the arrays as they are."""
    store = _store_with_chunk(tmp_path / "runs.sqlite", text)
    try:
        assert json.loads(store.chunks("r1")[0][2]) == json.loads(text)
        with pytest.raises(StudioStoreError, match="cannot be read"):
            store.events("r1")
    finally:
        store.close()


def test_an_event_of_a_kind_this_version_does_not_know_is_read_as_it_is(tmp_path: Path) -> None:
    text = '[["node",1,null,"agent","A",1000000000,null],["later","x",{"y":1}]]'
    store = _store_with_chunk(tmp_path / "runs.sqlite", text, count=2)
    try:
        assert json.loads(store.chunks("r1")[0][2]) == json.loads(text)
        assert [event.kind for event in store.events("r1")] == ["node", "later"]
    finally:
        store.close()


@pytest.mark.parametrize(
    "finish",
    [
        Finish("stop", 1000, 100),
        Finish("stop", 1000, 100, replayed=True),  # a call cache's: 0.0
        Finish("stop", 1000, 100, batch_id="batch-1"),  # the batch price
        Finish("stop", 1000, 100, model="gpt-4o-2024-05-13"),  # a dated model, priced apart
        Finish("stop", None, 100),  # no prompt count: no price
    ],
    ids=["live", "replayed", "batch", "dated", "unreported"],
)
def test_a_calls_cost_in_the_studio_is_the_budgets(finish: Finish) -> None:
    # The studio writes a call's cost as the budgets price it (pricing.finish_usage): the
    # model the API answered with, if the table knows it; 0.0 replayed; a batch's price.
    written = CallEnded(finish, "gpt-4o", "openai").as_json()["cost_usd"]
    priced = finish_usage(finish, "gpt-4o", "openai").cost_usd
    assert written == (None if priced is None else pytest.approx(priced))
