"""The topology fuzzer: every agent program ends, with what it must reply, and leaves no task.

Hypothesis draws whole programs (``tests/fakes/topologies.py``): chains, fan-outs wider
than the high-water mark, fan-ins of nested replies of replies, ``pipe`` operators, agents
called more often than their concurrency limit, lazy and eager starts, agents that pause
(sleeping, or streaming a message slowly), every way to read an input (whole, message by
message, token by token, or with a timeout around each message, then reading on) and a
reply (whole, message by message, token by token, two readers at once, stopping early),
with limits small enough that small programs cross them all. And callers *give up*: a
timeout around the loop that lands in a wait (``timeout_wait``) or in the loop's own work
(``timeout_body``), or one of two readers giving up while the other reads on
(``two_one_gives_up``).

The property, on a virtual clock (so a hang is seen at once, not after a wall-clock wait):
the program ends with the replies its shape implies, or with a ``ReplayWindowError`` when a
replay window is set (a consumer that starts after the window passed is told so, by
design); a ``DeadlockError`` (the deadlock watch, one virtual second after the loop went
idle with every task waiting on the library's streams) counts as a hang. A reader that
reads to the end reads every reply, in order (also when another reader gives up meanwhile:
nothing is lost); one that gives up has read the first replies, in order, as many as its
shape says (see :func:`check_reading`); when a lone caller gave up, the ``MiniAgents``
context exits at that very time (it waits for nothing that was given up on: the agents
pausing, the messages streaming). When the context has exited, no task of the program is
left, and a program that replied in full logged no error (one that ended with an error may
log that side streams lost it, and so may branches left unread by a caller that stopped
early or gave up, with a window).

The same programs run with their tasks started eagerly, as under Python 3.12's
``asyncio.eager_task_factory`` (``tests/fakes/eager_tasks.py``): an agent's first step runs
inside ``inquire`` then, before its caller goes on. And they run on uvloop (in real time, a
tick of a millisecond, checked every 10 ms), which hides its callbacks and timers from the
deadlock watch.

The normal suite runs a few hundred programs, derandomized (the same ones every run);
``pytest tests/miniagents/test_topology_fuzzer.py --hypothesis-profile=deep`` runs
thousands of random ones (see CONTRIBUTING.md for the last such run).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from contextlib import nullcontext
from functools import partial

import pytest
from hypothesis import HealthCheck, event, given, settings

from miniagents.errors import ReplayWindowError
from miniagents.promising.lowlevel import set_deadlock_check_interval
from miniagents.testing.virtual_time import run_with_virtual_time
from tests.fakes.eager_tasks import eager_tasks
from tests.fakes.topologies import (
    GIVING_UP,
    FanOut,
    Leaf,
    Program,
    Reading,
    expected,
    programs,
    run,
)
from tests.fakes.uvloop_runs import on_uvloop

_DEEP = settings().max_examples > 1_000  # --hypothesis-profile=deep
FUZZ = settings(
    max_examples=settings().max_examples if _DEEP else 180,
    derandomize=not _DEEP,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # caplog: cleared for every program
    ],
)

GIVE_UP_FUZZ = settings(FUZZ, max_examples=FUZZ.max_examples if _DEEP else 60)
"""Programs whose caller gives up: of the callers the others draw, three in eight do."""

EAGER_FUZZ = settings(FUZZ, max_examples=FUZZ.max_examples if _DEEP else 90)
"""Fewer programs with eager tasks: before Python 3.12 their stand-in is pure Python."""

UVLOOP_FUZZ = settings(FUZZ, max_examples=FUZZ.max_examples if _DEEP else 50)
"""Fewer programs on uvloop: in real time, a relieved program waits for the watch."""


UVLOOP_TICK = 0.001
"""A tick on uvloop (real time): a millisecond, not the virtual clock's second."""


