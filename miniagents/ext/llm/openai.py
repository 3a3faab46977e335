"""OpenAI agents: ``openai_agent`` and ``create_openai_agent`` (Chat Completions or Responses).

The SDK is imported when a call is made; without it, the call fails with an
``LLMSDKMissingError`` (an ``ImportError``) that says ``pip install "miniagents[openai]"``.
The client comes from ``async_client=`` or is made from the environment
(``OPENAI_API_KEY``, ``OPENAI_BASE_URL``), once per ``MiniAgents`` context.

``api=`` picks the API: ``"chat_completions"`` (the default: ``client.chat.completions``,
see :mod:`miniagents.ext.llm._openai_chat`) or ``"responses"`` (``client.responses``, see
:mod:`miniagents.ext.llm._openai_responses`). Both give the same messages, metadata, tool
loop and errors; each sends tools, tool calls and results, and images in its own format.
Chat Completions stays the default: the OpenAI-compatible servers (vLLM, Ollama, LiteLLM,
...) that ``OPENAI_BASE_URL`` may point at speak it, some options exist only there
(``stop``, ``seed``, ``logit_bias``, the penalties), and the Responses API stores every
response on OpenAI's side unless told not to (``extra_options={"store": False}``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ParamSpec

from miniagents.arguments import refused_argument
from miniagents.ext.llm._openai_chat import chat_reply
from miniagents.ext.llm._openai_options import OpenAIAPIs, OpenAIOptions
from miniagents.ext.llm._openai_responses import responses_reply
from miniagents.ext.llm.errors import LLMAuthenticationError, LLMConfigurationError
from miniagents.ext.llm.llm_agent import AnyLLMAgent, LLMAgent
from miniagents.ext.llm.messages import AssistantMessage
from miniagents.ext.llm.provider import LLMCall, LLMEvent
from miniagents.ext.llm.sdk_calls import base_url_source, client_with_options, import_sdk
from miniagents.ext.llm.sdk_errors import translate_loaded_sdk_error
from miniagents.miniagents.context import MiniAgents

if TYPE_CHECKING:
    from miniagents.ext.llm._openai_options import _OpenAIFork
    from miniagents.ext.llm.llm_agent import TypedFork

__all__ = [
    "OpenAIAgent",
    "OpenAIMessage",
    "OpenAIOptions",
    "OpenAIProvider",
    "create_openai_agent",
    "openai_agent",
]


class OpenAIMessage(AssistantMessage):
    """A reply of an OpenAI model."""


class OpenAIProvider(OpenAIAPIs):
    """Streams replies of the Chat Completions API, or the Responses API (see ``LLMProvider``)."""

    message_class = OpenAIMessage
    price_provider = "openai"  # whose prices it pays (see miniagents.ext.llm.pricing)

    def reply(self, call: LLMCall, options: OpenAIOptions) -> AsyncIterator[LLMEvent]:
        """Stream the reply's tokens and tool calls, then one ``Finish``.

        The stream is the API's own (no generator of the provider in between, for each
        token); it checks the options and gets the client when it is first read.

        Raises:
            LLMConfigurationError: for an ``api`` that is neither API (when read).
        """
        reply = responses_reply if options.api == "responses" else chat_reply
        return reply(_client, call, options)

    @staticmethod
    def client(options: OpenAIOptions) -> Any:
        """The SDK client a call with ``options`` uses (batch mode sends through a copy).

        It is ``async_client``, else the context's, with the options' retries and timeout.
        """
        return _client(options)

    def translate(self, error: BaseException) -> BaseException:
        """The ``LLMError`` for an error of the OpenAI SDK, else ``error``."""
        return translate_loaded_sdk_error(error, "openai", "OpenAI", "OpenAIError")


_APIS = ("chat_completions", "responses")


def _client(options: OpenAIOptions) -> Any:
    """The client of a call: ``async_client``, else the context's (with the retries, timeout).

    Raises:
        LLMConfigurationError: for an ``api`` that is neither API.
        LLMSDKMissingError: without the SDK (and no client given).
    """
    if options.api not in _APIS:
        raise refused_argument(
            options.api,
            "api",
            "'chat_completions' or 'responses'",
            owner="The OpenAI agent",
            fix="Pass e.g. openai_agent.fork(api='responses').",
            error=LLMConfigurationError,
        )
    api: Any = options.async_client
    if api is None:  # the context's client (a client given means the SDK is installed)
        sdk = import_sdk("openai", "OpenAI")
        api = MiniAgents.get_current().resource(
            "openai-client", lambda: _client_from_environment(sdk), lambda made: made.close()
        )
    source = _ENVIRONMENTS_URL if options.async_client is None else _GIVEN_CLIENTS_URL
    return client_with_options(api, options.max_retries, options.timeout, "openai_agent", source)


_ENVIRONMENTS_URL = base_url_source("OPENAI_BASE_URL", given=False)
_GIVEN_CLIENTS_URL = base_url_source("OPENAI_BASE_URL", given=True)
"""Where a client's base URL was set, for the error about a malformed one."""


def _client_from_environment(sdk: Any) -> Any:
    try:
        return sdk.AsyncOpenAI()
    except sdk.OpenAIError as error:
        raise LLMAuthenticationError(
            "No OpenAI API key: set OPENAI_API_KEY, or pass "
            "async_client=openai.AsyncOpenAI(api_key=...) to the agent."
        ) from error


P = ParamSpec("P")


class OpenAIAgent(LLMAgent[P, OpenAIMessage], AnyLLMAgent[OpenAIMessage]):
    """The class of ``openai_agent`` and its forks, an ``AnyLLMAgent`` (see ``llm_agent``)."""

    __slots__ = ()

    if TYPE_CHECKING:
        fork = TypedFork(_OpenAIFork)  # type: ignore[assignment]  # (see TypedFork)


openai_agent = OpenAIAgent.of(
    OpenAIOptions,
    OpenAIProvider(),
    alias="OPENAI_AGENT",
    summary="An OpenAI chat model: the input messages are the prompt, the reply streams back.",
)
"""An OpenAI chat model (Chat Completions, or ``api="responses"``): the messages are the prompt."""

create_openai_agent = openai_agent.bind
"""An OpenAI agent with arguments bound: ``openai_agent.fork(...)``, with the arguments typed."""
