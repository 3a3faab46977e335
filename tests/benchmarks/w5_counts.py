"""W5 measured by what the load does not change: an LLM call's calls and opcodes, and per token.

Run by hand from the repository root (pytest never collects it); ``PYTHONPATH`` chooses the
library measured (a folder holding a ``miniagents`` package, e.g. a ``git archive`` export)::

    python tests/benchmarks/w5_counts.py                        # Anthropic and Chat
    python tests/benchmarks/w5_counts.py --apis anthropic --pairs 20
    python tests/benchmarks/w5_counts.py --apis anthropic --instructions 2   # valgrind
    python tests/benchmarks/w5_counts.py --apis bedrock gemini --pairs 5     # llm_stream's calls
    PYTHONPATH=/tmp/lib python tests/benchmarks/w5_counts.py    # another library

``llm_stream.py``'s SSE server (a process of its own on 127.0.0.1) answers each call with
its tokens at once (a burst). Calls are made one at a time in one ``MiniAgents`` context
(as a long-lived app has), after warm-up calls, each read to its end as ``llm_stream.py``'s
``ours`` reads it (``async for`` over the reply, then over each message's tokens); the raw
SDK reads the same reply with ``async for`` over its stream. Variants:

* ``raw``: the SDK alone;
* ``ours``: our LLM agent with ``MiniAgents(llm_stall_timeout=None)`` (no stall watch);
* ``watched``: our LLM agent with the context's default stall timeout (the watch on).

Per variant (the counts of one call, over several calls):

* **call**: function calls (``cProfile``) and Python opcodes (``sys.settrace``, the
  collector off) of a whole call of 3 tokens: the set-up, the request, the reply read;
* **per token**: the same, for a call of 400 tokens minus one of 200, over 200;
* **CPU**: ``process_time`` of a call of 2,000 tokens, ours and raw alternated ``--pairs``
  times; the median of ours over raw (the machine's load moves it: trust the counts);
* **instructions** (``--instructions K``, with valgrind): the machine instructions of a
  call of 2,000 tokens, the SDK's C code and the interpreter's included, which opcodes do
  not weigh: a process of 2 warm-up calls and K counted ones, less one of the warm-up calls
  alone, over K, each under ``valgrind --tool=callgrind`` (``PYTHONHASHSEED=0``). The load
  does not move it; the network reads' sizes do, by about 0.5 %. Slow: a few minutes a
  process on an idle core.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # run as a script: make the `tests` package importable
    sys.path.append(_ROOT)  # after PYTHONPATH: the library measured is the one found first

from tests.benchmarks import llm_setup, llm_stream  # noqa: E402

VARIANTS = ("raw", "ours", "watched")
_OTHER_APIS = ("bedrock", "gemini")
"""APIs read as ``llm_stream.py`` reads them (its raw calls and agents)."""
SMALL, LONG, CPU_TOKENS = 200, 400, 2000
"""Tokens of the two calls whose difference is the per-token figure, and of the CPU call."""


def _model(tokens: int) -> str:
    return f"w5-{tokens}-0"  # the server reads the size from the model's name


async def _raw(client: Any, api: str, tokens: int) -> str:
    parts: list[str] = []
    messages = [{"role": "user", "content": "Say something."}]
    if api == "chat":
        stream = await client.chat.completions.create(
            model=_model(tokens),
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},  # as ours asks for the usage
        )
        async with stream:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    parts.append(chunk.choices[0].delta.content)
        return "".join(parts)
    stream = await client.messages.create(
        model=_model(tokens), messages=messages, max_tokens=4096, stream=True
    )
    async with stream:
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                parts.append(event.delta.text)
    return "".join(parts)


def _caller(api: str, variant: str, client: Any) -> Callable[[int], Awaitable[str]]:
    """One call of ``tokens`` tokens, read to its end."""
    if api in _OTHER_APIS:  # llm_stream's calls (the SDK's defaults: no usage asked)
        if variant == "raw":
            return lambda tokens: llm_stream._raw_call(client, api, _model(tokens), lambda: None)
        others: dict[int, Any] = {}

        def other(tokens: int) -> Any:
            if tokens not in others:
                others[tokens] = llm_stream.our_agent(api, _model(tokens), client)
            return others[tokens]

        return lambda tokens: llm_stream.ours_call(other(tokens), lambda: None)
    if variant == "raw":
        return lambda tokens: _raw(client, api, tokens)
    from miniagents.ext.llm.anthropic import anthropic_agent
    from miniagents.ext.llm.openai import openai_agent

    agents: dict[int, Any] = {}

    def agent(tokens: int) -> Any:
        if tokens not in agents:
            agents[tokens] = (
                anthropic_agent.fork(model=_model(tokens), async_client=client)
                if api == "anthropic"
                else openai_agent.fork(
                    model=_model(tokens), async_client=client, api="chat_completions"
                )
            )
        return agents[tokens]

    return lambda tokens: llm_stream.ours_call(agent(tokens), lambda: None)


class _Opcodes:
    def __init__(self) -> None:
        self.count = 0

    def trace(self, frame: FrameType, event: str, arg: object) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            self.count += 1
        return self.trace


async def _one(
    call: Callable[[int], Awaitable[str]], tokens: int, mode: str, dump: str | None = None
) -> float:
    """One call of ``tokens`` tokens, measured by ``mode`` (calls, opcodes or cpu).

    ``dump``: where the call's profile is written (``pstats``' format), in ``calls`` mode.
    """
    await llm_setup._settle()
    expected = "".join(llm_stream.token(i) for i in range(tokens))
    if mode == "calls":
        profile = cProfile.Profile()
        profile.enable()
        text = await call(tokens)
        profile.disable()
        figure = float(pstats.Stats(profile).total_calls)  # type: ignore[attr-defined]
        if dump:
            profile.dump_stats(dump)
    elif mode == "opcodes":
        counter = _Opcodes()
        gc.disable()
        sys.settrace(counter.trace)
        try:
            text = await call(tokens)
        finally:
            sys.settrace(None)
            gc.enable()
        figure = float(counter.count)
    else:
        started = time.process_time()
        text = await call(tokens)
        figure = time.process_time() - started
    if text != expected:
        raise AssertionError(f"read {len(text)} characters, not the {len(expected)} expected")
    return figure


async def _counts(
    api: str, variant: str, base: str, calls: int, dump: str | None = None
) -> dict[str, float]:
    client = await llm_stream.open_client(api, base)
    call = _caller(api, variant, client)
    figures: dict[str, float] = {}
    async with _context(variant):
        for tokens in (llm_stream.WARM_TOKENS, SMALL, LONG):  # warm-up: models, caches
            for _ in range(5):
                await call(tokens)
        for mode in ("calls", "opcodes"):
            per_call = [await _one(call, llm_stream.WARM_TOKENS, mode) for _ in range(calls)]
            small = [await _one(call, SMALL, mode) for _ in range(calls)]
            long = [await _one(call, LONG, mode) for _ in range(calls)]
            if dump and mode == "calls":  # one more call of each size, profiled
                for tokens in (llm_stream.WARM_TOKENS, SMALL, LONG):
                    path = os.path.join(dump, f"{api}-{variant}-{tokens}.prof")
                    await _one(call, tokens, mode, path)
            figures[f"{mode} per call"] = statistics.median(per_call)
            figures[f"{mode} per token"] = (statistics.median(long) - statistics.median(small)) / (
                LONG - SMALL
            )
    await llm_stream.close_client(api, client)
    return figures


async def _cpu(api: str, base: str, pairs: int) -> dict[str, float]:
    """The CPU of a 2,000-token call of each variant, alternated; ours over raw, per pair."""
    clients = {variant: await llm_stream.open_client(api, base) for variant in VARIANTS}
    callers = {variant: _caller(api, variant, clients[variant]) for variant in VARIANTS}
    ratios: dict[str, list[float]] = {variant: [] for variant in VARIANTS[1:]}
    for _ in range(3):  # warm-up
        for variant in VARIANTS:
            async with _context(variant):
                await callers[variant](CPU_TOKENS)
    for _ in range(pairs):
        raw = await _one(callers["raw"], CPU_TOKENS, "cpu")
        for variant in VARIANTS[1:]:
            async with _context(variant):  # (entered and left outside the figure)
                ratios[variant].append(await _one(callers[variant], CPU_TOKENS, "cpu") / raw)
    for client in clients.values():
        await llm_stream.close_client(api, client)
    return {variant: statistics.median(values) for variant, values in ratios.items()}


async def _child(api: str, variant: str, base: str, calls: int) -> None:
    """Two warm-up calls of 2,000 tokens, then ``calls`` more (a process under valgrind)."""
    client = await llm_stream.open_client(api, base)
    call = _caller(api, variant, client)
    async with _context(variant):
        for _ in range(2 + calls):
            await call(CPU_TOKENS)
    await llm_stream.close_client(api, client)


def _instructions(api: str, variant: str, base: str, calls: int) -> float:
    """Machine instructions of one call of 2,000 tokens (callgrind's count, over ``calls``)."""

    def counted(made: int) -> int:
        with tempfile.TemporaryDirectory() as folder:
            out = os.path.join(folder, "callgrind.out")
            command = [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--child",
                api,
                variant,
                base,
                str(made),
            ]
            environment = {**os.environ, "PYTHONHASHSEED": "0"}
            subprocess.run(command, env=environment, check=True, capture_output=True)
            with open(out, encoding="utf-8") as written:
                found = re.search(r"^(?:summary|totals): (\d+)", written.read(), re.MULTILINE)
            assert found is not None, "callgrind wrote no total"
            return int(found.group(1))

    return (counted(calls) - counted(0)) / calls


def _context(variant: str) -> Any:
    """The context of a variant (raw's too: it costs nothing in the figures)."""
    from miniagents import MiniAgents

    return MiniAgents() if variant == "watched" else MiniAgents(llm_stall_timeout=None)


def main(argv: Sequence[str] | None = None) -> None:
    """Start the server, count each variant of each API, then the CPU pairs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--apis",
        nargs="+",
        choices=("anthropic", "chat", *_OTHER_APIS),
        default=["anthropic", "chat"],
    )
    parser.add_argument("--calls", type=int, default=5, help="calls counted (the median)")
    parser.add_argument("--pairs", type=int, default=10, help="CPU pairs (0: none)")
    parser.add_argument(
        "--instructions", type=int, default=0, metavar="K", help="valgrind, K calls (0: no)"
    )
    parser.add_argument(
        "--profile-dir",
        metavar="DIR",
        help="write each variant's profile of a call of 3, 200 and 400 tokens to DIR "
        "(API-VARIANT-TOKENS.prof, pstats' format), to compare per-function calls",
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        api, variant, base, calls = options.child
        asyncio.run(_child(api, variant, base, int(calls)))
        return
    import miniagents

    print(f"library: {miniagents.__file__}")
    with llm_stream.served() as base:
        for api in options.apis:
            for variant in VARIANTS:
                figures = asyncio.run(
                    _counts(api, variant, base, options.calls, options.profile_dir)
                )
                print(
                    f"{api} {variant}: {figures['calls per call']:,.0f} calls and "
                    f"{figures['opcodes per call']:,.0f} opcodes per call of 3 tokens; per "
                    f"token {figures['calls per token']:.2f} calls, "
                    f"{figures['opcodes per token']:.1f} opcodes",
                    flush=True,
                )
            if options.pairs:
                ratios = asyncio.run(_cpu(api, base, options.pairs))
                shown = ", ".join(f"{variant} {ratio:.3f}x" for variant, ratio in ratios.items())
                print(
                    f"{api} CPU of a {CPU_TOKENS:,}-token call over raw's (median of "
                    f"{options.pairs} pairs): {shown}",
                    flush=True,
                )
            for variant in VARIANTS if options.instructions else ():
                instructions = _instructions(api, variant, base, options.instructions)
                print(
                    f"{api} {variant}: {instructions / 1e6:,.2f} M instructions per call of "
                    f"{CPU_TOKENS:,} tokens",
                    flush=True,
                )


if __name__ == "__main__":
    main()
