"""How the topology fuzzer's programs end, counted by mode, without stopping at a failure.

A script run by hand from the repository root (pytest never collects it)::

    python -m tests.benchmarks.fuzzer_tally 2000              # every mode, 2,000 programs each
    python -m tests.benchmarks.fuzzer_tally 500 timer twice   # some modes
    python -m tests.benchmarks.fuzzer_tally 2000 --seed 7     # other programs (2026 by default)

Each mode draws random programs (seeded: the same ones on every run) from the strategy of
its test in ``tests/miniagents/test_topology_fuzzer.py``, runs each through that test's
``check`` (``tests/fakes/topology_checks.py``) and counts how they ended: the replies, a
``ReplayWindowError``, a reader that gave up, or a failure (a hang: still running at its
cut-off; a wrong reply; an error), with the caller and what else the loop held. The first
programs of each failure are printed in full. ``pytest --hypothesis-profile=deep`` stops at
a test's first failure (and shrinks it); this says how often each one happens, before and
after a fix.
"""

from __future__ import annotations

import collections
import gc
import logging
import sys
import time
from dataclasses import dataclass
from typing import cast

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from miniagents.errors import DeadlockError, StreamCancelledError
from tests.fakes.cut_off import Hung
from tests.fakes.topologies import (
    GIVING_UP,
    OPERATORS,
    ORDINARY,
    Program,
    diamonds,
    passed_on_twice,
    programs,
)
from tests.fakes.topology_checks import check

logging.disable(logging.CRITICAL)


@dataclass(frozen=True)
class _Options:
    eager: bool = False
    uvloop: bool = False
    window_is_a_defect: bool = False


MODES: dict[str, tuple[st.SearchStrategy[Program], _Options]] = {
    "plain": (programs(), _Options()),
    "give_up": (programs(GIVING_UP), _Options()),
    "eager": (programs(), _Options(eager=True)),
    "timer": (programs(ORDINARY + GIVING_UP, ambient=("timer", "timeout")), _Options()),
    "operators": (programs(OPERATORS, ambient=("idle", "timer")), _Options()),
    "diamonds": (
        programs(
            ORDINARY + OPERATORS,
            roots=diamonds(),
            ambient=("idle", "timer", "timeout"),
            high_water_marks=st.sampled_from([1, 1, 2, 4, None]),
        ),
        _Options(),
    ),
    "twice": (
        programs(
            ORDINARY,
            roots=passed_on_twice(),
            ambient=("idle", "timer"),
            replay_windows=st.sampled_from([2, 8]),
        ),
        _Options(window_is_a_defect=True),
    ),
    "complete": (programs(["complete_beside_give_up"], ambient=("idle", "timer")), _Options()),
    "uvloop": (
        programs(ORDINARY + GIVING_UP + OPERATORS, ambient=("idle", "timer", "timeout")),
        _Options(uvloop=True),
    ),
}


class _Records:
    """What ``check`` reads of pytest's ``caplog``: no records (the logs are off here)."""

    def __init__(self) -> None:
        self.records: list[logging.LogRecord] = []

    def clear(self) -> None:
        self.records = []


def classify(error: BaseException) -> str:
    """The kind of failure ``error`` is."""
    text = str(error)
    if isinstance(error, Hung):
        return "HANG"
    if isinstance(error, DeadlockError):
        return "DeadlockError"
    if isinstance(error, StreamCancelledError):
        return "StreamCancelledError"
    if isinstance(error, AssertionError):
        if "ReplayWindowError" in text:
            return "ReplayWindowError (a reply passed on twice)"
        if "tasks left behind" in text:
            return "tasks left behind"
        if "hung: still running" in text:
            return "HANG"
        if "ended with an error" in text or "lost" in text:
            return "an error logged as lost"
        return "wrong replies"
    return f"{type(error).__name__}"


def tally(mode: str, count: int, seed_value: int) -> None:
    """Run ``count`` programs of ``mode`` and print how they ended."""
    strategy, options = MODES[mode]
    outcomes: collections.Counter[str] = collections.Counter()
    shown: collections.Counter[str] = collections.Counter()
    start = time.time()

    @seed(seed_value)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(program: Program) -> None:
        records = cast(pytest.LogCaptureFixture, _Records())  # (check clears and reads them)
        try:
            outcome = check(
                program,
                records,
                eager=options.eager,
                uvloop=options.uvloop,
                window_is_a_defect=options.window_is_a_defect,
            )
        except Exception as error:
            outcome = f"FAILED: {classify(error)} [{program.consumer}, {program.ambient}]"
            if shown[outcome] < 3:
                shown[outcome] += 1
                print(f"  [{mode}] {outcome}: {str(error)[:300]}\n    {program}", flush=True)
        else:
            if "relieved by the watch" in outcome and shown[outcome] < 3:
                # (not a failure, but the watch's sweep found the wait the graph missed)
                shown[outcome] += 1
                print(f"  [{mode}] {outcome}:\n    {program}", flush=True)
        outcomes[outcome] += 1

    run()
    failed = sum(n for outcome, n in outcomes.items() if outcome.startswith("FAILED"))
    hung = sum(n for outcome, n in outcomes.items() if "HANG" in outcome)
    classes: collections.Counter[str] = collections.Counter()
    for outcome, n in outcomes.items():
        classes[outcome.split(" [")[0]] += n
    print(
        f"{mode}: {count} programs, {hung} hung, {failed} failed in all "
        f"({time.time() - start:.0f} s): {dict(classes.most_common())}\n  in detail: "
        f"{dict(outcomes.most_common())}",
        flush=True,
    )


def main(args: list[str]) -> None:
    """``N [MODE ...] [--seed S]``: N programs of each mode named (of every one by default)."""
    seed_value = 2026
    if "--seed" in args:
        at = args.index("--seed")
        seed_value = int(args[at + 1])
        del args[at : at + 2]
    count = int(args[0])
    gc.collect()
    gc.freeze()
    for mode in args[1:] or list(MODES):
        tally(mode, count, seed_value)


if __name__ == "__main__":
    main(sys.argv[1:])
