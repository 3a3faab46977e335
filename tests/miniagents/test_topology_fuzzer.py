"""The topology fuzzer: every agent program ends, with what it must reply, and leaves no task.

Hypothesis draws whole programs (``tests/fakes/topologies.py``): chains, fan-outs wider
than the high-water mark, fan-ins of nested replies of replies, diamonds (one reply shared
by branches that meet again in order), replies passed on twice, ``pipe`` operators, agents
called more often than their concurrency limit, lazy and eager starts, agents that pause
(sleeping, or streaming a message slowly), every way to read an input (whole, message by
message, token by token, or with a timeout around each message, then reading on) and a
reply (whole, message by message, token by token, two readers at once, stopping early,
collected then read in reverse, as complete messages, through ``pipe`` or ``pipeline``),
with limits small enough that small programs cross them all. And callers *give up*: a
timeout around the loop that lands in a wait (``timeout_wait``) or in the loop's own work
(``timeout_body``), one of two readers giving up while the other reads on
(``two_one_gives_up``), or a reader giving up on a message the complete messages' reader
has queued (``complete_beside_give_up``). As in any real application, the loop may hold an
unrelated timer meanwhile, or a timeout around the caller (both far off: issue 57).

The property, on a virtual clock (so a hang is seen at once, not after a wall-clock wait):
the program ends with the replies its shape implies, or with a ``ReplayWindowError`` when a
replay window is set (a consumer that starts after the window passed is told so, by design;
not a copy of a reply passed on twice, which was passed on before the reply began). A
program still running past the most ticks its shape may take is a hang: it is cut off on the
virtual clock (``tests/fakes/cut_off.py``: no timer of the test's in the loop, which would
keep the deadlock watch from acting) and reported with its program; so is a
``DeadlockError`` (the deadlock watch, one virtual second after the loop went idle with
every task waiting on the library's streams). A reader that reads to the end reads every
reply, in order (also when another reader gives up meanwhile: nothing is lost); one that
gives up has read the first replies, in order, as many as its shape says (see
:func:`~tests.fakes.topology_checks.check_reading`); when a lone caller gave up, the
``MiniAgents`` context exits at that very time (it waits for nothing that was given up on:
the agents pausing, the messages streaming). When the context has exited, no task of the
program is left, and a program that replied in full logged no error (one that ended with an
error may log that side streams lost it, and so may branches left unread by a caller that
stopped early or gave up, with a window).

The same programs run with their tasks started eagerly, as under Python 3.12's
``asyncio.eager_task_factory`` (``tests/fakes/eager_tasks.py``): an agent's first step runs
inside ``inquire`` then, before its caller goes on. And they run on uvloop (in real time, a
tick of a millisecond, checked every 10 ms), which hides its callbacks and timers from the
deadlock watch, with every caller (``pipe`` and ``pipeline`` too) and the unrelated timers.

The normal suite runs a few hundred programs, derandomized (the same ones every run), with
explicit examples of each defect a mode was made to find;
``pytest tests/miniagents/test_topology_fuzzer.py --hypothesis-profile=deep`` runs
thousands of random ones (see CONTRIBUTING.md for the last such run).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st

from tests.fakes.topologies import (
    GIVING_UP,
    OPERATORS,
    ORDINARY,
    Ambient,
    AsTool,
    Chain,
    Consumer,
    FanOut,
    Leaf,
    Pipe,
    Program,
    Shared,
    Twice,
    diamonds,
    expected,
    passed_on_twice,
    programs,
)
from tests.fakes.topology_checks import check

_DEEP = settings().max_examples > 1_000  # --hypothesis-profile=deep
FUZZ = settings(
    max_examples=settings().max_examples if _DEEP else 180,
    derandomize=not _DEEP,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,  # caplog: cleared for every program
    ],
)

GIVE_UP_FUZZ = settings(FUZZ, max_examples=FUZZ.max_examples if _DEEP else 60)
"""Programs whose caller gives up: of the callers the others draw, four in twelve do."""

EAGER_FUZZ = settings(FUZZ, max_examples=FUZZ.max_examples if _DEEP else 90)
"""Fewer programs with eager tasks: before Python 3.12 their stand-in is pure Python."""

UVLOOP_FUZZ = settings(
    FUZZ,
    max_examples=FUZZ.max_examples if _DEEP else 50,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # (a hang costs its real cut-off)
)
"""Fewer programs on uvloop: in real time, a relieved program waits for the watch."""

AMBIENT_FUZZ = settings(FUZZ, max_examples=FUZZ.max_examples if _DEEP else 40)
"""Programs under a far-off timer or timeout (issue 57): the loop is never idle."""

OPERATOR_FUZZ = settings(FUZZ, max_examples=FUZZ.max_examples if _DEEP else 30)
"""Programs read through ``pipe`` (``as_operator``) or ``pipeline`` (issue 57)."""

DIAMOND_FUZZ = settings(FUZZ, max_examples=FUZZ.max_examples if _DEEP else 30)
"""Diamonds (a reply shared by branches that meet again in order), every way (issue 57)."""

TWICE_FUZZ = settings(FUZZ, max_examples=FUZZ.max_examples if _DEEP else 20)
"""A reply passed on more than once past a small replay window (issue 58, item 1)."""

COMPLETE_FUZZ = settings(FUZZ, max_examples=FUZZ.max_examples if _DEEP else 20)
"""Complete messages beside a reader that gives up on a queued one (issue 58, item 6)."""


ISSUE_57 = Shared(
    source=Leaf(input_style="await", own=2, with_areply=True),
    branches=(Leaf(input_style="promises", own=0), Leaf(input_style="promises", own=0)),
)
"""Issue 57's program (a report over two per-row agents sharing one source), 2 rows."""


