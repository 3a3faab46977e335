"""LLM agents: OpenAI, Anthropic and an offline model, with one shared interface.

``openai_agent`` (:mod:`miniagents.ext.llm.openai`), ``anthropic_agent``
(:mod:`miniagents.ext.llm.anthropic`) and ``offline_agent``
(:mod:`miniagents.ext.llm.offline`) take the interaction's messages as the prompt and
reply with one ``AssistantMessage``, streamed token by token. Importing this package does
not import any SDK.
"""

from miniagents.ext.llm.errors import LLMError as LLMError
from miniagents.ext.llm.llm_common import Finish as Finish
from miniagents.ext.llm.llm_common import LLMCall as LLMCall
from miniagents.ext.llm.llm_common import LLMProvider as LLMProvider
from miniagents.ext.llm.llm_common import run_llm_agent as run_llm_agent
from miniagents.ext.llm.messages import AssistantMessage as AssistantMessage
from miniagents.ext.llm.messages import SystemMessage as SystemMessage
from miniagents.ext.llm.messages import TokenUsage as TokenUsage
from miniagents.ext.llm.messages import UserMessage as UserMessage

__all__ = [
    "AssistantMessage",
    "Finish",
    "LLMCall",
    "LLMError",
    "LLMProvider",
    "SystemMessage",
    "TokenUsage",
    "UserMessage",
    "run_llm_agent",
]
