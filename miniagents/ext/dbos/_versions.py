"""Which code a durable run was started by: a version per agent, recorded with each run.

Each durable agent's *version* is a hash of its alias, its code and its settings (its
function's source, its bound arguments: model, system prompt, tool names). A run records
the version of its agent among its inputs, and is checked against it when it is recovered
(or asked for again), run by run::

    process 1:  durable(MAIN v1), run w1 of MAIN (v1), durable(LATE v1), run w2 of LATE (v1)
                kill -9 (both running)
    process 2:  durable(MAIN v2)   ->  w1 refused: DurableVersionError (recorded by v1, not mixed)
                durable(LATE v1)   ->  w2 recovered (it waited for LATE to be made)

So the agents of a process may be made in any order, before or after its first durable
run, and adding or changing one agent changes nothing for the runs of the others. DBOS's
own *application version* is one constant, the format of the runs this module records: a
run recorded by another format (another release of this library) is not recovered.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect

from miniagents.messages.message import Message
from miniagents.miniagents.agent import MiniAgent

__all__ = ["APPLICATION_VERSION", "DurableAgents", "fingerprint", "version_of"]

APPLICATION_VERSION = "miniagents-durable-2"
"""DBOS's application version of every durable run: the format of what it records."""


def fingerprint(agent: MiniAgent[..., Message]) -> str:
    """What a run's version sees of ``agent``: its alias, its code, its settings."""
    func = agent.func
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        source = ""
    settings = sorted((name, _described(value)) for name, value in agent.bound_arguments.items())
    name = f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', '')}"
    return f"{agent.alias}|{name}|{source}|{settings}"


def version_of(agent: MiniAgent[..., Message]) -> str:
    """The version the runs of ``agent`` record: a short hash of its fingerprint."""
    return hashlib.sha256(fingerprint(agent).encode()).hexdigest()[:16]


def _described(value: object) -> str:
    """A value as the version sees it: plain values as such, others by kind (and name)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_described(item) for item in value) + "]"
    name = getattr(value, "name", None) or getattr(value, "alias", None)
    kind = type(value).__qualname__
    return f"{kind}({name})" if isinstance(name, str) else kind


class DurableAgents:
    """The durable agents of this process by alias, each with its version.

    A run recovered at launch whose agent is not made yet waits for it
    (:meth:`await_agent`): the agents of a process may be made after its first durable run.
    """

    def __init__(self) -> None:
        self._agents: dict[str, tuple[MiniAgent[..., Message], str]] = {}
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}

    def get(self, alias: str) -> MiniAgent[..., Message] | None:
        """The durable agent of ``alias``, if one was made."""
        known = self._agents.get(alias)
        return None if known is None else known[0]

    def version(self, alias: str) -> str:
        """The version of the durable agent of ``alias`` (one must have been made)."""
        return self._agents[alias][1]

    def add(self, agent: MiniAgent[..., Message]) -> None:
        """Make ``agent`` the one of its alias, and wake the runs that wait for it."""
        self._agents[agent.alias] = (agent, version_of(agent))
        for waiter in self._waiting.pop(agent.alias, []):
            loop = waiter.get_loop()
            if not loop.is_closed():
                loop.call_soon_threadsafe(_wake, waiter)

    async def await_agent(self, alias: str) -> MiniAgent[..., Message]:
        """The durable agent of ``alias``, once this process has made it."""
        while (agent := self.get(alias)) is None:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.setdefault(alias, []).append(waiter)
            try:
                await waiter
            finally:
                waiters = self._waiting.get(alias, [])
                if waiter in waiters:
                    waiters.remove(waiter)
                if not waiters:  # (the last waiter of the alias gone: nothing kept for it)
                    self._waiting.pop(alias, None)
        return agent


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
