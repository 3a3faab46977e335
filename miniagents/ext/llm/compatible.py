"""OpenAI-compatible servers by name: Ollama, vLLM, LM Studio, OpenRouter, Groq, DeepSeek, ...

The servers: Ollama, vLLM, LM Studio, OpenRouter, Groq, DeepSeek, Together, Fireworks and
Azure OpenAI.

Each is an agent of its own (``ollama_agent``, ``groq_agent``, ..., or
``compatible_agent("groq")``), made of the OpenAI agent's options (``OpenAIOptions``) and
Chat Completions, with the server's base URL, its key's environment variable, its prices
and its name in traces, and the quirks it is known for handled::

    async with MiniAgents():
        reply = await ollama_agent.inquire("Hi!", model="llama3.2")

=========== ====================================== =================== =====================
server      base URL (``<NAME>_BASE_URL`` to move)  key                 quirks handled
=========== ====================================== =================== =====================
ollama      http://localhost:11434/v1               none (or            images as base64
            (also ``OLLAMA_HOST``)                  ``OLLAMA_API_KEY``) only; calls whole,
                                                                        all at index 0 (told
                                                                        apart by ids, or
                                                                        places)
vllm        http://localhost:8000/v1                ``VLLM_API_KEY``,
                                                    if the server has
                                                    one
lm_studio   http://localhost:1234/v1                none (or            images as base64
                                                    ``LM_STUDIO_API_    only; no usage in a
                                                    KEY``)              stream
openrouter  https://openrouter.ai/api/v1            ``OPENROUTER_API_   SSE comments; the
                                                    KEY``               usage in the last
                                                                        chunk
groq        https://api.groq.com/openai/v1          ``GROQ_API_KEY``    no ``stream_options``;
                                                                        the usage in
                                                                        ``x_groq.usage``
deepseek    https://api.deepseek.com/v1             ``DEEPSEEK_API_     no images, no JSON
                                                    KEY``               schema; the cache's
                                                                        tokens as
                                                                        ``prompt_cache_hit_
                                                                        tokens``
together    https://api.together.xyz/v1             ``TOGETHER_API_KEY`` the usage in the last
                                                                        chunk
fireworks   https://api.fireworks.ai/inference/v1   ``FIREWORKS_API_    the usage in the last
                                                    KEY``               chunk
azure       ``AZURE_OPENAI_ENDPOINT``               ``AZURE_OPENAI_API_ the deployment as the
            (``openai.AsyncAzureOpenAI``)           KEY`` (or           model; a first chunk
                                                    ``AZURE_OPENAI_AD_  with no choices;
                                                    TOKEN``)            ``OPENAI_API_VERSION``
                                                                        (default
                                                                        :data:`DEFAULT_AZURE_
                                                                        API_VERSION`)
=========== ====================================== =================== =====================

A call that needs what its server lacks fails before its request with an
``LLMConfigurationError`` that says so: an image given by URL to Ollama or LM Studio (give
its bytes), any image or an ``output_type`` to DeepSeek, ``api="responses"`` to a server
without the Responses API (all but Azure and OpenRouter), ``logit_bias`` to Groq. A reply
a server's content filter cut (``finish_reason="content_filter"``), and a prompt Azure's
filter refused (HTTP 400, code ``content_filter``), fail with an ``LLMRefusalError``.
A temperature above the top of a server's documented range (its ``most_temperature``: 2
for the hosted servers but Together) is refused as the agent is made and at each call; a
local server's (Ollama, vLLM, LM Studio) and Together's are left to the server.

The price table knows the hosted servers' models (OpenRouter, Groq, DeepSeek, Together,
Fireworks, Azure); a local server's (Ollama, vLLM, LM Studio) cost nothing the table can
say: their cost is ``None``.
"""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, ParamSpec, cast, get_args