def issue_57(consumer: Consumer = "await", ambient: Ambient = "idle") -> Program:
    """Issue 57's program at a high-water mark of 1 (each hung there, as the issue says)."""
    return Program(
        root=ISSUE_57,
        inputs=(),
        high_water_mark=1,
        replay_window=None,
        consumer=consumer,
        ambient=ambient,
    )


CHAIN_INTO_TWICE = Program(
    root=Chain(
        first=Leaf(input_style="await", own=2),
        second=Twice(child=Leaf(input_style="promises", own=2), one_list=False),
    ),
    inputs=(),
    high_water_mark=1,
    replay_window=None,
    consumer="complete",
)
"""Found after the fixes of issues 57 and 58: ``[r, r]`` is a diamond too (hung, idle)."""

A_FAILED_REPLY_PASSED_ON_TWICE = Program(
    root=Pipe(
        first=Leaf(input_style="await", own=0),
        second=Twice(
            child=FanOut(
                children=(
                    Leaf(input_style="await", own=1, pause_in="message"),
                    Leaf(input_style="await", own=0),
                    Leaf(input_style="await", own=0),
                    Leaf(input_style="await", own=0),
                ),
                start_asap=False,
            ),
            copies=2,
            one_list=True,
        ),
    ),
    inputs=("x", "x", "x"),
    high_water_mark=None,
    replay_window=2,
    consumer="await",
    early_after=0,
)
"""Found by the deep run with eager tasks: the fan-out's reply failed (a branch past the
window), and the flattening that stopped there gave up on its second copy, the same
stream, and so on the message it had passed on already: the reader got a cancelled
stream for it, not the message and then the error."""

AN_ENDED_FAILED_REPLY_PASSED_ON_TWICE = Program(
    root=Twice(
        child=Shared(
            source=Leaf(input_style="await", own=2),
            branches=(
                Leaf(input_style="await", own=1, pause_in="message"),
                Leaf(input_style="await", own=0),
            ),
        ),
        copies=2,
        one_list=True,
    ),
    inputs=("x",),
    high_water_mark=None,
    replay_window=2,
    consumer="messages",
    early_after=0,
)
"""Found by the deep run with eager tasks: the diamond's reply had ended (its second branch
past the window, by design) when it was passed on twice, so each copy was queued as its
messages and its error; the flattening that stopped at the first copy's error gave up on
the second copy's streaming message, the very one it had passed on already: the reader
got a cancelled stream for it, not the message and then the ``ReplayWindowError``."""

DIAMOND_OF_A_PIPE = Program(
    root=Shared(
        source=ISSUE_57.source,
        branches=(
            Pipe(Leaf(input_style="await", own=0), Leaf(input_style="await", own=0)),
            Leaf(input_style="promises", own=0),
        ),
    ),
    inputs=(),
    high_water_mark=1,
    replay_window=None,
    consumer="await",
    ambient="timer",
)
"""A diamond whose first branch pipes the rows through operators (hung, a timer pending)."""

