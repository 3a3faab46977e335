"""Forks: a recorded run again from one model call, edited.

The calls before it are replayed (no request to the fake server), the calls after it made
live; and the two runs are shown side by side.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from miniagents import MiniAgents
from miniagents.ext.llm.cache import CallCache, MemoryCallStore
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.llm.openai import openai_agent
from miniagents.ext.llm.provider import AudioTokens, Finish, LLMCall, LLMEvent
from miniagents.ext.llm.routing import install_llm_route, llm_routes
from miniagents.ext.realtime import Transcript
from miniagents.ext.studio import (
    Fork,
    Recorder,
    RunStore,
    RunTree,
    afork,
    diff_runs,
    plan_fork,
)
from miniagents.ext.studio.cli import TOKEN_VARIABLE, studio_main
from miniagents.ext.studio.diff import render_diff
from miniagents.ext.studio.errors import (
    StudioConfigurationError,
    StudioForkError,
    StudioNotFoundError,
    StudioRunTooLargeError,
)
from miniagents.ext.studio.events import encode_batch
from miniagents.ext.studio.fork import plan_fork_in, recorded_calls, replay_recorded_calls
from miniagents.ext.studio.store import STORE_VARIABLE, RunInfo, new_run_id
from miniagents.testing import FakeLLMServer
from tests.ext.realtime.kit import APIS, pieces, streamed
from tests.ext.studio import program
from tests.ext.studio.kit import many_calls
from tests.fakes.fixtures import WAIT, fake_llm  # noqa: F401
from tests.subprocesses import python_env, run_python

PROGRAM = Path(program.__file__)


def _calls(server: FakeLLMServer) -> list[str]:
    """The models of the requests the fake server got, in order."""
    return [str(request.json["model"]) for request in server.requests]


def _researchers_answer(tree: RunTree, city: str) -> int:
    """The number of the call that gave a researcher's answer (its second)."""
    node = next(
        node
        for node in tree.agents()
        if node.name == "RESEARCHER" and node.inputs[0]["message"]["text"].endswith(f"{city}.")
    )
    return node.calls[1].id


async def _recorded(
    server: FakeLLMServer, store: RunStore, command: tuple[str, ...] = ("python", "program.py")
) -> RunTree:
    program.script(server)
    with Recorder(store, command=command) as recorder:
        await program.amain()
    return RunTree.of(store, recorder.run_id)


async def _two_forks(server: FakeLLMServer, store: RunStore) -> tuple[int, list[Fork]]:
    """A run recorded (the requests it made), and two forks of it: Paris has 3, 4 million."""
    first = await _recorded(server, store)
    call = _researchers_answer(first, "Paris")
    return len(server.requests), [
        plan_fork(store, first.run.id, call, reply=f"Paris has {people} million people.")
        for people in (3, 4)
    ]


async def test_a_fork_at_a_second_level_reply_replays_the_calls_before_it_and_runs_the_rest_live(
    openai_env: FakeLLMServer, store: RunStore
) -> None:
    first = await _recorded(openai_env, store)
    made = len(openai_env.requests)
    assert made == 5  # 2 calls per researcher, and the writer
    call = _researchers_answer(first, "Paris")
    fork = plan_fork(store, first.run.id, call, reply="Paris has 3 million people.")
    assert (fork.run, fork.call, fork.key) == (first.run.id, call, first.calls[call].key)
    with Recorder(store, command=(), fork=fork) as recorder:  # (in this process: as afork's)
        written = await program.amain()
    assert recorder.run_id == fork.child
    # the researchers' four calls replayed: the only request is the writer's (a new prompt)
    assert _calls(openai_env)[made:] == ["gpt-4o-mini"]
    assert written == "Notes: Paris has 3 million people. Rome has 2.8 million people."
    second = RunTree.of(store, fork.child)
    assert second.run.forked_from == first.run.id
    hows = {call.id: ("replayed" if call.replayed else "live") for call in second.calls.values()}
    assert sorted(hows.values()) == ["live", "replayed", "replayed", "replayed", "replayed"]
    assert all(call.cost_usd == 0 for call in second.calls.values() if call.replayed)
    rows = {(row.name, row.left.id if row.left else None): row for row in diff_runs(first, second)}
    paris = next(
        row for (name, _), row in rows.items() if name == "RESEARCHER" and row.status == "changed"
    )
    assert ("-", "2.1") in paris.text
    assert ("+", "3") in paris.text
    assert sorted(how for _, how in paris.calls) == ["edited", "replayed"]
    writer = next(row for (name, _), row in rows.items() if name == "WRITER")
    assert writer.status == "changed"
    assert [how for _, how in writer.calls] == ["live"]
    unchanged = [row for row in rows.values() if row.status == "same"]
    assert {row.name for row in unchanged} == {"RESEARCHER", "LIBRARIAN", "CRITIC"}
    shown = render_diff(first, second)
    assert "~ . RESEARCHER" in shown
    assert "edited" in shown
    assert "- 2.1 + 3" in shown


