"""Virtual time: timers fire in deadline order at once, threads hold the clock, a stopped clock."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import multiprocessing
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import httpx2 as httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from miniagents.testing import (
    VirtualClock,
    VirtualTimeError,
    VirtualTimeLoop,
    manual_time,
    run_with_virtual_time,
    virtual_time,
)
from tests.ext.web.serving import SSEReader, served
from tests.fakes.fixtures import THREAD_WAIT

virtual_time_module = importlib.import_module("miniagents.testing.virtual_time")
"""The module itself (its name is shadowed by the function the package exports)."""

# -- run_with_virtual_time and VirtualTimeLoop -------------------------------------------------


def test_sleeps_wake_in_deadline_order_at_their_virtual_times() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        woke: list[tuple[str, float]] = []

        async def sleeper(name: str, delay: float) -> None:
            await asyncio.sleep(delay)
            woke.append((name, loop.time()))

        await asyncio.gather(sleeper("slow", 3600), sleeper("fast", 0.25), sleeper("mid", 2))
        return woke

    assert run_with_virtual_time(main()) == [("fast", 0.25), ("mid", 2.0), ("slow", 3600.0)]


async def _wake_order(count: int) -> list[int]:
    """The order in which ``count`` timers of one delay fire: sleeps, then ``call_later``s."""
    loop = asyncio.get_running_loop()
    woke: list[int] = []

    async def sleeper(number: int) -> None:
        await asyncio.sleep(1)
        woke.append(number)

    await asyncio.gather(*(sleeper(number) for number in range(count)))
    for number in range(count, 2 * count):
        loop.call_later(1, woke.append, number)
    await asyncio.sleep(2)
    return woke


def test_timers_due_at_one_time_fire_in_the_order_they_were_set() -> None:
    # the clock stands still in a step, so these ten timers are due at one time; on a real
    # clock the first set is due first (asyncio's heap left such ties shuffled)
    assert run_with_virtual_time(_wake_order(10)) == list(range(20))


def test_a_timeout_fires_at_its_virtual_deadline() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.sleep(1000), timeout=1.5)
        return loop.time()

    assert run_with_virtual_time(main(), start=10.0) == 11.5


def test_the_clock_stands_still_while_a_thread_works() -> None:
    release = threading.Event()

    async def main() -> tuple[bool, float]:
        loop = asyncio.get_running_loop()
        timer = asyncio.ensure_future(asyncio.sleep(5))
        worker = asyncio.ensure_future(asyncio.to_thread(release.wait, THREAD_WAIT))
        await asyncio.sleep(0)  # both are scheduled; the thread now blocks on the event
        loop.call_soon(release.set)  # the thread may finish only after this point
        assert await worker is True
        before_timer = (timer.done(), loop.time())
        await timer
        return before_timer

    timer_done, when = run_with_virtual_time(main())
    assert not timer_done  # the 5 s timer did not fire while the thread was working
    assert when == 0.0


@pytest.mark.parametrize("given", [False, True], ids=["default executor", "executor given"])
def test_a_thread_whose_caller_gave_up_still_holds_the_clock_until_it_ends(given: bool) -> None:
    # given up on (asyncio.to_thread in a cancelled task), the thread goes on: the clock waits
    executor = ThreadPoolExecutor(max_workers=1) if given else None
    started = threading.Event()
    release = threading.Event()
    ended_at: list[float] = []

    async def main() -> float:
        loop = asyncio.get_running_loop()

        def work() -> None:
            started.set()
            release.wait(THREAD_WAIT)
            ended_at.append(loop.time())

        worker = loop.run_in_executor(executor, work)
        await asyncio.to_thread(started.wait, THREAD_WAIT)
        worker.cancel()
        timer = asyncio.ensure_future(asyncio.sleep(5))
        loop.call_soon(release.set)
        await timer
        return loop.time()

    with executor or contextlib.nullcontext():
        assert run_with_virtual_time(main()) == 5.0
    assert ended_at == [0.0]  # the thread ended before the clock moved on


@pytest.mark.parametrize("start", [0.0, 1394.201047216, 123456.789, 3.2e7 + 1 / 3])
def test_the_time_elapsed_is_the_delays_to_the_microsecond_whatever_the_start(start: float) -> None:
    """A clock that starts at any time (a running loop's own, in ``virtual_time()``: a year
    of a machine's uptime, say) tells
    the delays its timers waited as they were given, for ``==``. (A start plus 300 minus the
    start gave 299.99999999999955 on some starts: a test of the MCP read timeout failed so.)"""

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        seen = []
        for delay in (300.0, 0.5, 30.0, 1e-3):
            await asyncio.sleep(delay)
            seen.append(loop.clock.elapsed)
        return seen

    assert run_with_virtual_time(main(), start=start) == [300.0, 300.5, 330.5, 330.501]


@pytest.mark.parametrize("ending", ["main_ends", "main_fails", "main_set_its_executor"])
def test_a_thread_job_still_running_after_main_fails_the_run_not_hangs_it(
    ending: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job of the default executor that outlives ``main`` (never awaited, its caller gone)
    is waited for EXECUTOR_SECONDS, then left: the run fails with a VirtualTimeError saying
    what to do, or with main's own error if main failed. (It hung for ever in the loop's
    ``shutdown_default_executor``.)"""
    monkeypatch.setattr(virtual_time_module, "EXECUTOR_SECONDS", 0.05)
    started = threading.Event()
    release = threading.Event()

    def work() -> None:
        started.set()
        release.wait(THREAD_WAIT)

    async def main() -> str:
        loop = asyncio.get_running_loop()
        if ending == "main_set_its_executor":  # (its own default: waited for the same)
            loop.set_default_executor(ThreadPoolExecutor(max_workers=2))
        loop.run_in_executor(None, work)  # (never awaited)
        await asyncio.to_thread(started.wait, THREAD_WAIT)
        if ending == "main_fails":
            raise KeyError("main's own")
        return "ended"

    try:
        if ending != "main_fails":
            with pytest.raises(VirtualTimeError, match=r"still ran 0\.05 s after the coroutine"):
                run_with_virtual_time(main())
        else:
            with pytest.raises(KeyError, match="main's own"):
                run_with_virtual_time(main())
        assert started.is_set()
        assert not release.is_set()
    finally:
        release.set()  # (the thread left running ends: the test leaves none behind)


def test_a_thread_job_that_ends_after_main_is_waited_for() -> None:
    """A job still running as ``main`` returns, which then ends, is waited for: the run
    returns main's result once the job has ended."""
    release = threading.Event()
    ended: list[str] = []

    def work() -> None:
        release.wait(THREAD_WAIT)
        ended.append("job")

    async def main() -> str:
        asyncio.get_running_loop().run_in_executor(None, work)  # (never awaited)
        await asyncio.sleep(0)  # (the job is given to its thread)
        release.set()  # (it ends after main, as run_with_virtual_time shuts the executor)
        return "ended"

    assert run_with_virtual_time(main()) == "ended"
    assert ended == ["job"]


async def a_job_in_a_process_pool() -> tuple[int, bool]:
    """What ``pow(2, 10)`` gives in a process pool, and whether a 5 s timer fired meanwhile."""
    loop = asyncio.get_running_loop()
    timer = asyncio.ensure_future(asyncio.sleep(5))
    spawn = multiprocessing.get_context("spawn")  # fork warns in a process with threads
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        result = await loop.run_in_executor(pool, pow, 2, 10)  # pickled: pow itself
    fired = timer.done()
    await timer
    return result, fired


def test_a_process_pool_runs_its_job_and_holds_the_clock_meanwhile() -> None:
    assert run_with_virtual_time(a_job_in_a_process_pool()) == (1024, False)


async def test_on_the_running_loop_a_process_pool_runs_its_job_too() -> None:
    with virtual_time() as clock:
        assert await a_job_in_a_process_pool() == (1024, False)
        assert clock.elapsed == pytest.approx(5, abs=1e-9)


def test_a_failing_thread_releases_the_clock() -> None:
    def fail() -> None:
        raise KeyError("in the thread")

    async def main() -> float:
        with pytest.raises(KeyError, match="in the thread"):
            await asyncio.to_thread(fail)
        await asyncio.sleep(7)
        return asyncio.get_running_loop().time()

    assert run_with_virtual_time(main()) == 7.0


def test_a_timer_far_in_the_future_is_reached_despite_float_rounding() -> None:
    async def main() -> float:
        await asyncio.sleep(0.1)
        return asyncio.get_running_loop().time()

    assert run_with_virtual_time(main(), start=1e9) == pytest.approx(1e9 + 0.1)


@pytest.mark.parametrize("auto_advance", [True, False])
@pytest.mark.parametrize("start", [0.0, 2.0**24, 3e7, 1e9, 1e15])
def test_a_timer_due_now_fires_however_far_the_clock_is_from_0(
    start: float, auto_advance: bool
) -> None:
    # from 2**24 s on, now + 1 ns (asyncio's resolution) == now: a timer due now was never due
    later = 200 * 86400.0  # 200 days: past 2**24 s from 0 too

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        if auto_advance:
            await asyncio.sleep(later)
        else:
            loop.clock.advance(later)
        fired: list[str] = []
        loop.call_later(0, fired.append, "call_later(0)")
        loop.call_at(loop.time(), fired.append, "call_at(now)")
        await asyncio.sleep(1e-9)  # below the float spacing far from 0: due now, too
        return fired

    fired = run_with_virtual_time(main(), start=start, auto_advance=auto_advance)
    assert sorted(fired) == ["call_at(now)", "call_later(0)"]


def test_the_tasks_left_running_are_cancelled_and_the_loop_closed() -> None:
    loops: list[asyncio.AbstractEventLoop] = []
    cancelled: list[bool] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(1e6)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main() -> str:
        loops.append(asyncio.get_running_loop())
        left = asyncio.ensure_future(forever())
        await asyncio.sleep(0)
        assert not left.done()
        return "done"

    assert run_with_virtual_time(main()) == "done"
    assert cancelled == [True]
    assert loops[0].is_closed()


def test_a_stopped_loop_clock_moves_only_when_advanced() -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        fired: list[str] = []
        ten = loop.create_future()
        loop.call_later(10, ten.set_result, None)
        loop.call_later(20, fired.append, "twenty")
        await asyncio.to_thread(lambda: None)  # real work: the clock still does not move
        assert loop.time() == 0.0
        assert not ten.done()
        loop.clock.advance(15)
        await ten
        assert fired == []
        return fired

    assert run_with_virtual_time(main(), auto_advance=False) == []


def test_the_loop_is_a_selector_loop_with_a_virtual_clock() -> None:
    loop = VirtualTimeLoop(start=42.0)
    try:
        assert loop.time() == 42.0
        assert isinstance(loop, asyncio.SelectorEventLoop)
        assert isinstance(loop.clock, VirtualClock)
        loop.run_until_complete(asyncio.sleep(8))
        assert loop.clock.elapsed == 8.0
    finally:
        loop.close()


async def test_run_with_virtual_time_refuses_to_run_inside_a_running_loop() -> None:
    async def main() -> None:
        raise AssertionError("never run")

    coroutine = main()
    with pytest.raises(VirtualTimeError, match="with virtual_time"):
        run_with_virtual_time(coroutine)
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED  # no "never awaited"


def test_run_with_virtual_time_of_the_async_function_itself_says_to_call_it() -> None:
    async def main() -> None:
        raise AssertionError("never run")

    with pytest.raises(VirtualTimeError) as raised:
        run_with_virtual_time(main)  # type: ignore[arg-type]
    # (was: asyncio's bare TypeError, "An asyncio.Future, a coroutine or an awaitable is
    # required", as MiniAgents().run(main) says it already)
    assert str(raised.value).startswith("run_with_virtual_time() takes a coroutine, not <func")
    assert str(raised.value).endswith(
        ": call the async function, run_with_virtual_time(main()), with the parentheses."
    )


# -- virtual_time() and manual_time() on the running loop ---------------------------------------


async def test_virtual_time_puts_the_running_loop_on_a_virtual_clock_for_the_block() -> None:
    loop = asyncio.get_running_loop()
    with virtual_time() as clock:
        assert loop.time() == clock.now == clock.start
        await asyncio.gather(asyncio.sleep(30), asyncio.sleep(600))
        # the clock starts at the loop's own time (any float): a jump of 570 after one of 30
        # may land an ulp away from start + 600, as asyncio computes the timeout in floats
        assert clock.elapsed == pytest.approx(600, abs=1e-9)
        assert loop.time() == pytest.approx(clock.start + 600, abs=1e-9)
    assert loop.time() < clock.start + 600  # the loop's own clock again
    assert "run_in_executor" not in vars(loop)
    assert "time" not in vars(loop)


async def test_on_the_running_loop_too_timers_of_one_time_fire_in_the_order_set() -> None:
    loop = asyncio.get_running_loop()
    with virtual_time():
        assert await _wake_order(10) == list(range(20))
    assert "call_at" not in vars(loop)  # asyncio's own again


async def test_after_the_block_each_pending_timer_keeps_the_delay_it_had_left() -> None:
    loop = asyncio.get_running_loop()
    fired: list[str] = []
    before = loop.call_later(1000, fired.append, "set before the block")
    with virtual_time():
        await asyncio.sleep(600)
        inside = loop.call_later(1, fired.append, "set in the block")
    # on the loop's own clock again: 1 s and 400 s left, not 601 s and 1000 s
    assert inside.when() - loop.time() <= 1
    assert inside.when() < before.when() <= loop.time() + 400
    before.cancel()
    inside.cancel()
    assert fired == []


@pytest.mark.timeout(30)
@pytest.mark.parametrize("started", ["before the block", "in the block"])
async def test_a_real_server_run_partly_on_virtual_time_stops_after_it(started: str) -> None:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    app = Starlette(routes=[Route("/", hello)])
    async with contextlib.AsyncExitStack() as stack:
        if started == "before the block":
            client = await stack.enter_async_context(served(app))
        with virtual_time():
            if started == "in the block":
                client = await stack.enter_async_context(served(app))
            await asyncio.sleep(600)  # uvicorn's next tick: 600.1 s on the virtual clock
            assert (await client.get("/")).text == "hello"
        assert (await client.get("/")).text == "hello"
    # the server has stopped on the loop's own clock (its tick 0.1 s away, not 600 s)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("connected", ["before the block", "in the block"])
async def test_a_streamed_answer_on_a_kept_alive_connection_comes_as_it_is_sent(
    connected: str,
) -> None:
    # uvicorn serves from a socket made without IPPROTO_TCP: asyncio leaves Nagle's algorithm
    # on for its connections, and the kernel held the second answer's events for the client's
    # delayed ACK (real time the loop cannot see): the clock jumped to the client's timeout
    gates: list[asyncio.Event] = []
    ports: set[int | None] = set()

    async def events(request: Request) -> StreamingResponse:
        gate = asyncio.Event()
        gates.append(gate)
        ports.add(request.client and request.client.port)

        async def body() -> AsyncIterator[str]:
            yield "data: hello\n\n"
            yield "data: world\n\n"
            await gate.wait()  # an SSE stream stays open until the server has more to say

        return StreamingResponse(body(), media_type="text/event-stream")

    async def ask(client: httpx.AsyncClient) -> None:
        async with client.stream("GET", "/") as response:
            reader = SSEReader(response)
            assert [event.data for event in await reader.take(2)] == ["hello", "world"]
            gates[-1].set()
            assert await reader.rest() == []

    app = Starlette(routes=[Route("/", events)])
    async with served(app) as client:
        if connected == "before the block":
            await ask(client)  # the connection is made (and its socket watched) on the loop's clock
        with virtual_time() as clock:
            while len(gates) < 3:  # on a new connection, then on the kept-alive one
                await ask(client)
            assert clock.elapsed == 0  # every answer came as it was sent
    assert len(gates) == 3
    assert len(ports) == 1  # one connection, kept alive


async def test_on_the_running_loop_a_timer_due_now_fires_after_194_days_of_uptime() -> None:
    # the block's clock starts at the loop's time: time.monotonic(), the machine's uptime
    loop = asyncio.get_running_loop()
    resolution = getattr(loop, "_clock_resolution")  # noqa: B009 - what the block sets
    with manual_time() as clock:
        clock.advance(2.0**24)
        due = loop.create_future()
        loop.call_later(0, due.set_result, "fired")
        assert await due == "fired"
    assert getattr(loop, "_clock_resolution") == resolution  # noqa: B009 - given back


async def test_on_the_running_loop_too_a_thread_holds_the_clock() -> None:
    release = threading.Event()
    with virtual_time() as clock:
        timer = asyncio.ensure_future(asyncio.sleep(5))
        worker = asyncio.ensure_future(asyncio.to_thread(release.wait, THREAD_WAIT))
        await asyncio.sleep(0)
        asyncio.get_running_loop().call_soon(release.set)
        assert await worker is True
        assert not timer.done()
        assert clock.elapsed == 0
        await timer
        assert clock.elapsed == 5


async def test_manual_time_stops_the_clock_until_the_test_moves_it() -> None:
    with manual_time() as clock:
        sleeper = asyncio.ensure_future(asyncio.sleep(2))
        for _ in range(5):
            await asyncio.sleep(0)
        await asyncio.to_thread(lambda: None)  # a real wait on the loop: time stands still
        assert not sleeper.done()
        assert clock.elapsed == 0
        clock.advance(1.5)
        await asyncio.sleep(0)
        assert not sleeper.done()
        clock.advance(0.5)
        await sleeper
        assert clock.elapsed == 2


async def test_a_clock_advanced_from_another_thread_wakes_the_loop() -> None:
    loop = asyncio.get_running_loop()
    with manual_time() as clock:
        sleeper = asyncio.ensure_future(asyncio.sleep(3))
        thread = threading.Thread(target=loop.call_soon_threadsafe, args=(clock.advance, 3.0))
        thread.start()
        await sleeper
        thread.join()
        assert clock.elapsed == 3


def runs_by_itself(clock: VirtualClock) -> bool:
    """The clock's mode (read in a call: mypy would keep what an earlier assert narrowed)."""
    return clock.auto_advance


async def test_blocks_nest_on_one_clock_and_give_back_its_mode() -> None:
    with virtual_time() as outer:
        with manual_time() as inner:
            assert inner is outer
            assert not runs_by_itself(outer)
            sleeper = asyncio.ensure_future(asyncio.sleep(1))
            await asyncio.sleep(0)
            assert not sleeper.done()
        assert runs_by_itself(outer)
        await sleeper
        assert outer.elapsed == 1


async def test_blocks_of_two_tasks_keep_the_loop_on_the_clock_until_the_last_one_ends() -> None:
    loop = asyncio.get_running_loop()
    entered, leave = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        with manual_time():
            entered.set()
            await leave.wait()

    task = asyncio.ensure_future(first())
    await entered.wait()
    with virtual_time() as clock:
        leave.set()
        await task  # the first block has ended; this one is still open
        assert loop.time() == clock.now
        assert runs_by_itself(clock)
        await asyncio.sleep(3600)  # at once
        assert clock.elapsed == pytest.approx(3600, abs=1e-9)
    assert "time" not in vars(loop)


async def test_while_blocks_overlap_the_clock_runs_as_the_last_one_open_says() -> None:
    first, second, third = virtual_time(), manual_time(), virtual_time()
    clock = first.__enter__()  # entered and left in any order, as by several tasks
    second.__enter__()
    third.__enter__()
    second.__exit__(None, None, None)
    assert runs_by_itself(clock)  # the third block's mode
    third.__exit__(None, None, None)
    assert runs_by_itself(clock)  # the first block's mode, not the one the third found
    first.__exit__(None, None, None)
    assert "time" not in vars(asyncio.get_running_loop())


def test_virtual_time_on_a_virtual_time_loop_sets_the_mode_of_its_clock() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        with manual_time() as clock:
            assert clock is loop.clock
            assert not clock.auto_advance
        assert loop.clock.auto_advance

    run_with_virtual_time(main())


@pytest.mark.parametrize("block", [virtual_time, manual_time])
async def test_async_with_is_refused_saying_to_write_a_plain_with(
    block: Callable[[], contextlib.AbstractContextManager[VirtualClock]],
) -> None:
    name = block.__name__
    with pytest.raises(VirtualTimeError) as raised:  # (was: a bare TypeError)
        async with block():  # type: ignore[attr-defined]
            pass
    assert str(raised.value) == (
        f"{name}() is a plain `with` block, not an `async with` one: write "
        f"`with {name}() as clock:` (in async code too)."
    )
    assert "time" not in vars(asyncio.get_running_loop())  # (the loop's clock: untouched)
    with block() as clock:  # the plain block still works
        clock.advance(5)
        assert clock.elapsed == pytest.approx(5, abs=1e-9)


def test_virtual_time_needs_a_running_loop() -> None:
    with pytest.raises(VirtualTimeError, match="no loop is running"), virtual_time():
        pass


def test_manual_time_needs_a_running_loop_and_says_so_in_its_own_name() -> None:
    with pytest.raises(VirtualTimeError) as raised, manual_time():
        pass
    # (was: the message of virtual_time(), which sent sync code to run_with_virtual_time(...)
    # with its clock running by itself)
    assert str(raised.value).startswith("manual_time() stops the running event loop's clock")
    assert "run_with_virtual_time(main(), auto_advance=False)" in str(raised.value)


@contextlib.contextmanager
def selector_replaced(loop: asyncio.AbstractEventLoop, stand_in: object) -> Iterator[None]:
    """The loop's selector swapped for ``stand_in`` (only between two steps of the loop)."""
    selector = getattr(loop, "_selector")  # noqa: B009 - the attribute virtual_time() patches
    setattr(loop, "_selector", stand_in)  # noqa: B010
    try:
        yield
    finally:
        setattr(loop, "_selector", selector)  # noqa: B010


async def test_virtual_time_refuses_a_loop_that_is_not_a_selector_loop() -> None:
    loop = asyncio.get_running_loop()
    with selector_replaced(loop, None), pytest.raises(VirtualTimeError, match="selector"):  # noqa: SIM117
        with virtual_time():
            pass
    assert "time" not in vars(loop)


@pytest.mark.parametrize("seconds", [-1.0, float("inf"), float("nan")])
def test_a_clock_moves_forward_by_a_finite_number_of_seconds(seconds: float) -> None:
    clock = VirtualClock(5.0)
    with pytest.raises(VirtualTimeError, match="finite number of seconds"):
        clock.advance(seconds)
    assert clock.now == 5.0


@pytest.mark.parametrize("start", [float("inf"), float("nan"), "0", None])
def test_a_clock_starts_at_a_finite_number_of_seconds(start: object) -> None:
    async def main() -> None:
        raise AssertionError("never run")

    coroutine = main()
    with pytest.raises(VirtualTimeError, match=r"starts at a finite number.*Give start= a number"):
        run_with_virtual_time(coroutine, start=start)  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED  # no "never awaited"
    with pytest.raises(VirtualTimeError, match="starts at a finite number"):
        VirtualTimeLoop(start=start)  # type: ignore[arg-type]


def test_a_clock_says_where_it_is() -> None:
    clock = VirtualClock(10.0, auto_advance=False)
    clock.advance(2.5)
    assert (clock.now, clock.elapsed, clock.time()) == (12.5, 2.5, 12.5)
    assert repr(clock) == "<VirtualClock at 12.5 s (2.5 s elapsed), stopped>"


def _loop_with_an_uncounted_job(release: threading.Event) -> VirtualTimeLoop:
    """A loop whose default executor runs a job the loop did not hand it (so not counted)."""
    loop = VirtualTimeLoop()
    executor = ThreadPoolExecutor(thread_name_prefix="asyncio")
    loop.set_default_executor(executor)
    executor.submit(release.wait, THREAD_WAIT)
    return loop


def test_the_default_executors_shutdown_waits_for_its_threads_with_the_clock_held() -> None:
    # (was: the idle clock jumped past asyncio's timeout, 300 s as asyncio.run closes from
    # Python 3.12, before the threads ended: "did not finish joining its threads", and the
    # threads left running)
    release = threading.Event()
    loop = _loop_with_an_uncounted_job(release)
    opener = threading.Timer(0.05, release.set)  # (the job's end, in real time)
    try:
        opener.start()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            loop.run_until_complete(loop.shutdown_default_executor(300))
        assert release.is_set()  # (it waited for the job)
        assert loop.time() == 0.0  # (the clock held)
    finally:
        opener.cancel()
        release.set()
        loop.close()


def test_the_default_executors_shutdown_warns_past_its_timeout_in_real_seconds() -> None:
    release = threading.Event()
    loop = _loop_with_an_uncounted_job(release)
    try:
        with pytest.warns(RuntimeWarning, match=r"did not end its threads within 0\.1 real"):
            loop.run_until_complete(loop.shutdown_default_executor(0.1))
        assert not release.is_set()  # (the job left running)
        assert loop.time() == 0.0
    finally:
        release.set()
        loop.close()
