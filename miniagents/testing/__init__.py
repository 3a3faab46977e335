"""Tools for testing code built on MiniAgents, offline and deterministically.

:class:`VirtualTimeLoop` and :func:`run_with_virtual_time` run asyncio code on a virtual
clock that jumps to the next timer whenever the loop is idle, so timing tests neither wait
nor depend on the machine's speed.
"""

from miniagents.testing._virtual_time import VirtualTimeLoop as VirtualTimeLoop
from miniagents.testing._virtual_time import run_with_virtual_time as run_with_virtual_time

__all__ = ["VirtualTimeLoop", "run_with_virtual_time"]