async def test_a_fork_with_an_edited_prompt_makes_that_call_live_with_the_edit(
    openai_env: FakeLLMServer, store: RunStore
) -> None:
    first = await _recorded(openai_env, store)
    made = len(openai_env.requests)
    writer = next(node for node in first.agents() if node.name == "WRITER")
    fork = plan_fork(store, first.run.id, writer.calls[0].id, prompt="Notes: none at all.")
    with Recorder(store, command=(), fork=fork):
        written = await program.amain()
    assert _calls(openai_env)[made:] == ["gpt-4o-mini"]
    sent = openai_env.requests[-1].json["messages"]
    assert sent[-1]["content"] == "Notes: none at all."
    assert written == "Notes: none at all."


async def test_two_fork_recorders_in_one_process_each_replay_and_record_their_own_fork(
    openai_env: FakeLLMServer, store: RunStore
) -> None:
    made, forks = await _two_forks(openai_env, store)

    async def forked(fork: Fork) -> str:
        with Recorder(store, command=(), fork=fork):  # (each in a task of its own)
            return await program.amain()

    written = await asyncio.gather(*(forked(fork) for fork in forks))
    # each program got its own edit (was: the second got the first's, whose route came first)
    assert written == [
        f"Notes: Paris has {people} million people. Rome has 2.8 million people."
        for people in (3, 4)
    ]
    assert _calls(openai_env)[made:] == ["gpt-4o-mini", "gpt-4o-mini"]  # (the two writers)
    for fork, people in zip(forks, (3, 4), strict=True):
        tree = RunTree.of(store, fork.child)
        assert len(tree.agents()) == program.AGENT_CALLS  # (its own program's, not the other's)
        writer = next(node for node in tree.agents() if node.name == "WRITER")
        assert f"Paris has {people} million" in writer.reply_text
    with Recorder(store, command=()) as later:  # (the forks closed: nothing is replayed)
        program.script(openai_env)
        await program.amain()
    assert len(openai_env.requests) == made + 2 + 5
    assert not any(one.replayed for one in RunTree.of(store, later.run_id).calls.values())


async def _off_the_context(how: str) -> str:
    """The program run in a thread that does not copy the context: a Thread's, an executor's."""
    loop = asyncio.get_running_loop()
    if how == "executor":
        return await loop.run_in_executor(None, asyncio.run, program.amain())
    written: list[str] = []
    thread = threading.Thread(target=lambda: written.append(asyncio.run(program.amain())))
    thread.start()
    await loop.run_in_executor(None, thread.join)
    assert written, "the program failed in its thread"
    return written[0]


@pytest.mark.parametrize("how", ["thread", "executor"])
async def test_a_forks_program_that_calls_its_model_from_a_thread_is_replayed(
    openai_env: FakeLLMServer, store: RunStore, how: str
) -> None:
    first = await _recorded(openai_env, store)
    made = len(openai_env.requests)
    fork = plan_fork(
        store, first.run.id, _researchers_answer(first, "Paris"), reply="Paris has 3 million."
    )
    with Recorder(store, command=(), fork=fork):  # (its only fork: a thread's calls are its)
        written = await _off_the_context(how)
    # was: the thread's context had no route, so all 5 calls were made live, the edit lost
    assert written == "Notes: Paris has 3 million. Rome has 2.8 million people."
    assert _calls(openai_env)[made:] == ["gpt-4o-mini"]
    assert len(RunTree.of(store, fork.child).agents()) == program.AGENT_CALLS


async def test_with_two_forks_in_one_process_a_threads_calls_are_neither_forks(
    openai_env: FakeLLMServer, store: RunStore
) -> None:
    made, forks = await _two_forks(openai_env, store)
    recorders = [Recorder(store, command=(), fork=fork) for fork in forks]
    for recorder in recorders:  # (each in a context of its own, as in a task)
        contextvars.copy_context().run(recorder.start)
    try:
        program.script(openai_env)
        written = await _off_the_context("thread")
    finally:
        for recorder in recorders:
            recorder.close()
    # which fork's would they be? neither's (documented): made live, recorded by neither
    assert written == "Notes: Paris has 2.1 million people. Rome has 2.8 million people."
    assert len(openai_env.requests) == made + 5
    assert all(not RunTree.of(store, fork.child).agents() for fork in forks)


