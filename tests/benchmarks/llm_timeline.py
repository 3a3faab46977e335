"""Where a paced call's first token spends its time: ours against the raw SDK, step by step.

Run by hand from the repository root (pytest never collects it)::

    python tests/benchmarks/llm_timeline.py                         # Chat and Anthropic, 3 reps
    python tests/benchmarks/llm_timeline.py --apis chat --calls 1   # one call at a time
    python tests/benchmarks/llm_timeline.py --variants raw ours front --rounds 20

``llm_stream.py``'s ``paced`` workload (``--calls`` calls started at once, 50 tokens 20 ms
apart, from its SSE server in a process of its own) is run ``--rounds`` times in each fresh
process, variants interleaved, ``--reps`` times. Each call's moments, from its round's start:

* ``send``: the SDK's HTTP client is asked to send the request (a wrapper set on the client);
* ``headers``: that ``send`` returned (the reply's head was read);
* ``read``: the network read that holds the first token reached the SDK's SSE decoder (a
  wrapper of the decoder's byte iterator: the reply's second read, since the server sends
  the events before the tokens in one write and each token 20 ms later in its own);
* ``first``: the reader's ``async for`` was given the first token.

``first - read`` is the handoff: for raw, the SDK's parsing of the event in the reader's own
task; for ours, that parsing in the agent's task, then the wait of the reader's task in the
loop's ready queue (behind every other call's task woken by the same pass of the loop).
``send`` later than raw's is the set-up: each call's own, plus those of the calls started
before it in the round. Variants:

* ``raw``: ``llm_stream.py``'s ``async for`` over the SDK's stream;
* ``ours``: ``async for`` over our LLM agent's reply, then over each message's tokens;
* ``front``: ``ours`` with a benchmark-only patch that puts a reader woken by a new piece at
  the front of the loop's ready queue (``loop._ready``, private to asyncio) instead of its
  end: the handoff as it would be if the reader's own task read the SDK's stream. It was
  the fifth pass's measure of what such a design would gain; since the ninth pass, ``ours``
  does it itself (``promising.lowlevel.run_first``), so the two should measure alike.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # run as a script: make the `tests` package importable
    sys.path.append(_ROOT)  # after PYTHONPATH: the library measured is the one found first

from tests.benchmarks import llm_stream  # noqa: E402

APIS = ("chat", "anthropic")
VARIANTS = ("raw", "ours", "front")
MOMENTS = ("send", "headers", "read", "first")

_moments: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar(
    "_moments", default=None
)
"""The moments of the call that runs in this context (an agent's task inherits its caller's)."""


def _stamp(name: str) -> None:
    moments = _moments.get()
    if moments is not None and name not in moments:
        moments[name] = time.perf_counter()


def _watch_reads(api: str) -> None:
    """Stamp ``read`` when the SSE decoder of ``api``'s SDK is given the reply's second read."""
    if api == "anthropic":
        from anthropic import _streaming
    else:
        from openai import _streaming  # type: ignore[no-redef]
    decode = _streaming.SSEDecoder.aiter_bytes

    async def stamped(reads: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        count = 0
        async for read in reads:
            count += 1
            if count == 2:
                _stamp("read")
            yield read

    def watched(self: Any, reads: AsyncIterator[bytes]) -> Any:
        return decode(self, stamped(reads))

    _streaming.SSEDecoder.aiter_bytes = watched  # type: ignore[method-assign,assignment]


def _count_connections() -> list[int]:
    """Count the TCP connections the process opens (the pool opens one for a call it cannot
    give a free one to: a call started before the previous one's connection came back)."""
    opened = [0]
    connect = asyncio.BaseEventLoop.create_connection

    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        opened[0] += 1
        _stamp("connect")
        return await connect(self, *args, **kwargs)

    asyncio.BaseEventLoop.create_connection = counted  # type: ignore[method-assign]
    return opened


def _wake_readers_first() -> None:
    """Put the tasks a reply core wakes at the front of the loop's ready queue (``front``)."""
    from miniagents.promising._waiting import Waits

    wake = Waits.wake  # (the record calls its waits' wake to wake its waiters)

    def front(waits: Waits, ended: bool) -> None:
        ready = asyncio.get_running_loop()._ready  # type: ignore[attr-defined]
        before = len(ready)
        wake(waits, ended)
        ready.rotate(len(ready) - before)

    setattr(Waits, "wake", front)  # noqa: B010  (the method the record calls)


async def _run(
    variant: str, api: str, base: str, calls: int, rounds: int, opened: list[int]
) -> dict[str, Any]:
    _, tokens, delay = llm_stream.sizes("paced", 10)
    model = f"w5-{tokens}-{round(delay * 1000)}"
    warm = llm_stream.WARM_MODEL
    client = llm_stream._client(api, base)
    http = client._client
    send = http.send

    async def watched_send(*args: Any, **kwargs: Any) -> Any:
        _stamp("send")
        response = await send(*args, **kwargs)
        _stamp("headers")
        return response

    http.send = watched_send
    from miniagents import MiniAgents
    from miniagents.ext.llm.anthropic import anthropic_agent
    from miniagents.ext.llm.openai import openai_agent

    agent: Any = (
        anthropic_agent.fork(model=model, async_client=client)
        if api == "anthropic"
        else openai_agent.fork(model=model, async_client=client, api="chat_completions")
    )
    agents = {name: agent.fork(model=name) for name in (model, warm)}

    async def call(name: str, moments: dict[str, float]) -> str:
        _moments.set(moments)  # this call's task (gather wraps each call in one)

        def first() -> None:
            _stamp("first")

        if variant == "raw":
            return await llm_stream._raw_call(client, api, name, first)
        return await llm_stream.ours_call(agents[name], first)

    rows: list[dict[str, float]] = []
    expected = "".join(llm_stream.token(i) for i in range(tokens))
    async with MiniAgents(llm_stall_timeout=None):  # as llm_stream.py's `ours`
        await asyncio.gather(*(call(warm, {}) for _ in range(calls)))
        warmed = opened[0]
        for _ in range(rounds):
            started = time.perf_counter()
            moments: list[dict[str, float]] = [{} for _ in range(calls)]
            texts = await asyncio.gather(*(call(model, m) for m in moments))
            if any(text != expected for text in texts):
                raise AssertionError(f"{variant} read a wrong text")
            rows += [{k: (v - started) * 1000 for k, v in m.items()} for m in moments]
        connections = opened[0] - warmed
    await client.close()
    return {"rows": rows, "connections": connections}


def child(variant: str, api: str, base: str, calls: int, rounds: int) -> dict[str, Any]:
    """Set the watches up, then run ``variant`` (in this fresh process)."""
    import anthropic  # noqa: F401
    import openai  # noqa: F401

    import miniagents.ext.llm.anthropic
    import miniagents.ext.llm.openai  # noqa: F401

    _watch_reads(api)
    opened = _count_connections()
    if variant == "front":
        _wake_readers_first()
    return asyncio.run(_run(variant, api, base, calls, rounds, opened))


def _medians(rows: list[dict[str, float]]) -> dict[str, float]:
    figures = {name: statistics.median(row[name] for row in rows) for name in MOMENTS}
    figures["handoff"] = statistics.median(row["first"] - row["read"] for row in rows)
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    """Run the variants and print each rep's medians (ms from the round's start)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--apis", nargs="+", choices=APIS, default=list(APIS))
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=10, help="calls started at once")
    args = parser.parse_args(argv)
    with llm_stream.served() as base:
        for api in args.apis:
            print(f"\n### {api}: {args.calls} paced call(s) at once, {args.rounds} rounds")
            print("| rep | variant | send | headers | read | first | first - read | connections |")
            print("|---|---|---|---|---|---|---|---|")
            for rep in range(1, args.reps + 1):
                for variant in args.variants:  # interleaved
                    arguments = [variant, api, base, str(args.calls), str(args.rounds)]
                    done = subprocess.run(
                        [sys.executable, __file__, "--child", *arguments],
                        capture_output=True,
                        text=True,
                        check=False,
                        timeout=600,
                    )
                    if done.returncode:
                        raise RuntimeError(f"{variant} {api} failed:\n{done.stderr[-3000:]}")
                    run = json.loads(done.stdout.strip().splitlines()[-1])
                    m = _medians(run["rows"])
                    cells = " | ".join(f"{m[k]:.2f}" for k in (*MOMENTS, "handoff"))
                    opened = run["connections"]
                    print(f"| {rep} | {variant} | {cells} | {opened} |", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        variant_, api_, base_, calls_, rounds_ = sys.argv[2:7]
        print(json.dumps(child(variant_, api_, base_, int(calls_), int(rounds_))))
    else:
        main()
