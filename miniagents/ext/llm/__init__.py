"""LLM agents: OpenAI, Anthropic and an offline model, with one shared interface.

``openai_agent`` (:mod:`miniagents.ext.llm.openai`), ``anthropic_agent``
(:mod:`miniagents.ext.llm.anthropic`) and ``offline_agent``
(:mod:`miniagents.ext.llm.offline`) take the interaction's messages as the prompt and
reply with one ``AssistantMessage``, streamed token by token (user messages may carry
images: ``ImagePart``, re-exported here). Given ``tools=[...]``, they call the model in a
loop: the reply streams an ``LLMToolCallMessage`` per call and an ``LLMToolResultMessage``
per result (each round's calls run concurrently), then the answer. Every message of the
reply is an ``LLMMessage`` (``model``, ``agent_alias``, ...), and the agents' types say so:
``openai_agent`` is a ``MiniAgent[P, LLMReply[OpenAIMessage]]`` (an ``OpenAIAgent[P]``,
and, as every LLM agent, an ``AnyLLMAgent``: what a list of agents of different providers
is). Given ``output_type=``
(typed: ``structured(agent, Weather)``, from :mod:`miniagents.ext.llm.structured`), the
answer is a validated instance of it, its partial objects streaming meanwhile.
Each agent is made by :func:`make_llm_agent` from an options class (its exact parameters)
and a provider (:mod:`miniagents.ext.llm.provider`); so is yours. Importing this package
does not import any SDK.

The modules: ``provider`` (the provider interface), ``llm_agent`` (``make_llm_agent`` and
the tool loop), ``prompt`` (messages into a prompt), ``messages`` (the message classes),
``errors``, ``sdk_calls`` and ``sdk_errors`` (what the SDK-backed providers share),
``llm_logger``, ``from_env``, ``structured`` (structured output), ``usage`` (usage totals
and budgets: ``Budget``, ``usage_totals``), ``pricing`` (costs), ``fallback``
(``fallback_agent``: the next agent answers when one fails before its first token), one
module per provider (``openai``, ``anthropic``, ``gemini``, ``bedrock``, ``compatible``
for the OpenAI-compatible servers by name, ``offline``), ``offline_script`` (what the
offline model says), ``routing`` (the hook a call goes through to its provider), and the
packages ``batch`` (batch mode: a pipeline's calls through the providers' batch APIs) and
``cache`` (the call cache: recorded calls replayed at no cost).
"""

