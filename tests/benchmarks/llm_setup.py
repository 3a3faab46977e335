"""An LLM call's set-up, counted: from ``inquire`` to the SDK's ``send``, ours against the raw SDK.

Run by hand from the repository root (pytest never collects it); ``PYTHONPATH`` chooses the
library measured (a folder holding a ``miniagents`` package, e.g. a ``git archive`` export)::

    python tests/benchmarks/llm_setup.py                         # Anthropic and Chat, 200 calls
    python tests/benchmarks/llm_setup.py --apis anthropic --top 40
    python tests/benchmarks/llm_setup.py --calls 1000 --time-calls 2000
    python tests/benchmarks/llm_setup.py --stall-timeout 60      # with the stall watch's timer
    PYTHONPATH=/tmp/lib python tests/benchmarks/llm_setup.py     # another library

``llm_stream.py``'s SSE server (a process of its own on 127.0.0.1) answers each call with 3
tokens at once. N sequential calls are made, one at a time, in one ``MiniAgents`` context
(as a long-lived app has), after warm-up calls; each call's window starts just before
``anthropic_agent.inquire(...)`` (``openai_agent``, Chat Completions) for ours, before
``client.messages.create(stream=True)`` (``chat.completions.create``, with the
``stream_options`` ours sends to be told the usage) for the raw SDK, and
ends when the SDK's HTTP client's ``send`` is called (a wrapper set on the client). What is
counted in the window, per call:

* **calls**: function calls under ``cProfile`` (Python and builtin ones);
* **opcodes**: Python opcodes executed (``sys.settrace`` opcode events, the collector off);
* **time**: ``perf_counter`` from the start to ``send``, the median over the calls (the
  machine's load moves it: trust the counts).

With ``--top K``, ours' K functions with the most opcodes of their own per call (the window
of one call spans the loop's steps between ``inquire`` and ``send``: the agent's task
starting, and ours' set-up), each with its calls per call.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # run as a script: make the `tests` package importable
    sys.path.append(_ROOT)  # after PYTHONPATH: the library measured is the one found first

from tests.benchmarks import llm_stream  # noqa: E402

MODEL = llm_stream.WARM_MODEL
"""3 tokens, sent at once (the server reads the size from the model's name)."""


class Window:
    """What is measured between a call's start and the SDK's ``send``: one mode at a time."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.open = False
        self.times: list[float] = []
        self.opcodes = 0
        self.by_code: Counter[tuple[str, int, str]] = Counter()
        self.profile = cProfile.Profile()
        self._started = 0.0

    def _trace(self, frame: FrameType, event: str, arg: object) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            self.opcodes += 1
            code = frame.f_code
            name = getattr(code, "co_qualname", code.co_name)
            self.by_code[(code.co_filename, code.co_firstlineno, name)] += 1
        return self._trace

    def start(self) -> None:
        """Open the window (just before the call starts)."""
        self.open = True
        if self.mode == "calls":
            self.profile.enable()
        elif self.mode == "opcodes":
            gc.disable()
            sys.settrace(self._trace)
        self._started = time.perf_counter()

    def stop(self) -> None:
        """Close the window (the SDK's ``send`` is called)."""
        if not self.open:
            return
        elapsed = time.perf_counter() - self._started
        if self.mode == "calls":
            self.profile.disable()
        elif self.mode == "opcodes":
            sys.settrace(None)
            gc.enable()
        self.open = False
        self.times.append(elapsed)


def _wrap_send(client: Any, window: Window) -> None:
    """Close ``window`` when the SDK's HTTP client sends a request."""
    http = client._client
    send = http.send

    async def watched_send(*args: Any, **kwargs: Any) -> Any:
        window.stop()
        return await send(*args, **kwargs)

    http.send = watched_send


async def _raw_call(client: Any, api: str) -> str:
    """The request ours sends, with the raw SDK (Chat: ``stream_options`` asks for the usage)."""
    parts: list[str] = []
    messages = [{"role": "user", "content": "Say something."}]
    if api == "chat":
        stream = await client.chat.completions.create(
            model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
        )
        async with stream:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    parts.append(chunk.choices[0].delta.content)
        return "".join(parts)
    stream = await client.messages.create(
        model=MODEL, messages=messages, max_tokens=4096, stream=True
    )
    async with stream:
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                parts.append(event.delta.text)
    return "".join(parts)


def _caller(api: str, variant: str, client: Any) -> Callable[[], Awaitable[str]]:
    """One call of 3 tokens, read to its end; the window opens as it starts."""
    if variant == "raw":
        return lambda: _raw_call(client, api)
    from miniagents.ext.llm.anthropic import anthropic_agent
    from miniagents.ext.llm.openai import openai_agent

    agent: Any = (
        anthropic_agent.fork(model=MODEL, async_client=client)
        if api == "anthropic"
        else openai_agent.fork(model=MODEL, async_client=client, api="chat_completions")
    )

    async def ours() -> str:
        parts: list[str] = []
        async for message in agent.inquire("Say something."):
            async for piece in message:
                parts.append(piece)
        return "".join(parts)

    return ours


async def _settle() -> None:
    """Let what the previous call left to the loop run (its tasks end), before the window.

    The SDK's stream leaves cycles of async generators (httpx's) that only the collector
    frees; their finalizers are scheduled on the loop, and ours' window spans a step of the
    loop (the agent's task starting), raw's none: collected and run here, they stay out.
    With two rounds and three turns, the ``aclose`` of the previous Chat Completions call's
    pool stream (anyio's cancel scope, httpcore's shielded close: about 720 opcodes and 60
    calls) was still pending and ran in ours' window only; four rounds and 20 turns end it.
    """
    for _ in range(4):  # the tasks end, then the cycles they leave go, then their finalizers
        for _ in range(1000):
            await asyncio.sleep(0)
            if len(asyncio.all_tasks()) == 1:
                break
        gc.collect()
    for _ in range(20):
        await asyncio.sleep(0)


async def _measure(
    api: str, variant: str, base: str, mode: str, calls: int, stall: float | None
) -> Window:
    from miniagents import MiniAgents

    client = llm_stream._client(api, base)
    window = Window(mode)
    _wrap_send(client, window)
    call = _caller(api, variant, client)
    expected = "".join(llm_stream.token(i) for i in range(3))
    async with MiniAgents(llm_stall_timeout=stall):  # one context, as a long-lived app has
        for _ in range(20):  # warm-up: the SDK's models, the connection, our caches
            await call()
        for _ in range(calls):
            await _settle()
            window.start()
            text = await call()
            if window.open:
                raise AssertionError("the call never reached the SDK's send")
            if text != expected:
                raise AssertionError(f"{variant} read {text!r}")
    await client.close()
    return window


def _name(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    path = Path(filename)
    parts = path.parts
    where = "/".join(parts[parts.index("miniagents") :]) if "miniagents" in parts else path.name
    return f"{name} ({where}:{line})"


def report(api: str, base: str, calls: int, time_calls: int, top: int, stall: float | None) -> None:
    """Count and time both variants of ``api``; print one line each, then ours' top functions."""
    results: dict[str, tuple[float, float, float]] = {}
    windows: dict[str, tuple[Window, Window]] = {}
    for variant in ("raw", "ours"):
        counted = asyncio.run(_measure(api, variant, base, "calls", calls, stall))
        traced = asyncio.run(_measure(api, variant, base, "opcodes", calls, stall))
        timed = asyncio.run(_measure(api, variant, base, "time", time_calls, stall))
        total_calls = int(pstats.Stats(counted.profile).total_calls)  # type: ignore[attr-defined]
        results[variant] = (
            total_calls / calls,
            traced.opcodes / calls,
            statistics.median(timed.times) * 1000,
        )
        windows[variant] = (counted, traced)
        print(
            f"{api} {variant}: {total_calls / calls:.1f} calls, {traced.opcodes / calls:,.0f} "
            f"opcodes, {results[variant][2]:.3f} ms (median of {time_calls}) per call",
            flush=True,
        )
    ours, raw = results["ours"], results["raw"]
    print(
        f"{api} ours - raw: {ours[0] - raw[0]:+.1f} calls, {ours[1] - raw[1]:+,.0f} opcodes, "
        f"{ours[2] - raw[2]:+.3f} ms per call",
        flush=True,
    )
    if top:
        counted, traced = windows["ours"]
        raw_codes = windows["raw"][1].by_code
        stats: Any = pstats.Stats(counted.profile).stats  # type: ignore[attr-defined]
        called = {(f, line, name): cc for (f, line, name), (cc, *_rest) in stats.items()}
        short = {(f, line, name.rsplit(".", 1)[-1]): n for (f, line, name), n in called.items()}
        extra = Counter(
            {k: n - raw_codes.get(k, 0) for k, n in traced.by_code.items()}
        )  # the SDK's own share cancels
        print(f"\n{api}: ours' functions with the most opcodes over raw's, per call")
        print("| opcodes | calls | function |\n|---:|---:|---|")
        for key, opcodes in extra.most_common(top):
            filename, line, qualname = key
            count = short.get((filename, line, qualname.rsplit(".", 1)[-1]), 0)
            print(f"| {opcodes / calls:.1f} | {count / calls:.1f} | {_name(key)} |")
        by_file: Counter[str] = Counter()
        for (filename, _line, _function), opcodes in extra.items():
            parts = Path(filename).parts
            if "miniagents" in parts:
                where = "/".join(parts[parts.index("miniagents") : -1])
            else:
                where = "the SDK, httpx, asyncio and the standard library"
            by_file[where] += opcodes
        print(f"\n{api}: ours' opcodes over raw's by package, per call")
        print("| opcodes | package |\n|---:|---|")
        for where, opcodes in by_file.most_common():
            print(f"| {opcodes / calls:,.0f} | {where} |")
        print()


def main(argv: Sequence[str] | None = None) -> None:
    """Start the server, count and time each API, stop the server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--apis", nargs="+", choices=("anthropic", "chat"), default=["anthropic", "chat"]
    )
    parser.add_argument("--calls", type=int, default=200, help="calls counted")
    parser.add_argument("--time-calls", type=int, default=1000, help="calls timed")
    parser.add_argument("--top", type=int, default=0, help="ours' top functions by opcodes")
    parser.add_argument("--stall-timeout", type=float, default=None, help="the context's")
    options = parser.parse_args(argv)
    import miniagents

    print(f"library: {miniagents.__file__}")
    with llm_stream.served() as base:
        for api in options.apis:
            report(api, base, options.calls, options.time_calls, options.top, options.stall_timeout)


if __name__ == "__main__":
    main()