async def test_a_call_where_a_fork_was_stopped_is_made_live_while_another_fork_replays(
    openai_env: FakeLLMServer, store: RunStore
) -> None:
    """A context whose fork was stopped has no fork: its calls are made live, as they are,
    even while another fork (the process's only one) replays elsewhere. (That one's replay
    is for the calls of its own context, and of contexts where no fork was started.)"""
    made, forks = await _two_forks(openai_env, store)
    stopped, other = contextvars.copy_context(), contextvars.copy_context()
    first = Recorder(store, command=(), fork=forks[0])
    stopped.run(first.start)
    stopped.run(first.close)  # (its fork stopped: the context keeps its slot)
    second = Recorder(store, command=(), fork=forks[1])
    other.run(second.start)  # (the process's only fork now)
    try:
        program.script(openai_env)
        written = await asyncio.create_task(program.amain(), context=stopped)
    finally:
        second.close()
    assert written == "Notes: Paris has 2.1 million people. Rome has 2.8 million people."
    assert len(openai_env.requests) == made + 5  # (all live: none of the other fork's)
    assert not RunTree.of(store, forks[1].child).agents()


async def test_a_thousand_forks_one_after_another_in_one_context_leave_no_routes_there(
    openai_env: FakeLLMServer, store: RunStore
) -> None:
    first = await _recorded(openai_env, store)
    writer = next(node for node in first.agents() if node.name == "WRITER")
    fork = plan_fork(store, first.run.id, writer.calls[0].id, prompt="Notes: none.")
    routes = llm_routes()
    for _ in range(1000):
        stop = replay_recorded_calls(store, fork)
        stop()
    # was: each stopped fork left its two routes in the context, passing calls on (2,000)
    assert llm_routes() == routes
    variables = len(contextvars.copy_context())  # (with the one slot of the forks)
    for _ in range(10):  # (their recorders: a run each)
        one = dataclasses.replace(fork, child=new_run_id())
        Recorder(store, command=(), fork=one).start().close()
    assert llm_routes() == routes
    assert len(contextvars.copy_context()) == variables  # (was: a variable more per recorder)


async def test_a_fork_that_cannot_be_made_says_why(
    openai_env: FakeLLMServer, store: RunStore
) -> None:
    first = await _recorded(openai_env, store)
    call = _researchers_answer(first, "Rome")
    with pytest.raises(StudioNotFoundError, match="has no call 99; its calls are numbered"):
        plan_fork(store, first.run.id, 99, reply="x")
    with pytest.raises(StudioForkError, match="edits the call's reply, its prompt"):
        plan_fork(store, first.run.id, call)
    with pytest.raises(StudioForkError, match="at most 100,000 characters"):
        plan_fork(store, first.run.id, call, reply="x" * 100_001)
    second = await _recorded(openai_env, store, command=())
    with pytest.raises(StudioForkError, match="recorded without the command"):
        plan_fork(store, second.run.id, _researchers_answer(second, "Rome"), reply="x")
    with pytest.raises(StudioForkError, match="run, call, key and child"):
        Fork.from_json({"run": "r"})


def test_a_call_a_long_run_does_not_have_is_a_404_of_a_bounded_message(store: RunStore) -> None:
    run_id = many_calls(store, 3_000)
    with pytest.raises(StudioNotFoundError) as missing:
        plan_fork(store, run_id, 3_001, reply="x")
    said = str(missing.value)
    assert len(said) < 300, said  # (was: every number, 3,000 of them)
    assert "numbered 1, 2, 3, ..., 2998, 2999, 3000 (3,000 calls;" in said


def _growing_run(store: RunStore, folder: Path, events: int) -> str:
    """A run of ``events`` calls of a model, still running; its id.

    It is recorded by ``miniagents run`` from a program that says ``the program ran``.
    """
    program_file = folder / "tiny.py"
    program_file.write_text("print('the program ran')\n")
    command = (sys.executable, "-m", "miniagents", "run", "--name", "tiny", str(program_file))
    run_id = "20261127-000000-grows0"
    store.open_run(
        RunInfo(run_id, "tiny", command, str(folder), 0.0, None, "running", None, None, None)
    )
    _grow(store, run_id, 1, events)
    return run_id


def _grow(store: RunStore, run_id: str, first: int, events: int) -> None:
    """Add ``events`` calls of a model to the run, numbered from ``first``."""
    request = {"provider": "openai", "model": "m", "key": "k", "request": {"messages": []}}
    calls = [("call", number, None, 0, request) for number in range(first, first + events)]
    store.append(run_id, [(first, events, encode_batch(calls))])


