"""How a program of the topology fuzzer must end: the check each program is run through.

The fuzzer's tests (``tests/miniagents/test_topology_fuzzer.py``) and the tally of how its
programs end (``tests/benchmarks/fuzzer_tally.py``) run their programs through :func:`check`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from contextlib import nullcontext
from functools import partial

import pytest

from miniagents.errors import AppenderClosedError, ReplayWindowError
from miniagents.promising.lowlevel import set_deadlock_check_interval
from tests.fakes.cut_off import Hung, run_with_cut_off, within
from tests.fakes.eager_tasks import eager_tasks
from tests.fakes.topologies import GIVING_UP, Program, Reading, expected, longest, run
from tests.fakes.uvloop_runs import on_uvloop

UVLOOP_TICK = 0.001
"""A tick on uvloop (real time): a millisecond, not the virtual clock's second."""

UVLOOP_CUT_OFF = 5.0
"""Real seconds after which a program on uvloop counts as hung, beyond the most ticks its
shape may take (:func:`~tests.fakes.topologies.longest`, a millisecond each there)."""


async def _result(program: Program, eager: bool, tick: float) -> Reading | ReplayWindowError:
    """What the caller read, or the ``ReplayWindowError`` it got."""
    try:
        with eager_tasks() if eager else nullcontext():
            return await run(program, tick)
    except ReplayWindowError as error:
        return error


async def _outcome(
    program: Program, eager: bool, tick: float = 1.0, cut_off: float | None = None
) -> tuple[Reading | ReplayWindowError, list[str]]:
    """What the caller read (or the error it got), and the tasks left behind.

    ``cut_off``: the real seconds after which it counts as hung (:class:`Hung`); ``None``:
    the caller cuts it off (the virtual clock's :func:`run_with_cut_off`).
    """
    main = _result(program, eager, tick)
    result = await (main if cut_off is None else within(main, cut_off))
    left = [task.get_name() for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    return result, left


def check(
    program: Program,
    caplog: pytest.LogCaptureFixture,
    eager: bool = False,
    uvloop: bool = False,
    window_is_a_defect: bool = False,
) -> str:
    """Run ``program``; fail unless it ends as its shape says, with no task left.

    It runs on a virtual clock, cut off past the most ticks its shape may take
    (:func:`~tests.fakes.topologies.longest`: a program still running then hung, a
    :class:`Hung` with the program's text), with no timer of the test's in the loop.
    ``eager``: with its tasks started eagerly (Python 3.12's ``eager_task_factory``).
    ``uvloop``: on uvloop, in real time (a tick of a millisecond, cut off
    :data:`UVLOOP_CUT_OFF` seconds later than the virtual clock's cut-off), checked for
    deadlocks every 10 ms.
    ``window_is_a_defect``: a ``ReplayWindowError`` fails it too (every consumer of the
    program's streams is started before they produce: issue 58, item 1).

    Returns:
        How it ended: "replies", or the name of the error it ended with, and whether a
        reader gave up.
    """
    caplog.clear()
    try:
        if uvloop:
            former = set_deadlock_check_interval(0.01)
            try:
                cut_off = UVLOOP_CUT_OFF + longest(program) * UVLOOP_TICK
                result, left = on_uvloop(
                    partial(_outcome, program, eager, UVLOOP_TICK, cut_off), wait=2 * cut_off
                )
            finally:
                set_deadlock_check_interval(former)
        else:
            result, left = run_with_cut_off(_outcome(program, eager), longest(program))
    except Hung as hung:
        raise Hung(f"hung ({hung}): {program}") from None
    gc.collect()  # (its garbage now: an error lost in a cycle is its own, not a later program's)
    gc.freeze()  # (and what is left alive, hypothesis's own, is not walked again at each program)
    logged = [
        record
        for record in caplog.records
        if record.name == "miniagents" and record.levelno >= logging.ERROR
    ]
    errors = [record.getMessage() for record in logged]
    caplog.clear()  # what a failed program lost is its own business (see the docstring)
    if not isinstance(result, BaseException) and any(
        "failed: ReplayWindowError" in text for text in [*result.texts, *(result.other or ())]
    ):  # a tool's failure is its result, which the model reads: the same outcome, in a text
        assert program.replay_window is not None, f"{result!r} without a window: {program}"
        assert not window_is_a_defect, f"{result!r}: {program}"
        return "ReplayWindowError in a tool's result"
    if isinstance(result, ReplayWindowError):
        assert program.replay_window is not None, f"{result!r} without a window: {program}"
        assert not window_is_a_defect, f"{result!r}: {program}"
        ended = "ReplayWindowError"
    else:
        check_reading(program, result, timed=not uvloop)
        if program.replay_window is None or (
            program.consumer != "early" and result.gave_up_at is None
        ):
            # a caller that stopped early or gave up reads no error of the branches it left:
            # they may still fail, by design, with a replay window (a late reader of a
            # passed window)
            if program.replay_window is not None and errors and _window_errors(logged):
                # the same, inside a tool whose result only a later agent's prompt reads (a
                # chain of tools): the first branch's error is the tool's result, the other
                # branches' are lost, and say so
                assert not window_is_a_defect, (errors, program)
                return "ReplayWindowError in a tool's result, read by the next agent"
            assert not errors, (errors, program)
        ended = "replies" if result.gave_up_at is None else "replies, a reader gave up"
        if not uvloop and not program.takes_time and result.exited_at > 0:
            ended += ", relieved by the watch"  # (time passed: the watch's relief took it)
    assert not left, f"tasks left behind: {left} ({program})"
    return ended


def _window_errors(logged: list[logging.LogRecord]) -> bool:
    """Whether every error logged is a branch's ``ReplayWindowError`` (by design in a program
    with a replay window) or the agent that replied with that branch failing after its
    replies had ended with it (its next ``ctx.reply``)."""
    for record in logged:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ReplayWindowError):
            continue
        if isinstance(error, AppenderClosedError) and "with the error of a stream it replied" in (
            record.getMessage()
        ):
            continue
        return False
    return True


