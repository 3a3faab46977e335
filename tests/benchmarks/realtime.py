"""Realtime sessions: our agent against the raw SDK's connection, in one run, on the fake server.

Two measures (issue 65), each side by side with the OpenAI SDK's realtime connection read by
hand (``recv_bytes``, ``json.loads``, ``base64.b64decode``: what any program does), against
the testing kit's fake OpenAI Realtime API in a process of its own (its CPU is not counted):

- **latency**: one session whose reply is ``--pieces`` chunks of 20 ms at real-time pace;
  for each chunk, the time from its message coming out of the socket (the SDK's
  ``recv_bytes`` returning it) to a reader having it: the raw loop's decoded bytes, our
  reader's ``AudioChunk``. The added latency is the difference of the two medians (target:
  at most 0.5 ms);
- **load**: ``--sessions`` sessions at once (100), each with a microphone streaming 100 ms
  chunks at real time and a spoken reply of ``--seconds`` (60) at real-time pace, 100 ms
  chunks: the client process's CPU time (target: within 1.2x of the raw loop's) and its
  resident memory sampled over the session (target: flat, as each reply's replay window
  releases what its reader has read: ``--window`` pieces, 128 by default; the default
  window, 1024 pieces, would keep the first 102 s of each session).

Run: ``python -m tests.benchmarks.realtime`` (``--quick``: 20 sessions of 10 s).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

SAMPLE_RATE = 24000


def _serve_fake(sessions: int, pieces: int, ms: int) -> None:  # pragma: no cover - subprocess
    """The fake server's process: a spoken reply per session, then wait for stdin's end."""
    from miniagents.testing import FakeLLMServer, LiveUsage, tone

    with FakeLLMServer() as server:
        chunk = tone(ms, 330, SAMPLE_RATE)
        server.speak(
            ["w "] * pieces,
            audio=[chunk] * pieces,
            pace=1.0,
            usage=LiveUsage(input_audio=10, output_audio=pieces),
            times=sessions,
        )
        print(server.openai_base_url, flush=True)
        sys.stdin.read()


class _Fake:
    """The fake server in a subprocess, for ``sessions`` replies of ``pieces`` chunks."""

    def __init__(self, sessions: int, pieces: int, ms: int) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.benchmarks.realtime",
                "--serve-fake",
                str(sessions),
                str(pieces),
                str(ms),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)


# -- the socket's times ---------------------------------------------------------------------

_ARRIVALS: list[float] = []
"""When each message of the model's audio came out of the socket (``recv_bytes`` returned)."""


def _watch_the_socket() -> None:
    """Note when ``recv_bytes`` returns a message of audio (both readers use it)."""
    from openai.resources.realtime.realtime import AsyncRealtimeConnection

    original: Callable[..., Any] = AsyncRealtimeConnection.recv_bytes

    async def recv_bytes(self: Any) -> bytes:
        data: bytes = await original(self)
        if b"output_audio.delta" in data:
            _ARRIVALS.append(time.perf_counter())
        return data

    AsyncRealtimeConnection.recv_bytes = recv_bytes  # type: ignore[method-assign]


_CHUNKS: dict[bool, bytes] = {}
"""100 ms of the user's voice, made once (``_chunk``): loud (speech), or quiet."""


def _chunk(loud: bool) -> bytes:
    if not _CHUNKS:
        from miniagents.testing import tone

        _CHUNKS.update({True: tone(100, 440, SAMPLE_RATE), False: bytes(4800)})
    return _CHUNKS[loud]


# -- the raw SDK ----------------------------------------------------------------------------


async def _raw_session(base_url: str, seconds: float, read: list[float]) -> int:
    """One session read by hand; the audio chunks it got (their times in ``read``)."""
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench")
    chunks = 0
    options: Any = {"open_timeout": _OPEN_TIMEOUT}  # (websockets' connect takes it)
    connect = client.realtime.connect(model="gpt-realtime", websocket_connection_options=options)
    async with connect as connection:
        await connection.send_raw(
            json.dumps({"type": "session.update", "session": {"type": "realtime"}})
        )

        async def microphone() -> None:
            start = time.monotonic()
            sent = 0
            while time.monotonic() - start < seconds:
                audio = base64.b64encode(_chunk(sent < 10)).decode()
                await connection.send_raw(
                    json.dumps({"type": "input_audio_buffer.append", "audio": audio})
                )
                sent += 1
                await asyncio.sleep(max(0.0, start + sent * 0.1 - time.monotonic()))

        talking = asyncio.create_task(microphone())
        while True:
            event = json.loads(await connection.recv_bytes())
            if event["type"] == "response.output_audio.delta":
                base64.b64decode(event["delta"])
                read.append(time.perf_counter())
                chunks += 1
            elif event["type"] == "response.done":
                break
        await talking
    await client.close()
    return chunks


# -- our agent ----------------------------------------------------------------------------


async def _our_session(agent: Any, seconds: float, read: list[float]) -> int:
    """One session of our realtime agent; the audio chunks its reader got."""
    from miniagents.ext.realtime import AudioChunk, piece_is

    async def microphone() -> AsyncIterator[AudioChunk]:
        start = time.monotonic()
        sent = 0
        while time.monotonic() - start < seconds:
            yield AudioChunk(audio=_chunk(sent < 10))
            sent += 1
            await asyncio.sleep(max(0.0, start + sent * 0.1 - time.monotonic()))

    chunks = 0
    async for piece in agent.inquire(microphone()):
        if piece_is(piece, AudioChunk):
            await piece
            read.append(time.perf_counter())
            chunks += 1
    return chunks