async def _outcome(
    program: Program, eager: bool, tick: float = 1.0
) -> tuple[Reading | ReplayWindowError, list[str]]:
    """What the caller read (or the error it got), and the tasks left behind."""
    try:
        with eager_tasks() if eager else nullcontext():
            result: Reading | ReplayWindowError = await run(program, tick)
    except ReplayWindowError as error:
        result = error
    left = [task.get_name() for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    return result, left


def check(
    program: Program,
    caplog: pytest.LogCaptureFixture,
    eager: bool = False,
    uvloop: bool = False,
) -> str:
    """Run ``program``; fail unless it ends as its shape says, with no task left.

    ``eager``: with its tasks started eagerly (Python 3.12's ``eager_task_factory``).
    ``uvloop``: on uvloop, in real time (a tick of a millisecond), checked for deadlocks
    every 10 ms.

    Returns:
        How it ended: "replies", or the name of the error it ended with, and whether a
        reader gave up.
    """
    caplog.clear()
    if uvloop:
        former = set_deadlock_check_interval(0.01)
        try:
            result, left = on_uvloop(partial(_outcome, program, eager, UVLOOP_TICK))
        finally:
            set_deadlock_check_interval(former)
    else:
        result, left = run_with_virtual_time(_outcome(program, eager))
    gc.collect()  # (its garbage now: an error lost in a cycle is its own, not a later program's)
    errors = [
        record.getMessage()
        for record in caplog.records
        if record.name == "miniagents" and record.levelno >= logging.ERROR
    ]
    caplog.clear()  # what a failed program lost is its own business (see the docstring)
    if not isinstance(result, BaseException) and any(
        "failed: ReplayWindowError" in text for text in [*result.texts, *(result.other or ())]
    ):  # a tool's failure is its result, which the model reads: the same outcome, in a text
        assert program.replay_window is not None, f"{result!r} without a window: {program}"
        return "ReplayWindowError in a tool's result"
    if isinstance(result, ReplayWindowError):
        assert program.replay_window is not None, f"{result!r} without a window: {program}"
        ended = "ReplayWindowError"
    else:
        check_reading(program, result, timed=not uvloop)
        if program.replay_window is None or (
            program.consumer != "early" and result.gave_up_at is None
        ):
            # a caller that stopped early or gave up reads no error of the branches it left:
            # they may still fail, by design, with a replay window (a late reader of a
            # passed window)
            assert not errors, (errors, program)
        ended = "replies" if result.gave_up_at is None else "replies, a reader gave up"
        if not uvloop and not program.takes_time and result.exited_at > 0:
            ended += ", relieved by the watch"  # (time passed: the watch's relief took it)
    assert not left, f"tasks left behind: {left} ({program})"
    return ended


def check_reading(program: Program, reading: Reading, timed: bool) -> None:
    """Fail unless ``reading`` is what the caller of ``program`` must have read.

    A reader that reads to the end reads every reply; one that stops early (``break``)
    reads the first ``early_after``; one that gives up in its body (after taking message
    ``early_after + 1``) the first ``early_after``, and gives up if there is such a
    message; one that gives up in a wait (its timeout set after ``early_after`` messages,
    landing where the clock is needed) reads those and maybe more, in order, and gives up
    unless it read to the end. ``timed`` (the virtual clock): once a lone caller gave up,
    the ``MiniAgents`` context exits at once: it waits for nothing that was given up on
    (an agent pausing, a message streaming).
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
    if consumer not in ("early", "timeout_wait", "timeout_body"):
        assert texts == full, (texts, program)  # (two_one_gives_up: the reader that read on)
    if consumer not in GIVING_UP:
        assert reading.gave_up_at is None, (reading, program)
    elif timed and reading.gave_up_at is not None and consumer != "two_one_gives_up":
        assert reading.exited_at == reading.gave_up_at, (reading, program)


@FUZZ
@given(program=programs())
def test_every_generated_program_ends_with_its_replies_and_leaves_no_task(
    program: Program, caplog: pytest.LogCaptureFixture
) -> None:
    event(f"ended with {check(program, caplog)}")


@GIVE_UP_FUZZ
@given(program=programs(GIVING_UP))
def test_every_generated_program_whose_caller_gives_up_ends_without_waiting_for_what_it_left(
    program: Program, caplog: pytest.LogCaptureFixture
) -> None:
    event(f"ended with {check(program, caplog)}")


@EAGER_FUZZ
@given(program=programs())
def test_every_generated_program_ends_so_with_its_tasks_started_eagerly(
    program: Program, caplog: pytest.LogCaptureFixture
) -> None:
    event(f"ended with {check(program, caplog, eager=True)}")


@UVLOOP_FUZZ
@given(program=programs())
def test_every_generated_program_ends_so_on_uvloop(
    program: Program, caplog: pytest.LogCaptureFixture
) -> None:
    event(f"ended with {check(program, caplog, uvloop=True)}")


def test_issue_26s_program_is_among_the_shapes_and_ends(caplog: pytest.LogCaptureFixture) -> None:
    """The fan-out that hung (65 workers reading ``message_promises``, read message by message)."""
    worker = Leaf(input_style="promises", own=0)
    program = Program(
        root=FanOut(children=(worker,), replicas=65),
        inputs=("task",),
        high_water_mark=64,
        replay_window=None,
        consumer="messages",
    )
    check(program, caplog)
    assert len(expected(program)) == 65


def test_a_fan_out_past_a_tiny_high_water_mark_with_limited_workers_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker = Leaf(input_style="tokens", own=2, with_areply=True, max_concurrency=1)
    program = Program(
        root=FanOut(children=(worker, FanOut(children=(worker,), replicas=3)), replicas=4),
        inputs=("x", "y", "zz"),
        high_water_mark=1,
        replay_window=None,
        consumer="tokens",
    )
    check(program, caplog)
