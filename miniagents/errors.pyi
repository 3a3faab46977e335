# Made from the table of miniagents.errors (Reexports.stub): do not edit.

from miniagents.evals.errors import CaseTimeoutError as CaseTimeoutError
from miniagents.evals.errors import DatasetError as DatasetError
from miniagents.evals.errors import EvalArgumentError as EvalArgumentError
from miniagents.evals.errors import EvalReportError as EvalReportError
from miniagents.evals.errors import EvalsError as EvalsError
from miniagents.evals.errors import EvalThresholdError as EvalThresholdError
from miniagents.evals.errors import EvaluatorDefinitionError as EvaluatorDefinitionError
from miniagents.evals.errors import EvaluatorTimeoutError as EvaluatorTimeoutError
from miniagents.ext.a2a.errors import A2ACardError as A2ACardError
from miniagents.ext.a2a.errors import A2ACardOriginError as A2ACardOriginError
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
from miniagents.ext.a2a.errors import A2ATaskRejectedError as A2ATaskRejectedError
from miniagents.ext.a2a.errors import A2AUnsupportedOperationError as A2AUnsupportedOperationError
from miniagents.ext.dbos.errors import DurableApprovalError as DurableApprovalError
from miniagents.ext.dbos.errors import DurableConfigurationError as DurableConfigurationError
from miniagents.ext.dbos.errors import DurableDatabaseError as DurableDatabaseError
from miniagents.ext.dbos.errors import DurableDataError as DurableDataError
from miniagents.ext.dbos.errors import DurableError as DurableError
from miniagents.ext.dbos.errors import DurableFailedCallError as DurableFailedCallError
from miniagents.ext.dbos.errors import DurableRecordError as DurableRecordError
from miniagents.ext.dbos.errors import DurableRunCancelledError as DurableRunCancelledError
from miniagents.ext.dbos.errors import DurableRunStoppedError as DurableRunStoppedError
from miniagents.ext.dbos.errors import DurableVersionError as DurableVersionError
from miniagents.ext.errors import FileOutputError as FileOutputError
from miniagents.ext.errors import InputEndedError as InputEndedError
from miniagents.ext.errors import InputRequestError as InputRequestError
from miniagents.ext.errors import MissingExtraError as MissingExtraError
from miniagents.ext.errors import WebChatPageError as WebChatPageError
from miniagents.ext.errors import WebConfigurationError as WebConfigurationError
from miniagents.ext.errors import WebRunTooLargeError as WebRunTooLargeError
from miniagents.ext.errors import WebServerStoppedError as WebServerStoppedError
from miniagents.ext.history.errors import ChatHistoryError as ChatHistoryError
from miniagents.ext.history.errors import ChatHistoryOptionError as ChatHistoryOptionError
from miniagents.ext.history.errors import MalformedChatHistoryError as MalformedChatHistoryError
from miniagents.ext.history.errors import TornChatHistoryError as TornChatHistoryError
from miniagents.ext.llm.errors import BudgetExceededError as BudgetExceededError
from miniagents.ext.llm.errors import LLMAuthenticationError as LLMAuthenticationError
from miniagents.ext.llm.errors import LLMBatchError as LLMBatchError
from miniagents.ext.llm.errors import LLMCacheFileError as LLMCacheFileError
from miniagents.ext.llm.errors import LLMCacheLockedError as LLMCacheLockedError
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
from miniagents.ext.mcp.errors import MCPToolError as MCPToolError
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
from miniagents.ext.studio.errors import StudioConfigurationError as StudioConfigurationError
from miniagents.ext.studio.errors import StudioDamagedRunError as StudioDamagedRunError
from miniagents.ext.studio.errors import StudioError as StudioError
from miniagents.ext.studio.errors import StudioForkError as StudioForkError
from miniagents.ext.studio.errors import StudioNotFoundError as StudioNotFoundError
from miniagents.ext.studio.errors import StudioRunTooLargeError as StudioRunTooLargeError
from miniagents.ext.studio.errors import StudioStoreError as StudioStoreError
from miniagents.ext.tools.errors import ToolApprovalError as ToolApprovalError
from miniagents.ext.tools.errors import ToolCallError as ToolCallError
from miniagents.ext.tools.errors import ToolDefinitionError as ToolDefinitionError
from miniagents.ext.tools.errors import ToolError as ToolError
from miniagents.ext.tools.errors import ToolNameConflictError as ToolNameConflictError
from miniagents.frozen.errors import FrozenFieldError as FrozenFieldError
from miniagents.frozen.errors import FrozenInstanceError as FrozenInstanceError
from miniagents.frozen.errors import HashKeyError as HashKeyError
from miniagents.messages.errors import AppenderClosedError as AppenderClosedError
from miniagents.messages.errors import ImagePartError as ImagePartError
from miniagents.messages.errors import MessageArgumentError as MessageArgumentError
from miniagents.messages.errors import MessageTupleFieldError as MessageTupleFieldError
from miniagents.messages.errors import MessageTypeError as MessageTypeError
from miniagents.messages.errors import SyncReadError as SyncReadError
from miniagents.messages.errors import UnresolvedMessageError as UnresolvedMessageError
from miniagents.miniagents.errors import AgentArgumentError as AgentArgumentError
from miniagents.miniagents.errors import AgentDefinitionError as AgentDefinitionError
from miniagents.miniagents.errors import AgentFinishedError as AgentFinishedError
from miniagents.miniagents.errors import ConcurrencyLimitError as ConcurrencyLimitError
from miniagents.miniagents.errors import ContextArgumentError as ContextArgumentError
from miniagents.miniagents.errors import ContextReenteredError as ContextReenteredError
from miniagents.miniagents.errors import LoopAlreadyRunningError as LoopAlreadyRunningError
from miniagents.miniagents.errors import MissingAgentArgumentError as MissingAgentArgumentError
from miniagents.miniagents.errors import NoActiveContextError as NoActiveContextError
from miniagents.miniagents.errors import NotAwaitableError as NotAwaitableError
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
from miniagents.root_error import ArgumentError as ArgumentError
from miniagents.root_error import MiniAgentsError as MiniAgentsError
from miniagents.utils.errors import ChainDefinitionError as ChainDefinitionError

