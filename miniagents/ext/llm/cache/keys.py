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
the values of ``extra_headers`` are kept as hashes (a header may carry a secret). Which of
its APIs the provider sends the call to is, when it speaks more than one (OpenAI's
``api="responses"``: the provider's ``request_api(options)`` names it, and names none for
its default API, whose keys stay those of the recordings made before the key named it).

A value written as its ``repr`` that names its address in memory (``<Route object at
0x7f...>``: an object of a class with no ``__repr__`` of its own, a function) would key a
call differently in every process, so that its recording is never replayed: with
``stable=True`` (the call cache's) such a value is refused, with an error that names it.
:func:`call_key` is how the call cache keys a call (and the studio each call it records, so
that a fork replays them by the cache's own keys); :func:`canonical_options` writes options
so for another request (a realtime session's). :func:`request_diff` shows how a request
differs from a recorded one, for a cache miss.
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

from miniagents.arguments import a_class
from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.prompt import PromptText, arguments_object
from miniagents.ext.llm.provider import LLMCall, LLMOptions
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.messages.image import ImagePart

__all__ = [
    "call_key",
    "canonical_options",
    "canonical_request",
    "provider_name",
    "request_diff",
    "request_key",
    "similarity",
]


def provider_name(provider: object) -> str:
    """How a request names its provider.

    Its ``provider_name``, else its ``price_provider``, else its class's name.
    """
    for attribute in ("provider_name", "price_provider"):
        named = getattr(provider, attribute, None)
        if isinstance(named, str) and named:
            return named
    return type(provider).__name__


def canonical_request(
    provider: object, call: LLMCall, options: LLMOptions | None = None, *, stable: bool = False
) -> dict[str, Any]:
    """The request of ``call`` to ``provider`` as JSON values (see the module).

    Args:
        provider: The agent's provider.
        call: The call.
        options: The agent's options: the API they pick is part of the request, if the
            provider names it (``request_api``); ``None``: the provider's default API.
        stable: Refuse a value whose ``repr`` names its address in memory (it would make
            the key another in each process).

    Raises:
        LLMConfigurationError: with ``stable``, for a value written as a ``repr`` that names
            its address in memory.
    """
    plain = _StablePlain() if stable else _Plain()
    output = call.output_format
    request: dict[str, Any] = {
        "provider": provider_name(provider),
        "model": call.model,
        "system": call.system,
        "messages": [_item(item, plain) for item in call.messages],
        "tools": [
            {
                "name": tool.name,
                "description": tool.description,
                "parameters": plain(tool.parameters, f"the parameters of its tool {tool.name!r}"),
            }
            for tool in call.tools
        ],
        "options": _options(call.options, plain, "call option"),
        "output_format": None
        if output is None
        else {
            "name": output.name,
            "schema": plain(output.schema, "its output format's schema"),
            "strict": output.strict,
            "description": output.description,
        },
    }
    api = _api(provider, options)
    if api is not None:
        request["api"] = api
    return request


def call_key(
    provider: object, call: LLMCall, options: LLMOptions | None = None, namespace: str = ""
) -> tuple[dict[str, Any], str]:
    """The request of ``call`` as a call cache keys it, and its key there.

    The one way a call is keyed: the call cache keys each call so, and the studio each
    call it records (a fork replays the recorded calls through a call cache, by their
    keys). The request is :func:`canonical_request`'s with ``stable=True``.

    Args:
        provider: The agent's provider (not a wrapper of it: the meter's ``wrapped``).
        call: The call.
        options: The agent's options (the API they pick is part of the key).
        namespace: The cache's namespace.

    Raises:
        LLMConfigurationError: for a value whose ``repr`` names its address in memory.
    """
    request = canonical_request(provider, call, options, stable=True)
    return request, request_key(request, namespace)


def canonical_options(
    options: Mapping[str, object],
    *,
    stable: bool = False,
    subject: str = "a call",
    label: str = "call option",
) -> dict[str, Any]:
    """``options`` as JSON values, as a request a call cache keys holds them.

    The conversion :func:`canonical_request` makes of a call's options, for the options of
    another request (a realtime session's): a set as its items in a fixed order, a
    dataclass as its fields, the values of ``extra_headers`` hashed.

    Args:
        options: The options, by name.
        stable: Refuse a value whose ``repr`` names its address in memory.
        subject: What the options are of, as the refusal names it (``"a realtime session"``).
        label: What the refusal calls one option (``"session option"``).

    Raises:
        LLMConfigurationError: with ``stable``, for a value written as a ``repr`` that names
            its address in memory.
    """
    plain = _StablePlain(subject) if stable else _Plain()
    return _options(options, plain, label)


def _api(provider: object, options: LLMOptions | None) -> str | None:
    """The API ``provider`` sends a call with ``options`` to, if not its default one."""
    named = getattr(provider, "request_api", None)
    if options is None or not callable(named):
        return None
    api = named(options)
    return api if isinstance(api, str) else None


def _options(options: Mapping[str, object], plain: _Plain, label: str) -> dict[str, Any]:
    """The call options as JSON values, the values of ``extra_headers`` hashed.

    A header may carry a secret (a key, a token): the recorded request keeps a hash of it,
    enough to tell two values apart, never the value.
    """
    shown: dict[str, Any] = {
        str(name): plain(value, f"its {label} {name!r}") for name, value in options.items()
    }
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


def _item(item: object, plain: _Plain) -> dict[str, Any]:
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
    return {"item": plain(item, "its prompt")}


def _image(image: ImagePart) -> dict[str, Any]:
    shown: dict[str, Any] = {"media_type": image.media_type, "detail": image.detail}
    if image.data is not None:
        shown["sha256"] = hashlib.sha256(image.data).hexdigest()
    else:
        shown["url"] = image.url
    return shown


class _Plain:
    """Writes a value as JSON values (see :meth:`__call__`)."""

    def __call__(self, value: object, where: str) -> Any:
        """``value`` as JSON values: mappings (keys as text), sequences, scalars; else its repr.

        A set is its items in the order of their JSON texts (a set's own order changes from
        one process to the next, with the hash seed of its texts), and a dataclass its fields
        (its repr may name its address, another in each process). ``where`` names the value
        in the request, for an error.
        """
        if value is None or isinstance(value, (str, bool, int, float)):
            return value
        if isinstance(value, Mapping):
            return {str(key): self(item, where) for key, item in value.items()}
        if isinstance(value, (bytes, bytearray)):
            return {"sha256": hashlib.sha256(bytes(value)).hexdigest()}
        if isinstance(value, BaseModel):
            return self(value.model_dump(mode="json"), where)
        if isinstance(value, Sequence):
            return [self(item, where) for item in value]
        if isinstance(value, (set, frozenset)):
            items = [self(item, where) for item in value]
            return {"set": sorted(items, key=lambda item: json.dumps(item, sort_keys=True))}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
            return {type(value).__qualname__: self(fields, where)}
        return self.shown(value, where)

    def shown(self, value: object, where: str) -> str:
        """A value of no kind above: its ``repr``."""
        return repr(value)


class _StablePlain(_Plain):
    """Writes a value as JSON values that are the same in every process, or refuses it."""

    def __init__(self, subject: str = "a call") -> None:
        self.subject = subject
        """What the values are of, as a refusal names it (``"a call"``)."""

    def shown(self, value: object, where: str) -> str:
        """Its ``repr``, unless that names its address in memory.

        Raises:
            LLMConfigurationError: for a ``repr`` that names an address.
        """
        shown = repr(value)
        if _ADDRESS.search(shown):
            raise LLMConfigurationError(
                f"The call cache cannot key {self.subject}: {where} holds {a_class(type(value))} "
                f"({shown:.80}): its repr names its address in memory, another in every "
                "process, so its recording would never be replayed. Give the value as plain "
                "values (a dict, a list, a str, a number), a dataclass or a pydantic model, or "
                "give its class a __repr__ that shows its value and nothing else."
            )
        return shown


_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")
"""An address in memory in a ``repr`` (``<Route object at 0x7f3a...>``, ``<function f at
0x...>``): the default ``repr`` of an object, of a function, of a method."""