DIAMOND_OF_A_TWICE = Program(
    root=Shared(
        source=ISSUE_57.source,
        branches=(
            Leaf(input_style="await", own=0),
            Twice(child=Leaf(input_style="await", own=2, with_areply=True), one_list=False),
        ),
    ),
    inputs=(),
    high_water_mark=1,
    replay_window=None,
    consumer="await",
    ambient="timer",
)
"""A diamond whose second branch passes its reply on twice (hung, a timer pending)."""


@FUZZ
@example(program=CHAIN_INTO_TWICE)
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
@example(program=CHAIN_INTO_TWICE)
@example(program=A_FAILED_REPLY_PASSED_ON_TWICE)
@example(program=AN_ENDED_FAILED_REPLY_PASSED_ON_TWICE)
@given(program=programs())
def test_every_generated_program_ends_so_with_its_tasks_started_eagerly(
    program: Program, caplog: pytest.LogCaptureFixture
) -> None:
    event(f"ended with {check(program, caplog, eager=True)}")


@UVLOOP_FUZZ
@example(program=issue_57("pipe"))
@example(program=issue_57("pipeline"))
@given(program=programs(ORDINARY + GIVING_UP + OPERATORS, ambient=("idle", "timer", "timeout")))
def test_every_generated_program_ends_so_on_uvloop(
    program: Program, caplog: pytest.LogCaptureFixture
) -> None:
    event(f"ended with {check(program, caplog, uvloop=True)}")


# -- issue 57: as in any real application (a timer pending, pipe and pipeline callers) -------


@AMBIENT_FUZZ
@example(program=issue_57(ambient="timer"))
@example(program=DIAMOND_OF_A_TWICE)
@example(program=issue_57(ambient="timeout"))
@given(program=programs(ORDINARY + GIVING_UP, ambient=("timer", "timeout")))
def test_every_generated_program_ends_so_with_an_unrelated_timer_pending(
    program: Program, caplog: pytest.LogCaptureFixture
) -> None:
    """A far-off timer in the loop, or a far-off timeout around the caller: neither fires,
    and neither may keep a program from ending (the loop is never idle in a real app)."""
    event(f"ended with {check(program, caplog)}")


@OPERATOR_FUZZ
@example(program=issue_57("pipe"))
@example(program=issue_57("pipeline"))
@given(program=programs(OPERATORS, ambient=("idle", "timer")))
def test_every_generated_program_ends_so_read_through_pipe_or_pipeline(
    program: Program, caplog: pytest.LogCaptureFixture
) -> None:
    """``reactivex.from_iterable(inputs).pipe(root.as_operator(), ...)`` and
    ``pipeline(root, [inputs])`` read the same replies as ``inquire``."""
    event(f"ended with {check(program, caplog)}")


@DIAMOND_FUZZ
@example(program=DIAMOND_OF_A_PIPE)
@example(
    program=Program(  # issue 57's, as it hung served (the default high-water mark, 200 rows)
        root=Shared(
            source=Leaf(input_style="await", own=200, with_areply=True),
            branches=ISSUE_57.branches,
        ),
        inputs=(),
        high_water_mark=64,
        replay_window=None,
        consumer="messages",
        ambient="timeout",
    )
)
@given(
    program=programs(
        ORDINARY + OPERATORS,
        roots=diamonds(),
        ambient=("idle", "timer", "timeout"),
        high_water_marks=st.sampled_from([1, 1, 2, 4, None]),
    )
)
def test_every_generated_diamond_ends_with_its_replies_whatever_the_loop_holds(
    program: Program, caplog: pytest.LogCaptureFixture
) -> None:
    """A reply shared by branches that meet again in order, its source replying 2 to a few
    hundred messages, read every way, under every caller, with or without a timer."""
    event(f"ended with {check(program, caplog)}")


# -- issue 58: a reply passed on twice; complete messages beside a reader that gives up ------


