"""The studio's commands: the runs they read, and ``miniagents run`` interrupted.

``miniagents studio show``, ``fork`` and ``diff`` read runs; ``miniagents run`` ends a
program's run when the program is interrupted.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import ClassVar

import pytest

from miniagents.cli import main as miniagents_main
from miniagents.ext.studio import Fork, ForkResult, Recorder, RunStore, RunTree, cli
from miniagents.ext.studio.app import studio_app
from miniagents.ext.studio.cli import studio_main
from miniagents.ext.studio.errors import StudioConfigurationError
from miniagents.ext.studio.events import RunEvent
from miniagents.ext.studio.store import MAX_RUN_EVENTS
from miniagents.testing import FakeLLMServer
from tests.ext.studio import program
from tests.ext.studio.kit import many_calls
from tests.ext.web.serving import configs_run
from tests.subprocesses import ProcessGroups


def _refused(store: RunStore, arguments: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The line on stderr of a command that exits 2 (it cannot start)."""
    with pytest.raises(SystemExit) as exited:
        studio_main([*arguments, "--store", str(store.path)], "miniagents studio")
    assert exited.value.code == 2
    return capsys.readouterr().err


def test_a_command_refuses_a_run_past_the_most_events_read_before_reading_it(
    store: RunStore, capsys: pytest.CaptureFixture[str]
) -> None:
    big = many_calls(store, MAX_RUN_EVENTS + 1)
    said = _refused(store, ["show", big], capsys)  # (was: read whole, ~300 MB, ~10 s)
    assert f"The run {big!r} has 200,001 events, more than the 200,000 read at once here" in said
    assert "--max-events N" in said


