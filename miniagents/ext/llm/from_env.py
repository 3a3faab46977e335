"""``llm_agent_from_env``: the LLM agent your environment has a key for, else the offline one.

For demos, examples and tools that should run anywhere: with ``OPENAI_API_KEY`` set they
ask OpenAI, with ``ANTHROPIC_API_KEY`` or ``ANTHROPIC_AUTH_TOKEN`` set (and no OpenAI key)
they ask Anthropic, then Gemini, Bedrock and the OpenAI-compatible servers, in the order
of :data:`PROVIDERS_IN_ORDER`; with none of them they use the offline model, which needs
no network.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, Self, Unpack, cast

from miniagents.ext.llm.anthropic import _key_in_environment, anthropic_agent
from miniagents.ext.llm.bedrock import bedrock_agent
from miniagents.ext.llm.compatible import (
    azure_openai_agent,
    deepseek_agent,
    fireworks_agent,
    groq_agent,
    ollama_agent,
    openrouter_agent,
    together_agent,
)
from miniagents.ext.llm.gemini import gemini_agent
from miniagents.ext.llm.llm_agent import LLMAgent, _ProviderFreeOptions
from miniagents.ext.llm.messages import AssistantMessage, LLMReply
from miniagents.ext.llm.offline import Script, ToolRule, offline_agent
from miniagents.ext.llm.openai import openai_agent
from miniagents.ext.llm.provider import DEFAULT_MAX_TOOL_CALLS, DEFAULT_MAX_TOOL_ROUNDS
from miniagents.ext.tools.tool_like import ToolLike
from miniagents.miniagents.agent import MiniAgent
from miniagents.promising.sentinels import DEFAULT, Sentinel

if TYPE_CHECKING:
    from reactivex import Observable

    from miniagents.messages.sequence import MessageSequencePromise, MessageType
    from miniagents.miniagents.agent import AgentCall

__all__ = [
    "DEFAULT_ANTHROPIC_MODEL",
    "DEFAULT_OPENAI_MODEL",
    "PROVIDERS_IN_ORDER",
    "FromEnvAgent",
    "FromEnvAgentOptions",
    "llm_agent_from_env",
    "provider_from_env",
]

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
"""The OpenAI model when ``OPENAI_MODEL`` is not set."""

DEFAULT_ANTHROPIC_MODEL = "claude-haiku-4-5"
"""The Anthropic model when ``ANTHROPIC_MODEL`` is not set."""


@dataclass(frozen=True)
class _Choice:
    """A provider ``llm_agent_from_env`` may choose: when, and with which model."""

    agent: MiniAgent[..., LLMReply[Any]]
    when: Callable[[], bool]
    model_variable: str
    default_model: str | None  # None: the model variable must be set


def _set(*names: str) -> Callable[[], bool]:
    """Whether any of the environment variables ``names`` is set (not empty)."""
    return lambda: any(os.environ.get(name) for name in names)


def _all_set(*names: str) -> Callable[[], bool]:
    return lambda: all(os.environ.get(name) for name in names)


def _vertex() -> bool:
    return os.environ.get("GOOGLE_GENAI_USE_VERTEXAI", "").lower() in ("true", "1")


PROVIDERS_IN_ORDER: Final = (
    ("openai", "OPENAI_API_KEY", "OPENAI_MODEL"),
    ("anthropic", "ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_MODEL"),
    ("gemini", "GEMINI_API_KEY, GOOGLE_API_KEY or GOOGLE_GENAI_USE_VERTEXAI=true", "GEMINI_MODEL"),
    ("bedrock", "BEDROCK_MODEL, or AWS_BEARER_TOKEN_BEDROCK", "BEDROCK_MODEL"),
    ("openrouter", "OPENROUTER_API_KEY", "OPENROUTER_MODEL"),
    ("groq", "GROQ_API_KEY", "GROQ_MODEL"),
    ("deepseek", "DEEPSEEK_API_KEY", "DEEPSEEK_MODEL"),
    ("together", "TOGETHER_API_KEY", "TOGETHER_MODEL"),
    ("fireworks", "FIREWORKS_API_KEY", "FIREWORKS_MODEL"),
    (
        "azure",
        "AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_DEPLOYMENT",
        "AZURE_OPENAI_DEPLOYMENT",
    ),
    ("ollama", "OLLAMA_MODEL", "OLLAMA_MODEL"),
)
"""The providers ``llm_agent_from_env`` tries, in order: each name, what chooses it, and
the variable of its model (the first one whose variables are set is chosen)."""

_CHOICES: Final = (
    _Choice(openai_agent, _set("OPENAI_API_KEY"), "OPENAI_MODEL", DEFAULT_OPENAI_MODEL),
    _Choice(anthropic_agent, _key_in_environment, "ANTHROPIC_MODEL", DEFAULT_ANTHROPIC_MODEL),
    _Choice(
        gemini_agent,
        lambda: _set("GEMINI_API_KEY", "GOOGLE_API_KEY")() or _vertex(),
        "GEMINI_MODEL",
        "gemini-2.5-flash",
    ),
    _Choice(
        bedrock_agent,
        _set("BEDROCK_MODEL", "AWS_BEARER_TOKEN_BEDROCK"),
        "BEDROCK_MODEL",
        "us.anthropic.claude-3-5-haiku-20241022-v1:0",
    ),
    _Choice(openrouter_agent, _set("OPENROUTER_API_KEY"), "OPENROUTER_MODEL", "openai/gpt-4o-mini"),
    _Choice(groq_agent, _set("GROQ_API_KEY"), "GROQ_MODEL", "llama-3.3-70b-versatile"),
    _Choice(deepseek_agent, _set("DEEPSEEK_API_KEY"), "DEEPSEEK_MODEL", "deepseek-chat"),
    _Choice(
        together_agent,
        _set("TOGETHER_API_KEY"),
        "TOGETHER_MODEL",
        "meta-llama/Llama-3.3-70B-Instruct-Turbo",
    ),
    _Choice(
        fireworks_agent,
        _set("FIREWORKS_API_KEY"),
        "FIREWORKS_MODEL",
        "accounts/fireworks/models/llama-v3p3-70b-instruct",
    ),
    _Choice(
        azure_openai_agent,
        _all_set("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_DEPLOYMENT"),
        "AZURE_OPENAI_DEPLOYMENT",
        None,
    ),
    _Choice(ollama_agent, _set("OLLAMA_MODEL"), "OLLAMA_MODEL", None),
)


def provider_from_env() -> str | None:
    """The provider :func:`llm_agent_from_env` chooses in this environment, by its name.

    Returns:
        Its name in :data:`PROVIDERS_IN_ORDER` (e.g. ``"gemini"``), or ``None`` when no
        provider's variables are set (the offline model answers).
    """
    for (name, _, _), choice in zip(PROVIDERS_IN_ORDER, _CHOICES, strict=True):
        if choice.when():
            return name
    return None


class FromEnvAgentOptions(_ProviderFreeOptions, total=False):
    """The arguments of the agent of ``llm_agent_from_env``, by keyword (mypy checks them).

    Those of ``fallback_agent``'s agents (every LLM agent's but ``model`` and
    ``extra_options``, which are the provider's own, and the environment picks the provider:
    see :mod:`miniagents.ext.llm.fallback`), then ``max_tokens`` (the most tokens a reply may
    have) and ``temperature`` (the sampling temperature), which each of the agents it may
    choose takes too. So a misspelled option (``temprature=``) is a mypy error, not an
    ``AgentArgumentError`` at run time. Not given, an argument is what the agent has bound,
    else the model's default (a ``max_tokens`` of ``DEFAULT`` too: the Anthropic agent takes
    no ``None``).
    """

    max_tokens: int | Literal[Sentinel.DEFAULT]
    temperature: float | None


class FromEnvAgent(LLMAgent[..., AssistantMessage]):
    """The type of the agent of :func:`llm_agent_from_env`, to annotate a variable with.

    ``agent: FromEnvAgent = llm_agent_from_env()``: its ``inquire``, ``initiate_inquiry``,
    ``bind`` and ``as_operator`` take :class:`FromEnvAgentOptions` (checked by name and
    type), ``fork`` takes them beside its own ``alias``, ``description``,
    ``max_concurrency`` and ``start_asap`` and gives a ``FromEnvAgent``, and its replies are
    ``LLMReply[AssistantMessage]``.

    An ``LLMAgent`` (so an ``AnyLLMAgent[AssistantMessage]`` too), whose ``model`` and
    ``extra_options`` the environment picks: its methods refuse them, as ``fallback_agent``'s
    do. A type only: at run time the agent is the chosen provider's (an ``OpenAIAgent``, an
    ``OfflineAgent``, ...), so ``isinstance(agent, FromEnvAgent)`` is false; ask
    ``isinstance(agent, LLMAgent)``. (Its methods are the ``MiniAgent``'s; this class only
    types them.)
    """

    __slots__ = ()

    if TYPE_CHECKING:  # (the MiniAgent's methods, typed by the options: nothing of it runs)

        def inquire(  # type: ignore[override]  # (AnyLLMAgent's take model: the env picks it)
            self, messages: MessageType | None = None, /, **options: Unpack[FromEnvAgentOptions]
        ) -> MessageSequencePromise[LLMReply[AssistantMessage]]:
            """Start the agent with ``messages`` as its input (see ``MiniAgent.inquire``)."""
            ...

        def initiate_inquiry(  # type: ignore[override]  # (the same)
            self, **options: Unpack[FromEnvAgentOptions]
        ) -> AgentCall[LLMReply[AssistantMessage]]:
            """Start the agent now and send it its input later (``MiniAgent``'s)."""
            ...

        def fork(  # type: ignore[override]  # (its options only: MiniAgent's takes any keyword)
            self,
            *,
            alias: str | None = None,
            description: str | None = None,
            max_concurrency: int | None = None,
            start_asap: bool | Literal[Sentinel.DEFAULT] | None = None,
            **options: Unpack[FromEnvAgentOptions],
        ) -> Self:
            """An agent of the same type with more arguments bound (``MiniAgent.fork``)."""
            ...

        def bind(self, **options: Unpack[FromEnvAgentOptions]) -> Self:  # type: ignore[override]
            """``fork`` with the arguments typed (``MiniAgent.bind``)."""
            ...

        def as_operator(  # type: ignore[override]  # (the same)
            self, **options: Unpack[FromEnvAgentOptions]
        ) -> Callable[[Observable[MessageType]], Observable[LLMReply[AssistantMessage]]]:
            """The agent as a reactive operator (``MiniAgent.as_operator``)."""
            ...


def llm_agent_from_env(
    *,
    system: str | None = None,
    offline_reply: Script | None = None,
    token_delay: float = 0.02,
    max_tokens: int | None = None,
    temperature: float | None = None,
    stall_timeout: float | Literal[Sentinel.DEFAULT] | None = DEFAULT,
    tools: Sequence[ToolLike] | None = None,
    max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS,
    max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS,
    offline_tool_rules: Sequence[ToolRule] | None = None,
    max_retries: int | None = None,
    timeout: float | None = None,
) -> FromEnvAgent:
    """An LLM agent chosen by the environment, with arguments bound.

    Its replies are typed like every LLM agent's (``LLMReply``): ``reply[0].model`` needs
    no cast. Its arguments are typed too: those every LLM agent takes but ``model`` and
    ``extra_options`` (``system``, ``tools``, ``output_type``, ``budget``, ...), and
    ``max_tokens`` and ``temperature`` (:class:`FromEnvAgentOptions`), so that mypy refuses
    a misspelled one (``agent.inquire(..., temprature=0.2)``), which the agent would refuse
    at run time. Its type is :class:`FromEnvAgent`, to annotate a variable with.

    - ``OPENAI_API_KEY`` set: ``openai_agent``, model ``OPENAI_MODEL`` (default
      :data:`DEFAULT_OPENAI_MODEL`);
    - else ``ANTHROPIC_API_KEY`` set, or ``ANTHROPIC_AUTH_TOKEN`` (a bearer token, which
      the Anthropic SDK takes instead of a key): ``anthropic_agent``, model
      ``ANTHROPIC_MODEL`` (default :data:`DEFAULT_ANTHROPIC_MODEL`);
    - else the first of :data:`PROVIDERS_IN_ORDER` whose variables are set: Gemini
      (``GEMINI_API_KEY``, ``GOOGLE_API_KEY`` or ``GOOGLE_GENAI_USE_VERTEXAI=true``; model
      ``GEMINI_MODEL``), Bedrock (``BEDROCK_MODEL`` or ``AWS_BEARER_TOKEN_BEDROCK``), then
      OpenRouter, Groq, DeepSeek, Together, Fireworks (their ``<NAME>_API_KEY``; model
      ``<NAME>_MODEL``), Azure OpenAI (its key, endpoint and ``AZURE_OPENAI_DEPLOYMENT``)
      and Ollama (``OLLAMA_MODEL``);
    - else ``offline_agent``, replying with ``offline_reply`` (see
      :mod:`miniagents.ext.llm.offline`) after ``token_delay`` seconds per token.

    Args:
        system: The system prompt.
        offline_reply: The offline model's reply (a text, texts, or a function of the call).
        token_delay: The offline model's delay before each token.
        max_tokens: The most tokens a reply may have (default: the agent's).
        temperature: The sampling temperature (default: the model's; the offline model
            takes it but does not depend on it).
        stall_timeout: Seconds to wait for each next event of a reply (default: the
            ``MiniAgents`` context's; ``None``: no limit).
        tools: What the model may call (agents, typed functions, ``Tool`` objects).
        max_tool_rounds: The most rounds of tool calls in one reply.
        max_tool_calls: The most tool calls of one turn that run (those past it are
            answered with an error result, not run).
        offline_tool_rules: The offline model's tool calls (see ``ToolRule``): a real
            model decides for itself.
        max_retries: How many times the provider's SDK tries a failed request again
            (default: the client's own); the offline model makes no request, and takes none.
        timeout: Seconds the provider's SDK waits to connect, then for each piece of the
            reply (default: the client's own); not for the offline model either. An agent
            given to ``fallback_agent`` wants few retries and a short timeout.
    """
    given: dict[str, Any] = {"system": system}  # only what was given, for a clear repr
    if max_tokens is not None:
        given["max_tokens"] = max_tokens
    if temperature is not None:
        given["temperature"] = temperature
    if stall_timeout is not DEFAULT:
        given["stall_timeout"] = stall_timeout
    if tools:
        given["tools"] = tools
    if max_tool_rounds != DEFAULT_MAX_TOOL_ROUNDS:
        given["max_tool_rounds"] = max_tool_rounds
    if max_tool_calls != DEFAULT_MAX_TOOL_CALLS:
        given["max_tool_calls"] = max_tool_calls
    requests = {"max_retries": max_retries, "timeout": timeout}  # the SDKs' own
    for choice in _CHOICES:
        if choice.when():
            model = os.environ.get(choice.model_variable) or choice.default_model
            given |= {name: value for name, value in requests.items() if value is not None}
            return cast("FromEnvAgent", choice.agent.fork(model=model, **given))
    if offline_tool_rules:
        given["tool_rules"] = offline_tool_rules
    agent = offline_agent.fork(reply=offline_reply, token_delay=token_delay, **given)
    return cast("FromEnvAgent", agent)
