"""Every error MiniAgents raises, under one root.

The hierarchy::

    MiniAgentsError
    ├── SentinelMisuseError (also TypeError)      a sentinel was used as a boolean
    ├── FrozenInstanceError (also TypeError)      a frozen container was mutated
    ├── MessageTypeError (also TypeError)         not a MessageType where messages were expected
    ├── NoRunningLoopError (also RuntimeError)    a stream needing a task started outside asyncio
    ├── IncompleteStreamError (also RuntimeError) str() of a stream that is still streaming
    └── StreamCancelledError                      the stream's producer was cancelled

Errors raised by a stream's producer (your code, an SDK) are not wrapped: they reach
every consumer with their own type. Assigning a field of a ``Frozen`` model raises
pydantic's ``ValidationError``, as for any frozen pydantic model.
"""

from miniagents.messages.errors import MessageTypeError as MessageTypeError
from miniagents.promising.errors import FrozenInstanceError as FrozenInstanceError
from miniagents.promising.errors import IncompleteStreamError as IncompleteStreamError
from miniagents.promising.errors import MiniAgentsError as MiniAgentsError
from miniagents.promising.errors import NoRunningLoopError as NoRunningLoopError
from miniagents.promising.errors import SentinelMisuseError as SentinelMisuseError
from miniagents.promising.errors import StreamCancelledError as StreamCancelledError

__all__ = [
    "FrozenInstanceError",
    "IncompleteStreamError",
    "MessageTypeError",
    "MiniAgentsError",
    "NoRunningLoopError",
    "SentinelMisuseError",
    "StreamCancelledError",
]