from miniagents.ext.llm._openai_chat import chat_reply
from miniagents.ext.llm._openai_options import OpenAIAPIs, OpenAIOptions
from miniagents.ext.llm._openai_responses import responses_reply
from miniagents.ext.llm.errors import (
    LLMAuthenticationError,
    LLMConfigurationError,
    LLMRefusalError,
)
from miniagents.ext.llm.llm_agent import AnyLLMAgent, LLMAgent
from miniagents.ext.llm.messages import AssistantMessage, LLMReply
from miniagents.ext.llm.prompt import ConversationRules, PromptText
from miniagents.ext.llm.provider import LLMCall, LLMEvent
from miniagents.ext.llm.sdk_calls import (
    base_url_source,
    check_base_url,
    client_with_options,
    import_sdk,
)
from miniagents.ext.llm.sdk_errors import translate_loaded_sdk_error
from miniagents.miniagents.agent import MiniAgent
from miniagents.miniagents.context import MiniAgents

if TYPE_CHECKING:
    from miniagents.ext.llm._openai_options import _OpenAIFork
    from miniagents.ext.llm.llm_agent import TypedFork

__all__ = [
    "DEFAULT_AZURE_API_VERSION",
    "SERVERS",
    "CompatibleAgent",
    "CompatibleMessage",
    "CompatibleProvider",
    "CompatibleServer",
    "ServerName",
    "azure_openai_agent",
    "compatible_agent",
    "deepseek_agent",
    "fireworks_agent",
    "groq_agent",
    "lm_studio_agent",
    "ollama_agent",
    "openrouter_agent",
    "together_agent",
    "vllm_agent",
]

ServerName = Literal[
    "ollama",
    "vllm",
    "lm_studio",
    "openrouter",
    "groq",
    "deepseek",
    "together",
    "fireworks",
    "azure",
]
"""The OpenAI-compatible servers known by name."""

DEFAULT_AZURE_API_VERSION: Final = "2024-10-21"
"""The Azure OpenAI API version when ``OPENAI_API_VERSION`` is not set (a GA version)."""


@dataclass(frozen=True)
class CompatibleServer:
    """What the agent knows of one OpenAI-compatible server.

    Attributes:
        name: Its name, e.g. "groq".
        label: How messages name it, e.g. "Groq".
        base_url: Its default base URL (``None``: none, as Azure's endpoint is yours).
        base_url_variable: The environment variable that overrides ``base_url``.
        key_variable: The environment variable of its API key.
        key_required: Whether a call needs a key (a local server takes any).
        price_provider: Its id in the price table (``None``: its models have no price).
        provider_name: Its ``gen_ai.provider.name`` in traces.
        ask_usage: Whether to ask for the usage of a stream (``stream_options``): not of a
            server that refuses the option.
        url_images: Whether it takes an image by URL (else only its bytes).
        images: Whether it takes images at all.
        structured_output: Whether it takes a JSON schema (``response_format``).
        responses_api: Whether it serves the Responses API (``api="responses"``).
        unsupported: The call options it refuses.
        most_temperature: The highest ``temperature`` it takes, checked as the agent is
            made and at each call (the top of its documented range: 2 for the hosted ones
            that document OpenAI's); ``None``: unchecked but for a finite number of at least
            0, where the range is unknown or unbounded (vLLM, Ollama and LM Studio take
            more than 2).
    """

    name: ServerName
    label: str
    base_url: str | None
    base_url_variable: str
    key_variable: str
    key_required: bool = True
    price_provider: str | None = None
    provider_name: str = ""
    ask_usage: bool = True
    url_images: bool = True
    images: bool = True
    structured_output: bool = True
    responses_api: bool = False
    unsupported: frozenset[str] = frozenset()
    most_temperature: float | None = 2


