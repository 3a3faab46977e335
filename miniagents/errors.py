"""Every error MiniAgents raises, under one root.

The hierarchy::

    MiniAgentsError
    ├── SentinelMisuseError (also TypeError)      a sentinel was used as a boolean
    ├── FrozenInstanceError (also TypeError)      a frozen container was mutated
    ├── MessageTypeError (also TypeError)         not a MessageType where messages were expected
    ├── StreamSourceError (also TypeError)        a stream's source is not an async iterable
    ├── AgentDefinitionError (also TypeError)     @miniagent on something not an agent function
    ├── AgentArgumentError (also TypeError)       an unknown, missing or positional agent argument
    ├── NoRunningLoopError (also RuntimeError)    a stream needing a task started outside asyncio
    ├── NoActiveContextError (also RuntimeError)  an agent used outside a MiniAgents context
    ├── IncompleteStreamError (also RuntimeError) str() of a stream that is still streaming
    ├── AppenderClosedError (also RuntimeError)   appending to a stream that has ended
    ├── AgentFinishedError (also RuntimeError)    a reply (or input) after the interaction ended
    ├── ReplayWindowError (also RuntimeError)     a piece needed was released past the window
    ├── StreamOverflowError (also RuntimeError)   a hot source outran consumers (policy "error")
    ├── StreamCancelledError                      the stream's producer was cancelled
    ├── ChatHistoryError                          a chat history cannot be read or written
    │   └── MalformedChatHistoryError (also ValueError)  not a chat history (file, line named)
    └── LLMError                                  an LLM call failed (miniagents.ext.llm.errors)
        ├── LLMConfigurationError (also ValueError)  e.g. no model was given
        ├── LLMRateLimitError                       429, after the SDK's own retries
        ├── LLMServerError                          5xx / overloaded, after the SDK's retries
        ├── LLMConnectionError                      no connection, or it broke mid-stream
        │   └── LLMTimeoutError                     the request timed out
        ├── LLMAuthenticationError                  a missing or refused API key
        ├── LLMRequestError                         any other 4xx: the request was refused
        └── LLMResponseError                        a malformed, incomplete or failed stream

Errors raised by a stream's producer or an agent (your code, an SDK) are not wrapped:
they reach every consumer with their own type. Assigning a field of a ``Frozen`` model raises
pydantic's ``ValidationError``, as for any frozen pydantic model.
"""

from miniagents.chat_history import ChatHistoryError as ChatHistoryError
from miniagents.chat_history import MalformedChatHistoryError as MalformedChatHistoryError
from miniagents.ext.llm.errors import LLMAuthenticationError as LLMAuthenticationError
from miniagents.ext.llm.errors import LLMConfigurationError as LLMConfigurationError
from miniagents.ext.llm.errors import LLMConnectionError as LLMConnectionError
from miniagents.ext.llm.errors import LLMError as LLMError
from miniagents.ext.llm.errors import LLMRateLimitError as LLMRateLimitError
from miniagents.ext.llm.errors import LLMRequestError as LLMRequestError
from miniagents.ext.llm.errors import LLMResponseError as LLMResponseError
from miniagents.ext.llm.errors import LLMServerError as LLMServerError
from miniagents.ext.llm.errors import LLMTimeoutError as LLMTimeoutError
from miniagents.messages.appender import AppenderClosedError as AppenderClosedError
from miniagents.messages.errors import MessageTypeError as MessageTypeError
from miniagents.miniagents.errors import AgentArgumentError as AgentArgumentError
from miniagents.miniagents.errors import AgentDefinitionError as AgentDefinitionError
from miniagents.miniagents.errors import AgentFinishedError as AgentFinishedError
from miniagents.miniagents.errors import NoActiveContextError as NoActiveContextError
from miniagents.promising.errors import FrozenInstanceError as FrozenInstanceError
from miniagents.promising.errors import IncompleteStreamError as IncompleteStreamError
from miniagents.promising.errors import MiniAgentsError as MiniAgentsError
from miniagents.promising.errors import NoRunningLoopError as NoRunningLoopError
from miniagents.promising.errors import ReplayWindowError as ReplayWindowError
from miniagents.promising.errors import SentinelMisuseError as SentinelMisuseError
from miniagents.promising.errors import StreamCancelledError as StreamCancelledError
from miniagents.promising.errors import StreamOverflowError as StreamOverflowError
from miniagents.promising.errors import StreamSourceError as StreamSourceError

__all__ = [
    "AgentArgumentError",
    "AgentDefinitionError",
    "AgentFinishedError",
    "AppenderClosedError",
    "ChatHistoryError",
    "FrozenInstanceError",
    "IncompleteStreamError",
    "LLMAuthenticationError",
    "LLMConfigurationError",
    "LLMConnectionError",
    "LLMError",
    "LLMRateLimitError",
    "LLMRequestError",
    "LLMResponseError",
    "LLMServerError",
    "LLMTimeoutError",
    "MalformedChatHistoryError",
    "MessageTypeError",
    "MiniAgentsError",
    "NoActiveContextError",
    "NoRunningLoopError",
    "ReplayWindowError",
    "SentinelMisuseError",
    "StreamCancelledError",
    "StreamOverflowError",
    "StreamSourceError",
]
