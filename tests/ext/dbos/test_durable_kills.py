"""Durable runs killed with SIGKILL at chosen and random points, then run again.

Each test runs ``durable_child.py`` (one durable run of a tool loop, against the fake LLM
server of the test, with the real openai SDK), kills it when it prints the event the test
waits for (never after a sleep), starts it again with the same workflow id and checks, with
the server's record of requests: no call that had completed was made again, the tool's side
effect happened once, and the reply's messages equal the uninterrupted run's. So do the
tokens the reader saw, from the first, while the run had not ended at the kill (its
recorded calls replayed token by token, the rest live); a run that had ended before the
kill gives its recorded reply, each message whole as one piece. The same tests run on
SQLite and on a real Postgres.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from pathlib import Path

import pytest

from miniagents.testing import FAST_RETRY, FakeLLMServer, ToolCall
from tests.ext.dbos.killed_child import (
    CHILD,
    HELPER,
    MAIN,
    TIMEOUT,
    Children,
    Outcome,
    models,
    script,
    side_effects,
)
from tests.ext.dbos.recorded_steps import recorded_keys, rows
from tests.subprocesses import ROOT, end_process_group, run_python


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """The reply of the run no one killed (the same for every database)."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    with FakeLLMServer() as llm, Children() as children:
        script(llm)
        outcome = children.start(llm, folder, f"sqlite:///{folder / 'runs.sqlite'}").finish()
        assert len(llm.requests) == 3
    assert side_effects(folder) == ["a"]
    return outcome


def test_killed_during_the_second_of_three_model_calls(
    children: Children,
    fake_llm: FakeLLMServer,
    tmp_path: Path,
    database_url: str,
    uninterrupted: Outcome,
) -> None:
    script(fake_llm, pause_second=True)
    first = children.start(fake_llm, tmp_path, database_url)
    first.read_until('TOKEN "Let "')  # the second call streams, and waits (paused)
    assert fake_llm.wait_requests(2)[1].paused
    first.kill()

    fake_llm.clear_script()
    script(fake_llm, start=1)  # the second call again, then the third
    again = children.start(fake_llm, tmp_path, database_url).finish()

    assert models(fake_llm) == [MAIN] * 4  # 1 done, 1 killed, then only 2 and 3
    assert side_effects(tmp_path) == ["a"]  # the note ran once
    assert again.reply == uninterrupted.reply
    assert again.tokens == uninterrupted.tokens  # recorded replayed, the rest live


def test_killed_during_a_tool_after_one_with_a_side_effect(
    children: Children,
    fake_llm: FakeLLMServer,
    tmp_path: Path,
    database_url: str,
    uninterrupted: Outcome,
) -> None:
    script(fake_llm)
    first = children.start(fake_llm, tmp_path, database_url, HANG_IN_LOOKUP="1")
    first.read_until("EVENT lookup")  # the note is done; the lookup runs (forever)
    first.kill()
    assert side_effects(tmp_path) == ["a"]

    again = children.start(fake_llm, tmp_path, database_url).finish()

    assert models(fake_llm) == [MAIN] * 3  # the two calls before were not made again
    assert side_effects(tmp_path) == ["a"]  # the note did not run again
    assert [line for line in again.lines if line.startswith("EVENT")] == ["EVENT lookup q"]
    assert again.reply == uninterrupted.reply
    assert again.tokens == uninterrupted.tokens


def test_a_run_scripted_one_reply_per_call_killed_in_its_second_tool_refunds_once(
    children: Children, fake_llm: FakeLLMServer, tmp_path: Path
) -> None:
    # issue 62, item 2: docs/durability.md scripts the offline model with one_per_call; an
    # iterator that the replayed calls did not advance gave the recovered run's live call
    # the first reply: the refund ran again (ledger ['refund A17 12.5', 'refund A17
    # 12.5']) and the reply held its calls twice
    child = CHILD.with_name("refund_child.py")
    whole = tmp_path / "uninterrupted"
    whole.mkdir()
    uninterrupted = children.start(
        fake_llm, whole, f"sqlite:///{whole / 'runs.sqlite'}", child
    ).finish()
    assert side_effects(whole) == ["refund A17 12.5"]
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    first = children.start(fake_llm, tmp_path, url, child, HANG_IN_NOTIFY="1")
    first.read_until("EVENT notify")  # the refund is done; the notice runs (forever)
    first.kill()
    assert side_effects(tmp_path) == ["refund A17 12.5"]

    again = children.start(fake_llm, tmp_path, url, child).finish()

    assert side_effects(tmp_path) == ["refund A17 12.5"]  # once
    assert [line for line in again.lines if line.startswith("EVENT")] == ["EVENT notify A17"]
    assert again.reply == uninterrupted.reply  # nothing twice
    assert [kind for kind, _ in again.reply] == [
        "LLMToolCallMessage",
        "LLMToolResultMessage",
        "LLMToolCallMessage",
        "LLMToolResultMessage",
        "OfflineMessage",
    ]
    assert again.reply[-1] == ["OfflineMessage", "A17 is refunded, and its customer told."]
    assert fake_llm.requests == []  # (the offline model: no request anywhere)


