"""The web run manager's work as runs end at its bound: 10,000 run ends with 5,000 kept.

An AG-UI app's manager, driven directly (no HTTP: the offline agent, replying "Hi"), keeps
``--kept`` ended runs at ``max_ended_runs`` (or, with ``--bytes``, at about as many runs'
bytes of ``max_ended_run_bytes``); then ``--ends`` more runs end, each letting the oldest go.
What is timed is the manager's own work as each run and its job end (``forget_later`` and
``forget_job``, ``time.perf_counter``, summed); the baseline, in the same process, is the
same ends at ``--few`` kept (the app and its filling: ``tests.ext.web.ended_runs``'s). Before
and after a change, one copy of the package each::

    git archive ae84e2e miniagents | tar -x -C /tmp/web8-before
    PYTHONPATH=/tmp/web8-before:. python tests/benchmarks/web_run_ends.py
    PYTHONPATH=. python tests/benchmarks/web_run_ends.py --bytes
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

import miniagents
from miniagents.ext.web.lowlevel import RunManager
from tests.ext.web.ended_runs import end_runs, manager_at_bound, run_size


async def _per_end(kept: int, ends: int, bound: str, size: int) -> float:
    """The manager's µs per run end, ``kept`` ended runs kept at the bound."""
    manager = await manager_at_bound(bound, kept, size)
    spent = [0.0]
    ended = getattr(manager, "ended", manager)  # (its ended runs' own, since stop 97)
    owners = {"forget_later": type(ended), "forget_job": RunManager}
    originals = {name: getattr(owner, name) for name, owner in owners.items()}

    def timed(method: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        def timed_method(self: Any, argument: Any) -> None:
            start = time.perf_counter()
            method(self, argument)
            spent[0] += time.perf_counter() - start

        return timed_method

    for name, method in originals.items():
        setattr(owners[name], name, timed(method))
    try:
        await end_runs(manager, [f"m{n:06}" for n in range(ends)])
    finally:
        for name, method in originals.items():
            setattr(owners[name], name, method)
    await manager.aclose()
    return spent[0] / ends * 1e6


async def _main(arguments: argparse.Namespace) -> None:
    bound = "max_ended_run_bytes" if arguments.bytes else "max_ended_runs"
    size = await run_size()
    few = await _per_end(arguments.few, arguments.ends, bound, size)
    many = await _per_end(arguments.kept, arguments.ends, bound, size)
    print(f"miniagents from {miniagents.__file__}; bound {bound}")
    print(f"{arguments.ends:,} run ends at {arguments.few:,} kept: {few:.1f} µs an end")
    print(f"{arguments.ends:,} run ends at {arguments.kept:,} kept: {many:.1f} µs an end")
    print(f"ratio: {many / few:.2f}")


def main() -> None:
    """Parse the options and measure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kept", type=int, default=5_000)
    parser.add_argument("--few", type=int, default=50)
    parser.add_argument("--ends", type=int, default=10_000)
    parser.add_argument("--bytes", action="store_true", help="at max_ended_run_bytes")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
