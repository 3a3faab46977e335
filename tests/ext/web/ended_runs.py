"""Runs of an AG-UI app that end straight through its run manager, at its bounds of ended
runs: ``test_memory.py`` counts what each end costs, ``tests/benchmarks/web_run_ends.py``
times it."""

from __future__ import annotations

from miniagents.ext.llm import UserMessage
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.web import BearerTokenAuth, WebSettings, agui_app
from miniagents.ext.web.lowlevel import RunManager


async def end_runs(manager: RunManager, keys: list[str]) -> None:
    """Run the app's agent once per key, straight through its run manager, to the end."""
    for key in keys:
        run = manager.start_new(
            None, manager.protocol.ids(key, f"t-{key}"), [UserMessage(text="Hi")], {}
        )
        await run.job.asettled()


async def run_size() -> int:
    """What one run of :func:`end_runs` keeps once ended: its log, and its job's record."""
    app = agui_app(
        offline_agent.fork(reply="Hi", token_delay=0),
        authentication=BearerTokenAuth({}),
        settings=WebSettings(keep_runs_for=3600),
    )
    manager: RunManager = app.state.runs
    await end_runs(manager, ["p0000"])
    probe = manager.get("p0000")
    assert probe is not None
    await manager.aclose()
    return probe.size + probe.job.kept_bytes


async def manager_at_bound(bound: str, kept: int, size: int) -> RunManager:
    """An AG-UI app's manager that keeps about ``kept`` ended runs at ``bound``
    (``max_ended_runs``, or ``max_ended_run_bytes`` of runs of ``size`` bytes)."""
    settings = WebSettings(keep_runs_for=3600, max_ended_runs=kept)
    if bound == "max_ended_run_bytes":
        settings = WebSettings(
            keep_runs_for=3600, max_ended_runs=2 * kept, max_ended_run_bytes=kept * size
        )
    app = agui_app(
        offline_agent.fork(reply="Hi", token_delay=0),
        authentication=BearerTokenAuth({}),
        settings=settings,
    )
    manager: RunManager = app.state.runs
    await end_runs(manager, [f"k{n:05}" for n in range(kept + 5)])
    return manager