async def test_a_run_grown_past_the_bound_since_the_fork_was_planned_is_refused_by_the_fork(
    store: RunStore, tmp_path: Path
) -> None:
    run_id = _growing_run(store, tmp_path, 3_000)
    planned = plan_fork(store, run_id, 1, system="Be brief.", max_events=3_000)
    assert Fork.from_json(planned.as_json()) == planned  # (what the fork's program reads)
    _grow(store, run_id, 3_001, 10)  # (the run goes on between the plan and the fork)
    said = "The run '20261127-000000-grows0' has 3,010 events, more than the 3,000 read at once"
    with pytest.raises(StudioRunTooLargeError, match=said):
        plan_fork(store, run_id, 1, system="Be brief.", max_events=3_000)  # (as planned now)
    with pytest.raises(StudioRunTooLargeError, match=said):  # (was: read whole, unbounded)
        Recorder(store, command=(), fork=planned).start()
    result = await afork(store, planned, environment=python_env(), timeout=120)
    assert result.returncode == 2, result.output
    assert said in result.output
    assert "the program ran" not in result.output  # (it never started)
    assert [run.id for run in store.runs()] == [run_id]  # (no fork recorded)


def test_a_forks_bound_must_be_a_whole_number_of_at_least_1() -> None:
    fork = {"run": "r", "call": 1, "key": "k", "child": "c"}
    assert Fork.from_json(fork).max_events is None  # (a fork written before the bound)
    for wrong in (0, True, "9", 1.5):
        with pytest.raises(StudioForkError, match="A fork needs max_events to be a whole number"):
            Fork.from_json({**fork, "max_events": wrong})


