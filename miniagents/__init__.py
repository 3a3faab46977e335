"""MiniAgents: typed, replayable streams of messages for LLM-based multi-agent systems.

Re-exported here: the agents (:func:`miniagent`, :class:`MiniAgent`, :class:`MiniAgents`,
:class:`InteractionContext`), the streams (:class:`Promise`, :class:`StreamedPromise`,
:class:`Frozen`, :class:`Message`, :class:`MessagePromise`, :class:`MessageSequencePromise`,
:data:`MessageType`), the local pipelines (:func:`pipeline`, :class:`ItemResult`) and the
error root :class:`MiniAgentsError`.
"""

from miniagents.errors import MiniAgentsError as MiniAgentsError
from miniagents.messages import Message as Message
from miniagents.messages import MessagePromise as MessagePromise
from miniagents.messages import MessageSequencePromise as MessageSequencePromise
from miniagents.messages import MessageTuple as MessageTuple
from miniagents.messages import MessageType as MessageType
from miniagents.miniagents import InteractionContext as InteractionContext
from miniagents.miniagents import MiniAgent as MiniAgent
from miniagents.miniagents import MiniAgents as MiniAgents
from miniagents.miniagents import miniagent as miniagent
from miniagents.pipeline import ItemResult as ItemResult
from miniagents.pipeline import pipeline as pipeline
from miniagents.promising import Frozen as Frozen
from miniagents.promising import Promise as Promise
from miniagents.promising import StreamedPromise as StreamedPromise

__version__ = "0.1.0"
"""This release's version (the package's metadata reads it from here: pyproject.toml)."""

__all__ = [
    "Frozen",
    "InteractionContext",
    "ItemResult",
    "Message",
    "MessagePromise",
    "MessageSequencePromise",
    "MessageTuple",
    "MessageType",
    "MiniAgent",
    "MiniAgents",
    "MiniAgentsError",
    "Promise",
    "StreamedPromise",
    "miniagent",
    "pipeline",
]
