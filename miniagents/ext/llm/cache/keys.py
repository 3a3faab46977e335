"""A call's full request, canonically: its key in a call cache, and how two requests differ.

The request of a call is what decides its reply: the provider, the model, the system
prompt, the messages (text, images, tool calls and results), the tools the model may call,
the call options and the output format. :func:`canonical_request` writes it as plain JSON
values, in a fixed order (an image as its URL, or a hash of its bytes), and
:func:`request_key` hashes that JSON (with a cache's namespace), so that the same request
made again, in any process, has the same key::

    call:     model "gpt-4o-mini" | system "Be brief." | user "2 + 3?" | tools [add]
    request:  {"provider": "openai", "model": "gpt-4o-mini", "system": "Be brief.",
               "messages": [{"role": "user", "text": "2 + 3?"}], "tools": [{...}], ...}
    key:      sha256 of {"namespace": "", "request": ...}   ->  "3f1c..."

Whether the reply streams is not part of the request (the same reply, token by token or
whole), nor is anything that only configures the agent (its client, retries, timeouts);
the values of ``extra_headers`` are kept as hashes (a header may carry a secret).
:func:`request_diff` shows how a request differs from a recorded one, for a cache miss.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from miniagents.ext.llm.prompt import PromptText, arguments_object
from miniagents.ext.llm.provider import LLMCall
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.messages.image import ImagePart

__all__ = ["canonical_request", "provider_name", "request_diff", "request_key", "similarity"]


def provider_name(provider: object) -> str:
    """How a request names its provider.

    Its ``provider_name``, else its ``price_provider``, else its class's name.
    """
    for attribute in ("provider_name", "price_provider"):
        named = getattr(provider, attribute, None)
        if isinstance(named, str) and named:
            return named
    return type(provider).__name__


def canonical_request(provider: object, call: LLMCall) -> dict[str, Any]:
    """The request of ``call`` to ``provider`` as JSON values (see the module)."""
    output = call.output_format
    return {
        "provider": provider_name(provider),
        "model": call.model,
        "system": call.system,
        "messages": [_item(item) for item in call.messages],
        "tools": [
            {
                "name": tool.name,
                "description": tool.description,
                "parameters": _plain(tool.parameters),
            }
            for tool in call.tools
        ],
        "options": _options(call.options),
        "output_format": None
        if output is None
        else {
            "name": output.name,
            "schema": _plain(output.schema),
            "strict": output.strict,
            "description": output.description,
        },
    }


def _options(options: Mapping[str, object]) -> dict[str, Any]:
    """The call options as JSON values, the values of ``extra_headers`` hashed.

    A header may carry a secret (a key, a token): the recorded request keeps a hash of it,
    enough to tell two values apart, never the value.
    """
    shown: dict[str, Any] = _plain(options)
    headers = shown.get("extra_headers")
    if isinstance(headers, dict):
        shown["extra_headers"] = {
            name: "sha256:" + hashlib.sha256(str(value).encode()).hexdigest()[:16]
            for name, value in headers.items()
        }
    return shown


def request_key(request: Mapping[str, Any], namespace: str = "") -> str:
    """The key of ``request`` in a cache of ``namespace``: a SHA-256 of its JSON."""
    text = json.dumps(
        {"namespace": namespace, "request": request},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def similarity(request: Mapping[str, Any], other: Mapping[str, Any]) -> float:
    """How alike two requests are, from 0 to 1 (of the words and signs of their JSON texts).

    Word by word, not character by character: the characters of two long prompts (a few
    pages each) took seconds to compare, and a cache compares a missing call with up to
    200 recordings.
    """
    matcher = difflib.SequenceMatcher(None, _words(request), _words(other))
    return matcher.ratio()


def request_diff(recorded: Mapping[str, Any], request: Mapping[str, Any], lines: int = 40) -> str:
    """How ``request`` differs from ``recorded``: a unified diff of their JSON (cut short)."""
    diff = list(
        difflib.unified_diff(
            _shown(recorded).splitlines(),
            _shown(request).splitlines(),
            "recorded",
            "this call",
            lineterm="",
            n=1,
        )
    )
    if len(diff) > lines:
        diff = [*diff[:lines], f"... ({len(diff) - lines} more lines)"]
    return "\n".join(diff)


def _shown(request: Mapping[str, Any]) -> str:
    return json.dumps(request, sort_keys=True, indent=1, ensure_ascii=False)


def _words(request: Mapping[str, Any]) -> list[str]:
    """The JSON text of ``request`` as its words, signs and runs of white space."""
    return _WORDS.findall(_shown(request))


_WORDS = re.compile(r"\w+|[^\w\s]|\s+")


def _item(item: object) -> dict[str, Any]:
    if isinstance(item, PromptText):
        shown: dict[str, Any] = {"role": item.role, "text": item.text}
        if item.images:
            shown["images"] = [_image(image) for image in item.images]
        return shown
    if isinstance(item, ToolCallMessage):
        return {
            "role": "assistant",
            "call": item.tool_name,
            "id": item.call_id,
            "arguments": arguments_object(item),
        }
    if isinstance(item, ToolResultMessage):
        return {
            "role": "tool",
            "result": item.tool_name,
            "id": item.call_id,
            "text": item.text or "",
            "is_error": item.is_error,
        }
    return {"item": _plain(item)}


def _image(image: ImagePart) -> dict[str, Any]:
    shown: dict[str, Any] = {"media_type": image.media_type, "detail": image.detail}
    if image.data is not None:
        shown["sha256"] = hashlib.sha256(image.data).hexdigest()
    else:
        shown["url"] = image.url
    return shown


def _plain(value: object) -> Any:
    """``value`` as JSON values: mappings (keys as text), sequences, scalars; else its repr.

    A set is its items in the order of their JSON texts (a set's own order changes from
    one process to the next, with the hash seed of its texts), and a dataclass its fields
    (its repr may name its address, another in each process).
    """
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return {"sha256": hashlib.sha256(bytes(value)).hexdigest()}
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(mode="json"))
    if isinstance(value, Sequence):
        return [_plain(item) for item in value]
    if isinstance(value, (set, frozenset)):
        items = [_plain(item) for item in value]
        return {"set": sorted(items, key=lambda item: json.dumps(item, sort_keys=True))}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
        return {type(value).__qualname__: _plain(fields)}
    return repr(value)
