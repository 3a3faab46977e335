"""Bad input and faults of durable runs: clear errors, at start, in bounded time.

An unreachable database and a locked SQLite file fail the run at start with a
``DurableDatabaseError`` (never a hang); a value that cannot be recorded fails it with a
``DurableRecordError`` naming the field before anything runs; a run whose code changed
between its crash and its recovery is refused (``DurableVersionError``), not mixed.
None of these launch DBOS in the test's process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
import sys
import threading
from pathlib import Path

import pytest

from miniagents import Message, MessageSequencePromise, MiniAgents
from miniagents.errors import MiniAgentsError, MissingExtraError
from miniagents.ext.dbos import (
    DurableConfigurationError,
    DurableRecordError,
    durable,
    workflow_id,
)
from miniagents.ext.dbos._engine import Engine, redacted
from miniagents.ext.dbos.durable import _input_id
from miniagents.testing import FakeLLMServer, ToolCall
from tests.ext.dbos.database_failures import afailure_at_start, remember, said_in_one_line
from tests.ext.dbos.killed_child import MAIN, Children, script
from tests.fakes.postgres import free_port
from tests.subprocesses import run_python


async def test_an_unreachable_postgres_fails_at_start() -> None:
    url = f"postgresql://nobody:secret@127.0.0.1:{free_port()}/runs"
    error = await afailure_at_start("REMEMBER_PG", url, match="cannot be reached")
    assert isinstance(error, (MiniAgentsError, ConnectionError))
    said = said_in_one_line(error)
    assert said.startswith("The database of durable runs postgresql://***@127.0.0.1:"), said
    assert said.endswith("check the URL, and that the server runs and accepts connections.")
    assert "secret" not in said


async def test_a_missing_postgres_driver_fails_at_start_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # (as if it were not installed)
    agent = durable(
        remember.fork(alias="REMEMBER_NO_DRIVER"),
        database_url=f"postgresql://nobody:secret@127.0.0.1:{free_port()}/runs",
    )
    async with MiniAgents():
        with pytest.raises(MissingExtraError) as caught:
            await agent.inquire("Hi")
    # this was "cannot be reached ...: check that the server runs", with no server asked
    said = str(caught.value)
    assert said.startswith(
        "The driver of the database of durable runs postgresql://***@127.0.0.1:"
    ), said
    assert "is not installed (ModuleNotFoundError: " in said, said
    assert said.endswith('pip install "miniagents[dbos]".'), said
    assert "cannot be reached" not in said, said
    assert "secret" not in said, said
    assert caught.value.__suppress_context__, "a library's traceback"


@pytest.mark.parametrize(
    ("url", "wrong"),
    [
        ("postgresql://nobody:secret@127.0.0.1:notaport/runs", "base 10: 'notaport'"),
        ("postgresql:/nobody:secret@127.0.0.1/runs", "Could not parse SQLAlchemy URL"),
        ("postgresql+nosuchdriver://nobody:secret@127.0.0.1/runs", "postgresql.nosuchdriver"),
    ],
)
async def test_a_url_that_cannot_be_read_fails_at_start_saying_what_is_wrong(
    url: str, wrong: str
) -> None:
    agent = durable(remember.fork(alias="REMEMBER_BAD_URL"), database_url=url)
    async with MiniAgents():
        with pytest.raises(DurableConfigurationError) as caught:
            await agent.inquire("Hi")
    # this was "cannot be reached (ValueError: ...): check ... that the server runs"
    said = str(caught.value)
    assert wrong in said, said
    assert "cannot be read" in said or "names a driver that SQLAlchemy does not know" in said
    assert "postgresql://" in said.partition("): ")[2], said  # (the fix: the URL's form)
    assert "cannot be reached" not in said, said
    assert "secret" not in said, said
    assert caught.value.__suppress_context__, "a library's traceback"


async def test_a_locked_sqlite_file_fails_at_start(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing, for as long as it likes
    try:
        error = await afailure_at_start("REMEMBER_LOCKED", f"sqlite:///{path}")
    finally:
        holder.close()
    assert said_in_one_line(error) == (
        f"The SQLite file {str(path)!r} of durable runs is locked by another process "
        "(database is locked; waited 5 s): stop that process, or give database_url another "
        "file."
    )


@pytest.mark.parametrize("content", ["random bytes", "a text file", "a broken header"])
async def test_a_corrupt_sqlite_file_fails_at_start_said_to_be_damaged(
    tmp_path: Path, content: str
) -> None:
    # it was "cannot be written (file is not a database); another process may hold it locked"
    path = tmp_path / "runs.sqlite"
    if content == "random bytes":
        path.write_bytes(bytes(range(256)) * 64)
    elif content == "a text file":
        path.write_text("not a database\n" * 1000)
    else:
        path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 84 + bytes(16284))
    said = said_in_one_line(await afailure_at_start("REMEMBER_CORRUPT", f"sqlite:///{path}"))
    assert said.startswith(
        f"The SQLite file {str(path)!r} (the database of durable runs) is not a SQLite "
        "database, or is damaged ("
    ), said
    assert said.endswith(
        "): move it away (its records are lost; the sqlite3 shell's .recover may save some), "
        "so that a new one is made there, or give database_url another file."
    )
    assert "locked" not in said


async def test_a_sqlite_file_that_cannot_be_opened_fails_at_start_saying_so(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.sqlite"
    path.symlink_to(tmp_path / "gone" / "runs.sqlite")  # a link to a file that cannot exist
    error = await afailure_at_start("REMEMBER_UNOPENED", f"sqlite:///{path}")
    assert said_in_one_line(error) == (
        f"The SQLite file {str(path)!r} of durable runs cannot be opened or written (unable "
        "to open database file): check that this process may read and write it and its "
        "folder, and that the disk has room."
    )


async def test_a_missing_folder_fails_at_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nowhere' / 'runs.sqlite'}"
    said_in_one_line(await afailure_at_start("REMEMBER_NOWHERE", url, match="does not exist"))


_CORRUPTED_LATER = """
import asyncio, sqlite3, sys
from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.ext.dbos import DurableDatabaseError, durable

