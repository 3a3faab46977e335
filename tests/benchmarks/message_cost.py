"""Micro-benchmark: what one ``Message`` costs, against plain frozen pydantic models.

Run it by hand from the repository root (it is not a test; pytest never collects it)::

    python tests/benchmarks/message_cost.py            # the full run (about a minute)
    python tests/benchmarks/message_cost.py --quick    # fewer operations, a smoke check
    python tests/benchmarks/message_cost.py --runs 9   # more timed runs per case (default 7)

Every case is timed against a baseline doing the same with a plain frozen pydantic model
(``BaseModel`` with ``frozen=True, extra="allow"``, no freezing of nested values, no content
hashing), in the same run, the two interleaved: each timed run does ``n`` operations in a
loop after ``gc.collect()`` (a set-up such as building the messages whose
``hash_key`` is measured is not timed); the table shows the median per operation in microseconds and
the ratio library / baseline. The last column is the memory one object of the case keeps
(``tracemalloc``, over 10,000 objects kept alive, in an untimed run).

Cases (``T`` is a text of 110 characters):

* ``Message(text=T)``; the same with 3 metadata fields (``role``, ``model``, ``turn``);
* a subclass with typed fields, ``Chat(text=T, role="user", turn=3)``;
* nested containers: ``Message(text=T, meta={"tags": [...], "scores": {...}}, ids={1, 2})``;
* ``hash_key`` of a message just built (so never cached), against
  ``sha256(model_dump_json())`` of the plain model;
* ``==`` and ``hash()`` of two equal messages built apart;
* a pickle round trip (``pickle.loads(pickle.dumps(message))``).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import pickle
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import pydantic
from pydantic import BaseModel, ConfigDict

from miniagents.messages import Message

TEXT = "The quick brown fox jumps over the lazy dog; " * 2 + "then it naps, happy."
assert len(TEXT) == 110

Operation: TypeAlias = Callable[[int], float]
"""``operation(n)``: do the measured thing ``n`` times; the seconds that took (set-up excluded)."""


class Chat(Message):
    """A message subclass with typed fields."""

    role: str
    turn: int


class PlainMessage(BaseModel):
    """The baseline: a plain frozen pydantic model with the same field and extras."""

    model_config = ConfigDict(frozen=True, extra="allow")

    text: str | None = None


class PlainChat(PlainMessage):
    """The baseline of :class:`Chat`."""

    role: str
    turn: int


def _nested() -> dict[str, Any]:
    return {"meta": {"tags": ["a", "b"], "scores": {"x": 1, "y": 2}}, "ids": {1, 2}}


def _build(make: Callable[[], object]) -> Operation:
    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            make()
        return time.perf_counter() - start

    return run


def _hash_key(make: Callable[[], Message]) -> Operation:
    def run(n: int) -> float:
        messages = [make() for _ in range(n)]  # fresh messages: no key is cached yet
        start = time.perf_counter()
        for message in messages:
            message.hash_key  # noqa: B018 - the property is what is measured
        return time.perf_counter() - start

    return run


def _plain_hash_key(make: Callable[[], BaseModel]) -> Operation:
    def run(n: int) -> float:
        models = [make() for _ in range(n)]
        start = time.perf_counter()
        for model in models:
            hashlib.sha256(model.model_dump_json().encode()).hexdigest()
        return time.perf_counter() - start

    return run


def _equal(first: object, second: object) -> Operation:
    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            first == second  # noqa: B015 - the comparison is what is measured
        return time.perf_counter() - start

    return run


def _hash(value: object) -> Operation:
    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            hash(value)
        return time.perf_counter() - start

    return run


def _pickle_round_trip(value: object) -> Operation:
    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            pickle.loads(pickle.dumps(value))
        return time.perf_counter() - start

    return run


@dataclass(frozen=True)
class Case:
    """One measured operation and its baseline; ``n`` operations per timed run."""

    name: str
    library: Operation
    baseline: Operation
    n: int
    kept: Callable[[], object] | None = None  # one object to weigh (None: nothing kept)
    kept_baseline: Callable[[], object] | None = None


def build_cases(quick: bool) -> list[Case]:
    """The cases of the table, with ``n`` scaled down for a quick run."""
    scale = 10 if quick else 1
    three: dict[str, Any] = {"role": "user", "model": "gpt-4o", "turn": 3}
    message = Message(text=TEXT, **three)
    twin = Message(text=TEXT, **three)
    plain = PlainMessage(text=TEXT, **three)
    plain_twin = PlainMessage(text=TEXT, **three)
    chat = Chat(text=TEXT, role="user", turn=3)
    plain_chat = PlainChat(text=TEXT, role="user", turn=3)
    return [
        Case(
            "Message(text=T)",
            _build(lambda: Message(text=TEXT)),
            _build(lambda: PlainMessage(text=TEXT)),
            200_000 // scale,
            lambda: Message(text=TEXT),
            lambda: PlainMessage(text=TEXT),
        ),
        Case(
            "Message(text=T, 3 metadata fields)",
            _build(lambda: Message(text=TEXT, **three)),
            _build(lambda: PlainMessage(text=TEXT, **three)),
            200_000 // scale,
            lambda: Message(text=TEXT, **three),
            lambda: PlainMessage(text=TEXT, **three),
        ),
        Case(
            "Chat(text=T, role=, turn=) (typed subclass)",
            _build(lambda: Chat(text=TEXT, role="user", turn=3)),
            _build(lambda: PlainChat(text=TEXT, role="user", turn=3)),
            200_000 // scale,
            lambda: Chat(text=TEXT, role="user", turn=3),
            lambda: PlainChat(text=TEXT, role="user", turn=3),
        ),
        Case(
            "Message(text=T, nested containers)",
            _build(lambda: Message(text=TEXT, **_nested())),
            _build(lambda: PlainMessage(text=TEXT, **_nested())),
            100_000 // scale,
            lambda: Message(text=TEXT, **_nested()),
            lambda: PlainMessage(text=TEXT, **_nested()),
        ),
        Case(
            "hash_key (3 metadata fields, not cached)",
            _hash_key(lambda: Message(text=TEXT, **three)),
            _plain_hash_key(lambda: PlainMessage(text=TEXT, **three)),
            50_000 // scale,
        ),
        Case(
            "hash_key (nested containers, not cached)",
            _hash_key(lambda: Message(text=TEXT, **_nested())),
            _plain_hash_key(lambda: PlainMessage(text=TEXT, **_nested())),
            50_000 // scale,
        ),
        Case("== (3 metadata fields)", _equal(message, twin), _equal(plain, plain_twin), 500_000),
        Case("hash() (typed subclass)", _hash(chat), _hash(plain_chat), 500_000 // scale),
        Case(
            "pickle round trip (3 metadata fields)",
            _pickle_round_trip(message),
            _pickle_round_trip(plain),
            50_000 // scale,
        ),
        Case(
            "pickle round trip (typed subclass)",
            _pickle_round_trip(chat),
            _pickle_round_trip(plain_chat),
            50_000 // scale,
        ),
    ]


def _time(operation: Operation, n: int) -> float:
    """Microseconds per operation in one timed run."""
    gc.collect()
    return operation(n) / n * 1e6


def _bytes_per_object(make: Callable[[], object] | None, count: int = 10_000) -> float | None:
    """The traced memory that ``count`` objects keep, per object."""
    if make is None:
        return None
    make()  # warm up: class-level caches are not counted
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [make() for _ in range(count)]
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return (after - before) / count


@dataclass(frozen=True)
class Row:
    """The measured figures of one case."""

    case: Case
    library_us: float
    baseline_us: float
    library_bytes: float | None
    baseline_bytes: float | None


def run_case(case: Case, runs: int) -> Row:
    """Time ``case`` and its baseline, interleaved, ``runs`` times each; medians."""
    case.library(max(1, case.n // 10))  # warm up
    case.baseline(max(1, case.n // 10))
    library: list[float] = []
    baseline: list[float] = []
    for _ in range(runs):
        library.append(_time(case.library, case.n))
        baseline.append(_time(case.baseline, case.n))
    return Row(
        case,
        statistics.median(library),
        statistics.median(baseline),
        _bytes_per_object(case.kept),
        _bytes_per_object(case.kept_baseline),
    )


def _weight(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def table(rows: Sequence[Row]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| case | library µs | baseline µs | ratio | bytes per object (lib / base) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.case.name} | {row.library_us:.2f} | {row.baseline_us:.2f} | "
            f"{row.library_us / row.baseline_us:.2f}x | "
            f"{_weight(row.library_bytes)} / {_weight(row.baseline_bytes)} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options, run the cases and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer operations, a smoke check")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per case (default 7)")
    options = parser.parse_args(argv)
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"pydantic {pydantic.VERSION}, {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
        + (", QUICK sizes" if options.quick else "")
    )
    rows = []
    for case in build_cases(options.quick):
        print(f"running {case.name} ...", file=sys.stderr, flush=True)
        rows.append(run_case(case, options.runs))
    print(table(rows))


if __name__ == "__main__":
    main()
