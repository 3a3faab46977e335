"""Every error MiniAgents raises, under one root.

The hierarchy (each layer's errors are defined in its own ``errors`` module, named on the
right for the extensions)::

    MiniAgentsError
    ├── SentinelMisuseError (also TypeError)      a sentinel was used as a boolean
    ├── FrozenInstanceError (also TypeError)      a frozen container was mutated
    ├── FrozenFieldError (also TypeError)         a Frozen model declares a mutable field type
    ├── HashKeyError (also TypeError)             a value that hash_key cannot encode
    ├── StreamArgumentError (also TypeError)      a promise or stream given clashing arguments
    ├── StreamSourceError (also TypeError)        a stream's source is not an async iterable
    ├── StreamPicklingError (also TypeError)      a promise or stream pickled (not its value)
    ├── StreamLimitError (also ValueError)        a window or mark below 1, an unknown overflow
    ├── NoRunningLoopError (also RuntimeError)    a stream needing a task started outside asyncio
    ├── StreamLoopError (also RuntimeError)       a stream read in another loop than its own
    ├── IncompleteStreamError (also RuntimeError) str() of a stream that is still streaming
    ├── ReplayWindowError (also RuntimeError)     a piece needed was released past the window
    ├── StreamOverflowError (also RuntimeError)   a hot source outran consumers (policy "error")
    ├── StreamCancelledError                      the stream's producer was cancelled
    ├── DeadlockError (also RuntimeError)         every task waits on the library's streams
    ├── MessageTypeError (also TypeError)         not a MessageType where messages were expected
    ├── AppenderClosedError (also RuntimeError)   appending to a stream that has ended
    ├── ImagePartError (also ValueError)          an ImagePart without one source, or unknown bytes
    ├── AgentDefinitionError (also TypeError)     @miniagent on something not an agent function
    ├── AgentArgumentError (also TypeError)       an unknown, missing or extra agent argument
    │   └── MissingAgentArgumentError (also ValueError)  an agent run without one it needs
    ├── ConcurrencyLimitError (also ValueError)   a max_concurrency that is not a positive int
    ├── NoActiveContextError (also RuntimeError)  an agent used outside a MiniAgents context
    ├── ContextArgumentError (also TypeError)     MiniAgents() or run() given what it cannot use
    ├── ContextReenteredError (also RuntimeError) a MiniAgents context entered while active
    ├── LoopAlreadyRunningError (also RuntimeError)  MiniAgents().run() in a running loop
    ├── AgentFinishedError (also RuntimeError)    a reply (or input) after the interaction ended
    ├── ChainDefinitionError (also ValueError)    a loop given agents it cannot run
    ├── OperatorArgumentError (also ValueError)   an operator given an argument it cannot use
    ├── PipelineArgumentError (also ValueError)   pipeline(), map_agent() given bad arguments
    ├── PipelineRerunError (also RuntimeError)    a Pipeline run a second time
    ├── PipelineTimeoutError (also TimeoutError)  an item took longer than pipeline's timeout
    ├── ProgressBarMissingError (also ImportError)  progress=True without tqdm installed
    ├── DurablePipelineUnavailableError (also ImportError)  pipeline(durable=...) without ext.dbos
    ├── ChatHistoryError                          a chat history cannot be read or written
    │   ├── ChatHistoryOptionError (also ValueError)     an option the history does not take
    │   └── MalformedChatHistoryError (also ValueError)  not a chat history (file, line named)
    │       └── TornChatHistoryError                 its last section was cut short by a crash
    ├── InputEndedError (also EOFError)           the user ended the console input (ext.errors)
    ├── MissingExtraError (also ImportError)      an optional dependency is not installed
    ├── WebChatPageError (also FileNotFoundError)  web_chat_app given a page that is no file
    ├── WebConfigurationError (also ValueError)   a web app's options cannot work together
    ├── ToolError                                 a tool (miniagents.ext.tools, miniagents.ext.mcp)
    │   ├── ToolDefinitionError (also TypeError)     not usable as a tool (no annotation, ...)
    │   ├── ToolNameConflictError (also ValueError)  two tools of one list have the same name
    │   ├── ToolCallError                           raised by a tool: its message is the result
    │   ├── ToolApprovalError (also RuntimeError)   a decision on a request that is not pending
    │   └── MCPSessionError                         an MCP server unreachable, or session closed
    ├── MessageSerializationError (also TypeError)  a value that cannot be pickled for Ray
    ├── RemoteTraceback                           where a Ray worker raised an error (its cause)
    ├── RayAgentError                             running an agent on Ray failed (ext.ray.errors)
    │   ├── RayAgentArgumentError (also ValueError)  ray_agent given a non-agent or a bad option
    │   ├── RayWorkerDiedError                      the worker (or node) died mid-interaction
    │   ├── RayCancelTimeoutError (also TimeoutError)  stopping a remote interaction hung
    │   └── RemoteError                             a worker's error that cannot travel as itself
    ├── RayPipelineArgumentError (also ValueError)  ray_pipeline given arguments it cannot use
    ├── RayPipelineRerunError (also RuntimeError)   a RayPipeline run a second time
    ├── RayPipelineLinkError (also RuntimeError)    run where a budget (a live link) applies
    ├── A2AError                                  an A2A hop failed (ext.a2a.errors)
    │   ├── A2AConfigurationError (also ValueError)  a2a_app or a2a_agent given unusable options
    │   ├── A2ACardError (also ValueError)          a remote's card cannot be fetched or used
    │   ├── A2AConnectionError (also ConnectionError)  unreachable, or a stream broke for good
    │   ├── A2AHTTPError                            the remote answered an HTTP error (401, 503)
    │   ├── A2AProtocolError                        the remote's answers break the protocol
    │   ├── A2AReplyTooLargeError                   the remote sent more than a2a_agent takes
    │   ├── A2ARemoteError                          the remote answered a JSON-RPC error
    │   │   ├── A2AInvalidRequestError (also ValueError)  it refused the request as invalid
    │   │   ├── A2ATaskNotFoundError (also LookupError)   no such task there (or another's)
    │   │   └── A2AUnsupportedOperationError          it does not do what was asked
    │   ├── A2ATaskFailedError                      the remote task failed or was rejected
    │   │   └── A2ATaskCanceledError                  it was cancelled there
    │   └── A2AInputRequiredError                   it asks for input the caller cannot give
    ├── DurableError                              a durable run on DBOS (ext.dbos.errors)
    │   ├── DurableDatabaseError (also ConnectionError)  its database unreachable, locked, corrupt
    │   ├── DurableConfigurationError (also ValueError)  two database URLs, aliases clash
    │   ├── DurableRecordError (also TypeError)     a field or argument that cannot be recorded
    │   ├── DurableVersionError (also RuntimeError)  started by other code (app version)
    │   ├── DurableFailedCallError (also RuntimeError)  a model call's error that cannot be recorded
    │   └── DurableApprovalError (also LookupError)  a decision for a call that does not wait
    ├── EvalsError                                an eval (miniagents.evals.errors)
    │   ├── DatasetError (also ValueError)          a dataset or case that is not valid (named)
    │   ├── EvaluatorDefinitionError (also ValueError)  an evaluator that cannot work as given
    │   ├── EvalArgumentError (also ValueError)     aevaluate(), compare() given bad arguments
    │   ├── CaseTimeoutError (also TimeoutError)    a case's agent took longer than the timeout
    │   ├── EvalReportError (also ValueError)       a stored report (JSON) that cannot be read
    │   └── EvalThresholdError (also AssertionError)  a score below its threshold, or regressed
    └── LLMError                                  an LLM call failed (miniagents.ext.llm.errors)
        ├── LLMConfigurationError (also ValueError)  e.g. no model was given
        ├── LLMSDKMissingError (also ImportError)   the provider's SDK is not installed
        ├── LLMRateLimitError                       429, after the SDK's own retries
        ├── LLMServerError                          5xx / overloaded, after the SDK's retries
        ├── LLMConnectionError (also ConnectionError)  no connection, or it broke mid-stream
        │   └── LLMTimeoutError (also TimeoutError)  timed out, or the reply stalled
        ├── LLMAuthenticationError                  a missing or refused API key
        ├── LLMRequestError                         any other 4xx: the request was refused
        ├── LLMResponseError                        a malformed, incomplete or failed stream
        ├── LLMToolRoundsError                      the model kept calling tools: max_tool_rounds
        ├── LLMOutputValidationError                a structured answer that did not validate
        ├── LLMRefusalError                         the model refused to answer (not retried)
        ├── LLMBatchError                           a batched request did not run (expired, ...)
        ├── LLMCacheMissError (also LookupError)    a replay-only call cache had no recording
        ├── BudgetExceededError                     a Budget's limit reached: the call not made
        └── RealtimeError                           a realtime session failed (ext.realtime.errors)
            ├── RealtimeConnectionError (also ConnectionError)  no connection, or it dropped
            ├── RealtimeServerError                   the API ended the session with an error
            └── RealtimeInputError (also TypeError)   an input piece the session cannot send

Errors raised by a stream's producer or an agent (your code, an SDK) are not wrapped:
they reach every consumer with their own type. Assigning a field of a ``Frozen`` model raises
pydantic's ``ValidationError``, as for any frozen pydantic model.

Importing this module does not import the extensions (``miniagents.ext``) nor the evals
(``miniagents.evals``): their errors are imported at their first use from here. The testing
kit's errors are not MiniAgents' errors: they have their own root, ``TestingKitError``, in
:mod:`miniagents.testing.errors`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from miniagents.frozen.errors import FrozenFieldError as FrozenFieldError
from miniagents.frozen.errors import FrozenInstanceError as FrozenInstanceError
from miniagents.frozen.errors import HashKeyError as HashKeyError
from miniagents.messages.errors import AppenderClosedError as AppenderClosedError
from miniagents.messages.errors import ImagePartError as ImagePartError
from miniagents.messages.errors import MessageTypeError as MessageTypeError
from miniagents.miniagents.errors import AgentArgumentError as AgentArgumentError
from miniagents.miniagents.errors import AgentDefinitionError as AgentDefinitionError
from miniagents.miniagents.errors import AgentFinishedError as AgentFinishedError
from miniagents.miniagents.errors import ConcurrencyLimitError as ConcurrencyLimitError
from miniagents.miniagents.errors import ContextArgumentError as ContextArgumentError
from miniagents.miniagents.errors import ContextReenteredError as ContextReenteredError
from miniagents.miniagents.errors import LoopAlreadyRunningError as LoopAlreadyRunningError
from miniagents.miniagents.errors import MissingAgentArgumentError as MissingAgentArgumentError
from miniagents.miniagents.errors import NoActiveContextError as NoActiveContextError
from miniagents.operators.errors import OperatorArgumentError as OperatorArgumentError
from miniagents.pipeline.errors import (
    DurablePipelineUnavailableError as DurablePipelineUnavailableError,
)
from miniagents.pipeline.errors import PipelineArgumentError as PipelineArgumentError
from miniagents.pipeline.errors import PipelineRerunError as PipelineRerunError
from miniagents.pipeline.errors import PipelineTimeoutError as PipelineTimeoutError
from miniagents.pipeline.errors import ProgressBarMissingError as ProgressBarMissingError
from miniagents.promising.errors import DeadlockError as DeadlockError
from miniagents.promising.errors import IncompleteStreamError as IncompleteStreamError
from miniagents.promising.errors import NoRunningLoopError as NoRunningLoopError
from miniagents.promising.errors import ReplayWindowError as ReplayWindowError
from miniagents.promising.errors import SentinelMisuseError as SentinelMisuseError
from miniagents.promising.errors import StreamArgumentError as StreamArgumentError
from miniagents.promising.errors import StreamCancelledError as StreamCancelledError
from miniagents.promising.errors import StreamLimitError as StreamLimitError
from miniagents.promising.errors import StreamLoopError as StreamLoopError
from miniagents.promising.errors import StreamOverflowError as StreamOverflowError
from miniagents.promising.errors import StreamPicklingError as StreamPicklingError
from miniagents.promising.errors import StreamSourceError as StreamSourceError
from miniagents.root_error import MiniAgentsError as MiniAgentsError
from miniagents.utils.errors import ChainDefinitionError as ChainDefinitionError

if TYPE_CHECKING:  # imported lazily at run time: see _LAZY
    from miniagents.evals.errors import CaseTimeoutError as CaseTimeoutError
    from miniagents.evals.errors import DatasetError as DatasetError
    from miniagents.evals.errors import EvalArgumentError as EvalArgumentError
    from miniagents.evals.errors import EvalReportError as EvalReportError
    from miniagents.evals.errors import EvalsError as EvalsError
    from miniagents.evals.errors import EvalThresholdError as EvalThresholdError
    from miniagents.evals.errors import EvaluatorDefinitionError as EvaluatorDefinitionError
    from miniagents.ext.a2a.errors import A2ACardError as A2ACardError
    from miniagents.ext.a2a.errors import A2AConfigurationError as A2AConfigurationError
    from miniagents.ext.a2a.errors import A2AConnectionError as A2AConnectionError
    from miniagents.ext.a2a.errors import A2AError as A2AError
    from miniagents.ext.a2a.errors import A2AHTTPError as A2AHTTPError
    from miniagents.ext.a2a.errors import A2AInputRequiredError as A2AInputRequiredError
    from miniagents.ext.a2a.errors import A2AInvalidRequestError as A2AInvalidRequestError
    from miniagents.ext.a2a.errors import A2AProtocolError as A2AProtocolError
    from miniagents.ext.a2a.errors import A2ARemoteError as A2ARemoteError
    from miniagents.ext.a2a.errors import A2AReplyTooLargeError as A2AReplyTooLargeError
    from miniagents.ext.a2a.errors import A2ATaskCanceledError as A2ATaskCanceledError
    from miniagents.ext.a2a.errors import A2ATaskFailedError as A2ATaskFailedError
    from miniagents.ext.a2a.errors import A2ATaskNotFoundError as A2ATaskNotFoundError
    from miniagents.ext.a2a.errors import (
        A2AUnsupportedOperationError as A2AUnsupportedOperationError,
    )
    from miniagents.ext.dbos.errors import DurableApprovalError as DurableApprovalError
    from miniagents.ext.dbos.errors import DurableConfigurationError as DurableConfigurationError
    from miniagents.ext.dbos.errors import DurableDatabaseError as DurableDatabaseError
    from miniagents.ext.dbos.errors import DurableError as DurableError
    from miniagents.ext.dbos.errors import DurableFailedCallError as DurableFailedCallError
    from miniagents.ext.dbos.errors import DurableRecordError as DurableRecordError
    from miniagents.ext.dbos.errors import DurableVersionError as DurableVersionError
    from miniagents.ext.errors import InputEndedError as InputEndedError
    from miniagents.ext.errors import MissingExtraError as MissingExtraError
    from miniagents.ext.errors import WebChatPageError as WebChatPageError
    from miniagents.ext.errors import WebConfigurationError as WebConfigurationError
    from miniagents.ext.history.errors import ChatHistoryError as ChatHistoryError
    from miniagents.ext.history.errors import ChatHistoryOptionError as ChatHistoryOptionError
    from miniagents.ext.history.errors import MalformedChatHistoryError as MalformedChatHistoryError
    from miniagents.ext.history.errors import TornChatHistoryError as TornChatHistoryError
    from miniagents.ext.llm.errors import BudgetExceededError as BudgetExceededError
    from miniagents.ext.llm.errors import LLMAuthenticationError as LLMAuthenticationError
    from miniagents.ext.llm.errors import LLMBatchError as LLMBatchError
    from miniagents.ext.llm.errors import LLMCacheMissError as LLMCacheMissError
    from miniagents.ext.llm.errors import LLMConfigurationError as LLMConfigurationError
    from miniagents.ext.llm.errors import LLMConnectionError as LLMConnectionError
    from miniagents.ext.llm.errors import LLMError as LLMError
    from miniagents.ext.llm.errors import LLMOutputValidationError as LLMOutputValidationError
    from miniagents.ext.llm.errors import LLMRateLimitError as LLMRateLimitError
    from miniagents.ext.llm.errors import LLMRefusalError as LLMRefusalError
    from miniagents.ext.llm.errors import LLMRequestError as LLMRequestError
    from miniagents.ext.llm.errors import LLMResponseError as LLMResponseError
    from miniagents.ext.llm.errors import LLMSDKMissingError as LLMSDKMissingError
    from miniagents.ext.llm.errors import LLMServerError as LLMServerError
    from miniagents.ext.llm.errors import LLMTimeoutError as LLMTimeoutError
    from miniagents.ext.llm.errors import LLMToolRoundsError as LLMToolRoundsError
    from miniagents.ext.mcp.errors import MCPSessionError as MCPSessionError
    from miniagents.ext.ray.errors import MessageSerializationError as MessageSerializationError
    from miniagents.ext.ray.errors import RayAgentArgumentError as RayAgentArgumentError
    from miniagents.ext.ray.errors import RayAgentError as RayAgentError
    from miniagents.ext.ray.errors import RayCancelTimeoutError as RayCancelTimeoutError
    from miniagents.ext.ray.errors import RayPipelineArgumentError as RayPipelineArgumentError
    from miniagents.ext.ray.errors import RayPipelineLinkError as RayPipelineLinkError
    from miniagents.ext.ray.errors import RayPipelineRerunError as RayPipelineRerunError
    from miniagents.ext.ray.errors import RayWorkerDiedError as RayWorkerDiedError
    from miniagents.ext.ray.errors import RemoteError as RemoteError
    from miniagents.ext.ray.errors import RemoteTraceback as RemoteTraceback
    from miniagents.ext.realtime.errors import RealtimeConnectionError as RealtimeConnectionError
    from miniagents.ext.realtime.errors import RealtimeError as RealtimeError
    from miniagents.ext.realtime.errors import RealtimeInputError as RealtimeInputError
    from miniagents.ext.realtime.errors import RealtimeServerError as RealtimeServerError
    from miniagents.ext.tools.errors import ToolApprovalError as ToolApprovalError
    from miniagents.ext.tools.errors import ToolCallError as ToolCallError
    from miniagents.ext.tools.errors import ToolDefinitionError as ToolDefinitionError
    from miniagents.ext.tools.errors import ToolError as ToolError
    from miniagents.ext.tools.errors import ToolNameConflictError as ToolNameConflictError

_LAZY: dict[str, str] = {
    **dict.fromkeys(
        [
            "A2ACardError",
            "A2AConfigurationError",
            "A2AConnectionError",
            "A2AError",
            "A2AHTTPError",
            "A2AInputRequiredError",
            "A2AInvalidRequestError",
            "A2AProtocolError",
            "A2ARemoteError",
            "A2AReplyTooLargeError",
            "A2ATaskCanceledError",
            "A2ATaskFailedError",
            "A2ATaskNotFoundError",
            "A2AUnsupportedOperationError",
        ],
        "miniagents.ext.a2a.errors",
    ),
    **dict.fromkeys(
        [
            "ChatHistoryError",
            "ChatHistoryOptionError",
            "MalformedChatHistoryError",
            "TornChatHistoryError",
        ],
        "miniagents.ext.history.errors",
    ),
    **dict.fromkeys(
        ["InputEndedError", "MissingExtraError", "WebChatPageError", "WebConfigurationError"],
        "miniagents.ext.errors",
    ),
    **dict.fromkeys(
        [
            "BudgetExceededError",
            "LLMAuthenticationError",
            "LLMBatchError",
            "LLMCacheMissError",
            "LLMConfigurationError",
            "LLMConnectionError",
            "LLMError",
            "LLMOutputValidationError",
            "LLMRateLimitError",
            "LLMRefusalError",
            "LLMRequestError",
            "LLMResponseError",
            "LLMSDKMissingError",
            "LLMServerError",
            "LLMTimeoutError",
            "LLMToolRoundsError",
        ],
        "miniagents.ext.llm.errors",
    ),
    "MCPSessionError": "miniagents.ext.mcp.errors",
    **dict.fromkeys(
        [
            "RealtimeConnectionError",
            "RealtimeError",
            "RealtimeInputError",
            "RealtimeServerError",
        ],
        "miniagents.ext.realtime.errors",
    ),
    **dict.fromkeys(
        [
            "MessageSerializationError",
            "RayAgentArgumentError",
            "RayAgentError",
            "RayCancelTimeoutError",
            "RayPipelineArgumentError",
            "RayPipelineLinkError",
            "RayPipelineRerunError",
            "RayWorkerDiedError",
            "RemoteError",
            "RemoteTraceback",
        ],
        "miniagents.ext.ray.errors",
    ),
    **dict.fromkeys(
        [
            "DurableApprovalError",
            "DurableConfigurationError",
            "DurableDatabaseError",
            "DurableError",
            "DurableFailedCallError",
            "DurableRecordError",
            "DurableVersionError",
        ],
        "miniagents.ext.dbos.errors",
    ),
    **dict.fromkeys(
        [
            "ToolApprovalError",
            "ToolCallError",
            "ToolDefinitionError",
            "ToolError",
            "ToolNameConflictError",
        ],
        "miniagents.ext.tools.errors",
    ),
    **dict.fromkeys(
        [
            "CaseTimeoutError",
            "DatasetError",
            "EvalArgumentError",
            "EvalReportError",
            "EvalThresholdError",
            "EvalsError",
            "EvaluatorDefinitionError",
        ],
        "miniagents.evals.errors",
    ),
}
"""The errors of the extensions and of the evals, by the module that defines each."""

if not TYPE_CHECKING:  # mypy sees the imports above, and no catch-all attribute

    def __getattr__(name: str) -> type[MiniAgentsError]:
        """Import an extension's error at its first use (``import miniagents`` stays light)."""
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        error: type[MiniAgentsError] = getattr(importlib.import_module(module), name)
        globals()[name] = error  # found directly from now on
        return error

    def __dir__() -> list[str]:
        """Every name of the module, the lazily imported errors included."""
        return sorted({*globals(), *_LAZY})


