# Made from the table of miniagents (Reexports.stub): do not edit.

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

__all__ = [
    "MiniAgentsError",
    "Message", "MessagePromise", "MessageSequencePromise", "MessageTuple", "MessageType",
    "InteractionContext", "MiniAgent", "MiniAgents", "miniagent",
    "ItemResult", "pipeline",
    "Frozen", "Promise", "StreamedPromise",
]

__version__: str
