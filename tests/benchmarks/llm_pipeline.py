"""Benchmark W6: one streamed LLM call per item, 64 at a time, ``pipeline`` against raw asyncio.

Run it by hand from the repository root (it is not a test; pytest never collects it)::

    python tests/benchmarks/llm_pipeline.py             # N = 10,000 (a few minutes)
    python tests/benchmarks/llm_pipeline.py --quick     # N = 1,000, a smoke check
    python tests/benchmarks/llm_pipeline.py --sizes 10000 100000 --runs 3
    python tests/benchmarks/llm_pipeline.py --variants raw pipeline ray_pipeline --runs 1

Every item is one chat completion of 200 streamed tokens from the fake LLM server
(``miniagents.testing.FakeLLMServer``, in a process of its own on 127.0.0.1, so that its
work does not share this process's interpreter), made with the real OpenAI SDK
(``openai.AsyncOpenAI``) and at most 64 calls at once. Variants, each run in a fresh Python
process (RSS from ``/proc/self/status``):

* ``raw``: ``asyncio.Semaphore(64)``, one task per item, ``async for`` over
  ``client.chat.completions.create(..., stream=True)``, the text joined per item;
* ``pipeline``: ``pipeline(openai_agent.fork(model=..., async_client=client), items,
  max_concurrency=64, progress=False)`` read with ``async for``, each reply's text read
  from its ``ItemResult``;
* ``pipeline+bar``: the same with ``progress=True`` (the bar drawn on a stderr that goes
  nowhere), to price the progress bar;
* ``ray_pipeline`` (only when asked for with ``--variants``): ``ray_pipeline(openai_agent.
  fork(model=...), items, max_in_flight=64, batch_size=32, progress=False)`` on a local Ray
  cluster of 2 CPUs started by the run (2 workers of 32 concurrent calls each; the workers'
  SDK reaches the fake server through ``OPENAI_BASE_URL``); its CPU time and memory are the
  driver's only, the workers' are not counted.

``--tokens`` changes the 200 tokens of each reply (e.g. to see the memory of 100,000 items
in a time that this machine allows); every line printed to stderr as a run ends is the
figures of that run, so that a long session that is cut short still reports.

Both the raw variant and ``pipeline`` read the items lazily (the raw one keeps at most 64
tasks alive, as ``pipeline`` keeps at most ``max_in_flight`` = 64 items). The figures: wall
time and CPU time of the client process (medians of the runs; the CPU time shows the
client's own cost when the fake server is the bottleneck), peak RSS growth of the process
over the run (VmHWM at the end less VmRSS at the start), and the ratios to ``raw``; the
bar's cost is measured on CPU time.
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
from collections.abc import Iterator, Sequence
from pathlib import Path

TOKENS = 200
CONCURRENCY = 64
VARIANTS = ("raw", "pipeline", "pipeline+bar", "ray_pipeline")
DEFAULT_VARIANTS = ("raw", "pipeline", "pipeline+bar")
MODEL = "gpt-4o-mini"
TIMEOUT = 600.0
"""Seconds a call may take, connecting included (the SDK's 5 s to connect is short for a
fake server on a loaded machine)."""


def rss_kb(field: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def prompts(n: int) -> Iterator[str]:
    """The items, made as they are read."""
    for index in range(n):
        yield f"Summarise document {index} in one paragraph."


# -- the variants ---------------------------------------------------------------------------


async def raw(n: int, base_url: str, progress: bool) -> int:
    """Raw asyncio: a semaphore, a task per item (at most 64 alive), the SDK's stream."""
    import openai

    characters = 0
    async with openai.AsyncOpenAI(
        base_url=base_url, api_key="bench", max_retries=0, timeout=TIMEOUT
    ) as client:
        limit = asyncio.Semaphore(CONCURRENCY)

        async def one(prompt: str) -> None:
            nonlocal characters
            async with limit:
                stream = await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": prompt}], stream=True
                )
                parts: list[str] = []
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        parts.append(chunk.choices[0].delta.content)
                characters += len("".join(parts))

        running: set[asyncio.Task[None]] = set()
        for prompt in prompts(n):
            if len(running) >= CONCURRENCY:
                _, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            running.add(asyncio.create_task(one(prompt)))
        await asyncio.gather(*running)
    return characters


async def library(n: int, base_url: str, progress: bool) -> int:
    """``pipeline`` over an ``openai_agent`` with the same client settings."""
    import openai

    from miniagents import MiniAgents, pipeline
    from miniagents.ext.llm.openai import openai_agent

    characters = 0
    async with openai.AsyncOpenAI(
        base_url=base_url, api_key="bench", max_retries=0, timeout=TIMEOUT
    ) as client:
        agent = openai_agent.fork(model=MODEL, async_client=client)
        async with MiniAgents():
            async for result in pipeline(
                agent, prompts(n), max_concurrency=CONCURRENCY, progress=progress, total=n
            ):
                characters += len(str(result.get()))
    return characters


def ray_library(n: int, base_url: str, progress: bool) -> int:
    """``ray_pipeline`` over an ``openai_agent``, on a local cluster of 2 CPUs."""
    import logging

    import ray

    from miniagents.ext.llm.openai import openai_agent
    from miniagents.ext.ray import ray_pipeline

    env = {"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "bench", "OPENAI_MAX_RETRIES": "0"}
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.ERROR,
        runtime_env={"env_vars": env},
    )
    try:
        characters = 0
        for result in ray_pipeline(
            openai_agent.fork(model=MODEL),
            prompts(n),
            max_in_flight=CONCURRENCY,
            batch_size=CONCURRENCY // 2,
            progress=progress,
            total=n,
        ):
            characters += len(str(result.get()))
        return characters
    finally:
        ray.shutdown()