def check_reading(program: Program, reading: Reading, timed: bool) -> None:
    """Fail unless ``reading`` is what the caller of ``program`` must have read.

    A reader that reads to the end reads every reply (twice for ``passed_twice``); one that
    stops early (``break``) reads the first ``early_after``; one that gives up in its body
    (after taking message ``early_after + 1``) the first ``early_after``, and gives up if
    there is such a message; one that gives up in a wait (its timeout set after
    ``early_after`` messages, landing where the clock is needed) reads those and maybe
    more, in order, and gives up unless it read to the end; one that reads the messages in
    reverse and gives up (``complete_beside_give_up``) reads the last ones, and gives up
    unless it read them all. ``timed`` (the virtual clock): once a lone caller gave up, the
    ``MiniAgents`` context exits at once: it waits for nothing that was given up on (an
    agent pausing, a message streaming).
    """
    full = expected(program)
    after = program.early_after
    texts = reading.texts
    consumer = program.consumer
    if consumer == "early":
        assert texts == full[:after], program
    elif consumer == "timeout_body" or (
        consumer == "two_one_gives_up" and program.give_up_in == "body"
    ):
        read = texts if reading.other is None else reading.other
        assert read == full[:after], (read, program)
        assert (reading.gave_up_at is not None) == (len(full) > after), (reading, program)
    elif consumer == "timeout_wait" or consumer == "two_one_gives_up":
        read = texts if reading.other is None else reading.other
        assert read == full[: len(read)], (read, program)
        assert len(read) >= min(after, len(full)), (read, program)
        if reading.gave_up_at is None:
            assert read == full, (read, program)
    elif consumer == "complete_beside_give_up":
        read = reading.other or []
        assert read == full[len(full) - len(read) :], (read, program)
        if reading.gave_up_at is None:
            assert read == full, (read, program)
    if consumer not in ("early", "timeout_wait", "timeout_body"):
        # (two_one_gives_up, complete_beside_give_up: the reader that read on)
        assert texts == full, (texts, program)
    if consumer not in GIVING_UP:
        assert reading.gave_up_at is None, (reading, program)
    elif timed and reading.gave_up_at is not None and consumer in ("timeout_wait", "timeout_body"):
        assert reading.exited_at == reading.gave_up_at, (reading, program)
