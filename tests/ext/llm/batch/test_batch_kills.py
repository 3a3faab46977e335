"""A batch pipeline killed with SIGKILL while its batches run, then started again.

Each test runs ``batch_child.py`` (six items in batch mode, the real openai SDK against the
test's fake server), kills it once its batch is made (never after a sleep: when the
server holds the batch, and the child's journal has noted it, or not yet), lets the batch
end, starts the child again and checks, with the server's record of batches: no request
was submitted twice, no item was lost, the output equals an uninterrupted run's, and the
journal is gone once the run completed.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from miniagents.testing import FakeLLMServer, ToolCall
from tests.subprocesses import ROOT, ProcessGroups, killed

CHILD = Path(__file__).with_name("batch_child.py")
TIMEOUT = 120.0  # seconds a child may take, at most, on a loaded machine


class Child:
    """One run of ``batch_child.py``, ended with every process it started at the exit of
    ``started``, whatever happened."""

    def __init__(self, started: ProcessGroups, llm: FakeLLMServer, **env: str) -> None:
        pipe = subprocess.PIPE
        self.process = started.python(
            [str(CHILD)], ROOT, llm=llm, env=env, stdout=pipe, stderr=pipe
        )

    def kill(self) -> None:
        """SIGKILL, to the child and every process it started: nothing of them runs after this."""
        killed(self.process, TIMEOUT)

    def results(self) -> dict[int, list[str]]:
        """Wait for the child's end (it must succeed); its results by item."""
        out, err = self.process.communicate(timeout=TIMEOUT)
        assert self.process.returncode == 0, f"the child failed:\n{err[-4000:]}"
        found: dict[int, list[str]] = {}
        for line in out.splitlines():
            if line.startswith("RESULT "):
                _, index, replies = line.split(" ", 2)
                found[int(index)] = json.loads(replies)
        return found


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition`` holds (a file the child writes, read again; bounded)."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"the child never {what}"
        time.sleep(0.01)


def _noted(journal: Path) -> bool:
    return journal.exists() and '"submitted"' in journal.read_text(encoding="utf-8")


def _script_tools(llm: FakeLLMServer) -> None:
    """Each item: the model calls ``shout``, then answers (two calls, two batches)."""
    for index in range(6):
        llm.reply(tool_calls=[ToolCall("shout", {"text": f"item {index}"}, id=f"c{index}")])
    llm.reply(["done"], times=6)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[str]]:
    """The results of the run no one killed (items echoed)."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    with FakeLLMServer() as llm, ProcessGroups() as started:
        results = Child(started, llm, JOURNAL=str(folder / "journal.jsonl")).results()
        assert len(llm.batches.created) == 1
    return results


@pytest.mark.parametrize("stalled", [False, True], ids=["noted", "creation-unanswered"])
def test_a_killed_batch_pipeline_started_again_pays_for_no_request_twice(
    stalled: bool, tmp_path: Path, uninterrupted: dict[int, list[str]]
) -> None:
    journal = tmp_path / "journal.jsonl"
    with FakeLLMServer() as llm, ProcessGroups() as started:
        llm.batches.hold()
        if stalled:  # killed once the batch is made, before the child hears of it
            llm.batches.stall_next_create()
        child = Child(started, llm, JOURNAL=str(journal))
        (batch,) = llm.batches.wait_created(1, TIMEOUT)
        if not stalled:
            _wait_for(lambda: _noted(journal), "noted its batch")
        child.kill()
        assert journal.exists()
        llm.batches.release()
        results = Child(started, llm, JOURNAL=str(journal)).results()
        assert llm.batches.created == [batch]  # no request submitted twice
        assert len(set(batch.custom_ids)) == 6
        assert not [request for request in llm.requests if "/chat/" in request.path]
    assert results == uninterrupted
    assert not journal.exists()  # the run completed: its journal is gone


def test_a_killed_agent_of_two_calls_makes_only_its_second_call_after_the_restart(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal.jsonl"
    with FakeLLMServer() as llm, ProcessGroups() as started:
        _script_tools(llm)
        llm.batches.hold()
        child = Child(started, llm, JOURNAL=str(journal), MODE="tools")
        (first,) = llm.batches.wait_created(1, TIMEOUT)
        _wait_for(lambda: _noted(journal), "noted its batch")
        child.kill()
        llm.batches.release()
        results = Child(started, llm, JOURNAL=str(journal), MODE="tools").results()
        created = llm.batches.created
    assert [len(batch.requests) for batch in created] == [6, 6]  # the first batch once
    assert created[0] is first
    assert sorted(results) == list(range(6))
    for called, answered, said in results.values():  # the call, the tool's result, the answer
        assert answered == json.loads(called)["text"].upper()
        assert said == "done"
    assert sorted(replies[1] for replies in results.values()) == [f"ITEM {n}" for n in range(6)]


def test_a_killed_durable_batch_pipeline_keeps_its_batches_in_the_database(
    tmp_path: Path, uninterrupted: dict[int, list[str]]
) -> None:
    database = tmp_path / "runs.sqlite"
    url = f"sqlite:///{database}"

    def noted() -> bool:
        try:
            with contextlib.closing(sqlite3.connect(database)) as connection:
                rows = connection.execute("SELECT record FROM miniagents_batch_journal").fetchall()
        except sqlite3.Error:  # not made yet
            return False
        return any('"submitted"' in row[0] for row in rows)

    with FakeLLMServer() as llm, ProcessGroups() as started:
        llm.batches.hold()
        child = Child(started, llm, MODE="durable", DB_URL=url, JOURNAL="")
        (batch,) = llm.batches.wait_created(1, TIMEOUT)
        _wait_for(noted, "noted its batch in the database")
        child.kill()
        llm.batches.release()
        results = Child(started, llm, MODE="durable", DB_URL=url, JOURNAL="").results()
        assert llm.batches.created == [batch]
        assert not [request for request in llm.requests if "/chat/" in request.path]
    assert results == uninterrupted
    with contextlib.closing(sqlite3.connect(database)) as connection:
        assert connection.execute("SELECT COUNT(*) FROM miniagents_batch_journal").fetchone() == (
            0,
        )