def test_killed_during_a_nested_agents_stream(
    children: Children, fake_llm: FakeLLMServer, tmp_path: Path, database_url: str
) -> None:
    def script(*, pause: bool) -> None:
        fake_llm.reply(
            tool_calls=[ToolCall("ASK_HELPER", {"question": "Who?"}, id="h1")], for_model=MAIN
        )
        fake_llm.reply(
            tokens=["The ", "helper ", "says ", "hi."],
            for_model=HELPER,
            pause_after=2 if pause else None,
        )
        fake_llm.reply(tokens=["It ", "says ", "hi."], for_model=MAIN)

    script(pause=False)
    reference = children.start(
        fake_llm, tmp_path, f"sqlite:///{tmp_path / 'reference.sqlite'}"
    ).finish()
    fake_llm.clear_script()
    done_before = len(fake_llm.requests)

    script(pause=True)
    first = children.start(fake_llm, tmp_path, database_url)
    first.read_until('TOKEN "helper "')  # the nested agent's reply streams into the tool's
    assert fake_llm.wait_requests(done_before + 2)[-1].paused
    first.kill()

    fake_llm.clear_script()
    fake_llm.reply(tokens=["The ", "helper ", "says ", "hi."], for_model=HELPER)
    fake_llm.reply(tokens=["It ", "says ", "hi."], for_model=MAIN)
    again = children.start(fake_llm, tmp_path, database_url).finish()

    assert models(fake_llm)[done_before:] == [MAIN, HELPER, HELPER, MAIN]  # main's 1st: once
    assert again.reply == reference.reply
    assert again.tokens == reference.tokens
    assert "The helper says hi." in [text for _, text in again.reply]


FANNED = "fanned-model"


def test_calls_of_one_agent_at_once_killed_between_their_records_recover_their_own(
    children: Children, fake_llm: FakeLLMServer, tmp_path: Path, database_url: str
) -> None:
    fanned = CHILD.with_name("fanned_child.py")

    def asked(since: int) -> list[str]:
        return [request.json["messages"][-1]["content"] for request in fake_llm.requests[since:]]

    reference = children.start(
        fake_llm, tmp_path, f"sqlite:///{tmp_path / 'reference.sqlite'}", fanned
    ).finish()  # the echo of each question: the reply of a run nobody killed
    assert reference.reply == [
        ["OpenAIMessage", "Question A"],
        ["OpenAIMessage", "Question B"],
    ]
    done_before = len(fake_llm.requests)

    fake_llm.reply(for_model=FANNED)  # A's call first: it ends (recorded)
    fake_llm.reply(for_model=FANNED, pause_after=1)  # then B's: it streams, and waits
    first = children.start(fake_llm, tmp_path, database_url, fanned, ORDER="A,B")
    fake_llm.wait_paused(done_before + 1, timeout=TIMEOUT)  # A's record written, B's not
    first.kill()

    fake_llm.clear_script()  # the echo
    again = children.start(fake_llm, tmp_path, database_url, fanned, ORDER="B,A").finish()

    # B's call made again (it was killed), first this time; A's replayed, not made again
    assert asked(done_before) == ["Question A", "Question B", "Question B"]
    assert again.reply == reference.reply  # each call got its own record
    assert again.tokens == reference.tokens


# -- a failed call, handled ----------------------------------------------------------------------

PRIMARY = "primary-model"
BACKUP = "backup-model"