__all__ = [
    "CaseTimeoutError", "DatasetError", "EvalArgumentError", "EvalReportError", "EvalsError",
    "EvalThresholdError", "EvaluatorDefinitionError", "EvaluatorTimeoutError",
    "A2ACardError", "A2ACardOriginError", "A2AConfigurationError", "A2AConnectionError", "A2AError",
    "A2AHTTPError", "A2AInputRequiredError", "A2AInvalidRequestError", "A2AProtocolError",
    "A2ARemoteError", "A2AReplyTooLargeError", "A2ATaskCanceledError", "A2ATaskFailedError",
    "A2ATaskNotFoundError", "A2ATaskRejectedError", "A2AUnsupportedOperationError",
    "DurableApprovalError", "DurableConfigurationError", "DurableDatabaseError", "DurableDataError",
    "DurableError", "DurableFailedCallError", "DurableRecordError", "DurableRunCancelledError",
    "DurableRunStoppedError", "DurableVersionError",
    "FileOutputError", "InputEndedError", "InputRequestError", "MissingExtraError",
    "WebChatPageError", "WebConfigurationError", "WebRunTooLargeError", "WebServerStoppedError",
    "ChatHistoryError", "ChatHistoryOptionError", "MalformedChatHistoryError",
    "TornChatHistoryError",
    "BudgetExceededError", "LLMAuthenticationError", "LLMBatchError", "LLMCacheFileError",
    "LLMCacheLockedError", "LLMCacheMissError", "LLMConfigurationError", "LLMConnectionError",
    "LLMError", "LLMOutputValidationError", "LLMRateLimitError", "LLMRefusalError",
    "LLMRequestError", "LLMResponseError", "LLMSDKMissingError", "LLMServerError",
    "LLMTimeoutError", "LLMToolRoundsError",
    "MCPSessionError", "MCPToolError",
    "MessageSerializationError", "RayAgentArgumentError", "RayAgentError", "RayCancelTimeoutError",
    "RayPipelineArgumentError", "RayPipelineLinkError", "RayPipelineRerunError",
    "RayWorkerDiedError", "RemoteError", "RemoteTraceback",
    "RealtimeConnectionError", "RealtimeError", "RealtimeInputError", "RealtimeServerError",
    "StudioConfigurationError", "StudioDamagedRunError", "StudioError", "StudioForkError",
    "StudioNotFoundError", "StudioRunTooLargeError", "StudioStoreError",
    "ToolApprovalError", "ToolCallError", "ToolDefinitionError", "ToolError",
    "ToolNameConflictError",
    "FrozenFieldError", "FrozenInstanceError", "HashKeyError",
    "AppenderClosedError", "ImagePartError", "MessageArgumentError", "MessageTupleFieldError",
    "MessageTypeError", "SyncReadError", "UnresolvedMessageError",
    "AgentArgumentError", "AgentDefinitionError", "AgentFinishedError", "ConcurrencyLimitError",
    "ContextArgumentError", "ContextReenteredError", "LoopAlreadyRunningError",
    "MissingAgentArgumentError", "NoActiveContextError", "NotAwaitableError",
    "OperatorArgumentError",
    "DurablePipelineUnavailableError", "PipelineArgumentError", "PipelineRerunError",
    "PipelineTimeoutError", "ProgressBarMissingError",
    "DeadlockError", "IncompleteStreamError", "NoRunningLoopError", "ReplayWindowError",
    "SentinelMisuseError", "StreamArgumentError", "StreamCancelledError", "StreamLimitError",
    "StreamLoopError", "StreamOverflowError", "StreamPicklingError", "StreamSourceError",
    "ArgumentError", "MiniAgentsError",
    "ChainDefinitionError",
]
