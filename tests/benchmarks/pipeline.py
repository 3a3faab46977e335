"""Benchmark W4, a data pipeline: N messages through 3 agent stages, against raw asyncio.

Run it by hand from the repository root (it is not a test; pytest never collects it)::

    python tests/benchmarks/pipeline.py            # N = 100,000 and 1,000,000 (about 15 min)
    python tests/benchmarks/pipeline.py --quick    # N = 2,000 and 20,000, a smoke check
    python tests/benchmarks/pipeline.py --sizes 100000 --runs 3

Each stage is the agent of issue 10::

    @miniagent
    async def upper(ctx: InteractionContext) -> None:
        async for promise in ctx.message_promises:
            message = await promise
            ctx.reply(Message(text=message.text.upper()))

fed by an async generator of ``Message(text=...)`` (about 110 characters), the consumer
awaiting each reply. Variants, each run in a fresh Python process (so that one run's memory
does not pollute the next; RSS is read from ``/proc/self/status``):

* ``inquire``: ``stage = upper.inquire(stage)`` three times, the user holding the stages;
* ``pipe``: ``MessageSequencePromise(source()).as_message_observable().pipe(
  upper.as_operator(), upper.as_operator(), upper.as_operator())``, read with
  ``MessageSequencePromise.from_observable``;
* ``baseline``: a task per stage, an ``asyncio.Queue(maxsize=64)`` per edge, frozen pydantic
  models (``model_config = ConfigDict(frozen=True)``) built the same way.

Each comes with a fast consumer and a slow one (it spins ``SLOW_US`` µs per message, about
10 times what the source takes to make one), which shows the backpressure: memory stays flat
while the pipeline waits for its consumer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from miniagents import InteractionContext, Message, MessageSequencePromise, MiniAgents, miniagent
from miniagents.promising.lowlevel import running_tasks

TEXT = "The quick brown fox jumps over the lazy dog, again and again, " * 2  # 110 characters
SLOW_US = 60.0
"""Microseconds the slow consumer spins per message (the source makes one in about 6)."""

VARIANTS = ("baseline", "inquire", "pipe")


def spin(microseconds: float) -> None:
    """Busy-wait (CPU work that the event loop cannot overlap with anything)."""
    until = time.perf_counter() + microseconds / 1e6
    while time.perf_counter() < until:
        pass


# -- the library ----------------------------------------------------------------------------


@miniagent
async def upper(ctx: InteractionContext) -> None:
    """Upper-case every input message."""
    async for promise in ctx.message_promises:
        message = await promise
        ctx.reply(Message(text=str(message.text).upper()))


async def messages(n: int) -> AsyncIterator[Message]:
    """The library source: n messages of about 110 characters."""
    for index in range(n):
        yield Message(text=f"{index:08d} {TEXT}")


async def library(n: int, form: str, slow: bool, sink: list[str] | None) -> int:
    """Run W4 through the library; return the number of replies read."""
    async with MiniAgents():
        if form == "inquire":
            stage = upper.inquire(messages(n))
            stage = upper.inquire(stage)
            stage = upper.inquire(stage)
        else:
            source = MessageSequencePromise(messages(n)).as_message_observable()
            piped = source.pipe(upper.as_operator(), upper.as_operator(), upper.as_operator())
            stage = MessageSequencePromise.from_observable(piped)
        count = 0
        async for promise in stage:
            message = await promise
            count += 1
            if slow:
                spin(SLOW_US)
            if sink is not None:
                sink.append(str(message.text))
    return count


# -- the raw-asyncio baseline -----------------------------------------------------------------


class Frozen(BaseModel):
    """A frozen pydantic model: the baseline's message."""

    model_config = ConfigDict(frozen=True)
    text: str


async def _produce(n: int, outbox: asyncio.Queue[Frozen | None]) -> None:
    for index in range(n):
        await outbox.put(Frozen(text=f"{index:08d} {TEXT}"))
    await outbox.put(None)