@miniagent
async def echo(ctx: InteractionContext) -> None:
    ctx.reply(str(await ctx.message_promises))

@miniagent
async def own_database(ctx: InteractionContext) -> None:
    raise sqlite3.DatabaseError("database disk image is malformed")  # the agent's own

async def main() -> None:
    url = "sqlite:///" + sys.argv[2]
    agents = [durable(echo, database_url=url), durable(own_database, database_url=url)]
    async with MiniAgents():
        if sys.argv[1] == "first":
            print(await agents[0].inquire("Hi"))
            try:
                await agents[1].inquire("Hi")
            except Exception as error:  # the agent's error, as it is
                print(type(error).__module__, type(error).__name__, error)
            return
        try:
            await agents[0].inquire("a new run")
        except DurableDatabaseError as error:
            print("DurableDatabaseError:", error)
            print("cause:", error.__cause__, error.__suppress_context__)

asyncio.run(main())
"""


def test_a_sqlite_file_corrupted_in_the_middle_fails_a_new_run_in_one_line(
    tmp_path: Path,
) -> None:
    # a file with 4 KB of garbage in the middle: a raw SQLAlchemy traceback of 128 lines
    # when a new workflow started
    path = tmp_path / "runs.sqlite"
    (tmp_path / "program.py").write_text(_CORRUPTED_LATER)
    first = run_python(["program.py", "first", str(path)], tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "Hi",
        "sqlite3 DatabaseError database disk image is malformed",  # not DBOS's database
    ]
    # the page of the runs' table, overwritten (closing: a connection's own `with` commits only)
    with contextlib.closing(sqlite3.connect(path)) as database:
        (page,) = database.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'workflow_status'"
        ).fetchone()
        (size,) = database.execute("PRAGMA page_size").fetchone()
    with path.open("r+b") as file:
        file.seek((page - 1) * size)
        file.write(bytes(range(256)) * (size // 256))
    then = run_python(["program.py", "then", str(path)], tmp_path)
    assert then.returncode == 0, then.stderr
    assert then.stderr == ""
    assert then.stdout.splitlines() == [
        f"DurableDatabaseError: The SQLite file {str(path)!r} (the database of durable runs) "
        "is not a SQLite database, or is damaged (database disk image is malformed): move it "
        "away (its records are lost; the sqlite3 shell's .recover may save some), so that a "
        "new one is made there, or give database_url another file.",
        "cause: None True",
    ]


async def test_a_folder_for_the_sqlite_file_fails_at_start_naming_it(tmp_path: Path) -> None:
    folder = "is a folder: give database_url the path"
    await afailure_at_start("REMEMBER_FOLDER", f"sqlite:///{tmp_path}", match=folder)


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("sqlite://", "must be a sqlite:/// file path"),
        ("sqlite:///:memory:", "in-memory SQLite"),
        ("mysql://user:secret@db/runs", "must be a sqlite:/// file path or a postgresql://"),
    ],
)
def test_a_database_that_cannot_hold_runs_is_refused_when_the_agent_is_made(
    url: str, named: str
) -> None:
    with pytest.raises(DurableConfigurationError, match=named) as raised:
        durable(remember.fork(alias="REMEMBER_BAD_URL"), database_url=url)
    assert "secret" not in str(raised.value)  # (a password is never shown)


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
    children: Children, fake_llm: FakeLLMServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    script(fake_llm)
    first = children.start(fake_llm, tmp_path, url, HANG_IN_LOOKUP="1", SYSTEM="Be brief.")
    first.read_until("EVENT lookup")
    first.kill()

    changed = children.start(fake_llm, tmp_path, url, SYSTEM="Be verbose.")  # other code
    returncode, stderr = changed.failure()

    assert returncode != 0
    assert "DurableVersionError" in stderr
    assert "was started by other code" in stderr
    assert len(fake_llm.requests) == 2  # nothing of the changed code called the model


def test_the_same_workflow_id_runs_once(
    children: Children, fake_llm: FakeLLMServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    fake_llm.reply(
        tokens=["Noting."], tool_calls=[ToolCall("note", {"text": "a"}, id="c1")], for_model=MAIN
    )
    fake_llm.reply(tokens=["Done."], for_model=MAIN)
    first = children.start(fake_llm, tmp_path, url).finish()
    second = children.start(fake_llm, tmp_path, url).finish()

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


SAME_ID_OTHER_CALL = """
import asyncio