@TWICE_FUZZ
@example(
    program=Program(
        root=Twice(child=Leaf(input_style="await", own=129)),
        inputs=(),
        high_water_mark=None,
        replay_window=8,
        consumer="await",
    )
)
@example(
    program=Program(
        root=Leaf(input_style="await", own=129),
        inputs=(),
        high_water_mark=4,
        replay_window=8,
        consumer="passed_twice",
    )
)
@given(
    program=programs(
        ORDINARY,
        roots=passed_on_twice(),
        ambient=("idle", "timer"),
        replay_windows=st.sampled_from([2, 8]),
    )
)
def test_every_reply_passed_on_twice_is_read_in_full_past_a_small_replay_window(
    program: Program, caplog: pytest.LogCaptureFixture
) -> None:
    """``ctx.reply([r, r])``, ``ctx.reply(r)`` twice, ``MessageSequencePromise([r, r])``:
    each copy was passed on before ``r`` produced anything, so each reads it from its first
    message, however far past the window ``r`` goes (no ``ReplayWindowError``)."""
    event(f"ended with {check(program, caplog, window_is_a_defect=True)}")


@COMPLETE_FUZZ
@example(
    program=Program(  # two messages streaming once the reply has ended (issue 58, item 6)
        root=Leaf(input_style="await", own=2, pause=1, pause_in="message"),
        inputs=(),
        high_water_mark=None,
        replay_window=None,
        consumer="complete_beside_give_up",
    )
)
@given(program=programs(["complete_beside_give_up"], ambient=("idle", "timer")))
def test_complete_messages_beside_a_reader_that_gives_up_on_a_queued_one_lose_nothing(
    program: Program, caplog: pytest.LogCaptureFixture
) -> None:
    """``as_message_observable()`` reads every reply while another reader, once the reply has
    ended, reads the messages last to first and gives up on one still streaming."""
    event(f"ended with {check(program, caplog)}")


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


_RELIEVED_LATE = [
    # two replicas of an agent that passes one reply on twice, read as complete messages: the
    # second replica's producer was stuck only behind the first's, relieved in the same look
    Program(
        root=FanOut(
            children=(Twice(child=Leaf(input_style="tokens", own=1), copies=2),),
            replicas=2,
            start_asap=False,
        ),
        inputs=("y", "y", "x", "y"),
        high_water_mark=2,
        replay_window=None,
        consumer="complete",
        ambient="timeout",
    ),
    # four producers found live, in one look, through the same running tool: only the first
    # was looked at again when the tool ended (the others' answer came from the look's cache)
    Program(
        root=FanOut(
            children=(
                AsTool(child=Leaf(input_style="tokens", own=0, pause_in="message")),
                Twice(child=Leaf(input_style="await", own=8, with_areply=True), copies=3),
            ),
            replicas=4,
            one_list=True,
        ),
        inputs=("zz", "y", "y", "zz"),
        high_water_mark=4,
        replay_window=4,
        consumer="pipe",
        ambient="timer",
    ),
]


@pytest.mark.parametrize("program", _RELIEVED_LATE, ids=["behind a relieved one", "cached live"])
def test_the_programs_the_watchs_check_relieved_a_second_late_end_at_once(
    program: Program, caplog: pytest.LogCaptureFixture
) -> None:
    """Programs of the fuzzer's that ended only at the watch's check (a second on the virtual
    clock): the wait-for graph now finds their stuck waits the moment they park."""
    assert check(program, caplog) == "replies"


def test_a_branchs_window_error_hidden_in_a_chain_of_tools_is_that_outcome(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found by the deep run (eager tasks): the shared source runs to its end before any
    branch reads it, past a window of 2 (by design, a ``ReplayWindowError`` for each branch);
    the first branch's error is the tool's result, which only the next tool's agent reads,
    and the other branches' errors are logged as lost, as they are."""
    leaf = Leaf(input_style="await", own=0)
    program = Program(
        root=Chain(
            first=AsTool(
                child=Shared(source=Leaf(input_style="await", own=3), branches=(leaf,) * 3)
            ),
            second=AsTool(child=leaf),
        ),
        inputs=(),
        high_water_mark=None,
        replay_window=2,
        consumer="await",
    )
    ended = check(program, caplog, eager=True)
    assert ended == "ReplayWindowError in a tool's result, read by the next agent"
    assert check(program, caplog) == "replies"  # (started lazily, every branch reads it all)


def test_an_ended_failed_reply_passed_on_twice_ends_with_its_window_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found by the deep run (eager tasks): the reader reads the first copy's messages, then
    the diamond's ``ReplayWindowError`` (its second branch came after the shared source ran
    past its window, by design), not a cancelled stream for the message passed on already.
    """
    program = AN_ENDED_FAILED_REPLY_PASSED_ON_TWICE
    assert check(program, caplog, eager=True) == "ReplayWindowError"
    assert check(program, caplog) == "replies"  # (started lazily, every branch reads it all)