def test_a_failed_call_that_was_handled_is_not_made_again_after_a_kill(
    children: Children, fake_llm: FakeLLMServer, tmp_path: Path, database_url: str
) -> None:
    """A durable ``fallback_agent``: the primary fails (after a retry), the backup answers."""
    failover = Path(__file__).with_name("failover_child.py")

    def script(*, pause: bool) -> None:
        fake_llm.fail(503, headers=FAST_RETRY, for_model=PRIMARY, times=2)  # 1 + its retry
        fake_llm.reply(
            tokens=["Backup ", "says ", "hi."], for_model=BACKUP, pause_after=1 if pause else None
        )

    script(pause=False)
    reference = children.start(
        fake_llm, tmp_path, f"sqlite:///{tmp_path / 'reference.sqlite'}", child=failover
    ).finish()
    assert models(fake_llm) == [PRIMARY, PRIMARY, BACKUP]
    fake_llm.clear_script()
    done_before = len(fake_llm.requests)

    script(pause=True)
    first = children.start(fake_llm, tmp_path, database_url, child=failover)
    first.read_until('TOKEN "Backup "')  # the failure is recorded; the backup's call streams
    assert fake_llm.wait_requests(done_before + 3)[-1].paused
    first.kill()

    fake_llm.clear_script()  # the primary would answer now (an echo): it must not be asked
    fake_llm.reply(tokens=["Backup ", "says ", "hi."], for_model=BACKUP)
    again = children.start(fake_llm, tmp_path, database_url, child=failover).finish()

    assert models(fake_llm)[done_before:] == [PRIMARY, PRIMARY, BACKUP, BACKUP]
    assert again.reply == reference.reply == [["OpenAIMessage", "Backup says hi."]]
    assert again.tokens == reference.tokens


# -- random kill points ---------------------------------------------------------------------------


def _run_ended(database: Path) -> bool:
    """Whether the run of a SQLite database of runs had ended (its reply recorded)."""
    return rows(database, "SELECT status FROM workflow_status") == [("SUCCESS",)]


KILLS = int(os.environ.get("MINIAGENTS_DBOS_KILLS", "1"))
"""How many random kill points the test tries (one in the suite; raise it by hand)."""

KILLED_KEY = "key-of-the-killed-run"


@pytest.mark.timeout(60 + 60 * KILLS)
def test_random_kill_points_make_no_difference(
    children: Children, fake_llm: FakeLLMServer, tmp_path: Path, uninterrupted: Outcome
) -> None:
    seed = int(os.environ.get("MINIAGENTS_DBOS_SEED", str(time.time_ns())))
    rng = random.Random(seed)
    events = len(uninterrupted.lines) - 1  # the lines before the reply
    for number in range(KILLS):
        folder = tmp_path / f"kill_{number}"
        folder.mkdir()
        database = folder / "runs.sqlite"
        url = f"sqlite:///{database}"
        fake_llm.clear_script()
        before = len(fake_llm.requests)
        script(fake_llm)
        point = rng.randint(1, events)
        # the killed child's key marks its requests: one it sent just before it died may
        # be recorded by the server after the kill, so its connections are waited for
        # before the script is cleared (else that request could take the rerun's reply)
        first = children.start(fake_llm, folder, url, OPENAI_API_KEY=KILLED_KEY)
        first.read_lines(point)
        first.kill()
        fake_llm.wait_connections_closed()
        # what the child did before it died, whichever lines this process had read of it:
        # it may have run the note (and more) after the last line read
        written_before = len(side_effects(folder))
        ended = database.exists() and _run_ended(database)

        keys = recorded_keys(database) if database.exists() else []
        calls_recorded = sum("/llm." in key for key in keys)
        note_recorded = any("/tool.c1." in key for key in keys)
        fake_llm.clear_script()
        script(fake_llm, start=calls_recorded)
        again = children.start(fake_llm, folder, url).finish()

        context = f"seed {seed}, kill {number} after {point} lines, recorded {keys}"
        made_again = sum(
            request.headers.get("authorization") != f"Bearer {KILLED_KEY}"
            for request in fake_llm.requests[before:]
        )
        assert made_again == 3 - calls_recorded, context  # no recorded call made again
        context += f", {written_before} note(s) written before the kill, read {first.lines}"
        assert written_before <= 1, context
        if "EVENT note a" in first.lines or note_recorded:  # (written before either)
            assert written_before == 1, context
        # a recorded step is not run again; one that ran unrecorded (or never) runs once more
        expected_notes = 1 if note_recorded else written_before + 1
        assert len(side_effects(folder)) == expected_notes, context
        assert again.reply == uninterrupted.reply, context
        if ended:  # an ended run gives its recorded reply: its messages whole
            assert again.tokens == [text for _, text in uninterrupted.reply], context
        else:  # the recorded calls replayed token by token, the rest live
            assert again.tokens == uninterrupted.tokens, context