from miniagents import MiniAgents
from miniagents.ext.dbos import durable, workflow_id
from miniagents.ext.dbos.errors import DurableConfigurationError
from miniagents.ext.llm.offline import offline_agent

URL = "sqlite:///runs.sqlite"
shop = durable(offline_agent.fork(alias="SHOP", reply="ordered", token_delay=0), database_url=URL)
echo = durable(offline_agent.fork(alias="ECHO", reply="echoed", token_delay=0), database_url=URL)


async def main() -> None:
    async with MiniAgents():
        with workflow_id("order-1"):
            print("tea:", await shop.inquire("tea"))
        with workflow_id("order-1"):
            print("tea again:", await shop.inquire("tea"))  # the same call: replayed
        for agent, text in ((shop, "coffee"), (echo, "tea")):
            try:
                with workflow_id("order-1"):
                    await agent.inquire(text)
            except DurableConfigurationError as error:
                print(agent.alias, text, "refused:", error)


asyncio.run(main())
"""


def test_a_workflow_id_gives_its_reply_only_to_the_same_call(tmp_path: Path) -> None:
    # another input, or another agent, under a run's id got that run's reply, silently
    done = run_python(["-c", SAME_ID_OTHER_CALL], tmp_path)
    assert done.returncode == 0, done.stderr
    tea, again, coffee, echo = done.stdout.splitlines()
    assert (tea, again) == ("tea: ordered", "tea again: ordered")
    assert coffee.startswith(
        "SHOP coffee refused: The workflow id 'order-1' names a run of SHOP with other input "
        "messages than this call's"
    )
    assert echo.startswith(
        "ECHO tea refused: The workflow id 'order-1' names a run of the agent SHOP, not of ECHO"
    )
    assert echo.endswith("Give this call another workflow id.")


SAME_ID_OTHER_ARGUMENTS = """
import asyncio

from miniagents import MiniAgents
from miniagents.ext.dbos import durable, workflow_id
from miniagents.ext.dbos.errors import DurableConfigurationError
from miniagents.ext.llm.offline import offline_agent

URL = "sqlite:///runs.sqlite"
shop = durable(offline_agent.fork(alias="SHOP"), database_url=URL)


