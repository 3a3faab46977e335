"""Every error MiniAgents raises, under one root.

The hierarchy (each layer's errors are defined in its own ``errors`` module, named on the
right for the extensions)::

    MiniAgentsError
    ├── ArgumentError (also ValueError)           an argument of the wrong type or out of range
    │   ├── StreamLimitError                      a window or mark below 1, an unknown overflow
    │   ├── ConcurrencyLimitError                 a max_concurrency that is not a positive int
    │   ├── ContextArgumentError (also TypeError)  MiniAgents() or run() given what it cannot use
    │   ├── MessageArgumentError (also TypeError)  Message("hi"): a field given positionally
    │   ├── OperatorArgumentError                 an operator given an argument it cannot use
    │   ├── PipelineArgumentError                 pipeline(), map_agent() given bad arguments
    │   ├── RayPipelineArgumentError              ray_pipeline given arguments it cannot use
    │   └── WebConfigurationError                 a web app's options cannot work together
    ├── SentinelMisuseError (also TypeError)      a sentinel was used as a boolean
    ├── FrozenInstanceError (also TypeError)      a frozen container was mutated
    ├── FrozenFieldError (also TypeError)         a Frozen model declares a mutable field type
    ├── HashKeyError (also TypeError)             a value that hash_key cannot encode
    ├── StreamArgumentError (also TypeError)      a promise or stream given clashing arguments
    ├── StreamSourceError (also TypeError)        a stream's source is not an async iterable
    ├── StreamPicklingError (also TypeError)      a promise or stream pickled (not its value)
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
    ├── UnresolvedMessageError (also AttributeError)  a message's field read from a promise
    ├── SyncReadError (also TypeError)            a message stream read with for, not async for
    ├── MessageTupleFieldError (also AttributeError)  a message's field read from their tuple
    ├── AgentDefinitionError (also TypeError)     @miniagent on something not an agent function
    ├── AgentArgumentError (also TypeError)       an unknown, missing or extra agent argument
    │   └── MissingAgentArgumentError (also ValueError)  an agent run without one it needs
    ├── NoActiveContextError (also RuntimeError)  an agent used outside a MiniAgents context
    ├── ContextReenteredError (also RuntimeError) a MiniAgents context entered while active
    ├── LoopAlreadyRunningError (also RuntimeError)  run(), or a pipeline's for, in a loop
    ├── AgentFinishedError (also RuntimeError)    a reply (or input) after the interaction ended
    ├── NotAwaitableError (also TypeError)        await ctx.reply(...), which returns nothing
    ├── ChainDefinitionError (also ValueError)    a loop given agents it cannot run
    ├── PipelineRerunError (also RuntimeError)    a Pipeline run a second time
    ├── PipelineTimeoutError (also TimeoutError)  an item took longer than pipeline's timeout
    ├── ProgressBarMissingError (also ImportError)  progress=True without tqdm installed
    ├── DurablePipelineUnavailableError (also ImportError)  pipeline(durable=...) without ext.dbos
    ├── ChatHistoryError                          a chat history cannot be read or written
    │   ├── ChatHistoryOptionError (also ArgumentError)  an option the history does not take
    │   └── MalformedChatHistoryError (also ValueError)  not a chat history (file, line named)
    │       └── TornChatHistoryError                 its last section was cut short by a crash
    ├── FileOutputError (also OSError)            file_output_agent cannot open or write its file
    ├── InputEndedError (also EOFError)           the user ended the console input (ext.errors)
    ├── InputRequestError (also RuntimeError)     an input request not pending, or withdrawn
    ├── MissingExtraError (also ImportError)      an optional dependency is not installed
    ├── WebChatPageError (also FileNotFoundError)  web_chat_app given a page that is no file
    ├── WebRunTooLargeError (also RuntimeError)   a live web run cut at max_live_run_bytes
    ├── WebServerStoppedError (also RuntimeError)  a live web run's server stopped under its client
    ├── ToolError                                 a tool (miniagents.ext.tools, miniagents.ext.mcp)
    │   ├── ToolDefinitionError (also TypeError)     not usable as a tool (no annotation, ...)
    │   ├── ToolNameConflictError (also ValueError)  two tools of one list have the same name
    │   ├── ToolCallError                           raised by a tool: its message is the result
    │   │   └── MCPToolError                          an MCP server's error result (not our text)
    │   ├── ToolApprovalError (also RuntimeError)   a decision on a request that is not pending
    │   └── MCPSessionError                         an MCP server unreachable, or session closed
    ├── MessageSerializationError (also TypeError)  a value that cannot be pickled for Ray
    ├── RemoteTraceback                           where a Ray worker raised an error (its cause)
    ├── RayAgentError                             running an agent on Ray failed (ext.ray.errors)
    │   ├── RayAgentArgumentError (also ArgumentError)  ray_agent given a non-agent or a bad option
    │   ├── RayWorkerDiedError                      the worker (or node) died mid-interaction
    │   ├── RayCancelTimeoutError (also TimeoutError)  stopping a remote interaction hung
    │   └── RemoteError                             a worker's error that cannot travel as itself
    ├── RayPipelineRerunError (also RuntimeError)   a RayPipeline run a second time
    ├── RayPipelineLinkError (also RuntimeError)    run where a budget (a live link) applies
    ├── A2AError                                  an A2A hop failed (ext.a2a.errors)
    │   ├── A2AConfigurationError (also ArgumentError)  a2a_app or a2a_agent given unusable options
    │   ├── A2ACardError (also ValueError)          a remote's card cannot be fetched or used
    │   │   └── A2ACardOriginError                    its interface is where headers do not go
    │   ├── A2AConnectionError (also ConnectionError)  unreachable, or a stream broke for good
    │   ├── A2AHTTPError                            the remote answered an HTTP error (401, 503)
    │   ├── A2AProtocolError                        the remote's answers break the protocol
    │   ├── A2AReplyTooLargeError                   the remote sent more than a2a_agent takes
    │   ├── A2ARemoteError                          the remote answered a JSON-RPC error
    │   │   ├── A2AInvalidRequestError (also ValueError)  it refused the request as invalid
    │   │   ├── A2ATaskNotFoundError (also LookupError)   no such task there (or another's)
    │   │   └── A2AUnsupportedOperationError          it does not do what was asked
    │   ├── A2ATaskFailedError                      the remote task failed or was rejected
    │   │   ├── A2ATaskCanceledError                  it was cancelled there
    │   │   └── A2ATaskRejectedError                  rejected there (or by a served agent)
    │   └── A2AInputRequiredError                   it asks for input the caller cannot give
    ├── DurableError                              a durable run on DBOS (ext.dbos.errors)
    │   ├── DurableDatabaseError (also ConnectionError)  its database unreachable, locked, damaged
    │   ├── DurableDataError (also ValueError)      a value or constraint its database refused
    │   ├── DurableConfigurationError (also ValueError)  two database URLs, aliases clash
    │   ├── DurableRecordError (also TypeError)     a field or argument that cannot be recorded
    │   ├── DurableVersionError (also RuntimeError)  started by other code (app version)
    │   ├── DurableFailedCallError (also RuntimeError)  a model call's error that cannot be recorded
    │   ├── DurableRunStoppedError (also StreamCancelledError)  stopped here before its end
    │   ├── DurableRunCancelledError (also StreamCancelledError)  cancelled before its end
    │   └── DurableApprovalError (also LookupError)  a decision for a call that does not wait
    ├── StudioError                               recorded runs and forks (ext.studio.errors)
    │   ├── StudioStoreError (also OSError)         the store of runs cannot be opened or written
    │   │   └── StudioDamagedRunError               one run's record in it is damaged
    │   ├── StudioNotFoundError (also LookupError)  a run, or a call of one, that it does not hold
    │   ├── StudioRunTooLargeError (also ValueError)  more events than a reader is let read
    │   ├── StudioForkError (also ValueError)       a fork that cannot be made as asked
    │   └── StudioConfigurationError (also ArgumentError)  a recorder or studio given bad options
    ├── EvalsError                                an eval (miniagents.evals.errors)
    │   ├── DatasetError (also ValueError)          a dataset or case that is not valid (named)
    │   ├── EvaluatorDefinitionError (also ArgumentError)  an evaluator that cannot work as given
    │   ├── EvalArgumentError (also ArgumentError)  aevaluate(), compare() given bad arguments
    │   ├── CaseTimeoutError (also TimeoutError)    a case's agent took longer than the timeout
    │   ├── EvaluatorTimeoutError (also TimeoutError)  an evaluator took longer than its timeout
    │   ├── EvalReportError (also ValueError)       a stored report (JSON) that cannot be read
    │   └── EvalThresholdError (also AssertionError)  a score below its threshold, or regressed
    └── LLMError                                  an LLM call failed (miniagents.ext.llm.errors)
        ├── LLMConfigurationError (also ArgumentError)  e.g. no model was given
        ├── LLMSDKMissingError (also ImportError)   the provider's SDK is not installed
        ├── LLMRateLimitError                       429, after the SDK's own retries
        ├── LLMServerError                          5xx (not 504) / overloaded, after retries
        ├── LLMConnectionError (also ConnectionError)  no connection, or it broke mid-stream
        │   └── LLMTimeoutError (also TimeoutError)  timed out (408, 504), or stalled
        ├── LLMAuthenticationError                  a missing or refused API key
        ├── LLMRequestError                         any other 4xx: the request was refused
        ├── LLMResponseError                        a malformed, incomplete or failed stream
        ├── LLMToolRoundsError                      the model kept calling tools: max_tool_rounds
        ├── LLMOutputValidationError                a structured answer that did not validate
        ├── LLMRefusalError                         the model refused to answer (not retried)
        ├── LLMBatchError                           a batched request did not run (expired, ...)
        ├── LLMCacheFileError (also OSError)        a call cache's SQLite file that is not one
        │   └── LLMCacheLockedError                   ... or one locked past the store's timeout
        ├── LLMCacheMissError (also LookupError)    a replay-only call cache had no recording
        ├── BudgetExceededError                     a Budget's limit reached: the call not made
        └── RealtimeError                           a realtime session failed (ext.realtime.errors)
            ├── RealtimeConnectionError (also ConnectionError)  no connection, or it dropped
            ├── RealtimeServerError                   the API ended the session with an error
            └── RealtimeInputError (also TypeError)   an input piece the session cannot send

Errors raised by a stream's producer or an agent (your code, an SDK) are not wrapped:
they reach every consumer with their own type. Assigning a field of a ``Frozen`` model raises
pydantic's ``ValidationError``, as for any frozen pydantic model.

Importing this module imports none of the modules that define the errors: each error is
imported at its first use from here, so that naming an extension's error (``miniagents.ext``)
or an eval's (``miniagents.evals``) does not import the others. The testing
kit's errors are not MiniAgents' errors: they have their own root, ``TestingKitError``, in
:mod:`miniagents.testing.errors`.
"""

