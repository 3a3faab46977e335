"""``OpenAIOptions``: the arguments of ``openai_agent``, read by both of OpenAI's wire formats.

Defined here, not in :mod:`miniagents.ext.llm.openai` (which re-exports it), so that the
Chat Completions and Responses modules, which the provider there imports, read it without
importing the provider back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from miniagents.ext.llm.provider import call_option, check_sampling
from miniagents.ext.llm.sdk_calls import SDKOptions

if TYPE_CHECKING:
    import openai as openai_sdk

    from miniagents.ext.llm.llm_agent import ForkArguments

__all__ = ["OpenAIAPIs", "OpenAIOptions"]


@dataclass(frozen=True, kw_only=True)
class OpenAIOptions(SDKOptions):
    """The arguments of ``openai_agent``: those of every LLM agent, and OpenAI's own.

    The call options are those of ``chat.completions.create``, by the SDK's names (with
    ``api="responses"``, those of ``responses.create``: see the ``api`` attribute); any
    other one goes in ``extra_options``.

    Attributes:
        model: The model, e.g. "gpt-4o-mini" (required).
        async_client: An ``openai.AsyncOpenAI`` client to use instead of the default one.
        api: The API: ``"chat_completions"`` (the default) or ``"responses"`` (the
            Responses API, where ``max_tokens`` and ``max_completion_tokens`` are sent as
            ``max_output_tokens`` and ``reasoning_effort`` as ``reasoning.effort``, and
            ``stop``, ``seed``, ``logit_bias`` and the penalties are refused).
        max_tokens: The most tokens the reply may have.
        max_completion_tokens: The most tokens the reply may have, reasoning tokens
            included (what reasoning models take instead of ``max_tokens``).
        temperature: The sampling temperature, from 0 to 2: higher is more random.
        stop: A text, or up to 4 texts, at which the model stops.
        seed: A seed, so that repeated calls sample alike (as far as the service can).
        presence_penalty: From -2 to 2: higher makes new topics more likely.
        frequency_penalty: From -2 to 2: higher makes repeated tokens less likely.
        logit_bias: A bias from -100 to 100 per token id (given as a string).
        reasoning_effort: How hard a reasoning model thinks, e.g. "low" or "high".
    """

    client_classes = ("openai.AsyncOpenAI",)
    sdk_name = "OpenAI"
    most_temperature = 2

    async_client: openai_sdk.AsyncOpenAI | None = None
    api: Literal["chat_completions", "responses"] = "chat_completions"
    max_tokens: int | None = call_option(None)
    max_completion_tokens: int | None = call_option(None)
    stop: str | Sequence[str] | None = call_option(None)
    seed: int | None = call_option(None)
    presence_penalty: float | None = call_option(None)
    frequency_penalty: float | None = call_option(None)
    logit_bias: Mapping[str, int] | None = call_option(None)
    reasoning_effort: str | None = call_option(None)

    def check(self, alias: str) -> None:
        """Refuse an argument of the wrong kind: every LLM agent's, and OpenAI's own.

        Raises:
            LLMConfigurationError: for one of the wrong kind, naming it and the fix.
        """
        super().check(alias)
        check_sampling(
            alias,
            max_tokens=self.max_tokens,
            max_completion_tokens=self.max_completion_tokens,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
        )


class OpenAIAPIs:
    """What the providers over OpenAI's SDK share: which of its APIs a call goes to."""

    @staticmethod
    def request_api(options: OpenAIOptions) -> str | None:
        """The API a call with ``options`` is sent to, as a call cache's key names it.

        ``None`` for Chat Completions, the default: its keys stay those made before the
        keys named the API, so that its recordings still replay.
        """
        return None if options.api == "chat_completions" else options.api


if TYPE_CHECKING:

    @dataclass(frozen=True, kw_only=True)
    class _OpenAIFork(OpenAIOptions, ForkArguments):
        """What the OpenAI and OpenAI-compatible agents' ``fork`` takes (``TypedFork``)."""