SERVERS: Final[Mapping[ServerName, CompatibleServer]] = {
    server.name: server
    for server in (
        CompatibleServer(
            "ollama",
            "Ollama",
            "http://localhost:11434/v1",
            "OLLAMA_BASE_URL",
            "OLLAMA_API_KEY",
            key_required=False,
            provider_name="ollama",
            url_images=False,
            most_temperature=None,
        ),
        CompatibleServer(
            "vllm",
            "vLLM",
            "http://localhost:8000/v1",
            "VLLM_BASE_URL",
            "VLLM_API_KEY",
            key_required=False,
            provider_name="vllm",
            most_temperature=None,
        ),
        CompatibleServer(
            "lm_studio",
            "LM Studio",
            "http://localhost:1234/v1",
            "LM_STUDIO_BASE_URL",
            "LM_STUDIO_API_KEY",
            key_required=False,
            provider_name="lm_studio",
            url_images=False,
            most_temperature=None,
        ),
        CompatibleServer(
            "openrouter",
            "OpenRouter",
            "https://openrouter.ai/api/v1",
            "OPENROUTER_BASE_URL",
            "OPENROUTER_API_KEY",
            price_provider="openrouter",
            provider_name="openrouter",
            responses_api=True,
        ),
        CompatibleServer(
            "groq",
            "Groq",
            "https://api.groq.com/openai/v1",
            "GROQ_BASE_URL",
            "GROQ_API_KEY",
            price_provider="groq",
            provider_name="groq",
            ask_usage=False,
            unsupported=frozenset({"logit_bias"}),
        ),
        CompatibleServer(
            "deepseek",
            "DeepSeek",
            "https://api.deepseek.com/v1",
            "DEEPSEEK_BASE_URL",
            "DEEPSEEK_API_KEY",
            price_provider="deepseek",
            provider_name="deepseek",
            images=False,
            structured_output=False,
        ),
        CompatibleServer(
            "together",
            "Together",
            "https://api.together.xyz/v1",
            "TOGETHER_BASE_URL",
            "TOGETHER_API_KEY",
            price_provider="together",
            provider_name="together_ai",
            most_temperature=None,  # (its API reference's schema sets no maximum)
        ),
        CompatibleServer(
            "fireworks",
            "Fireworks",
            "https://api.fireworks.ai/inference/v1",
            "FIREWORKS_BASE_URL",
            "FIREWORKS_API_KEY",
            price_provider="fireworks",
            provider_name="fireworks_ai",
        ),
        CompatibleServer(
            "azure",
            "Azure OpenAI",
            None,
            "AZURE_OPENAI_ENDPOINT",
            "AZURE_OPENAI_API_KEY",
            price_provider="azure",
            provider_name="azure.ai.openai",
            responses_api=True,
        ),
    )
}
"""Every server known by name (see the module's table)."""


_FILTERED = frozenset({"content_filter"})
"""The finish reasons of a reply that a server's content filter cut: a refusal."""


class CompatibleMessage(AssistantMessage):
    """A reply of a model on an OpenAI-compatible server (its agent's alias names which)."""


