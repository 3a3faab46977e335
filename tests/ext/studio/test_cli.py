"""The studio's commands (``miniagents studio show``, ``fork``, ``diff``): the runs they read."""

from __future__ import annotations

import pytest

from miniagents.ext.studio import RunStore
from miniagents.ext.studio.cli import studio_main
from miniagents.ext.studio.store import MAX_RUN_EVENTS
from tests.ext.studio.kit import many_calls


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
