"""MiniAgents: typed, replayable streams of messages for LLM-based multi-agent systems.

Re-exported here: the agents (:func:`miniagent`, :class:`MiniAgent`, :class:`MiniAgents`,
:class:`InteractionContext`), the streams (:class:`Promise`, :class:`StreamedPromise`,
:class:`Frozen`, :class:`Message`, :class:`MessagePromise`, :class:`MessageSequencePromise`,
:data:`MessageType`), the local pipelines (:func:`pipeline`, :class:`ItemResult`) and the
error root :class:`MiniAgentsError`.
"""

from miniagents.reexports import Reexports

_HOMES = {
    "miniagents.promising": "Frozen Promise StreamedPromise",
    "miniagents.messages": "Message MessagePromise MessageSequencePromise MessageTuple MessageType",
    "miniagents.miniagents": "InteractionContext MiniAgent MiniAgents miniagent",
    "miniagents.pipeline": "ItemResult pipeline",
    "miniagents.errors": "MiniAgentsError",
}
_REEXPORTS = Reexports(__name__, _HOMES, eager=_HOMES)
"""The top-level names by module, all imported with the package (type checkers read
``__init__.pyi``, made of this table)."""
globals().update(_REEXPORTS.imported())  # (the function pipeline, not its module)

__version__ = "0.1.0"
"""This release's version (the package's metadata reads it from here: pyproject.toml)."""

__all__ = _REEXPORTS.names
__getattr__ = _REEXPORTS.attribute
__dir__ = _REEXPORTS.dir