from __future__ import annotations

from miniagents.reexports import Reexports

_REEXPORTS = Reexports(
    __name__,
    {
        "miniagents.root_error": "ArgumentError MiniAgentsError",
        "miniagents.promising.errors": (
            "DeadlockError IncompleteStreamError NoRunningLoopError "
            "ReplayWindowError SentinelMisuseError StreamArgumentError "
            "StreamCancelledError StreamLimitError StreamLoopError "
            "StreamOverflowError StreamPicklingError StreamSourceError"
        ),
        "miniagents.frozen.errors": "FrozenFieldError FrozenInstanceError HashKeyError",
        "miniagents.messages.errors": (
            "AppenderClosedError ImagePartError MessageArgumentError MessageTupleFieldError "
            "MessageTypeError "
            "SyncReadError UnresolvedMessageError"
        ),
        "miniagents.miniagents.errors": (
            "AgentArgumentError AgentDefinitionError AgentFinishedError "
            "ConcurrencyLimitError ContextArgumentError ContextReenteredError "
            "LoopAlreadyRunningError MissingAgentArgumentError NoActiveContextError "
            "NotAwaitableError"
        ),
        "miniagents.utils.errors": "ChainDefinitionError",
        "miniagents.operators.errors": "OperatorArgumentError",
        "miniagents.pipeline.errors": (
            "DurablePipelineUnavailableError PipelineArgumentError "
            "PipelineRerunError PipelineTimeoutError ProgressBarMissingError"
        ),
        "miniagents.ext.errors": (
            "FileOutputError InputEndedError InputRequestError MissingExtraError "
            "WebChatPageError WebConfigurationError WebRunTooLargeError WebServerStoppedError"
        ),
        "miniagents.ext.history.errors": (
            "ChatHistoryError ChatHistoryOptionError MalformedChatHistoryError TornChatHistoryError"
        ),
        "miniagents.ext.tools.errors": (
            "ToolApprovalError ToolCallError ToolDefinitionError ToolError ToolNameConflictError"
        ),
        "miniagents.ext.mcp.errors": "MCPSessionError MCPToolError",
        "miniagents.ext.llm.errors": (
            "BudgetExceededError LLMAuthenticationError LLMBatchError LLMCacheFileError "
            "LLMCacheLockedError LLMCacheMissError LLMConfigurationError LLMConnectionError "
            "LLMError "
            "LLMOutputValidationError LLMRateLimitError LLMRefusalError "
            "LLMRequestError LLMResponseError LLMSDKMissingError LLMServerError "
            "LLMTimeoutError LLMToolRoundsError"
        ),
        "miniagents.ext.realtime.errors": (
            "RealtimeConnectionError RealtimeError RealtimeInputError RealtimeServerError"
        ),
        "miniagents.ext.ray.errors": (
            "MessageSerializationError RayAgentArgumentError RayAgentError "
            "RayCancelTimeoutError RayPipelineArgumentError RayPipelineLinkError "
            "RayPipelineRerunError RayWorkerDiedError RemoteError RemoteTraceback"
        ),
        "miniagents.ext.a2a.errors": (
            "A2ACardError A2ACardOriginError A2AConfigurationError A2AConnectionError A2AError "
            "A2AHTTPError A2AInputRequiredError A2AInvalidRequestError "
            "A2AProtocolError A2ARemoteError A2AReplyTooLargeError "
            "A2ATaskCanceledError A2ATaskFailedError A2ATaskNotFoundError A2ATaskRejectedError "
            "A2AUnsupportedOperationError"
        ),
        "miniagents.ext.dbos.errors": (
            "DurableApprovalError DurableConfigurationError DurableDatabaseError "
            "DurableDataError DurableError DurableFailedCallError DurableRecordError "
            "DurableRunCancelledError DurableRunStoppedError DurableVersionError"
        ),
        "miniagents.ext.studio.errors": (
            "StudioConfigurationError StudioDamagedRunError StudioError StudioForkError "
            "StudioNotFoundError StudioRunTooLargeError StudioStoreError"
        ),
        "miniagents.evals.errors": (
            "CaseTimeoutError DatasetError EvalArgumentError EvalReportError "
            "EvalThresholdError EvalsError EvaluatorDefinitionError EvaluatorTimeoutError"
        ),
    },
)
"""Every error, by the module that defines it (in the layers' order): each is imported at its
first use from here. Type checkers read ``errors.pyi``, made of this table."""

__all__ = _REEXPORTS.names
__getattr__ = _REEXPORTS.attribute
__dir__ = _REEXPORTS.dir