class CompatibleProvider(OpenAIAPIs):
    """Streams replies of one OpenAI-compatible server's Chat Completions (see ``LLMProvider``)."""

    message_class = CompatibleMessage

    def __init__(self, server: CompatibleServer) -> None:
        """Make the provider of ``server`` (one of :data:`SERVERS`)."""
        self.server = server
        self.price_provider = server.price_provider
        self.provider_name = server.provider_name

    def reply(self, call: LLMCall, options: OpenAIOptions) -> AsyncIterator[LLMEvent]:
        """Stream the reply's tokens and tool calls, then one ``Finish``.

        The stream is Chat Completions' own (no generator of the provider in between, for
        each token); it checks the call against what the server can do, and gets the
        client, when it is first read.

        Raises:
            LLMConfigurationError: for a call that needs what the server lacks (when read).
        """

        def client(options: OpenAIOptions) -> Any:
            self._check(call, options)
            return self._client(options)

        if options.api == "responses":
            return responses_reply(client, call, options, refusals=_FILTERED)
        return chat_reply(
            client,
            call,
            options,
            ask_usage=self.server.ask_usage,
            refusals=_FILTERED,
            conversation=_CONVERSATION,
        )

    def translate(self, error: BaseException) -> BaseException:
        """The ``LLMError`` for an error of the OpenAI SDK, else ``error``.

        A request a content filter refused (HTTP 400, code ``content_filter``: Azure's) is
        an ``LLMRefusalError``.
        """
        body = getattr(error, "body", None)
        code = getattr(error, "code", None)
        if code == "content_filter" or (
            isinstance(body, Mapping) and body.get("code") == "content_filter"
        ):
            refused = LLMRefusalError(
                f"{self.server.label}'s content filter refused the prompt: {error}. Asking "
                "again the same way would be refused too: change the prompt, or catch "
                "LLMRefusalError to handle the refusal."
            )
            refused.__cause__ = error
            return refused
        return translate_loaded_sdk_error(error, "openai", self.server.label, "OpenAIError")

    def _check(self, call: LLMCall, options: OpenAIOptions) -> None:
        """Refuse a call that needs what the server lacks, before its request."""
        server, label = self.server, self.server.label
        if options.api == "responses" and not server.responses_api:
            raise LLMConfigurationError(
                f"{label} does not serve the Responses API: leave api out (Chat Completions)."
            )
        for name in server.unsupported & set(call.options):
            raise LLMConfigurationError(
                f"{label} does not take {name}: leave it out of the agent's arguments."
            )
        if call.output_format is not None and not server.structured_output:
            raise LLMConfigurationError(
                f"{label} does not take a JSON schema for the answer (response_format "
                "json_schema), so output_type cannot be asked for: use another server, or "
                "ask for JSON in the prompt and parse the text yourself."
            )
        for item in call.messages:
            if not isinstance(item, PromptText) or not item.images:
                continue
            if not server.images:
                raise LLMConfigurationError(
                    f"{label}'s chat models take no images: use a server with a vision model."
                )
            if not server.url_images and any(image.data is None for image in item.images):
                raise LLMConfigurationError(
                    f"{label} takes an image's bytes only, not its URL: give "
                    "ImagePart(data=..., media_type=...) or ImagePart.from_file(path)."
                )

    def _client(self, options: OpenAIOptions) -> Any:
        """The client of a call: ``async_client``, else the context's for this server."""
        client: Any = options.async_client
        if client is None:
            sdk = import_sdk("openai", "OpenAI")
            client = MiniAgents.get_current().resource(
                f"compatible-client:{self.server.name}",
                lambda: _client_from_environment(sdk, self.server),
                lambda made: made.close(),
            )
        agent = f"{self.server.name}_agent"
        # (a client made from the environment had its base URL checked as it was made)
        source = "" if options.async_client is None else _GIVEN_CLIENTS_URL
        return client_with_options(client, options.max_retries, options.timeout, agent, source)


_CONVERSATION: Final = ConversationRules()
"""What the servers take of a conversation: turns that alternate from the user's, as the chat
templates of many local models require (vLLM's, Ollama's: "Conversation roles must
alternate user/assistant/..."), no blank text."""

_GIVEN_CLIENTS_URL: Final = base_url_source("OPENAI_BASE_URL", given=True)
"""Where a given client's base URL was set (an ``openai.AsyncOpenAI`` made without one
reads ``OPENAI_BASE_URL``)."""