async def main() -> None:
    async with MiniAgents():
        with workflow_id("order-1"):
            print("tea:", await shop.inquire("tea", reply="one tea", token_delay=0))
        with workflow_id("order-1"):  # the same call, its arguments in another order
            print("again:", await shop.inquire("tea", token_delay=0, reply="one tea"))
        try:
            with workflow_id("order-1"):
                print("two:", await shop.inquire("tea", reply="two teas", token_delay=0))
        except DurableConfigurationError as error:
            print("two refused:", error)


asyncio.run(main())
"""


def test_a_workflow_id_gives_its_reply_only_to_the_same_arguments(tmp_path: Path) -> None:
    # the same agent and input with other arguments under a run's id got that run's reply
    done = run_python(["-c", SAME_ID_OTHER_ARGUMENTS], tmp_path)
    assert done.returncode == 0, done.stderr
    tea, again, two = done.stdout.splitlines()
    assert (tea, again) == ("tea: one tea", "again: one tea")
    assert two.startswith(
        "two refused: The workflow id 'order-1' names a run of SHOP with other arguments "
        "than this call's"
    )


INPUT_IDS = """
import pickle
import sys

from miniagents import Message
from miniagents.ext.dbos.durable import _input_id
from tests.ext.dbos.test_durable_faults import Options

kwargs = {
    "tags": {"red", "green", "blue", "cyan", "teal", "plum"},
    "nested": [frozenset({"x", "y", "z", "w"}), {"k": {"p", "q", "r"}}],
    "options": Options(),
}
print(_input_id("SHOP", (Message(text="tea"),), kwargs))
"""


class Options:
    """An argument of a class of its own, with the default repr (its address in it)."""

    def __init__(self) -> None:
        self.size = 2


def test_ids_by_input_are_the_same_in_every_process(tmp_path: Path) -> None:
    # a set of strings (its order is the process's hash seed's) or an object shown by its
    # address in the arguments gave the same input another id in the next process: after
    # a crash, a pipeline of ids_by_input ran its finished items again
    ids = set()
    for seed in ("1", "2", "3"):
        done = run_python(["-c", INPUT_IDS], tmp_path, env={"PYTHONHASHSEED": seed})
        assert done.returncode == 0, done.stderr
        ids.add(done.stdout.strip())
    assert len(ids) == 1, ids
    plain = {"text": "x", "n": [1, 2.5, None, True], "d": {"b": 1, "a": (2, "3")}}
    kept = (
        "SHOP:"
        + hashlib.sha256(
            b"SHOP"
            + b"Message"
            + Message(text="tea").model_dump_json().encode()
            + repr(sorted(plain.items())).encode()
        ).hexdigest()[:32]
    )
    assert _input_id("SHOP", (Message(text="tea"),), plain) == kept  # as before: no new ids


async def test_a_reply_that_ended_before_it_was_published_leaves_nothing_to_wait_for() -> None:
    # A call under the id of a run that DBOS still showed as running, though its body had
    # ended here, waited for a reply to be published or for the run's recorded end. The
    # end came first, and the future of the reply stayed in `running`: the next call
    # under that id waited for it forever.
    engine = Engine("sqlite:///unused.sqlite", asyncio.get_running_loop(), None)
    recorded = (Message(text="ordered"),)

    async def ended() -> tuple[Message, ...]:
        return recorded

    for _ in range(2):  # the second call finds nothing left by the first
        assert await engine._published_or("order-1", ended()) == recorded
        assert engine.running == {}
    live = MessageSequencePromise(["live"])
    published = engine.published("order-1")
    published.set_result(live)  # published first: the live reply, left for the body
    never: asyncio.Future[tuple[Message, ...]] = asyncio.get_running_loop().create_future()
    assert await engine._published_or("order-1", never) is live
    assert engine.running == {"order-1": published}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://nobody:secret@127.0.0.1/runs", "postgresql://***@127.0.0.1/runs"),
        ("postgresql:/nobody:secret@127.0.0.1/runs", "***@127.0.0.1/runs"),
        ("postgresql:nobody:secret@127.0.0.1/runs", "***@127.0.0.1/runs"),
        ("postgresql://127.0.0.1/runs", "postgresql://127.0.0.1/runs"),
    ],
)
def test_a_url_is_shown_without_its_password_whatever_its_form(url: str, shown: str) -> None:
    assert redacted(url) == shown
