"""A reply's first token reaches its reader as soon as the SDK has parsed it (issue 24).

The SDK's stream is read by the agent's task and handed to the reader's ``async for`` in
another task. The SDK parses every event of a network read without suspending; the agent
must still let the reader run after each token it hands over, or the reader sees the first
token only after the whole read (in a real burst, hundreds of tokens later).

The guard counts events, not time: the real SDK clients read a response whose body comes
in two network reads (an ``httpx2`` transport that records each read in a shared log), and
the reader writes each token it sees in the same log. The first token must be in the log
before the second read.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import FrameType
from typing import Any

import httpx2
import pytest

import miniagents
from miniagents import MiniAgent, MiniAgents
from miniagents.ext.dbos._recording import LLMRecorder
from miniagents.ext.llm.recording import LLMCallRecorder, record_llm_calls
from tests.ext.llm.wire import EVENTS, sdk_agent
from tests.fakes.uvloop_runs import on_uvloop

TOKENS = [f" t{index}" for index in range(40)]
FIRST_READ = 30
"""How many tokens the first network read holds (the rest, and the end, come in the second)."""


class _RecordedBody(httpx2.AsyncByteStream):
    """A response body in two network reads, each logged when the SDK asks for it.

    Read once: a second iteration (the SDK draining the body after its end) reads nothing.
    """

    def __init__(self, reads: list[bytes], log: list[str]) -> None:
        self._reads = list(reads)
        self._log = log
        self._count = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self._reads:
            self._count += 1
            self._log.append(f"read {self._count}")
            yield self._reads.pop(0)


class _BurstBody(httpx2.AsyncByteStream):
    """A body whose reads arrive with every other call's: each waits for ``burst.arrival``."""

    def __init__(self, reads: list[bytes], burst: _Burst) -> None:
        self._reads = reads
        self._burst = burst
        self.asked = 0
        """How many reads were asked for (the SDK has parsed all but the last)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        burst = self._burst
        burst.waiting += 1
        if burst.waiting == burst.calls:
            burst.all_waiting.set()
        for read in self._reads:
            self.asked += 1
            await burst.arrival.wait()
            yield read
        self.asked += 1


class _Burst:
    """``calls`` replies that arrive in one pass of the loop."""

    def __init__(self, calls: int) -> None:
        self.calls = calls
        self.waiting = 0
        self.all_waiting = asyncio.Event()
        self.arrival = asyncio.Event()
        self.replies: list[tuple[httpx2.Response, _BurstBody]] = []

    def mid_read(self) -> int:
        """Calls whose SDK has its first read and has not finished parsing it."""
        return sum(
            1
            for response, body in self.replies
            if response.num_bytes_downloaded and body.asked < 2  # got read 1, not asked for 2
        )


def _agent(
    api: str, log: list[str], tokens: list[str] = TOKENS, burst: _Burst | None = None
) -> MiniAgent[..., Any]:
    before, deltas, after = EVENTS[api](tokens)
    reads = [
        b"".join([*before, *deltas[:FIRST_READ]]),
        b"".join([*deltas[FIRST_READ:], *after]),
    ]

    def reply(request: httpx2.Request) -> httpx2.Response:
        headers = {"content-type": "text/event-stream"}
        if burst is None:
            return httpx2.Response(200, headers=headers, stream=_RecordedBody(reads, log))
        body = _BurstBody(reads, burst)
        response = httpx2.Response(200, headers=headers, stream=body)
        burst.replies.append((response, body))
        return response

    return sdk_agent(api, httpx2.AsyncClient(transport=httpx2.MockTransport(reply)))


@pytest.mark.parametrize("api", ["chat", "responses", "anthropic"])
async def test_the_first_token_reaches_the_reader_before_the_next_network_read(api: str) -> None:
    log: list[str] = []
    agent = _agent(api, log)
    async with MiniAgents():
        async for message in agent.inquire("Hello."):
            async for token in message:
                log.append(token)
    assert log[0] == "read 1"
    assert log.index(TOKENS[0]) < log.index("read 2"), log
    assert [entry for entry in log if not entry.startswith("read")] == TOKENS


async def _most_mid_read(api: str, in_turn: bool) -> int:
    """The most calls part-way through a read at once, in a burst of 10 (texts checked)."""
    burst = _Burst(10)
    agents = [_agent(api, [], burst=burst) for _ in range(burst.calls)]
    texts: list[str] = []
    most_mid_read = 0

    async def read(agent: MiniAgent[..., Any]) -> None:
        nonlocal most_mid_read
        async for message in agent.inquire("Hello."):
            tokens = []
            async for token in message:
                most_mid_read = max(most_mid_read, burst.mid_read())
                tokens.append(token)
            texts.append("".join(tokens))

    async with MiniAgents(llm_parse_in_turn=in_turn):
        tasks = [asyncio.create_task(read(agent)) for agent in agents]
        await burst.all_waiting.wait()
        await asyncio.sleep(0)  # the last body to start waits for the arrival too
        burst.arrival.set()
        await asyncio.gather(*tasks)
    assert texts == ["".join(TOKENS)] * burst.calls
    return most_mid_read


@pytest.mark.parametrize("in_turn", [False, True])
@pytest.mark.parametrize("api", ["chat", "responses", "anthropic"])
async def test_a_burst_of_replies_is_parsed_in_turn_or_at_once(api: str, in_turn: bool) -> None:
    """Replies arriving together: each parsed up to its first token at once, or in turn.

    By default every call's task parses its read up to its first token and parks there to
    hand it over: first tokens sooner than the raw SDK's, but every call holds a half-parsed
    read at once (the memory of a burst at 1,000 calls: two to three times the raw SDK's).
    ``MiniAgents(llm_parse_in_turn=True)``, on asyncio's own loop: a token's reader runs
    next and the call's task right after it (``promising.lowlevel.run_first``), so a call
    parses its whole read before the next call's task runs, as the raw SDK's loops do, and
    only one call is ever part-way through a read.
    """
    assert await _most_mid_read(api, in_turn) == (1 if in_turn else 10)


@pytest.mark.parametrize("in_turn", [False, True])
def test_a_burst_on_uvloop_is_parsed_in_turn_at_a_gate_or_at_once(in_turn: bool) -> None:
    """The same on uvloop (uvicorn's loop), whose ready queue cannot be reordered.

    In turn, calls wait in line at a gate (``_gate.InTurn``): a call's turn ends after one
    pass of the loop, so the next call may start before the last ends, and no more than two
    are part-way through a read.
    """
    most_mid_read = on_uvloop(lambda: _most_mid_read("anthropic", in_turn))
    if in_turn:
        assert 1 <= most_mid_read <= 2, most_mid_read
    else:
        assert most_mid_read == 10


LIBRARY = str(Path(miniagents.__file__).parent)


async def _library_calls(api: str, tokens: int, recorder: LLMCallRecorder | None = None) -> int:
    """Python calls (and resumptions) of library code while one reply of ``tokens`` is read.

    The reply is read with ``recorder`` set (by default none).
    """
    agent = _agent(api, [], [f" t{index}" for index in range(tokens)])
    calls = 0

    def profile(frame: FrameType, event: str, _: object) -> None:
        nonlocal calls
        if event == "call" and frame.f_code.co_filename.startswith(LIBRARY):
            calls += 1

    # by default no recorder, as in a process that runs no durable agent (a test of
    # ext.dbos run before in this process leaves DBOS's recorder set)
    previous = record_llm_calls(recorder)
    try:
        async with MiniAgents():  # the default stall watch on, as users have it
            gc.collect()  # no finalizer of earlier tests' objects runs while counting
            gc.disable()
            sys.setprofile(profile)
            try:
                async for message in agent.inquire("Hello."):
                    async for _token in message:
                        pass
            finally:
                sys.setprofile(None)
                gc.enable()
    finally:
        record_llm_calls(previous)
    return calls


@pytest.mark.parametrize("api", ["chat", "responses", "anthropic"])
async def test_a_token_costs_a_few_library_calls(api: str) -> None:
    """The library's work per token stays small next to the SDK's (issue 24: counted).

    Two replies of different lengths, the same otherwise: the difference of the library
    calls made while each is read, over the difference of their tokens, is what one more
    token costs. Per token, with the context's default stall watch: the provider's
    generator (an SDK event into a token), the text record's ``accept``, and the reader's
    ``__anext__``: 3, each API (the watch's deadline and the quiet charge's count are
    moved by the turn's loop itself). A reply is
    read once before counting, so what a process does only at its first call (imports, the
    price table) is in neither count. It was 12 (Anthropic) and 13 (OpenAI) before issue
    24's third pass; then 3, the turn's loop doing the watch's, the meter's and ``take``'s
    work itself; then 7, once issue 52 made it call them (the meter's ``count`` and the
    turn's ``take`` around them too); then 5, a token going from the turn's loop straight
    to the charge's ``piece`` and its record's ``accept``; then 3, the loop moving the
    watch's deadline and counting a quiet charge's piece itself (issue 64: see
    tests/benchmarks/README.md, 'Inlined copies').
    A reader that caught up waits a few times a reply, not a token, so the waits' calls
    are a small part of the difference.
    """
    await _library_calls(api, 1)
    short, long = await _library_calls(api, 100), await _library_calls(api, 300)
    per_token = (long - short) / 200
    assert 2.9 < per_token < 3.7, per_token


class _PassThrough:
    """A recorder that takes every call and only passes its live events on."""

    def llm_call(
        self, ctx: object, provider: object, call: object, start: Callable[[], AsyncIterator[Any]]
    ) -> AsyncIterator[Any]:
        return start()


@pytest.mark.parametrize("api", ["chat", "responses", "anthropic"])
async def test_a_call_outside_a_durable_run_costs_what_it_costs_without_a_recorder(
    api: str,
) -> None:
    """DBOS's recorder, set for the whole process once DBOS is registered, declines it.

    A recorder that takes the call puts the meter's generator between the provider and the
    reader (one more library call per token); a declined call is made as with no recorder,
    the recorder's own ``llm_call`` its only extra call. (The counts vary between runs: the
    loop's own timing work, not the tokens', such as the deadlock watch's check each second
    of the clock, which adds calls to the run it falls in, and how many tokens each read of
    the socket brings, which the machine's load changes; the least of three runs is kept,
    and "the same" is within half of what a taken call costs per token.)
    """
    declining = LLMRecorder()
    passing: LLMCallRecorder = _PassThrough()
    await _library_calls(api, 10)  # the caches a first call fills (not what is counted)
    costs = {}
    for name, recorder in [("none", None), ("dbos", declining), ("passing", passing)]:
        short = min([await _library_calls(api, 100, recorder) for _ in range(3)])
        long = min([await _library_calls(api, 300, recorder) for _ in range(3)])
        costs[name] = (short, (long - short) / 200)
    assert abs(costs["dbos"][1] - costs["none"][1]) < 0.4, costs  # per token: the same
    assert abs(costs["dbos"][0] - costs["none"][0]) <= 5, costs  # and the set-up
    assert costs["passing"][1] > costs["none"][1] + 0.8, costs  # a taken call: one more