# -- approvals that wait --------------------------------------------------------------------------


def test_an_approval_waits_across_a_restart(
    children: Children, fake_llm: FakeLLMServer, tmp_path: Path, database_url: str
) -> None:
    fake_llm.reply(
        tokens=["Removing."],
        tool_calls=[ToolCall("remove", {"name": "a.txt"}, id="r1")],
        for_model=MAIN,
    )
    fake_llm.reply(tokens=["Removed ", "it."], for_model=MAIN)
    waiting = children.start(fake_llm, tmp_path, database_url)  # nobody approves here
    waiting.read_until("APPROVAL r1 True")
    waiting.kill()  # stopped while the call waits for its approval
    assert side_effects(tmp_path) == []

    approving = children.start(fake_llm, tmp_path, database_url, APPROVE="1")
    approving.read_until("APPROVAL r1 True")  # asked again (the model is not)
    approving.read_until("EVENT remove a.txt")  # approved: the call runs
    done = approving.finish()

    assert models(fake_llm) == [MAIN, MAIN]  # the call before the wait was not repeated
    assert side_effects(tmp_path) == ["removed a.txt"]
    assert done.reply[-1] == ["OpenAIMessage", "Removed it."]
    assert ["LLMToolResultMessage", "removed a.txt"] in done.reply


# -- a durable pipeline ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["agent", "switch"])
def test_a_pipeline_killed_mid_run_resumes_at_the_item_it_was_at(
    children: Children, fake_llm: FakeLLMServer, tmp_path: Path, database_url: str, mode: str
) -> None:
    """``durable(agent, ids_by_input=True)`` over the items, or ``pipeline(durable=True)``."""
    pipeline_child = Path(__file__).with_name("pipeline_child.py")
    env = {"DB_URL": database_url, "MODE": mode}

    def start() -> subprocess.Popen[str]:
        pipe = subprocess.PIPE
        return children.python(
            [str(pipeline_child)], ROOT, llm=fake_llm, env=env, stdout=pipe, stderr=pipe
        )

    for _ in range(3):
        fake_llm.reply()  # items 0 to 2: the echo of the item
    fake_llm.reply(pause_after=1)  # item 3 streams its first token, and waits
    first = start()
    assert first.stdout is not None
    seen = [first.stdout.readline().strip() for _ in range(3)]
    assert seen == [f"RESULT {index} item {index}" for index in range(3)]
    fake_llm.wait_requests(4)  # item 3 is asked (its reply cannot end: it pauses)
    end_process_group(first)
    first.communicate(timeout=TIMEOUT)

    fake_llm.clear_script()  # the echo for every item from now on
    out, err = start().communicate(timeout=TIMEOUT)

    assert out.splitlines() == [f"RESULT {index} item {index}" for index in range(6)], err
    asked = [request.json["messages"][-1]["content"] for request in fake_llm.requests]
    assert asked == [*(f"item {index}" for index in range(4)), "item 3", "item 4", "item 5"]


def test_equal_items_at_two_positions_are_two_runs_and_a_rerun_calls_nothing(
    fake_llm: FakeLLMServer, tmp_path: Path
) -> None:
    pipeline_child = Path(__file__).with_name("pipeline_child.py")
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"

    def run(**extra: str) -> list[str]:
        env = {"DB_URL": url, "MODE": "switch", "ITEMS": "same|other|same", **extra}
        done = run_python([str(pipeline_child)], ROOT, llm=fake_llm, env=env, timeout=TIMEOUT)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    def asked() -> list[str]:
        return [request.json["messages"][-1]["content"] for request in fake_llm.requests]

    expected = ["RESULT 0 same", "RESULT 1 other", "RESULT 2 same"]
    assert run() == expected
    assert asked() == ["same", "other", "same"]  # the equal items ran twice: two runs

    assert run() == expected  # the same pipeline again: every reply recorded
    assert asked() == ["same", "other", "same"]

    assert run(PIPELINE_ID="another") == expected  # another pipeline of the same agent
    assert asked() == ["same", "other", "same"] * 2
