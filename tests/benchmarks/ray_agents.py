"""Benchmark: agents on a local Ray cluster (``miniagents.ext.ray``) against local agents.

Run it by hand from the repository root (it is not a test; pytest never collects it)::

    python tests/benchmarks/ray_agents.py            # the full run (several minutes on 2 cores)
    python tests/benchmarks/ray_agents.py --quick    # smaller sizes, a smoke check
    python tests/benchmarks/ray_agents.py --only W4  # one part: overhead, tokens or W4

It starts a local Ray cluster of 2 CPUs (no dashboard, no usage statistics). Parts (see
tests/benchmarks/README.md for the recorded results):

* overhead: M one-message interactions of an echo agent, one after the other (the cost of
  one interaction) and 64 at a time (the throughput), with ``ray_agent(echo)`` against the
  local ``echo``, and a bare Ray streaming-generator task that yields one item (Ray's own
  floor).
* tokens: one interaction streaming T tokens (the agent yields to its event loop after each
  token, as an LLM stream does), read token by token by the driver: ``ray_agent`` against
  the local agent, and against a bare Ray generator yielding every token as an object, or
  lists of 256 tokens.
* W4: N items of about 100 characters through 3 upper-casing agents (issue 10's W4 stages),
  each item its own interaction: ``ray_pipeline`` on 2 Ray workers, against the same chain
  run locally, 64 items at a time, and against issue 10's streaming form (one interaction
  per stage carrying all N messages) and a raw-asyncio baseline (a task per stage,
  ``asyncio.Queue(maxsize=64)`` per edge). Wall time, items per second, and the driver's
  peak RSS growth, sampled every 10 ms by a thread.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray

from miniagents import InteractionContext, MessageSequencePromise, MiniAgents, miniagent
from miniagents.ext.ray import ray_agent, ray_pipeline
from miniagents.messages import MessageTokenAppender

# -- the agents ---------------------------------------------------------------------------


@miniagent
async def echo(ctx: InteractionContext) -> None:
    """Reply with the input messages."""
    ctx.reply(ctx.message_promises)


@miniagent
async def streamer(ctx: InteractionContext, count: int) -> None:
    """Stream one message of ``count`` tokens, yielding to the event loop after each one."""
    reply = MessageTokenAppender()
    ctx.reply(reply.promise)
    for index in range(count):
        reply.append(f"t{index} ")
        await asyncio.sleep(0)
    reply.complete()


@miniagent
async def upper(ctx: InteractionContext) -> None:
    """W4's stage: each input message, upper-cased."""
    async for promise in ctx.message_promises:
        ctx.reply(str(await promise).upper())


@ray.remote(num_cpus=0.5)
def bare_one(value: str) -> Iterator[str]:
    """Ray's floor for one interaction: a streaming generator task yielding one item."""
    yield value


@ray.remote(num_cpus=0.5)
def bare_tokens(count: int, per_object: int) -> Iterator[list[str]]:
    """Ray's floor for streaming tokens: ``per_object`` tokens per yielded object."""
    batch: list[str] = []
    for index in range(count):
        batch.append(f"t{index} ")
        if len(batch) == per_object:
            yield batch
            batch = []
    if batch:
        yield batch


def item(index: int) -> str:
    """A W4 item: about 100 characters."""
    return f"item {index:07d}: " + "the quick brown fox jumps over the lazy dog " * 2


# -- measuring ----------------------------------------------------------------------------


class RssPeak:
    """The peak resident memory of this process while a block runs, sampled by a thread."""

    def __init__(self) -> None:
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssPeak:
        gc.collect()
        self.start = self.peak = _rss()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 1e6


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def row(*cells: object) -> None:
    """Print one Markdown table row."""
    print("| " + " | ".join(str(cell) for cell in cells) + " |", flush=True)


# -- overhead -------------------------------------------------------------------------------


async def _sequential_ms(inquire: Callable[[], Any], count: int) -> float:
    times = []
    for _ in range(count):
        began = time.perf_counter()
        await inquire()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1e3


async def _concurrent_per_second(inquire: Callable[[], Any], count: int) -> float:
    began = time.perf_counter()
    for start in range(0, count, 64):
        await asyncio.gather(*(inquire() for _ in range(min(64, count - start))))
    return count / (time.perf_counter() - began)


async def overhead(count: int) -> None:
    remote = ray_agent(echo, num_cpus=0.5)

    async def bare() -> str:
        generator: Any = bare_one.remote("hi")  # Ray types it as one ObjectRef
        return str(await (await anext(generator)))

    async with MiniAgents():
        variants: list[tuple[str, Callable[[], Any]]] = [
            ("local echo", lambda: echo.inquire("hi")),
            ("ray_agent(echo)", lambda: remote.inquire("hi")),
            ("bare Ray generator task", bare),
        ]
        for _label, inquire in variants:  # warm-up: workers started, functions exported
            await _concurrent_per_second(inquire, 64)
        local_ms = 0.0
        for label, inquire in variants:
            ms = await _sequential_ms(inquire, count)
            local_ms = local_ms or ms
            per_second = await _concurrent_per_second(inquire, count)
            row("overhead", label, f"{ms:.2f} ms", f"{ms / local_ms:.0f}x", f"{per_second:,.0f}/s")


# -- token throughput -----------------------------------------------------------------------


async def _read_tokens(replies: MessageSequencePromise, count: int) -> tuple[float, float]:
    began = time.perf_counter()
    first = 0.0
    seen = 0
    async for message in replies:
        async for _token in message:
            if not seen:
                first = time.perf_counter() - began
            seen += 1
    assert seen == count, (seen, count)
    return time.perf_counter() - began, first