def test_the_studio_refuses_a_token_too_short_to_keep_guessers_out(
    store: RunStore, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    unserved = ["--port", "0", "--allow-host", "http://no.host"]  # (nothing served if taken)
    said = _refused(store, ["--token", "s3cr3t", *unserved], capsys)
    assert "the token has 6 characters, too few to keep guessers out" in said
    monkeypatch.setenv(cli.TOKEN_VARIABLE, "dev")
    said = _refused(store, unserved, capsys)
    assert "the token has 3 characters" in said


def test_max_events_bounds_show_fork_and_diff_and_is_checked(
    store: RunStore, capsys: pytest.CaptureFixture[str]
) -> None:
    big = many_calls(store, 3_000)
    runs = len(store.runs())
    bound = ["--max-events", "2999"]
    for arguments in (
        ["show", big, *bound],
        ["fork", big, "--call", "1", "--reply", "x", *bound],
        ["diff", big, big, *bound],
    ):
        said = _refused(store, arguments, capsys)
        assert "has 3,000 events, more than the 2,999 read at once here" in said, arguments
    assert len(store.runs()) == runs  # (no fork started)
    assert studio_main(["show", big, "--max-events", "3000", "--store", str(store.path)], "s") == 0
    assert capsys.readouterr().out.startswith(f"run {big}  many  (ok)")
    for wrong, why in (("0", "0 is not at least 1"), ("many", "invalid int value: 'many'")):
        said = _refused(store, ["show", big, "--max-events", wrong], capsys)
        assert f"argument --max-events: {why}" in said


def _recorded_program(store: RunStore) -> str:
    """A run of the test program (its fake server scripted) recorded in ``store``; its id."""

    async def recorded() -> str:
        with Recorder(store, command=("python", "program.py")) as recorder:
            await program.amain()
        return recorder.run_id

    return asyncio.run(recorded())


class _CountingStore(RunStore):
    """A store that counts its reads of each run's events."""

    reads: ClassVar[Counter[str]] = Counter()

    def all_events(self, run_id: str, max_events: int | None = None) -> list[RunEvent]:
        self.reads[run_id] += 1
        return super().all_events(run_id, max_events)


@pytest.mark.parametrize("named_by", [["--call-with", "Paris has 2.1"], ["--call", "CALL"]])
def test_fork_reads_the_run_it_forks_once(
    named_by: list[str],
    openai_env: FakeLLMServer,
    store: RunStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The run is read once: to find the call, plan the fork and compare the fork with it."""
    program.script(openai_env)

    async def in_this_process(counted: RunStore, fork: Fork, **_options: object) -> ForkResult:
        with Recorder(store, command=(), fork=fork):  # (the fork's program: not counted)
            written = await program.amain()
        return ForkResult(fork.child, 0, written + "\n")

    run_id = _recorded_program(store)
    paris = next(call for call in RunTree.of(store, run_id).calls.values() if "2.1" in call.text)
    monkeypatch.setattr(cli, "RunStore", _CountingStore)
    monkeypatch.setattr(cli, "afork", in_this_process)
    _CountingStore.reads.clear()
    named = [str(paris.id) if given == "CALL" else given for given in named_by]
    arguments = ["fork", run_id, *named, "--reply", "Paris has 3 million people."]
    assert studio_main([*arguments, "--store", str(store.path)], "miniagents studio") == 0
    child = RunTree.of(store, "last").run
    assert child.forked_from == run_id
    assert _CountingStore.reads == {run_id: 1, child.id: 1}  # (was: 3 with --call-with, 2)
    shown = capsys.readouterr().out
    assert shown.startswith("Notes: Paris has 3 million people. Rome has 2.8 million people.\n")
    assert re.search(r"~ \. RESEARCHER .* call \d+ replayed, call \d+ edited", shown)
    assert re.search(r"~ \. WRITER .* call \d+ live", shown)


def test_fork_ends_at_its_timeout_saying_so_and_refuses_a_timeout_that_is_none(
    openai_env: FakeLLMServer,
    store: RunStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """(was: no --timeout: a fork whose program hung waited for ever)."""
    program.script(openai_env)

    given: list[float | None] = []

    async def overran(_store: RunStore, fork: Fork, *, timeout: float | None = None) -> ForkResult:
        given.append(timeout)
        raise TimeoutError  # (what afork raises at its timeout, its program killed)

    run_id = _recorded_program(store)
    monkeypatch.setattr(cli, "afork", overran)
    forking = ["fork", run_id, "--call-with", "Paris has 2.1", "--reply", "x"]
    said = _refused(store, [*forking, "--timeout", "2.5"], capsys)
    assert given == [2.5], said
    assert "the fork's program ran past --timeout 2.5 seconds and was killed" in said
    assert "give a longer --timeout" in said
    for wrong in ("0", "-1", "inf", "nan"):
        said = _refused(store, [*forking, "--timeout", wrong], capsys)
        assert f"argument --timeout: {float(wrong)} is not a positive number of seconds" in said
    assert "invalid float value: 'soon'" in _refused(store, [*forking, "--timeout", "soon"], capsys)
    assert given == [2.5]  # (none of those started)


_SLOW_PROGRAM = """\
import asyncio
import json

from miniagents import MiniAgents


async def main() -> None:
    async with MiniAgents():
        print("ready", flush=True)
        await asyncio.sleep(3600)


asyncio.run(main())
"""


def _interrupted(args: list[str], cwd: Path) -> tuple[int, str]:
    """Start ``python *args``, press Ctrl+C (SIGINT) once it printed ``ready``: how it ended."""
    pipe = subprocess.PIPE
    env = {"MINIAGENTS_STUDIO": str(cwd / "runs.sqlite")}
    with ProcessGroups() as started:  # (ended with all it started, whatever happens)
        process = started.python(args, cwd, env=env, stdout=pipe, stderr=pipe)
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=60)
    return process.returncode, errors


@pytest.mark.timeout(180)  # (two Pythons one after the other: slow on a loaded machine)
def test_ctrl_c_ends_a_run_as_it_ends_the_program_with_its_own_traceback(
    tmp_path: Path,
) -> None:
    (tmp_path / "slow.py").write_text(_SLOW_PROGRAM)
    plain = _interrupted(["slow.py"], tmp_path)
    recorded = _interrupted(["-m", "miniagents", "run", "slow.py"], tmp_path)
    status, errors = recorded
    said, traceback = errors.split("\n", 1)
    assert said.startswith("[miniagents] recorded the run ")
    assert (status, traceback) == plain  # (was: runpy's and the command's frames too)
    assert status in (-signal.SIGINT, 130)
    assert traceback.endswith("KeyboardInterrupt\n")
    assert "miniagents/ext/studio" not in traceback
    assert "runpy" not in traceback


def test_run_called_in_process_leaves_the_excepthook_argv_and_path_as_they_were(
    tmp_path: Path,
) -> None:
    """An error the program leaves uncaught goes up to the caller, which may catch it."""
    (tmp_path / "failing.py").write_text("raise ValueError('the program failed')\n")
    hook, argv, path = sys.excepthook, sys.argv, sys.path[0]
    store = str(tmp_path / "runs.sqlite")
    with pytest.raises(ValueError, match="the program failed"):
        cli.run_main(["--store", store, str(tmp_path / "failing.py"), "x"], "miniagents run")
    assert sys.excepthook is hook  # (was: the command's hook, kept in the process)
    assert (sys.argv, sys.path[0]) == (argv, path)  # (was: the program's)
    assert RunStore(store).runs()[0].status == "failed"


def test_the_command_s_main_called_in_process_without_argv_leaves_the_excepthook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the console's entry point lets the program's error end the process."""
    (tmp_path / "failing.py").write_text("raise ValueError('the program failed')\n")
    store = str(tmp_path / "runs.sqlite")
    monkeypatch.setattr(sys, "argv", ["miniagents", "run", "--store", store, "failing.py"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # (restored whatever happens)
    hook = sys.excepthook
    with pytest.raises(ValueError, match="the program failed"):
        miniagents_main()
    assert sys.excepthook is hook  # (was: the command's hook, kept in the caller's process)


def test_run_gives_the_program_its_path_as_typed_in_argv_as_python_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "prog.py").write_text(
        "import json, sys\n"
        "with open('seen.json', 'w') as seen:\n"
        "    json.dump([sys.argv, __file__, __name__], seen)\n"
    )
    monkeypatch.chdir(tmp_path)
    main_before = sys.modules["__main__"]
    store = str(tmp_path / "runs.sqlite")
    assert cli.run_main(["--store", store, "./prog.py", "x"], "miniagents run") == 0
    seen = json.loads((tmp_path / "seen.json").read_text())
    # (was: [str(tmp_path / "prog.py"), "x"], where `python ./prog.py x` gives ["./prog.py", "x"])
    assert seen == [["./prog.py", "x"], str(tmp_path / "prog.py"), "__main__"]
    assert sys.modules["__main__"] is main_before


def test_a_directory_given_as_the_store_is_refused_naming_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    configs = configs_run(monkeypatch)  # (was: served, every request a 500)
    with pytest.raises(SystemExit) as exited:
        studio_main(["--port", "0", "--store", str(tmp_path)], "miniagents studio")
    assert exited.value.code == 2
    said = capsys.readouterr().err
    assert f"argument --store: The store of recorded runs {str(tmp_path)!r} is a directory" in said
    assert configs == []


class _ClosedStore(RunStore):
    """A store that counts how often it is closed."""

    closes: ClassVar[int] = 0

    def close(self) -> None:
        type(self).closes += 1
        super().close()


@pytest.mark.parametrize("command", [["--port", "0"], ["list"]], ids=["served", "list"])
def test_the_studio_closes_the_store_it_opened_as_it_ends(
    store: RunStore, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    configs = configs_run(monkeypatch)
    monkeypatch.setattr(cli, "RunStore", _ClosedStore)
    monkeypatch.setattr(_ClosedStore, "closes", 0)
    assert studio_main([*command, "--store", str(store.path)], "miniagents studio") == 0
    assert _ClosedStore.closes == 1  # (was: 0, the store left open as serving ended)
    assert len(configs) == (command[0] == "--port")


@pytest.mark.parametrize(
    ("token", "taken"),
    [
        ("", False),
        ("two words and more", False),
        ("tab\tin-the-middle-of-it", False),
        ("s3cr3t", False),
        ("fifteen-chars-x", False),
        ("clé-secrète-du-studio", False),
        ("sixteen-chars-xx", True),
        ("s3cr3t-studio-token", True),
    ],
)
def test_the_command_and_the_app_refuse_the_same_tokens_saying_the_same(
    store: RunStore,
    token: str,
    taken: bool,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One check of the token, the app's: the command refuses a token as the app does, with
    its words, naming ``--token``. (Was: the command checked it again, in words of its own,
    and left the rest to the app.)"""
    configs = configs_run(monkeypatch)
    command = ["--token", token, "--port", "0"]
    if taken:
        studio_app(store, token=token)
        assert studio_main(["--store", str(store.path), *command], "s") == 0
        assert len(configs) == 1
        return
    with pytest.raises(StudioConfigurationError) as refused:
        studio_app(store, token=token)
    assert refused.value.parameter == "token"
    said = _refused(store, command, capsys)
    assert f"argument --token: {refused.value} Or give none, for a random one." in said
    assert configs == []  # (nothing served)
