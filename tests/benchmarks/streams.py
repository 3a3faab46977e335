"""Benchmark: MiniAgents streams against a raw-asyncio (``asyncio.Queue``) baseline.

Run it by hand from the repository root (it is not a test; pytest never collects it)::

    python tests/benchmarks/streams.py            # the full run (a few minutes on 2 cores)
    python tests/benchmarks/streams.py --quick    # smaller sizes, a smoke check
    python tests/benchmarks/streams.py --only W1  # one workload (W1 or W3)

Workloads (see tests/benchmarks/README.md for the details and the recorded results):

* W1: one message of 100,000 str tokens through K = 1, 5, 20 pass-through stages.
  Library, primary ("reactive"): stage 1 is ``MessagePromise.from_async_iterable(producer())``
  and every further stage ``MessagePromise.from_observable(prev.as_observable())``.
  Library, secondary ("async-iter"): every further stage is
  ``MessagePromise.from_async_iterable(prev)``.
  Baseline: one task per stage (stage 1 pulls the producer), one unbounded
  ``asyncio.Queue`` per edge, ``None`` as the end marker.
* W3: 50,000 one-token messages through K = 5 pass-through stages (and K = 1, for reference).
  Library: stage 1 is a ``MessageSequencePromise`` fed from an async generator that yields
  ``MessagePromise(prefill_message=Message(text=f"m{i}"))``; every further stage
  ``MessageSequencePromise.from_observable(prev.as_observable())``.
  Baseline: one task per stage, a queue per edge carrying one token queue per message;
  every stage copies each message's tokens into a new token queue for the next stage.

Every run gets a fresh event loop (``asyncio.run``) after a ``gc.collect()``; wall time
and first-token latency are measured inside the loop with ``time.perf_counter`` from the
start of the run (before the pipeline is built) to the consumer's last / first token.
Peak memory growth is measured with ``tracemalloc`` in separate, untimed runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

from miniagents.messages import Message, MessagePromise, MessageSequencePromise
from miniagents.promising.lowlevel import running_tasks

Sink: TypeAlias = "list[str] | None"
"""Where a checking run puts every token the consumer receives (``None`` in timed runs)."""

TokenQueue: TypeAlias = "asyncio.Queue[str | None]"
MessageQueue: TypeAlias = "asyncio.Queue[asyncio.Queue[str | None] | None]"


@dataclass(frozen=True)
class Sample:
    """One run: seconds from the start of the run to the last and to the first token."""

    wall: float
    first_token: float


Runner: TypeAlias = Callable[[int, int, Sink], Coroutine[Any, Any, Sample]]
"""``runner(n, k, sink)``: one run of a workload with ``n`` tokens/messages and ``k`` stages."""


# -- W1: one message of n tokens through k stages ------------------------------------


async def tokens(n: int) -> AsyncIterator[str]:
    """The W1 producer: ``n`` tokens, yielding to the event loop after every one."""
    for i in range(n):
        yield f"t{i} "
        await asyncio.sleep(0)


def w1_expected(n: int) -> str:
    """The text W1 streams."""
    return "".join(f"t{i} " for i in range(n))


async def _consume_tokens(stage: MessagePromise, start: float, n: int, sink: Sink) -> Sample:
    """Count the tokens of the last library stage, noting when the first one arrived."""
    count = 0
    first = start
    async for token in stage:
        if count == 0:
            first = time.perf_counter()
        count += 1
        if sink is not None:
            sink.append(token)
    end = time.perf_counter()
    assert count == n, (count, n)
    return Sample(end - start, first - start)


async def w1_library_reactive(n: int, k: int, sink: Sink) -> Sample:
    """W1, library, each further stage ``MessagePromise.from_observable(prev.as_observable())``."""
    start = time.perf_counter()
    stage = MessagePromise.from_async_iterable(tokens(n))
    for _ in range(k - 1):
        stage = MessagePromise.from_observable(stage.as_observable())
    return await _consume_tokens(stage, start, n, sink)


async def w1_library_async_iter(n: int, k: int, sink: Sink) -> Sample:
    """W1, library, each further stage ``MessagePromise.from_async_iterable(prev)``."""
    start = time.perf_counter()
    stage = MessagePromise.from_async_iterable(tokens(n))
    for _ in range(k - 1):
        stage = MessagePromise.from_async_iterable(stage)
    return await _consume_tokens(stage, start, n, sink)


async def _w1_produce(source: AsyncIterator[str], outbox: TokenQueue) -> None:
    async for token in source:
        outbox.put_nowait(token)
    outbox.put_nowait(None)


async def _w1_relay(inbox: TokenQueue, outbox: TokenQueue) -> None:
    while True:
        token = await inbox.get()
        outbox.put_nowait(token)
        if token is None:
            return


async def w1_baseline(n: int, k: int, sink: Sink) -> Sample:
    """W1, raw asyncio: a task per stage, an unbounded queue per edge, ``None`` ends."""
    start = time.perf_counter()
    queues: list[TokenQueue] = [asyncio.Queue() for _ in range(k)]
    tasks = [asyncio.create_task(_w1_produce(tokens(n), queues[0]))]
    tasks += [asyncio.create_task(_w1_relay(queues[i], queues[i + 1])) for i in range(k - 1)]
    last = queues[-1]
    count = 0
    first = start
    while (token := await last.get()) is not None:
        if count == 0:
            first = time.perf_counter()
        count += 1
        if sink is not None:
            sink.append(token)
    end = time.perf_counter()
    await asyncio.gather(*tasks)
    assert count == n, (count, n)
    return Sample(end - start, first - start)


# -- W3: n one-token messages through k stages ----------------------------------------


async def message_promises(n: int) -> AsyncIterator[MessagePromise]:
    """The W3 library producer: ``n`` one-token messages, yielding to the loop after each."""
    for i in range(n):
        yield MessagePromise(prefill_message=Message(text=f"m{i}"))
        await asyncio.sleep(0)


def w3_expected(n: int) -> str:
    """The text W3 streams (all the messages' tokens, in order)."""
    return "".join(f"m{i}" for i in range(n))


async def w3_library(n: int, k: int, sink: Sink) -> Sample:
    """W3, library: each further stage ``MessageSequencePromise.from_observable(prev...)``."""
    start = time.perf_counter()
    stage = MessageSequencePromise(message_promises(n))
    for _ in range(k - 1):
        stage = MessageSequencePromise.from_observable(stage.as_observable())
    return await consume_messages(stage, start, n, n, sink)


async def consume_messages(
    last: MessageSequencePromise, start: float, messages: int, tokens_: int, sink: Sink
) -> Sample:
    """Read every token of every message of the last stage, noting the first token."""
    message_count = 0
    count = 0
    first = start
    async for message in last:
        message_count += 1
        async for token in message:
            if count == 0:
                first = time.perf_counter()
            count += 1
            if sink is not None:
                sink.append(token)
    end = time.perf_counter()
    assert (message_count, count) == (messages, tokens_), (message_count, count)
    return Sample(end - start, first - start)


async def token_queues(n: int) -> AsyncIterator[TokenQueue]:
    """The W3 baseline producer: ``n`` one-token queues (token, ``None``), one per message."""
    for i in range(n):
        message: TokenQueue = asyncio.Queue()
        message.put_nowait(f"m{i}")
        message.put_nowait(None)
        yield message
        await asyncio.sleep(0)


async def _w3_produce(source: AsyncIterator[TokenQueue], outbox: MessageQueue) -> None:
    async for message in source:
        outbox.put_nowait(message)
    outbox.put_nowait(None)


async def _w3_relay(inbox: MessageQueue, outbox: MessageQueue) -> None:
    while (message := await inbox.get()) is not None:
        copy: TokenQueue = asyncio.Queue()
        outbox.put_nowait(copy)
        while (token := await message.get()) is not None:
            copy.put_nowait(token)
        copy.put_nowait(None)
    outbox.put_nowait(None)


async def w3_baseline(n: int, k: int, sink: Sink) -> Sample:
    """W3, raw asyncio: a queue of token queues per edge; stages copy every message."""
    start = time.perf_counter()
    queues: list[MessageQueue] = [asyncio.Queue() for _ in range(k)]
    tasks = [asyncio.create_task(_w3_produce(token_queues(n), queues[0]))]
    tasks += [asyncio.create_task(_w3_relay(queues[i], queues[i + 1])) for i in range(k - 1)]
    last = queues[-1]
    messages = 0
    count = 0
    first = start
    while (message := await last.get()) is not None:
        messages += 1
        while (token := await message.get()) is not None:
            if count == 0:
                first = time.perf_counter()
            count += 1
            if sink is not None:
                sink.append(token)
    end = time.perf_counter()
    await asyncio.gather(*tasks)
    assert messages == count == n, (messages, count, n)
    return Sample(end - start, first - start)


# -- running and reporting ---------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One implementation of a workload."""

    label: str
    runner: Runner


@dataclass
class Case:
    """One workload at one size: a baseline and the library variants compared with it."""

    workload: str
    n: int
    k: int
    baseline: Variant
    variants: list[Variant]
    expected: Callable[[int], str]
    measure_memory: bool
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    peak_bytes: dict[str, int] = field(default_factory=dict)


async def _checked(runner: Runner, n: int, k: int, sink: list[str]) -> None:
    await runner(n, k, sink)
    for _ in range(3):  # let finishing tasks take their last step
        await asyncio.sleep(0)
    leaked = running_tasks()
    assert not leaked, f"library tasks left running: {sorted(t.get_name() for t in leaked)}"


T = TypeVar("T")

EAGER_TASKS = False
"""Run every case on loops whose tasks start eagerly (``asyncio.eager_task_factory``, Python
3.12 and later): the library's and the baseline's alike (``--eager-tasks``)."""


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on a loop whose tasks start eagerly if ``EAGER_TASKS`` is set."""
    if not EAGER_TASKS:
        return asyncio.run(main)
    factory = asyncio.eager_task_factory  # type: ignore[attr-defined]  # (3.12; main checks)

    def eager_loop() -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        loop.set_task_factory(factory)
        return loop

    with asyncio.Runner(loop_factory=eager_loop) as runner:  # asyncio.run's ending, too
        return runner.run(main)


def check(case: Case, variant: Variant) -> None:
    """Run once untimed (also a warm-up): every token arrives, in order; no task is left."""
    sink: list[str] = []
    gc.collect()
    run_loop(_checked(variant.runner, case.n, case.k, sink))
    assert "".join(sink) == case.expected(case.n), f"{case.workload} {variant.label}: wrong text"


def timed(case: Case, variant: Variant) -> Sample:
    """One timed run on a fresh event loop."""
    gc.collect()
    return run_loop(variant.runner(case.n, case.k, None))


def peak_memory(case: Case, variant: Variant) -> int:
    """Peak traced memory growth, in bytes, of one (untimed) run on a fresh event loop."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        run_loop(variant.runner(case.n, case.k, None))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


def run_case(case: Case, runs: int) -> None:
    """Check, then time every variant ``runs`` times (interleaved), then trace memory."""
    everyone = [case.baseline, *case.variants]
    for variant in everyone:
        check(case, variant)
        case.samples[variant.label] = []
    for _ in range(runs):
        for variant in everyone:  # interleaved, so that drift hits every variant alike
            case.samples[variant.label].append(timed(case, variant))
    if case.measure_memory:
        for variant in everyone:
            case.peak_bytes[variant.label] = peak_memory(case, variant)


def median_wall(case: Case, label: str) -> float:
    """The median wall time of a variant, in seconds."""
    return statistics.median(sample.wall for sample in case.samples[label])


def median_first(case: Case, label: str) -> float:
    """The median first-token latency of a variant, in seconds."""
    return statistics.median(sample.first_token for sample in case.samples[label])


def _mb(case: Case, label: str) -> str:
    peak = case.peak_bytes.get(label)
    return "-" if peak is None else f"{peak / 1e6:.1f}"


def print_rows(
    cases: Sequence[Case], header: Sequence[str], cells: Callable[[Case, str, str], Sequence[str]]
) -> None:
    """Print a Markdown table: ``header``, then ``cells(case, variant, baseline)`` per variant."""
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for case in cases:
        for variant in case.variants:
            print("| " + " | ".join(cells(case, variant.label, case.baseline.label)) + " |")


def ratio(case: Case, label: str, baseline: str) -> float:
    """The library variant's median wall time over its baseline's."""
    return median_wall(case, label) / median_wall(case, baseline)


def print_table(cases: Sequence[Case], runs: int) -> None:
    """Print one row per library variant, with its baseline and the ratio library/baseline."""
    print()
    print(f"Medians of {runs} runs; ms = milliseconds; MB = 10^6 bytes (tracemalloc peak growth).")
    header = (
        "workload",
        "K",
        "library variant",
        "library ms",
        "baseline ms",
        "ratio",
        "1st token ms (lib / base)",
        "peak MB (lib / base)",
    )

    def cells(case: Case, lib: str, base: str) -> Sequence[str]:
        return (
            f"{case.workload} n={case.n:,}",
            str(case.k),
            lib,
            f"{median_wall(case, lib) * 1e3:.1f}",
            f"{median_wall(case, base) * 1e3:.1f}",
            f"{ratio(case, lib, base):.2f}x",
            f"{median_first(case, lib) * 1e3:.3f} / {median_first(case, base) * 1e3:.3f}",
            f"{_mb(case, lib)} / {_mb(case, base)}",
        )

    print_rows(cases, header, cells)


def print_targets(cases: Sequence[Case]) -> None:
    """Say, for every target, whether the primary library figure meets it."""
    print()
    print("Targets (primary figures; secondary variants for information):")
    for case in cases:
        for variant in case.variants:
            streams_verdicts(case, variant.label)


def streams_verdicts(case: Case, lib: str) -> None:
    """Print the streams targets of one library variant of a W1 or W3 case."""
    lib_ratio = ratio(case, lib, case.baseline.label)
    if case.workload == "W1":
        if case.k == 20:
            verdict(f"W1 K=20 {lib}: wall <= 1.0x baseline", lib_ratio, 1.0, "x")
            peak = case.peak_bytes.get(lib)
            if peak is not None:
                verdict(f"W1 K=20 {lib}: peak growth <= 20 MB", peak / 1e6, 20, "MB")
        first_ms = median_first(case, lib) * 1e3
        verdict(f"W1 K={case.k} {lib}: first token <= 1 ms", first_ms, 1.0, "ms")
    elif case.workload == "W3" and case.k == 5:
        verdict(f"W3 K=5 {lib}: wall <= 1.5x baseline", lib_ratio, 1.5, "x")
        peak = case.peak_bytes.get(lib)
        if peak is not None:
            verdict(f"W3 K=5 {lib}: peak growth <= 20 MB", peak / 1e6, 20, "MB")


def verdict(what: str, value: float, limit: float, unit: str) -> None:
    """Print whether ``value`` meets the target ``limit`` (and by how much it misses)."""
    if value <= limit:
        print(f"  MET    {what}: {value:.3f} {unit} (limit {limit:g} {unit})")
    else:
        over = (value / limit - 1) * 100
        print(f"  MISSED {what}: {value:.3f} {unit} (limit {limit:g} {unit}, {over:.0f} % over)")


def build_cases(quick: bool, only: str | None) -> list[Case]:
    """The cases to run: full sizes, or small ones with ``--quick``."""
    w1_n = 5_000 if quick else 100_000
    w3_n = 2_000 if quick else 50_000
    baseline_w1 = Variant("baseline", w1_baseline)
    reactive = Variant("reactive (from_observable)", w1_library_reactive)
    async_iter = Variant("async-iter (from_async_iterable)", w1_library_async_iter)
    cases: list[Case] = []
    if only in (None, "W1"):
        cases += [
            Case("W1", w1_n, k, baseline_w1, [reactive, async_iter], w1_expected, k == 20)
            for k in (1, 5, 20)
        ]
    if only in (None, "W3"):
        sequence = Variant("sequence (from_observable)", w3_library)
        baseline_w3 = Variant("baseline", w3_baseline)
        cases += [  # K = 5 is the target; K = 1 separates fixed per-message from per-stage costs
            Case("W3", w3_n, k, baseline_w3, [sequence], w3_expected, k == 5) for k in (1, 5)
        ]
    return cases


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options, run the cases and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke check")
    parser.add_argument("--only", choices=("W1", "W3"), help="run one workload only")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per variant (default 5)")
    options = parser.parse_args(argv)
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
        + (", QUICK sizes" if options.quick else "")
    )
    cases = build_cases(options.quick, options.only)
    began = time.perf_counter()
    for case in cases:
        print(f"running {case.workload} n={case.n:,} K={case.k} ...", file=sys.stderr, flush=True)
        run_case(case, options.runs)
    print_table(cases, options.runs)
    print_targets(cases)
    print(f"\nTotal benchmark time: {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