from miniagents.ext.llm.errors import BudgetExceededError as BudgetExceededError
from miniagents.ext.llm.errors import LLMError as LLMError
from miniagents.ext.llm.errors import LLMOutputValidationError as LLMOutputValidationError
from miniagents.ext.llm.errors import LLMRefusalError as LLMRefusalError
from miniagents.ext.llm.errors import LLMToolRoundsError as LLMToolRoundsError
from miniagents.ext.llm.fallback import FallbackAgent as FallbackAgent
from miniagents.ext.llm.fallback import fallback_agent as fallback_agent
from miniagents.ext.llm.fallback import is_provider_failure as is_provider_failure
from miniagents.ext.llm.llm_agent import AnyLLMAgent as AnyLLMAgent
from miniagents.ext.llm.llm_agent import ForkArguments as ForkArguments
from miniagents.ext.llm.llm_agent import LLMAgent as LLMAgent
from miniagents.ext.llm.llm_agent import LLMAgentOptions as LLMAgentOptions
from miniagents.ext.llm.llm_agent import TypedFork as TypedFork
from miniagents.ext.llm.llm_agent import make_llm_agent as make_llm_agent
from miniagents.ext.llm.messages import AssistantMessage as AssistantMessage
from miniagents.ext.llm.messages import LLMMessage as LLMMessage
from miniagents.ext.llm.messages import LLMReply as LLMReply
from miniagents.ext.llm.messages import LLMToolApprovalRequest as LLMToolApprovalRequest
from miniagents.ext.llm.messages import LLMToolCallMessage as LLMToolCallMessage
from miniagents.ext.llm.messages import LLMToolResultMessage as LLMToolResultMessage
from miniagents.ext.llm.messages import SystemMessage as SystemMessage
from miniagents.ext.llm.messages import TokenUsage as TokenUsage
from miniagents.ext.llm.messages import UserMessage as UserMessage
from miniagents.ext.llm.prompt import PromptItem as PromptItem
from miniagents.ext.llm.prompt import PromptText as PromptText
from miniagents.ext.llm.provider import DEFAULT_MAX_TOOL_CALLS as DEFAULT_MAX_TOOL_CALLS
from miniagents.ext.llm.provider import DEFAULT_MAX_TOOL_ROUNDS as DEFAULT_MAX_TOOL_ROUNDS
from miniagents.ext.llm.provider import AudioTokens as AudioTokens
from miniagents.ext.llm.provider import Finish as Finish
from miniagents.ext.llm.provider import LLMCall as LLMCall
from miniagents.ext.llm.provider import LLMEvent as LLMEvent
from miniagents.ext.llm.provider import LLMOptions as LLMOptions
from miniagents.ext.llm.provider import LLMProvider as LLMProvider
from miniagents.ext.llm.provider import OutputFormat as OutputFormat
from miniagents.ext.llm.provider import Refusal as Refusal
from miniagents.ext.llm.provider import ToolCallDelta as ToolCallDelta
from miniagents.ext.llm.provider import ToolCallStart as ToolCallStart
from miniagents.ext.llm.provider import call_option as call_option
from miniagents.ext.llm.structured import PartialOutputs as PartialOutputs
from miniagents.ext.llm.structured import StructuredAgent as StructuredAgent
from miniagents.ext.llm.structured import partial_outputs as partial_outputs
from miniagents.ext.llm.structured import structured as structured
from miniagents.ext.llm.usage import Budget as Budget
from miniagents.ext.llm.usage import UsageTotals as UsageTotals
from miniagents.ext.llm.usage import charged_to as charged_to
from miniagents.ext.llm.usage import usage_totals as usage_totals
from miniagents.ext.llm.usage import with_budget as with_budget
from miniagents.ext.tools.messages import ToolCallMessage as ToolCallMessage
from miniagents.ext.tools.messages import ToolResultMessage as ToolResultMessage
from miniagents.messages.image import ImagePart as ImagePart

__all__ = [
    "DEFAULT_MAX_TOOL_CALLS",
    "DEFAULT_MAX_TOOL_ROUNDS",
    "AnyLLMAgent",
    "AssistantMessage",
    "AudioTokens",
    "Budget",
    "BudgetExceededError",
    "FallbackAgent",
    "Finish",
    "ForkArguments",
    "ImagePart",
    "LLMAgent",
    "LLMAgentOptions",
    "LLMCall",
    "LLMError",
    "LLMEvent",
    "LLMMessage",
    "LLMOptions",
    "LLMOutputValidationError",
    "LLMProvider",
    "LLMRefusalError",
    "LLMReply",
    "LLMToolApprovalRequest",
    "LLMToolCallMessage",
    "LLMToolResultMessage",
    "LLMToolRoundsError",
    "OutputFormat",
    "PartialOutputs",
    "PromptItem",
    "PromptText",
    "Refusal",
    "StructuredAgent",
    "SystemMessage",
    "TokenUsage",
    "ToolCallDelta",
    "ToolCallMessage",
    "ToolCallStart",
    "ToolResultMessage",
    "TypedFork",
    "UsageTotals",
    "UserMessage",
    "call_option",
    "charged_to",
    "fallback_agent",
    "is_provider_failure",
    "make_llm_agent",
    "partial_outputs",
    "structured",
    "usage_totals",
    "with_budget",
]