def _client_from_environment(sdk: Any, server: CompatibleServer) -> Any:
    """The server's client: its base URL and key from the environment.

    Raises:
        LLMAuthenticationError: without the key a hosted server needs.
        LLMConfigurationError: for Azure without its endpoint, or a base URL (endpoint) in
            the environment that is no http(s) URL, naming its variable.
    """
    key = os.environ.get(server.key_variable)
    if server.name == "azure":
        endpoint = os.environ.get(server.base_url_variable)
        token = os.environ.get("AZURE_OPENAI_AD_TOKEN")
        if not endpoint:
            raise LLMConfigurationError(
                "No Azure OpenAI endpoint: set AZURE_OPENAI_ENDPOINT (e.g. "
                "https://my-resource.openai.azure.com), or pass "
                "async_client=openai.AsyncAzureOpenAI(...) to the agent."
            )
        if not (key or token):
            raise LLMAuthenticationError(
                "No Azure OpenAI key: set AZURE_OPENAI_API_KEY (or AZURE_OPENAI_AD_TOKEN), or "
                "pass async_client=openai.AsyncAzureOpenAI(...) to the agent."
            )
        check_base_url(
            endpoint, "azure_agent", base_url_source(server.base_url_variable, given=False)
        )
        version = os.environ.get("OPENAI_API_VERSION") or DEFAULT_AZURE_API_VERSION
        return sdk.AsyncAzureOpenAI(azure_endpoint=endpoint, api_version=version)
    if not key and server.key_required:
        raise LLMAuthenticationError(
            f"No {server.label} API key: set {server.key_variable}, or pass "
            f"async_client=openai.AsyncOpenAI(base_url=..., api_key=...) to the agent."
        )
    url, variable = _base_url(server)
    if url is not None:
        check_base_url(url, f"{server.name}_agent", base_url_source(variable, given=False))
    return sdk.AsyncOpenAI(base_url=url, api_key=key or server.name)


def _base_url(server: CompatibleServer) -> tuple[str | None, str]:
    """The server's base URL: ``<NAME>_BASE_URL``, Ollama's ``OLLAMA_HOST``, else its own.

    With the environment variable it came from (``<NAME>_BASE_URL`` for its own).
    """
    given = os.environ.get(server.base_url_variable)
    if given:
        return given, server.base_url_variable
    if server.name == "ollama":
        host = os.environ.get("OLLAMA_HOST")
        if host:
            host = host if "://" in host else f"http://{host}"
            return f"{host.rstrip('/')}/v1", "OLLAMA_HOST"
    return server.base_url, server.base_url_variable


P = ParamSpec("P")


class CompatibleAgent(LLMAgent[P, CompatibleMessage], AnyLLMAgent[CompatibleMessage]):
    """The class of the OpenAI-compatible servers' agents (``ollama_agent``, ...) and forks.

    ``P`` is their parameters (the fields of ``OpenAIOptions``); as every LLM agent, it is
    an ``AnyLLMAgent`` too, so that a list of agents of different providers is one (see
    :mod:`miniagents.ext.llm.llm_agent`).
    """

    __slots__ = ()

    if TYPE_CHECKING:
        fork = TypedFork(_OpenAIFork)  # type: ignore[assignment]  # (see TypedFork)


def _server_options(
    options: Callable[P, OpenAIOptions], server: ServerName
) -> Callable[P, OpenAIOptions]:
    """A subclass of ``options`` with the temperature range of ``server``.

    Its ``check`` refuses a temperature above the server's ``most_temperature``, naming the
    server. The class is named ``_<Name>Options`` (e.g. ``_LmStudioOptions``), the name this
    module binds it to, so that its agent pickles.
    """
    known = SERVERS[server]
    label, most = known.label, known.most_temperature
    top = "of at least 0 (its top is left to the server)" if most is None else f"from 0 to {most:g}"
    doc = f"""The arguments of ``{server}_agent``: OpenAI's, with {label}'s temperature range.

    Attributes:
        temperature: The sampling temperature, {top}: higher is more random.
    """
    bound = {
        "__doc__": doc,
        "api_name": label,
        "most_temperature": math.inf if most is None else most,
    }
    base = cast("type[OpenAIOptions]", options)
    name = "".join(part.title() for part in server.split("_"))
    made = type(f"_{name}Options", (base,), bound)
    return cast("Callable[P, OpenAIOptions]", made)