def child(variant: str, n: int, base_url: str) -> dict[str, float]:
    """Run one variant in this (fresh) process; return its figures."""
    import openai  # imported before the clock starts, by every variant

    if variant == "ray_pipeline":
        import ray  # noqa: F401  # imported before the clock starts

        before = rss_kb("VmRSS")
        started = time.perf_counter()
        cpu_started = time.process_time()
        characters = ray_library(n, base_url, False)
        return _figures(variant, n, characters, before, started, cpu_started)
    if variant == "raw":
        run = raw
    else:
        import miniagents.ext.llm.openai  # noqa: F401  # the same, for the library

        run = library
    del openai
    before = rss_kb("VmRSS")
    started = time.perf_counter()
    cpu_started = time.process_time()
    characters = asyncio.run(run(n, base_url, variant == "pipeline+bar"))
    return _figures(variant, n, characters, before, started, cpu_started)


def _figures(
    variant: str, n: int, characters: int, before: int, started: float, cpu_started: float
) -> dict[str, float]:
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    expected = n * len(" tok" * int(os.environ.get("W6_TOKENS", TOKENS)))
    if characters != expected:
        raise AssertionError(f"{variant} read {characters} characters, not {expected}")
    return {"wall": wall, "cpu": cpu, "rss_growth_mb": (rss_kb("VmHWM") - before) / 1e3}


def measure(variant: str, n: int, base_url: str) -> dict[str, float]:
    """Run ``variant`` in a fresh process."""
    args = [sys.executable, __file__, "--child", variant, "--n", str(n), "--url", base_url]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    load = os.getloadavg()[0]
    print(json.dumps({"variant": variant, "n": n, "load": load, **figures}), file=sys.stderr)
    return figures


# -- the fake server, in a process of its own -----------------------------------------------


def serve(replies: int, tokens: int) -> None:
    """Start the fake server with ``replies`` scripted replies; print its URL; wait for EOF."""
    from miniagents.testing import FakeLLMServer

    with FakeLLMServer() as server:
        server.reply(tokens=[" tok"] * tokens, usage=(10, tokens), times=replies)
        print(server.openai_base_url, flush=True)
        sys.stdin.read()


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments; run every variant at every size; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", choices=VARIANTS)
    parser.add_argument("--n", type=int)
    parser.add_argument("--url")
    parser.add_argument("--serve", type=int)
    parser.add_argument("--tokens", type=int, default=TOKENS)
    parser.add_argument("--variants", choices=VARIANTS, nargs="+", default=DEFAULT_VARIANTS)
    args = parser.parse_args(argv)
    if args.child is None:
        os.environ["W6_TOKENS"] = str(args.tokens)  # the children inherit it
    if args.serve is not None:
        serve(args.serve, args.tokens)
        return
    if args.child is not None:
        print(json.dumps(child(args.child, args.n, args.url)))
        return
    sizes = [1_000] if args.quick else args.sizes
    runs = 1 if args.quick else args.runs
    variants: Sequence[str] = args.variants
    total = sum(sizes) * runs * len(variants) + 10
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(total), "--tokens", str(args.tokens)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert server.stdout is not None
    assert server.stdin is not None
    base_url = server.stdout.readline().strip()
    rows: list[str] = []
    try:
        for n in sizes:
            figures: dict[str, list[dict[str, float]]] = {variant: [] for variant in variants}
            for _ in range(runs):
                for variant in variants:  # interleaved, so that the machine's load is shared
                    figures[variant].append(measure(variant, n, base_url))

            def median(variant: str, key: str) -> float:
                return statistics.median(run[key] for run in figures[variant])  # noqa: B023

            raw_wall, raw_cpu = median("raw", "wall"), median("raw", "cpu")
            for variant in variants:
                wall, cpu = median(variant, "wall"), median(variant, "cpu")
                growth = max(run["rss_growth_mb"] for run in figures[variant])
                rows.append(
                    f"| {n:,} | {variant} | {wall:.1f} s | {wall / raw_wall:.2f}x | "
                    f"{cpu:.1f} s | {cpu / raw_cpu:.2f}x | {growth:.0f} MB |"
                )
            if "pipeline" in variants:
                ratio = median("pipeline", "wall") / raw_wall
                growth = max(run["rss_growth_mb"] for run in figures["pipeline"])
                print(f"N = {n:,}: pipeline / raw wall = {ratio:.2f} ({_verdict(ratio <= 1.3)})")
                print(f"N = {n:,}: peak RSS growth {growth:.0f} MB ({_verdict(growth <= 50)})")
            if {"pipeline", "pipeline+bar"} <= set(variants):
                bar = median("pipeline+bar", "cpu") / median("pipeline", "cpu") - 1
                print(f"N = {n:,}: the bar costs {bar:+.1%} of CPU ({_verdict(bar <= 0.02)})")
    finally:
        server.stdin.close()
        server.wait(timeout=60)
    print("| N | variant | wall (median) | / raw | CPU (median) | / raw | peak RSS growth (max) |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(row)


def _verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


if __name__ == "__main__":
    main()