def _agent(base_url: str) -> Any:
    import openai

    from miniagents.ext.realtime.openai import create_openai_realtime_agent

    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench")
    return create_openai_realtime_agent(
        async_client=client,
        transcribe_input=False,
        drain_timeout=1,
        websocket_options={"open_timeout": _OPEN_TIMEOUT},
    )


# -- the measures ---------------------------------------------------------------------------


async def latency(pieces: int) -> dict[str, float]:
    """The median time from the socket to the reader, per chunk: raw, ours, added (ms)."""
    from miniagents import MiniAgents

    found: dict[str, float] = {}
    for variant in ("raw", "ours"):
        fake = _Fake(1, pieces, 20)
        try:
            _ARRIVALS.clear()
            read: list[float] = []
            seconds = 1.6 + pieces * 0.02 + 0.5
            if variant == "raw":
                got = await _raw_session(fake.base_url, seconds, read)
            else:
                async with MiniAgents():
                    got = await _our_session(_agent(fake.base_url), seconds, read)
            assert got == pieces == len(_ARRIVALS), (variant, got, len(_ARRIVALS))
            delays = [
                (reader - socket) * 1000 for reader, socket in zip(read, _ARRIVALS, strict=True)
            ]
            found[variant] = statistics.median(delays)
            found[f"{variant}_p90"] = statistics.quantiles(delays, n=10)[-1]
        finally:
            fake.stop()
    found["added"] = found["ours"] - found["raw"]
    return found


async def _warm_up() -> None:
    """One short session of each, first: the SDKs imported, their first costs paid."""
    from miniagents import MiniAgents

    fake = _Fake(2, 3, 100)
    try:
        await _raw_session(fake.base_url, 2.0, [])
        async with MiniAgents():
            await _our_session(_agent(fake.base_url), 2.0, [])
    finally:
        fake.stop()
    _ARRIVALS.clear()


_OPEN_TIMEOUT = 120
"""Seconds a session's opening handshake may take (the fake server of 100 sessions, on a
loaded machine, takes its time)."""

_STAGGER = 0.1
"""Seconds between the starts of two sessions of the load (100 handshakes at once would
outlast the fake server's handshake timeout on a loaded machine)."""


async def _later(seconds: float, work: Awaitable[int]) -> int:
    await asyncio.sleep(seconds)
    return await work


async def _sample(samples: list[float], every: float) -> None:
    """Note the resident memory every ``every`` seconds (until cancelled)."""
    while True:
        samples.append(round(_rss_mb(), 1))
        await asyncio.sleep(every)


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def load(sessions: int, seconds: int, window: int) -> dict[str, object]:
    """``sessions`` sessions at once, of ``seconds`` each: CPU seconds and RSS samples."""
    from miniagents import MiniAgents

    found: dict[str, object] = {}
    pieces = seconds * 10
    for variant in ("raw", "ours"):
        fake = _Fake(sessions, pieces, 100)
        samples: list[float] = []

        sampling = asyncio.create_task(_sample(samples, seconds / 10))
        cpu = time.process_time()
        wall = time.perf_counter()
        try:
            reads: list[list[float]] = [[] for _ in range(sessions)]
            duration = 1.6 + seconds + 0.5
            if variant == "raw":
                got = await asyncio.gather(
                    *(
                        _later(n * _STAGGER, _raw_session(fake.base_url, duration, reads[n]))
                        for n in range(sessions)
                    )
                )
            else:
                async with MiniAgents(replay_window=window):
                    agent = _agent(fake.base_url)
                    got = await asyncio.gather(
                        *(
                            _later(n * _STAGGER, _our_session(agent, duration, reads[n]))
                            for n in range(sessions)
                        )
                    )
            assert all(count == pieces for count in got), got
        finally:
            sampling.cancel()
            fake.stop()
        found[variant] = {
            "cpu_s": round(time.process_time() - cpu, 2),
            "wall_s": round(time.perf_counter() - wall, 1),
            "rss_mb": samples,
        }
    raw, ours = found["raw"], found["ours"]
    assert isinstance(raw, dict)
    assert isinstance(ours, dict)
    found["cpu_ratio"] = round(ours["cpu_s"] / raw["cpu_s"], 3)
    return found


def main() -> None:
    """Run the two measures and print their figures as JSON."""
    if sys.argv[1:2] == ["--serve-fake"]:
        _serve_fake(*map(int, sys.argv[2:5]))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pieces", type=int, default=300)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("latency", "load"))
    given = parser.parse_args()
    if given.quick:
        given.sessions, given.seconds, given.pieces, given.window = 20, 10, 100, 32
    _watch_the_socket()
    _chunk(True)  # (the testing kit imported: not inside a session's timing)
    asyncio.run(_warm_up())
    report: dict[str, object] = {"pid": os.getpid()}
    if given.only in (None, "latency"):
        report["latency_ms"] = asyncio.run(latency(given.pieces))
        print(json.dumps(report), flush=True)
    if given.only in (None, "load"):
        report["load"] = asyncio.run(load(given.sessions, given.seconds, given.window))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