@pytest.mark.timeout(300)  # (three Pythons one after the other: slow on a loaded machine)
def test_miniagents_run_records_a_program_and_studio_fork_runs_it_again(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The commands, as a user types them: a program's run recorded, then forked.

    ``miniagents run`` records it; it is forked at the Paris researcher's answer (the calls
    before it replayed).
    """
    store_file = tmp_path / "runs.sqlite"

    def miniagents(*arguments: str) -> subprocess.CompletedProcess[str]:
        extra = {STORE_VARIABLE: str(store_file)}
        return run_python(["-m", "miniagents", *arguments], cwd=tmp_path, llm=fake_llm, env=extra)

    program.script(fake_llm)
    ran = miniagents("run", str(PROGRAM))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "Notes: Paris has 2.1 million people. Rome has 2.8 million people."
    store = RunStore(store_file)
    first = RunTree.of(store, "last")
    assert first.run.command[-1] == str(PROGRAM)
    made = len(fake_llm.requests)
    forked = miniagents(
        "studio", "fork", "--call-with", "Paris has 2.1", "--reply", "Paris has 3 million people."
    )
    assert forked.returncode == 0, forked.stderr
    assert _calls(fake_llm)[made:] == ["gpt-4o-mini"]  # the calls before it: replayed
    assert "Notes: Paris has 3 million people." in forked.stdout
    assert re.search(r"~ \. RESEARCHER .* call \d+ replayed, call \d+ edited", forked.stdout)
    assert re.search(r"~ \. WRITER .* call \d+ live", forked.stdout)
    assert RunTree.of(store, "last").run.forked_from == first.run.id
    store.close()


async def test_studio_commands_say_why_they_cannot_run(
    openai_env: FakeLLMServer, store: RunStore, capsys: pytest.CaptureFixture[str]
) -> None:
    first = await _recorded(openai_env, store)
    cases = [
        (["fork", "--call", "999", "--reply", "x"], "has no call 999"),
        (["fork", "--reply", "x"], "name the call to edit: --call N"),
        (["fork", "--call-with", "nobody said this", "--reply", "x"], "replied with 'nobody said"),
        (["diff"], f"the run {first.run.id} is no fork"),
        (["show", "nope"], "no run 'nope'"),
    ]
    for arguments, said in cases:
        with pytest.raises(SystemExit) as exited:
            studio_main([*arguments, "--store", str(store.path)], "miniagents studio")
        assert exited.value.code == 2
        assert said in capsys.readouterr().err


def test_miniagents_run_passes_the_programs_exit_status_and_records_its_failure(
    tmp_path: Path,
) -> None:
    failing = tmp_path / "failing.py"
    failing.write_text("import sys\nprint(sys.argv[1:])\nraise SystemExit(3)\n")
    crashing = tmp_path / "crashing.py"
    crashing.write_text("raise KeyError('k')\n")
    environment = {**os.environ, STORE_VARIABLE: str(tmp_path / "runs.sqlite")}
    run = [sys.executable, "-m", "miniagents", "run"]
    done = subprocess.run(
        [*run, str(failing), "a", "--b"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (3, "['a', '--b']\n")
    crashed = subprocess.run(
        [*run, str(crashing)], env=environment, capture_output=True, text=True, check=False
    )
    assert crashed.returncode == 1
    assert "KeyError: 'k'" in crashed.stderr
    missing = subprocess.run(
        [*run, str(tmp_path / "nope.py")],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2
    assert "there is no such file" in missing.stderr
    store = RunStore(tmp_path / "runs.sqlite")
    statuses = [(run.name, run.status, run.error) for run in store.runs()]
    assert statuses == [
        ("crashing.py", "failed", "KeyError: 'k'"),
        ("failing.py", "failed", "SystemExit: 3"),
    ]
    store.close()


async def test_a_forks_program_gets_the_studios_environment_without_its_token(
    store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, "s3cr3t-studio-token")
    monkeypatch.setenv("MINIAGENTS_TEST_INHERITED", "kept")
    printing = "import json, os; print(json.dumps(dict(os.environ)))"
    with Recorder(store, command=(sys.executable, "-c", printing)) as recorder:
        pass
    planned = Fork(recorder.run_id, 1, "k", "20261127-000000-child0")
    result = await afork(store, planned, environment={"MINIAGENTS_TEST_GIVEN": "given"})
    assert result.returncode == 0, result.output
    seen = json.loads(result.output)
    assert TOKEN_VARIABLE not in seen  # (was: the studio's token, for any program it forks)
    assert (seen["MINIAGENTS_TEST_INHERITED"], seen["MINIAGENTS_TEST_GIVEN"]) == ("kept", "given")
    assert seen[STORE_VARIABLE] == str(store.path.resolve())


async def test_a_fork_ends_as_its_program_exits_though_a_child_it_left_holds_its_output(
    store: RunStore, tmp_path: Path
) -> None:
    pid_file = tmp_path / "sleeper.pid"
    starting = (
        "import pathlib, subprocess, sys\n"
        "sleeper = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)'])\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(sleeper.pid))\n"
        "print('x' * 200_000)\n"  # (more than a pipe holds: read as it runs, and at its exit)
        "print('the program ended')\n"
    )
    with Recorder(store, command=(sys.executable, "-c", starting)) as recorder:
        pass
    planned = Fork(recorder.run_id, 1, "k", "20261127-000000-child0")
    try:
        # (was: waited for the end of its output, which the sleeper holds: killed at the timeout)
        result = await afork(store, planned, timeout=WAIT)
        assert result.returncode == 0, result.output
        assert result.cut
        assert result.output.endswith("x\nthe program ended\n")  # (all it wrote, to its end)
    finally:
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.mark.parametrize(
    ("store", "call", "max_events", "refused"),
    [
        ("runs.sqlite", 3, None, "plan_fork needs store to be a RunStore; got 'runs.sqlite'"),
        (None, "3", None, "plan_fork needs call to be a whole number of at least 1; got '3'"),
        (None, True, None, "plan_fork needs call to be a whole number of at least 1; got True"),
        (None, 3, 0, "plan_fork needs max_events to be a whole number of at least 1; got 0"),
    ],
)
def test_plan_fork_refuses_a_store_a_call_or_a_bound_of_the_wrong_kind(
    tmp_path: Path, store: object, call: object, max_events: object, refused: str
) -> None:
    # (was: AttributeError: 'str' object has no attribute 'run'; "The run ... has no call 3;
    # its calls are numbered 3, 5, ..."; "more than the 0 read at once here")
    given = RunStore(tmp_path / "runs.sqlite") if store is None else store
    with pytest.raises(StudioConfigurationError) as raised:
        plan_fork(given, "last", call, reply="x", max_events=max_events)  # type: ignore[arg-type]
    assert str(raised.value).startswith(refused)


async def test_a_run_tree_and_a_fork_given_a_stores_path_refuse_it_naming_the_run_store(
    tmp_path: Path,
) -> None:
    """(was: AttributeError: 'str' object has no attribute 'run')."""
    path = "runs.sqlite"  # (refused before any use: a short path, quoted whole)
    with pytest.raises(StudioConfigurationError) as raised:
        RunTree.of(path, "last")  # type: ignore[arg-type]
    assert str(raised.value) == (
        "RunTree.of needs store to be a RunStore; got " + repr(path) + ". Open the file first, "
        'e.g. RunTree.of(RunStore("miniagents_runs.sqlite"), ...).'
    )
    planned = Fork("20261127-000000-parent", 1, "k", "20261127-000000-child0")
    with pytest.raises(StudioConfigurationError, match=r"^afork needs store to be a RunStore"):
        await afork(path, planned)  # type: ignore[arg-type]


def test_diff_runs_given_runs_ids_refuses_them_naming_run_tree_of() -> None:
    """(was: AttributeError: 'str' object has no attribute 'run')."""
    with pytest.raises(StudioConfigurationError) as raised:
        diff_runs("last", "last")  # type: ignore[arg-type]
    assert str(raised.value) == (
        "diff_runs needs left to be a RunTree; got 'last'. Read the run first, e.g. "
        "diff_runs(RunTree.of(store, run_id), ...)."
    )


def test_plan_fork_in_refuses_what_is_not_a_run_tree(tmp_path: Path) -> None:
    # (the CLI planned its fork with the module's private _planned: plan_fork_in is its
    # public name, checked as plan_fork is)
    with pytest.raises(StudioConfigurationError) as raised:
        plan_fork_in(RunStore(tmp_path / "runs.sqlite"), 3, reply="x")  # type: ignore[arg-type]
    assert str(raised.value).startswith("plan_fork_in needs tree to be a RunTree; got ")


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        *[({"timeout": timeout}, "timeout to be a positive") for timeout in (0, -1.0, "5")],
        *[
            ({"environment": environment}, "environment to be a mapping")
            for environment in ({"PORT": 8000}, {1: "x"}, [("PORT", "8000")], "PORT=8000")
        ],
    ],
)
async def test_afork_refuses_a_timeout_or_an_environment_of_the_wrong_kind(
    tmp_path: Path, given: dict[str, object], refused: str
) -> None:
    fork = Fork("run", 3, "key", "child", "reply", None, None, None)
    # (was: TimeoutError with no message, at once; for "5": TypeError from asyncio; for an
    # environment of numbers, a bare TypeError from the program's start)
    with pytest.raises(StudioConfigurationError, match=rf"^afork needs {refused}"):
        await afork(RunStore(tmp_path / "r.sqlite"), fork, **given)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        ({"command": "python program.py"}, "Recorder needs command to be a sequence of str"),
        ({"command": ["python", 3]}, "Recorder needs command to be a sequence of str"),
        ({"store": 3}, "The studio needs store to be a path (a str or a PathLike); got 3."),
    ],
)
def test_a_recorder_refuses_a_command_or_a_store_of_the_wrong_kind(
    given: dict[str, object], refused: str
) -> None:
    # (was: a str taken as the command, its letters the program's arguments; TypeError:
    # expected str, bytes or os.PathLike object, not int)
    with pytest.raises(StudioConfigurationError) as raised:
        Recorder(**given)  # type: ignore[arg-type]
    assert str(raised.value).startswith(refused)
    with pytest.raises(StudioConfigurationError, match=r"^RunStore needs path to be a path"):
        RunStore(None)  # type: ignore[arg-type]


async def _two_questions() -> list[str]:
    """Two calls of one model, through the Responses API, one after the other."""
    agent = openai_agent.fork(alias="ASKER", model="gpt-4o-mini", max_retries=0, api="responses")
    async with MiniAgents():
        return [str(await agent.inquire("First?")), str(await agent.inquire("Second?"))]


async def test_a_responses_api_calls_key_is_the_call_caches_and_a_fork_replays_it(
    openai_env: FakeLLMServer, store: RunStore
) -> None:
    # (was: the studio keyed a call without the agent's options, so without the API the
    # cache's key names: a fork of a run of the Responses API replayed none of its calls,
    # each made again, paid for)
    openai_env.reply("One.")
    openai_env.reply("Two.")
    cached = MemoryCallStore()
    with Recorder(store, command=("python", "asker.py")) as recorder, CallCache(cached).active():
        assert await _two_questions() == ["One.", "Two."]
    first = RunTree.of(store, recorder.run_id)
    keys = [call.key for call in first.calls.values()]
    assert len(keys) == 2
    for key in keys:  # each the key the cache recorded the call by
        assert key is not None
        assert await cached.aget(key) is not None
    assert all(call.request["api"] == "responses" for call in first.calls.values())
    made = len(openai_env.requests)
    second = max(first.calls)
    fork = plan_fork(store, first.run.id, second, reply="Two, edited.")
    with Recorder(store, command=(), fork=fork):
        assert await _two_questions() == ["One.", "Two, edited."]
    assert len(openai_env.requests) == made  # both replayed: no request
    openai_env.reply("Two again.")
    fork = plan_fork(store, first.run.id, second, prompt="Second, edited?")
    with Recorder(store, command=(), fork=fork):
        assert await _two_questions() == ["One.", "Two again."]
    assert len(openai_env.requests) == made + 1  # the first replayed, the edited one made
    assert "Second, edited?" in json.dumps(openai_env.requests[-1].json)
    assert "Second?" not in json.dumps(openai_env.requests[-1].json)


class _Route:
    """An object of a class with no ``__repr__`` of its own: its repr names its address."""

    def __init__(self, region: str) -> None:
        self.region = region


async def test_a_call_the_cache_cannot_key_is_shown_without_a_key_and_not_forked(
    store: RunStore,
) -> None:
    # (was: keyed by its option's repr, "<_Route object at 0x7f...>", a key the cache never
    # gives it: a fork of the run was planned, and its program failed at that call)
    asker = offline_agent.fork(token_delay=0, reply="live", extra_options={"route": _Route("eu")})
    with Recorder(store, command=("python", "asker.py")) as recorder:
        async with MiniAgents():
            assert str(await asker.inquire("q")) == "live"
    tree = RunTree.of(store, recorder.run_id)
    (call,) = tree.calls.values()
    assert call.key is None
    assert call.unkeyed is not None
    assert "its call option 'route' holds a _Route (<" in call.unkeyed
    assert " at 0x" in call.request["options"]["route"]  # (the request still shown)
    with pytest.raises(StudioForkError) as refused:
        plan_fork(store, tree.run.id, call.id, reply="edited")
    said = str(refused.value)
    assert (
        f"cannot be forked: a fork replays its calls through a call cache, by their keys, "
        f"and its call {call.id} has none" in said
    )
    assert "a dataclass or a pydantic model" in said


async def test_a_voice_sessions_replies_are_keyed_by_its_recording_and_not_forked_alone(
    fake_llm: FakeLLMServer,  # noqa: F811
    store: RunStore,
) -> None:
    # (was: each reply was keyed as a text call of the model, with no namespace: a key no
    # cache holds. A fork at a reply was planned, and its program ran the session as if
    # there were no fork (made again live, or replayed by its own cache): the edit was lost)
    fake_llm.speak(["Hello."])
    fake_llm.speak(["Bye."])
    cached = MemoryCallStore()
    voice = APIS[0].voice(fake_llm)
    with Recorder(store, command=("python", "voice.py")) as recorder:
        async with MiniAgents():
            with CallCache(cached, namespace="voice").active():
                found = await pieces(voice.inquire(streamed(["Hi.", "Go on."])))
    assert [piece.text for piece in found if isinstance(piece, Transcript)] == ["Hello.", "Bye."]
    tree = RunTree.of(store, recorder.run_id)
    calls = list(tree.calls.values())
    assert len(calls) == 2  # (a call per reply)
    (recording,) = await cached.acandidates("openai", "gpt-realtime", 10)
    assert [call.key for call in calls] == [recording.key, recording.key]
    assert all(call.request == recording.request for call in calls)
    assert recorded_calls(tree) == {}  # (a reply alone is no recording of its session)
    with pytest.raises(StudioForkError) as refused:
        plan_fork(store, tree.run.id, calls[1].id, reply="Later.")
    said = str(refused.value)
    assert f"The call {calls[1].id} of the run {tree.run.id} is a reply of a realtime " in said
    assert "a call cache replays a session whole, from its recording" in said


async def test_a_fork_of_a_fork_replays_the_forks_calls_with_its_edit(
    openai_env: FakeLLMServer, store: RunStore
) -> None:
    made, forks = await _two_forks(openai_env, store)
    with Recorder(store, command=("python", "program.py"), fork=forks[0]):
        await program.amain()
    first_fork = RunTree.of(store, forks[0].child)
    again = plan_fork(
        store, first_fork.run.id, _researchers_answer(first_fork, "Rome"), reply="Rome has 5."
    )
    with Recorder(store, command=(), fork=again):
        written = await program.amain()
    # the first fork's edit is kept (its recorded reply), not the run's it forked
    assert written == "Notes: Paris has 3 million people. Rome has 5."
    assert _calls(openai_env)[made:] == ["gpt-4o-mini", "gpt-4o-mini"]  # (the two writers)
    assert RunTree.of(store, again.child).run.forked_from == first_fork.run.id


async def test_a_recording_beside_a_fork_in_one_process_makes_its_calls_as_they_are(
    openai_env: FakeLLMServer, store: RunStore
) -> None:
    # (was: the recording's context had no fork of its own, so the process's only fork
    # replayed its calls: it got the fork's edited reply, and made none of its requests)
    made, forks = await _two_forks(openai_env, store)
    forking, recorded = asyncio.Event(), asyncio.Event()

    async def forked() -> str:
        with Recorder(store, command=(), fork=forks[0]):
            forking.set()
            written = await program.amain()
            await recorded.wait()  # (the fork replays until the recording is done)
            return written

    async def recording() -> tuple[str, str]:
        await forking.wait()
        program.script(openai_env)
        with Recorder(store, command=()) as recorder:
            written = await program.amain()
        recorded.set()
        return written, recorder.run_id

    fork_written, (written, run_id) = await asyncio.gather(forked(), recording())
    assert fork_written == "Notes: Paris has 3 million people. Rome has 2.8 million people."
    assert written == "Notes: Paris has 2.1 million people. Rome has 2.8 million people."
    assert len(openai_env.requests) == made + 1 + 5  # (the fork's writer; all of the run's)
    tree = RunTree.of(store, run_id)
    assert len(tree.agents()) == program.AGENT_CALLS  # (was: the fork's too, replayed)
    assert not any(call.replayed for call in tree.calls.values())
    assert len(RunTree.of(store, forks[0].child).agents()) == program.AGENT_CALLS


async def _greeting_then_voice(server: FakeLLMServer, cached: MemoryCallStore) -> list[str]:
    """A program with a call cache of its own: a text call (its reply), then a voice session."""
    greeter = openai_agent.fork(model="gpt-4o-mini", max_retries=0)
    voice = APIS[0].voice(server)
    async with MiniAgents():
        with CallCache(cached, namespace="voice").active():
            greeting = str((await greeter.inquire("Greet me."))[-1])
            found = await pieces(voice.inquire(streamed(["Hi."])))
    return [greeting] + [str(piece.text) for piece in found if isinstance(piece, Transcript)]


async def test_a_forks_voice_session_is_replayed_from_the_programs_cache_and_recorded_so(
    openai_env: FakeLLMServer, store: RunStore
) -> None:
    # What a fork records and replays of a session: the fork's replay (of the run's calls,
    # which hold no recording of a session) is not the program's call cache, so the session
    # is replayed whole from the program's own (no request), keyed as the first run keyed it.
    openai_env.speak(["Hi back."])
    cached = MemoryCallStore()
    with Recorder(store, command=("python", "voice.py")) as recorder:
        said = await _greeting_then_voice(openai_env, cached)
    assert said == ["Greet me.", "Hi back."]  # (the fake echoes the text call's prompt)
    first = RunTree.of(store, recorder.run_id)
    text_call = next(call for call in first.calls.values() if not call.request.get("realtime"))
    candidates = await cached.acandidates("openai", "gpt-realtime", 10)
    (recording,) = [each for each in candidates if each.request.get("realtime")]
    fork = plan_fork(store, first.run.id, text_call.id, reply="Good day.")
    requests = len(openai_env.requests)
    with Recorder(store, command=(), fork=fork):
        said = await _greeting_then_voice(openai_env, cached)
    assert said == ["Good day.", "Hi back."]
    assert len(openai_env.realtime_sessions) == 1  # (the session replayed: none opened)
    assert len(openai_env.requests) == requests
    second = RunTree.of(store, fork.child)
    replies = [call for call in second.calls.values() if call.request.get("realtime")]
    assert [call.key for call in replies] == [recording.key]
    # (was: the session's replies, replayed, were shown as made live: their Finish said not)
    assert all(call.replayed for call in second.calls.values())


class _AudioServed:
    """A route that answers every call itself, its ``Finish`` saying the reply's audio."""

    rank = 0

    def llm_call(
        self, provider: object, call: LLMCall, options: object, proceed: object
    ) -> AsyncIterator[LLMEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[LLMEvent]:
        yield "Heard."
        yield AUDIO_FINISH


AUDIO_FINISH = Finish("stop", 30, 10, model="gpt-4o-mini", audio=AudioTokens(20, 0, None))


async def test_a_recorded_calls_audio_tokens_are_its_finishs_in_a_fork(store: RunStore) -> None:
    # (was: Finish(**) of the recorded JSON: its audio a dict, which no pricing reads)
    remove = install_llm_route(_AudioServed())
    try:
        with Recorder(store, command=("python", "audio.py")) as recorder:
            async with MiniAgents():
                await openai_agent.fork(model="gpt-4o-mini").inquire("Hi.")
    finally:
        remove()
    (recorded,) = recorded_calls(RunTree.of(store, recorder.run_id)).values()
    assert recorded.events == ("Heard.", AUDIO_FINISH)