def _server_agent(
    options: Callable[P, OpenAIOptions], server: ServerName, who: str = ""
) -> CompatibleAgent[P]:
    """The agent of ``server``, its alias from the server's label (e.g. ``GROQ_AGENT``).

    ``options``: the server's (:func:`_server_options`). ``who`` begins its summary
    (default: "A model on " and the label).
    """
    label = SERVERS[server].label
    who = who or f"A model on {label}"
    return CompatibleAgent.of(
        options,
        CompatibleProvider(SERVERS[server]),
        alias=f"{label.upper().replace(' ', '_')}_AGENT",
        summary=f"{who}: the input messages are the prompt, the reply streams back.",
    )


_OllamaOptions = _server_options(OpenAIOptions, "ollama")
_VllmOptions = _server_options(OpenAIOptions, "vllm")
_LmStudioOptions = _server_options(OpenAIOptions, "lm_studio")
_OpenrouterOptions = _server_options(OpenAIOptions, "openrouter")
_GroqOptions = _server_options(OpenAIOptions, "groq")
_DeepseekOptions = _server_options(OpenAIOptions, "deepseek")
_TogetherOptions = _server_options(OpenAIOptions, "together")
_FireworksOptions = _server_options(OpenAIOptions, "fireworks")
_AzureOptions = _server_options(OpenAIOptions, "azure")

ollama_agent = _server_agent(_OllamaOptions, "ollama")
"""A model on a local Ollama server (``OLLAMA_BASE_URL`` or ``OLLAMA_HOST``)."""

vllm_agent = _server_agent(_VllmOptions, "vllm")
"""A model on a vLLM server (``VLLM_BASE_URL``, ``VLLM_API_KEY``)."""

lm_studio_agent = _server_agent(_LmStudioOptions, "lm_studio")
"""A model on a local LM Studio server (``LM_STUDIO_BASE_URL``)."""

openrouter_agent = _server_agent(_OpenrouterOptions, "openrouter")
"""A model on OpenRouter (``OPENROUTER_API_KEY``), e.g. model="anthropic/claude-3.5-haiku"."""

groq_agent = _server_agent(_GroqOptions, "groq")
"""A model on Groq (``GROQ_API_KEY``), e.g. model="llama-3.3-70b-versatile"."""

deepseek_agent = _server_agent(_DeepseekOptions, "deepseek", "A DeepSeek model")
"""A DeepSeek model (``DEEPSEEK_API_KEY``), e.g. model="deepseek-chat"."""

together_agent = _server_agent(_TogetherOptions, "together")
"""A model on Together AI (``TOGETHER_API_KEY``)."""

fireworks_agent = _server_agent(_FireworksOptions, "fireworks")
"""A model on Fireworks AI (``FIREWORKS_API_KEY``)."""

azure_openai_agent = _server_agent(_AzureOptions, "azure")
"""A model on Azure OpenAI (``openai.AsyncAzureOpenAI``): ``model`` is the deployment's name."""

_AGENTS: Final[Mapping[ServerName, MiniAgent[..., LLMReply[CompatibleMessage]]]] = {
    "ollama": ollama_agent,
    "vllm": vllm_agent,
    "lm_studio": lm_studio_agent,
    "openrouter": openrouter_agent,
    "groq": groq_agent,
    "deepseek": deepseek_agent,
    "together": together_agent,
    "fireworks": fireworks_agent,
    "azure": azure_openai_agent,
}


def compatible_agent(server: ServerName) -> MiniAgent[..., LLMReply[CompatibleMessage]]:
    """The agent of an OpenAI-compatible server, by its name (e.g. ``"groq"``).

    Raises:
        LLMConfigurationError: for a server not known by name (give ``openai_agent`` its
            ``async_client=openai.AsyncOpenAI(base_url=...)`` for another one).
    """
    agent = _AGENTS.get(server)
    if agent is None:
        raise LLMConfigurationError(
            f"No OpenAI-compatible server is named {server!r}: one of "
            f"{', '.join(get_args(ServerName))}. For another server, give openai_agent a "
            "client: openai_agent.fork(async_client=openai.AsyncOpenAI(base_url=..., "
            "api_key=...))."
        )
    return agent
