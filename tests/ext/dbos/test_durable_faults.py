"""Bad input and faults of durable runs: clear errors, at start, in bounded time.

An unreachable database and a locked SQLite file fail the run at start with a
``DurableDatabaseError`` (never a hang); a value that cannot be recorded fails it with a
``DurableRecordError`` naming the field before anything runs; a run whose code changed
between its crash and its recovery is refused (``DurableVersionError``), not mixed.
None of these launch DBOS in the test's process.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
from pathlib import Path

import pytest

from miniagents import InteractionContext, Message, MiniAgents, miniagent
from miniagents.errors import MiniAgentsError
from miniagents.ext.dbos import (
    DurableConfigurationError,
    DurableDatabaseError,
    DurableRecordError,
    durable,
    workflow_id,
)
from miniagents.testing import FakeLLMServer, ToolCall
from tests.ext.dbos.test_durable_kills import MAIN, Child, _script
from tests.subprocesses import run_python


@miniagent
async def remember(ctx: InteractionContext, item: object = None) -> None:
    """Reply with what it was given (it must not run when its inputs cannot be recorded)."""
    raise AssertionError("the agent ran although its inputs could not be recorded")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_postgres_fails_at_start() -> None:
    agent = durable(
        remember.fork(alias="REMEMBER_PG"),
        database_url=f"postgresql://nobody@127.0.0.1:{_free_port()}/runs",
    )
    async with MiniAgents():
        with pytest.raises(DurableDatabaseError, match="cannot be reached") as caught:
            await agent.inquire("Hi")
    assert isinstance(caught.value, (MiniAgentsError, ConnectionError))


async def test_a_locked_sqlite_file_fails_at_start(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing, for as long as it likes
    try:
        agent = durable(remember.fork(alias="REMEMBER_LOCKED"), database_url=f"sqlite:///{path}")
        async with MiniAgents():
            with pytest.raises(DurableDatabaseError, match="locked"):
                await agent.inquire("Hi")
    finally:
        holder.close()


async def test_a_missing_folder_fails_at_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nowhere' / 'runs.sqlite'}"
    agent = durable(remember.fork(alias="REMEMBER_NOWHERE"), database_url=url)
    async with MiniAgents():
        with pytest.raises(DurableDatabaseError, match="does not exist"):
            await agent.inquire("Hi")


async def test_a_field_that_cannot_be_recorded_is_named_before_anything_runs(
    tmp_path: Path,
) -> None:
    database = tmp_path / "unused.db"
    agent = durable(remember.fork(alias="REMEMBER_FIELD"), database_url=f"sqlite:///{database}")
    async with MiniAgents():
        with pytest.raises(DurableRecordError, match="the field 'handle' of the input message 2"):
            await agent.inquire([Message(text="ok"), Message(text="x", handle=threading.Lock())])
        with pytest.raises(DurableRecordError, match="the argument 'item'"):
            await agent.inquire("Hi", item=threading.Lock())
    assert not database.exists()  # nothing started, DBOS not even launched


def test_two_different_agents_cannot_share_an_alias() -> None:
    durable(remember.fork(alias="REMEMBER_TWICE"))
    durable(remember.fork(alias="REMEMBER_TWICE"))  # the same agent again: fine
    with pytest.raises(DurableConfigurationError, match="Two different durable agents"):
        durable(remember.fork(alias="REMEMBER_TWICE", item="other"))


def test_without_dbos_the_error_says_how_to_install_it(tmp_path: Path) -> None:
    program = (
        "import sys\n"
        "sys.modules['dbos'] = None  # as if it were not installed\n"
        "from miniagents import miniagent\n"
        "from miniagents.ext.dbos import durable\n"
        "from miniagents.errors import MissingExtraError\n"
        "@miniagent\n"
        "async def echo(ctx) -> None:\n"
        "    ctx.reply(ctx.messages)\n"
        "try:\n"
        "    durable(echo)\n"
        "except MissingExtraError as error:\n"
        "    print(error)\n"
    )
    done = run_python(["-c", program], tmp_path)
    assert done.returncode == 0, done.stderr
    assert 'pip install "miniagents[dbos]"' in done.stdout


def test_a_workflow_id_must_be_a_non_empty_string() -> None:
    with pytest.raises(DurableRecordError, match="non-empty string"), workflow_id(""):
        pass


def test_a_run_whose_code_changed_is_refused_not_mixed(
    fake_llm: FakeLLMServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    _script(fake_llm)
    first = Child(fake_llm, tmp_path, url, HANG_IN_LOOKUP="1", SYSTEM="Be brief.")
    first.read_until("EVENT lookup")
    first.kill()

    changed = Child(fake_llm, tmp_path, url, SYSTEM="Be verbose.")  # other code
    returncode, stderr = changed.failure()

    assert returncode != 0
    assert "DurableVersionError" in stderr
    assert "was started by other code" in stderr
    assert len(fake_llm.requests) == 2  # nothing of the changed code called the model


def test_the_same_workflow_id_runs_once(fake_llm: FakeLLMServer, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    fake_llm.reply(
        tokens=["Noting."], tool_calls=[ToolCall("note", {"text": "a"}, id="c1")], for_model=MAIN
    )
    fake_llm.reply(tokens=["Done."], for_model=MAIN)
    first = Child(fake_llm, tmp_path, url).finish()
    second = Child(fake_llm, tmp_path, url).finish()

    assert len(fake_llm.requests) == 2  # the second run called nothing
    assert (tmp_path / "side_effects.txt").read_text() == "a\n"
    assert second.reply == first.reply


ABANDONED = """
import asyncio

from miniagents import MiniAgents
from miniagents.ext.dbos import durable, workflow_id
from miniagents.ext.llm.offline import offline_agent

slow = durable(
    offline_agent.fork(alias="SLOW", reply="one two three", token_delay=0.05),
    database_url="sqlite:///runs.sqlite",
)


async def main() -> None:
    async with MiniAgents():
        with workflow_id("w"):
            reply = slow.inquire("Hi")
        async for promise in reply:
            async for token in promise:
                print("first reader:", token.strip())
                break  # gives up after one token
            break
    async with MiniAgents():
        with workflow_id("w"):
            print("asked again:", await slow.inquire("Hi"))


asyncio.run(main())
"""


def test_a_run_its_reader_abandoned_runs_again_when_asked_again(tmp_path: Path) -> None:
    done = run_python(["-c", ABANDONED], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["first reader: one", "asked again: one two three"]