async def _read_bare(count: int, per_object: int) -> tuple[float, float]:
    began = time.perf_counter()
    first = 0.0
    seen = 0
    generator: Any = bare_tokens.options(_generator_backpressure_num_objects=8).remote(
        count, per_object
    )
    async for ref in generator:
        for _token in await ref:
            if not seen:
                first = time.perf_counter() - began
            seen += 1
    assert seen == count, (seen, count)
    return time.perf_counter() - began, first


async def tokens(count: int) -> None:
    remote = ray_agent(streamer, num_cpus=0.5)
    async with MiniAgents():
        await _read_tokens(remote.inquire(count=1000), 1000)  # warm-up
        runs: list[tuple[str, Callable[[], Any]]] = [
            ("local agent", lambda: _read_tokens(streamer.inquire(count=count), count)),
            ("ray_agent", lambda: _read_tokens(remote.inquire(count=count), count)),
            ("bare Ray, 1 token per object", lambda: _read_bare(count, 1)),
            ("bare Ray, 256 tokens per object", lambda: _read_bare(count, 256)),
        ]
        for label, run in runs:
            cpu = time.process_time()
            seconds, first = await run()
            per_token = f"{(time.process_time() - cpu) / count * 1e6:.1f} µs"
            speed = f"{count / seconds:,.0f} tokens/s"
            row("tokens", label, f"{count:,}", speed, f"{first * 1e3:.1f} ms", per_token)


# -- W4 --------------------------------------------------------------------------------------


def w4_ray(count: int, batch_size: int) -> tuple[float, float, float]:
    """Wall seconds, the driver's peak RSS growth (MB) and its CPU seconds (all threads)."""
    with RssPeak() as rss:
        began = time.perf_counter()
        cpu = time.process_time()
        done = 0
        for result in ray_pipeline(
            [upper, upper, upper],
            (item(index) for index in range(count)),
            max_in_flight=4 * batch_size,
            batch_size=batch_size,
            progress=False,
            num_cpus=1,  # two tasks at a time on 2 CPUs: 2 Ray workers
        ):
            assert str(result.get()) == item(result.index).upper()
            done += 1
        cpu = time.process_time() - cpu
        seconds = time.perf_counter() - began
    assert done == count
    return seconds, rss.growth_mb, cpu


async def _w4_local_items(count: int) -> None:
    async def one(index: int) -> None:
        async with MiniAgents():
            replies = await upper.inquire(upper.inquire(upper.inquire(item(index))))
        assert str(replies) == item(index).upper()

    for start in range(0, count, 64):
        await asyncio.gather(*(one(index) for index in range(start, min(start + 64, count))))


async def _w4_local_stream(count: int) -> None:
    async def items() -> Any:
        for index in range(count):
            yield item(index)

    async with MiniAgents():
        stage = upper.inquire(upper.inquire(upper.inquire(items())))
        seen = 0
        async for promise in stage:
            assert str(await promise) == item(seen).upper()
            seen += 1
    assert seen == count


async def _w4_raw(count: int) -> None:
    queues: list[asyncio.Queue[str | None]] = [asyncio.Queue(64) for _ in range(4)]

    async def produce() -> None:
        for index in range(count):
            await queues[0].put(item(index))
        await queues[0].put(None)

    async def stage(inbox: asyncio.Queue[str | None], outbox: asyncio.Queue[str | None]) -> None:
        while (text := await inbox.get()) is not None:
            await outbox.put(text.upper())
        await outbox.put(None)

    tasks = [asyncio.create_task(produce())]
    tasks += [asyncio.create_task(stage(queues[k], queues[k + 1])) for k in range(3)]
    seen = 0
    while (text := await queues[3].get()) is not None:
        assert text == item(seen).upper()
        seen += 1
    await asyncio.gather(*tasks)
    assert seen == count


def w4(count: int, batch_size: int) -> None:
    results: list[tuple[str, float, float, float]] = []
    for label, run in [
        ("raw asyncio, 3 tasks + Queue(64)", _w4_raw),
        ("local, streaming form (3 interactions)", _w4_local_stream),
        ("local, an interaction per item, 64 at a time", _w4_local_items),
    ]:
        with RssPeak() as rss:
            began = time.perf_counter()
            cpu = time.process_time()
            asyncio.run(run(count))
            cpu = time.process_time() - cpu
            seconds = time.perf_counter() - began
        results.append((label, seconds, rss.growth_mb, cpu))
    w4_ray(min(count, 2 * batch_size), batch_size)  # warm-up: the workers start
    seconds, growth, cpu = w4_ray(count, batch_size)
    results.append((f"ray_pipeline, 2 workers, batches of {batch_size}", seconds, growth, cpu))
    base = results[0][1]
    for label, seconds, growth, cpu in results:
        timing = (f"{seconds:.2f} s", f"{seconds / base:.1f}x", f"{count / seconds:,.0f}/s")
        row("W4", label, f"{count:,}", *timing, f"{growth:.1f} MB", f"{cpu / count * 1e6:.0f} µs")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke check")
    parser.add_argument("--only", choices=("overhead", "tokens", "W4"), help="one part only")
    options = parser.parse_args(argv)
    quick = options.quick
    print(
        f"Python {platform.python_version()}, Ray {ray.__version__}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}" + (", QUICK sizes" if quick else "")
    )
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
    try:
        if options.only in (None, "overhead"):
            asyncio.run(overhead(50 if quick else 300))
        if options.only in (None, "tokens"):
            asyncio.run(tokens(10_000 if quick else 100_000))
        if options.only in (None, "W4"):
            w4(2_000 if quick else 100_000, 100 if quick else 1_000)
    finally:
        ray.shutdown()
    print(f"load average at the end {os.getloadavg()[0]:.2f}", file=sys.stderr)


if __name__ == "__main__":
    main()
