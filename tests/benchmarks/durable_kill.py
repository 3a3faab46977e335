"""Benchmark: a durable pipeline killed with SIGKILL part-way, then run again (issue 22).

Run it by hand from the repository root (it is not a test; pytest never collects it)::

    python tests/benchmarks/durable_kill.py                   # 100,000 items (80 min on SQLite)
    python tests/benchmarks/durable_kill.py --items 10000     # a shorter run
    python tests/benchmarks/durable_kill.py --items 300       # a smoke check

A child process runs ``pipeline(offline agent, items, durable=True)`` (one instant model
call per item, 8 items at a time) on a new SQLite file and prints a line per result; the
parent kills it with SIGKILL once ``--kill-at`` of the items (60 % by default) have given
their result, then starts it again over the same items and lets it finish. The model logs
every call (``<phase> <item>``, flushed), so the parent knows which items were asked of
the model in each phase. It reports:

* items recovered from records: items of the second phase whose reply came without
  calling the model (those that had ended, and those that were running and had their
  model call recorded);
* items rerun: items whose model was called in both phases (they were running at the kill);
* items rerun that had completed (their result given to the pipeline's reader before the
  kill): must be 0;
* items the second phase ran for the first time, and whether every item gave one result;
* the wall time of each phase and the peak RSS of each child (``VmHWM``, read by the
  parent just before the kill, and by the child itself at its end).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALIAS = "KILL_BENCH"
CONCURRENCY = 8


def _child(items: int, database: str, calls_log: str, phase: str) -> None:
    """Run the durable pipeline in this process; print ``R <index>`` per result."""
    from miniagents import MiniAgents
    from miniagents.ext.dbos import use_database
    from miniagents.ext.llm.offline import offline_agent
    from miniagents.ext.llm.provider import LLMCall
    from miniagents.pipeline import pipeline

    use_database(f"sqlite:///{database}")
    log = Path(calls_log).open("a", encoding="utf-8")  # noqa: SIM115 - open for the run

    def answer(call: LLMCall) -> str:
        text = call.messages[-1].text
        log.write(f"{phase} {text}\n")
        log.flush()  # a kill loses no line
        return f"done {text}"

    agent = offline_agent.fork(alias=ALIAS, reply=answer, token_delay=0)
    out = sys.stdout

    async def main() -> None:
        async with MiniAgents():
            source = (f"item {index}" for index in range(items))
            async for result in pipeline(
                agent, source, max_concurrency=CONCURRENCY, durable=True, progress=False
            ):
                if result.error is not None:
                    out.write(f"E {result.index} {result.error!r}\n")
                else:
                    out.write(f"R {result.index}\n")
                out.flush()

    asyncio.run(main())
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.write(f"DONE {peak_kib}\n")
    out.flush()


def _peak_kib(pid: int) -> int:
    """The peak resident memory of a running process (``VmHWM``), in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _start(items: int, database: Path, calls_log: Path, phase: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, __file__, "--child", str(items), str(database), str(calls_log), phase],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=database.parent,
    )


def _called(calls_log: Path, phase: str) -> list[int]:
    prefix = f"{phase} item "
    return [
        int(line[len(prefix) :])
        for line in calls_log.read_text().splitlines()
        if line.startswith(prefix)
    ]


def run(items: int, kill_at: float) -> None:
    """Run the two phases in a temporary folder and print the report."""
    with tempfile.TemporaryDirectory(prefix="durable_kill_") as folder:
        database = Path(folder) / "runs.sqlite"
        calls_log = Path(folder) / "calls.log"
        calls_log.touch()
        target = max(1, int(items * kill_at))

        began = time.perf_counter()
        first = _start(items, database, calls_log, "1")
        assert first.stdout is not None
        completed: set[int] = set()
        errors_first = 0
        for line in first.stdout:
            if line.startswith("R "):
                completed.add(int(line[2:]))
            elif line.startswith("E "):
                errors_first += 1
            if len(completed) >= target:
                break
        peak_first = _peak_kib(first.pid)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
        first_seconds = time.perf_counter() - began
        called_first = _called(calls_log, "1")

        began = time.perf_counter()
        second = _start(items, database, calls_log, "2")
        out, _ = second.communicate()
        second_seconds = time.perf_counter() - began
        results = [int(line[2:]) for line in out.splitlines() if line.startswith("R ")]
        errors = [line for line in out.splitlines() if line.startswith("E ")]
        peak_second = next(
            (int(line.split()[1]) for line in out.splitlines() if line.startswith("DONE ")), 0
        )
        called_second = _called(calls_log, "2")

    asked_before = set(called_first)
    asked_again = set(called_second)
    rerun = asked_again & asked_before
    rerun_completed = asked_again & completed
    print(f"items: {items:,}, killed after {len(completed):,} results ({kill_at:.0%})")
    print(
        f"phase 1: {first_seconds:,.1f} s, {len(called_first):,} model calls, peak RSS "
        f"{peak_first / 1024:,.0f} MiB, {errors_first} errors"
    )
    print(
        f"phase 2: {second_seconds:,.1f} s, {len(called_second):,} model calls, peak RSS "
        f"{peak_second / 1024:,.0f} MiB, returncode {second.returncode}, {len(errors)} errors"
    )
    print(
        f"results of phase 2: {len(results):,} (every item once: "
        f"{sorted(results) == list(range(items))})"
    )
    print(f"items recovered from records: {items - len(asked_again):,}")
    print(f"items rerun (asked of the model in both phases): {len(rerun):,}")
    print(f"items rerun that had completed: {len(rerun_completed):,}")
    print(f"items run for the first time in phase 2: {len(asked_again - asked_before):,}")
    print(
        f"model calls made twice for one item in one phase: "
        f"{len(called_first) - len(asked_before) + len(called_second) - len(asked_again)}"
    )
    for line in errors[:5]:
        print("  ", line)


def main() -> None:
    """Parse the arguments; run the benchmark, or (``--child``) one phase of it."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--kill-at", type=float, default=0.6)
    arguments = parser.parse_args()
    run(arguments.items, arguments.kill_at)


if __name__ == "__main__":
    main()