__all__ = [
    "A2ACardError",
    "A2AConfigurationError",
    "A2AConnectionError",
    "A2AError",
    "A2AHTTPError",
    "A2AInputRequiredError",
    "A2AInvalidRequestError",
    "A2AProtocolError",
    "A2ARemoteError",
    "A2AReplyTooLargeError",
    "A2ATaskCanceledError",
    "A2ATaskFailedError",
    "A2ATaskNotFoundError",
    "A2AUnsupportedOperationError",
    "AgentArgumentError",
    "AgentDefinitionError",
    "AgentFinishedError",
    "AppenderClosedError",
    "ChainDefinitionError",
    "ConcurrencyLimitError",
    "ContextArgumentError",
    "ContextReenteredError",
    "FrozenFieldError",
    "FrozenInstanceError",
    "HashKeyError",
    "ImagePartError",
    "IncompleteStreamError",
    "LoopAlreadyRunningError",
    "MessageTypeError",
    "MiniAgentsError",
    "MissingAgentArgumentError",
    "NoActiveContextError",
    "NoRunningLoopError",
    "OperatorArgumentError",
    "DeadlockError",
    "DurablePipelineUnavailableError",
    "PipelineArgumentError",
    "PipelineRerunError",
    "PipelineTimeoutError",
    "ProgressBarMissingError",
    "ReplayWindowError",
    "SentinelMisuseError",
    "StreamArgumentError",
    "StreamCancelledError",
    "StreamLimitError",
    "StreamLoopError",
    "StreamOverflowError",
    "StreamPicklingError",
    "StreamSourceError",
    *_LAZY,  # the extensions' and the evals' errors
]