async def _stage(inbox: asyncio.Queue[Frozen | None], outbox: asyncio.Queue[Frozen | None]) -> None:
    while (message := await inbox.get()) is not None:
        await outbox.put(Frozen(text=message.text.upper()))
    await outbox.put(None)


async def baseline(n: int, _form: str, slow: bool, sink: list[str] | None) -> int:
    """Run W4 with tasks and bounded queues; return the number of messages read."""
    queues: list[asyncio.Queue[Frozen | None]] = [asyncio.Queue(maxsize=64) for _ in range(4)]
    tasks = [asyncio.create_task(_produce(n, queues[0]))]
    tasks += [asyncio.create_task(_stage(queues[i], queues[i + 1])) for i in range(3)]
    count = 0
    while (message := await queues[-1].get()) is not None:
        count += 1
        if slow:
            spin(SLOW_US)
        if sink is not None:
            sink.append(message.text)
    await asyncio.gather(*tasks)
    return count


RUNNERS: dict[str, Callable[[int, str, bool, list[str] | None], Coroutine[Any, Any, int]]] = {
    "baseline": baseline,
    "inquire": library,
    "pipe": library,
}


# -- one run, in a child process -----------------------------------------------------------------


def rss_kb(field: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(variant: str, n: int, slow: bool) -> dict[str, float]:
    """One checked warm-up at a small size, then the measured run."""
    sink: list[str] = []
    assert asyncio.run(RUNNERS[variant](200, variant, False, sink)) == 200
    assert sink == [f"{index:08d} {TEXT}".upper() for index in range(200)], "wrong replies"
    assert not running_tasks(), "library tasks left running"
    before = rss_kb("VmRSS")
    began, cpu_began = time.perf_counter(), time.process_time()
    count = asyncio.run(RUNNERS[variant](n, variant, slow, None))
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu_began
    assert count == n, (count, n)
    return {"wall": wall, "cpu": cpu, "rss_growth_mb": (rss_kb("VmHWM") - before) / 1e3}


def measure(variant: str, n: int, slow: bool) -> dict[str, float]:
    """Run :func:`child` in a fresh interpreter and return what it measured."""
    args = [sys.executable, __file__, "--child", variant, str(n)] + (["--slow"] if slow else [])
    root = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(args, capture_output=True, text=True, check=True, env=env)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- the whole benchmark ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Run every variant at every size, fast and slow consumer, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke check")
    parser.add_argument("--sizes", type=int, nargs="+", help="N values (default 100k and 1M)")
    parser.add_argument(
        "--runs", type=int, default=3, help="runs per cell below N = 500,000 (median; default 3)"
    )
    parser.add_argument("--fast-only", action="store_true", help="skip the slow consumer")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--slow", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        print(json.dumps(child(options.child[0], int(options.child[1]), options.slow)))
        return
    sizes = options.sizes or ([2_000, 20_000] if options.quick else [100_000, 1_000_000])
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print()
    print(
        "| N | consumer | variant | runs | wall s | wall ratio | CPU s | CPU ratio "
        "| messages/s | peak RSS growth MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        runs = options.runs if n < 500_000 else 1
        for slow in (False,) if options.fast_only else (False, True):
            base: dict[str, float] = {}
            for variant in VARIANTS:
                print(f"running {variant} N={n:,} slow={slow} ...", file=sys.stderr, flush=True)
                results = [measure(variant, n, slow) for _ in range(runs)]
                median = {k: statistics.median(r[k] for r in results) for k in results[0]}
                base = base or median
                print(
                    f"| {n:,} | {'slow' if slow else 'fast'} | {variant} | {runs} | "
                    f"{median['wall']:.2f} | {median['wall'] / base['wall']:.2f}x | "
                    f"{median['cpu']:.2f} | {median['cpu'] / base['cpu']:.2f}x | "
                    f"{n / median['wall']:,.0f} | {median['rss_growth_mb']:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
