"""Every error MiniAgents raises, under one root.

The hierarchy::

    MiniAgentsError
    ├── SentinelMisuseError (also TypeError)      a sentinel was used as a boolean
    ├── FrozenInstanceError (also TypeError)      a frozen container was mutated
    ├── HashKeyError (also TypeError)             a value that hash_key cannot encode
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
    │       └── TornChatHistoryError                 its last section was cut short by a crash
    ├── ToolError                                 a tool (miniagents.ext.tools, miniagents.ext.mcp)
    │   ├── ToolDefinitionError (also TypeError)     not usable as a tool (no annotation, ...)
    │   ├── ToolNameConflictError (also ValueError)  two tools of one list have the same name
    │   ├── ToolCallError                           raised by a tool: its message is the result
    │   └── MCPSessionError                         an MCP server unreachable, or session closed
    ├── MessageSerializationError (also TypeError)  a value that cannot be pickled for Ray
    ├── RemoteTraceback                           where a Ray worker raised an error (its cause)
    ├── RayAgentError                             running an agent on Ray failed (ext.ray.errors)
    │   ├── RayWorkerDiedError                      the worker (or node) died mid-interaction
    │   └── RemoteError                             a worker's error that cannot travel as itself
    ├── FakeLLMServerError                        the fake LLM server misused (miniagents.testing)
    │   └── FakeLLMServerTimeout (also TimeoutError)  a request waited for did not come in time
    ├── VirtualTimeError (also RuntimeError)      virtual time where it cannot work (testing)
    ├── ContractViolationError (also AssertionError)  a contract's check failed (testing)
    └── LLMError                                  an LLM call failed (miniagents.ext.llm.errors)
        ├── LLMConfigurationError (also ValueError)  e.g. no model was given
        ├── LLMSDKMissingError (also ImportError)   the provider's SDK is not installed
        ├── LLMRateLimitError                       429, after the SDK's own retries
        ├── LLMServerError                          5xx / overloaded, after the SDK's retries
        ├── LLMConnectionError                      no connection, or it broke mid-stream
        │   └── LLMTimeoutError                     timed out, or the reply stalled
        ├── LLMAuthenticationError                  a missing or refused API key
        ├── LLMRequestError                         any other 4xx: the request was refused
        ├── LLMResponseError                        a malformed, incomplete or failed stream
        └── LLMToolRoundsError                      the model kept calling tools: max_tool_rounds

Errors raised by a stream's producer or an agent (your code, an SDK) are not wrapped:
they reach every consumer with their own type. Assigning a field of a ``Frozen`` model raises
pydantic's ``ValidationError``, as for any frozen pydantic model.
"""

from miniagents.chat_history import ChatHistoryError as ChatHistoryError
from miniagents.chat_history import MalformedChatHistoryError as MalformedChatHistoryError
from miniagents.chat_history import TornChatHistoryError as TornChatHistoryError
from miniagents.ext.llm.errors import LLMAuthenticationError as LLMAuthenticationError
from miniagents.ext.llm.errors import LLMConfigurationError as LLMConfigurationError
from miniagents.ext.llm.errors import LLMConnectionError as LLMConnectionError
from miniagents.ext.llm.errors import LLMError as LLMError
from miniagents.ext.llm.errors import LLMRateLimitError as LLMRateLimitError
from miniagents.ext.llm.errors import LLMRequestError as LLMRequestError
from miniagents.ext.llm.errors import LLMResponseError as LLMResponseError
from miniagents.ext.llm.errors import LLMSDKMissingError as LLMSDKMissingError
from miniagents.ext.llm.errors import LLMServerError as LLMServerError
from miniagents.ext.llm.errors import LLMTimeoutError as LLMTimeoutError
from miniagents.ext.llm.errors import LLMToolRoundsError as LLMToolRoundsError
from miniagents.ext.mcp.errors import MCPSessionError as MCPSessionError
from miniagents.ext.ray.errors import MessageSerializationError as MessageSerializationError
from miniagents.ext.ray.errors import RayAgentError as RayAgentError
from miniagents.ext.ray.errors import RayWorkerDiedError as RayWorkerDiedError
from miniagents.ext.ray.errors import RemoteError as RemoteError
from miniagents.ext.ray.errors import RemoteTraceback as RemoteTraceback
from miniagents.ext.tools.errors import ToolCallError as ToolCallError
from miniagents.ext.tools.errors import ToolDefinitionError as ToolDefinitionError
from miniagents.ext.tools.errors import ToolError as ToolError
from miniagents.ext.tools.errors import ToolNameConflictError as ToolNameConflictError
from miniagents.messages.appender import AppenderClosedError as AppenderClosedError
from miniagents.messages.errors import MessageTypeError as MessageTypeError
from miniagents.miniagents.errors import AgentArgumentError as AgentArgumentError
from miniagents.miniagents.errors import AgentDefinitionError as AgentDefinitionError
from miniagents.miniagents.errors import AgentFinishedError as AgentFinishedError
from miniagents.miniagents.errors import NoActiveContextError as NoActiveContextError
from miniagents.promising.errors import FrozenInstanceError as FrozenInstanceError
from miniagents.promising.errors import HashKeyError as HashKeyError
from miniagents.promising.errors import IncompleteStreamError as IncompleteStreamError
from miniagents.promising.errors import MiniAgentsError as MiniAgentsError
from miniagents.promising.errors import NoRunningLoopError as NoRunningLoopError
from miniagents.promising.errors import ReplayWindowError as ReplayWindowError
from miniagents.promising.errors import SentinelMisuseError as SentinelMisuseError
from miniagents.promising.errors import StreamCancelledError as StreamCancelledError
from miniagents.promising.errors import StreamOverflowError as StreamOverflowError
from miniagents.promising.errors import StreamSourceError as StreamSourceError
from miniagents.testing.errors import ContractViolationError as ContractViolationError
from miniagents.testing.errors import FakeLLMServerError as FakeLLMServerError
from miniagents.testing.errors import FakeLLMServerTimeout as FakeLLMServerTimeout
from miniagents.testing.errors import VirtualTimeError as VirtualTimeError

__all__ = [
    "AgentArgumentError",
    "AgentDefinitionError",
    "AgentFinishedError",
    "AppenderClosedError",
    "ChatHistoryError",
    "ContractViolationError",
    "FakeLLMServerError",
    "FakeLLMServerTimeout",
    "FrozenInstanceError",
    "HashKeyError",
    "IncompleteStreamError",
    "LLMAuthenticationError",
    "LLMConfigurationError",
    "LLMConnectionError",
    "LLMError",
    "LLMRateLimitError",
    "LLMRequestError",
    "LLMResponseError",
    "LLMSDKMissingError",
    "LLMServerError",
    "LLMTimeoutError",
    "LLMToolRoundsError",
    "MCPSessionError",
    "MalformedChatHistoryError",
    "MessageSerializationError",
    "MessageTypeError",
    "MiniAgentsError",
    "NoActiveContextError",
    "NoRunningLoopError",
    "RayAgentError",
    "RayWorkerDiedError",
    "RemoteError",
    "RemoteTraceback",
    "ReplayWindowError",
    "SentinelMisuseError",
    "StreamCancelledError",
    "StreamOverflowError",
    "StreamSourceError",
    "ToolCallError",
    "ToolDefinitionError",
    "ToolError",
    "ToolNameConflictError",
    "TornChatHistoryError",
    "VirtualTimeError",
]
