"""The OpenAI-compatible servers' dialects of Chat Completions, as the fake speaks them.

Each server is served under a path of its own, ``/{server}/v1/chat/completions``
(``FakeLLMServer.compatible_base_url(server)``), and Azure OpenAI under its own
``/openai/deployments/{deployment}/chat/completions?api-version=...``. Each speaks
:class:`~miniagents.testing._openai_wire.OpenAIWire`'s format with the quirks that server
is known for:

========== ==================================================================================
ollama     a call's image must be base64 (a data URL); tool calls come whole in one chunk,
           each at ``index`` 0 with the id it was given (two may share one, as some models
           write ``call_0`` for each: the agent then tells them apart by their places and
           renames the later ones, ``call_0_2``), and the finish reason is ``stop``
vllm       as OpenAI
lm_studio  ``stream_options`` is ignored: a streamed reply has no usage
openrouter an SSE comment (``: OPENROUTER PROCESSING``) first; the usage in the last chunk,
           asked for or not
groq       ``stream_options`` refused (400); the usage in the last chunk's ``x_groq.usage``
deepseek   no images and no ``json_schema`` ``response_format`` (400); the cache's tokens as
           ``prompt_cache_hit_tokens`` / ``prompt_cache_miss_tokens``
together   the usage in the last chunk (with its choices), asked for or not
fireworks  as together
azure      the deployment in the path; ``api-version`` and an ``api-key`` header required
           (404, 401); a first chunk with no choices (``prompt_filter_results``)
========== ==================================================================================

Each takes the ``temperature`` range its server documents, as its agent checks it
(``CompatibleServer.most_temperature``): OpenAI's 0 to 2 for the hosted ones that
document it, any temperature of at least 0 for the local servers and Together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, get_args
from urllib.parse import parse_qs, urlsplit

from miniagents.ext.llm.compatible import SERVERS, ServerName
from miniagents.testing._openai_wire import OpenAIWire, chat_call, chat_usage, include_usage
from miniagents.testing._wire import Event, Rendering, StreamPlan, parts_of

__all__ = ["AZURE_PREFIX", "COMPATIBLE_SERVERS", "CompatibleWire"]

COMPATIBLE_SERVERS = tuple(name for name in get_args(ServerName) if name != "azure")
"""The servers known by name (``ServerName``), served under ``/{server}/v1`` (Azure has a
path of its own)."""

AZURE_PREFIX = "/openai/deployments/"

_COMMENT = "comment"  # the event "name" of an SSE comment line


class CompatibleWire(OpenAIWire):
    """Chat Completions as one OpenAI-compatible server speaks it (see the module)."""

    def __init__(self, server: ServerName) -> None:
        self.server = server
        most = SERVERS[server].most_temperature
        self.ranges = {**self.ranges, "temperature": (0, math.inf if most is None else most)}

    def route(self, path: str, body: object) -> tuple[str | None, bool]:
        """The body's model and ``stream`` (Azure: the deployment of the path)."""
        model, streamed = super().route(path, body)
        if self.server == "azure":
            deployment = path.removeprefix(AZURE_PREFIX).partition("/")[0]
            return deployment or model, streamed
        return model, streamed

    def authenticate(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, str] | None:
        """Azure: an ``api-version`` in the query and a key (``api-key``, or a bearer token)."""
        if self.server != "azure":
            return None
        if not parse_qs(urlsplit(target).query).get("api-version"):
            return (404, "Resource not found: the api-version query parameter is required.")
        if not headers.get("api-key") and not headers.get("authorization", "").startswith(
            "Bearer "
        ):
            return (
                401,
                "Access denied due to missing subscription key. Make sure to include "
                "subscription key when making requests to an API.",
            )
        return None

    def validate(self, body: object) -> str | None:
        """OpenAI's checks, then the server's own refusals."""
        problem = super().validate(body)
        if problem is not None or not isinstance(body, dict):
            return problem
        if self.server == "groq" and "stream_options" in body:
            return "property 'stream_options' is unsupported"
        images = [part for _, _, part in parts_of(body["messages"], "image_url")]
        if self.server == "deepseek":
            if images:
                return (
                    "Failed to deserialize the JSON body: unknown variant `image_url`, "
                    "expected `text`"
                )
            given = body.get("response_format")
            if isinstance(given, dict) and given.get("type") == "json_schema":
                return "This response_format type is unavailable now"
        if self.server == "ollama":
            for image in images:
                url = str((image.get("image_url") or {}).get("url", ""))
                if not url.startswith("data:"):
                    return "invalid image input: only base64-encoded images are supported"
        return None

    def body(self, rendering: Rendering) -> dict[str, Any]:
        """OpenAI's, with the server's usage fields."""
        made = super().body(rendering)
        made["usage"] = self._usage(made["usage"], rendering)
        if self.server == "ollama" and rendering.calls and made["choices"]:
            made["choices"][0]["finish_reason"] = "stop"
        return made

    def stream(self, rendering: Rendering) -> StreamPlan:
        """OpenAI's chunks, with the server's quirks (see the module)."""
        plan = super().stream(rendering)
        if self.server == "ollama" and rendering.calls:
            plan = self._whole_calls(plan, rendering)
        usage = self._usage(chat_usage(rendering), rendering)
        final = [event for event in plan.final if not _is_usage_chunk(event)]
        if self.server in ("openrouter", "together", "fireworks"):
            _finish_chunk(final)["usage"] = usage
        elif self.server == "groq":
            _finish_chunk(final)["x_groq"] = {"id": f"req_{rendering.id}", "usage": usage}
        elif include_usage(rendering) and self.server != "lm_studio":
            final = [*final[:-1], _usage_chunk(final, usage), final[-1]]
        plan.final = final
        if self.server == "openrouter":
            plan.body.insert(0, ((_COMMENT, b"OPENROUTER PROCESSING"), False))
        if self.server == "azure":
            filters = {
                "choices": [],
                "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
                "id": "",
                "model": "",
                "created": 0,
                "object": "",
            }
            plan.body.insert(0, ((None, filters), False))
        return plan

    def frame(self, event: Event) -> bytes:
        """A server-sent event, or a comment line."""
        name, payload = event
        if name == _COMMENT and isinstance(payload, bytes):
            return b": " + payload + b"\n\n"
        return super().frame(event)

    def _usage(self, usage: dict[str, Any], rendering: Rendering) -> dict[str, Any]:
        if self.server != "deepseek":
            return usage
        hit = rendering.reply.cached_tokens
        deepseek = {
            name: usage[name] for name in ("prompt_tokens", "completion_tokens", "total_tokens")
        }
        deepseek["prompt_cache_hit_tokens"] = hit
        deepseek["prompt_cache_miss_tokens"] = rendering.input_tokens - hit
        return deepseek

    def _whole_calls(self, plan: StreamPlan, rendering: Rendering) -> StreamPlan:
        """Ollama's calls: all in one chunk, whole, each at index 0; finish reason ``stop``."""
        kept = [
            (event, content)
            for event, content in plan.body
            if not (isinstance(event[1], dict) and _delta(event[1]).get("tool_calls"))
        ]
        calls = [{"index": 0, **chat_call(rendered)} for rendered in rendering.calls]
        template: Mapping[str, Any] = {}
        for event, _ in plan.body:
            if isinstance(event[1], Mapping):
                template = event[1]
                break
        chunk = {
            **template,
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": calls},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ],
        }
        kept.append(((None, chunk), True))
        plan.body = kept
        finish = _finish_chunk(plan.final)
        finish["choices"][0]["finish_reason"] = "stop"
        return plan


def _delta(chunk: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = chunk.get("choices") or [{}]
    return choices[0].get("delta") or {}


def _is_usage_chunk(event: Event) -> bool:
    payload = event[1]
    return (
        isinstance(payload, dict)
        and payload.get("choices") == []
        and payload.get("usage") is not None
    )


def _finish_chunk(final: list[Event]) -> dict[str, Any]:
    """The chunk with the finish reason (the first of the final events)."""
    payload = final[0][1]
    assert isinstance(payload, dict)
    return payload


def _usage_chunk(final: list[Event], usage: dict[str, Any]) -> Event:
    chunk = dict(_finish_chunk(final))
    chunk.update(choices=[], usage=usage)
    return (None, chunk)
