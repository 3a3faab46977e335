"""Calling a provider SDK: importing it when needed, and the arguments of its API call.

What the SDK-backed providers (OpenAI, Anthropic, Gemini, Bedrock) share, their options'
base class :class:`SDKOptions` too; their errors are translated in
:mod:`miniagents.ext.llm.sdk_errors`.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import math
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar
from weakref import WeakKeyDictionary, WeakSet

from miniagents.arguments import a_class, check_count, check_seconds
from miniagents.ext.llm.errors import (
    LLMConfigurationError,
    LLMResponseError,
    LLMSDKMissingError,
)
from miniagents.ext.llm.provider import (
    LLMOptions,
    _memo_of,
    call_option,
    check_kind,
    check_sampling,
)
from miniagents.ext.tools.tool import Tool

__all__ = [
    "SDKOptions",
    "accepts",
    "base_url_source",
    "check_base_url",
    "check_client",
    "check_one_reply",
    "client_with_options",
    "import_sdk",
    "recent_http_error",
    "sdk_arguments",
    "tool_declaration",
    "whole_reply",
]


def import_sdk(module: str, provider: str) -> Any:
    """Import a provider SDK when a call needs it.

    Raises:
        LLMSDKMissingError: if it is not installed (also an ``ImportError``), saying how to
            install it.
    """
    loaded = sys.modules.get(module)  # imported: no import machinery on every call
    if loaded is not None and not getattr(loaded.__spec__, "_initializing", False):
        return loaded
    try:
        return importlib.import_module(module)
    except ImportError as error:
        extra = next(
            (extra for name, extra in _EXTRAS.items() if f"{module}.".startswith(f"{name}.")),
            module,
        )
        raise LLMSDKMissingError(
            f'The {provider} agent needs the {provider} SDK: pip install "miniagents[{extra}]"'
        ) from error


_EXTRAS = {"google.genai": "gemini", "aiobotocore": "bedrock"}
"""The extra of each SDK whose module is not named after it."""


def check_client(client: object, sdk_classes: tuple[str, ...], provider: str, alias: str) -> None:
    """Refuse an ``async_client`` that is not an async client of the SDK (``None``: none given).

    Args:
        client: The agent's ``async_client``.
        sdk_classes: The SDK's async client classes, the first the usual one, e.g.
            ``("anthropic.AsyncAnthropic", "anthropic.AsyncAnthropicBedrock")``; a class
            the installed SDK lacks is left out.
        provider: The provider's name, e.g. "OpenAI".
        alias: The agent's alias.

    Raises:
        LLMConfigurationError: for another object (a client of the other SDK, a sync client).
        LLMSDKMissingError: if the SDK is not installed (the client cannot be one of its).
    """
    if client is None:
        return
    kinds: list[type] = []
    for qualified in sdk_classes:
        module, name = qualified.rsplit(".", 1)
        kind = getattr(import_sdk(module, provider), name, None)
        if kind is not None and not isinstance(kind, type):  # a stand-in (a test's): no check
            return
        if kind is not None:
            kinds.append(kind)
    check_kind(
        client,
        tuple(kinds),
        alias,
        "async_client",
        a_class(" or ".join(sdk_classes)),
        f"async_client={sdk_classes[0]}()",
    )


@dataclass(frozen=True, kw_only=True)
class SDKOptions(LLMOptions):
    """The arguments of an agent that calls its model through an SDK client, its base class.

    A subclass (``OpenAIOptions``, ``AnthropicOptions``, ...) narrows ``async_client`` to
    its SDK's clients, names them in ``client_classes``, and adds the options of its API.

    Attributes:
        async_client: The SDK's async client to use instead of the default one.
        temperature: The sampling temperature: higher is more random.
        top_p: Sample only from the most likely tokens that make up this probability.
        max_retries: How many times the SDK retries a request that failed before its
            reply began (a connection error, a timeout, HTTP 408, 409, 429 or 5xx), with
            backoff; ``None``: the client's own setting (2 unless the client was made with
            another). ``0`` fails at once: what an agent under ``fallback_agent`` wants.
        timeout: Seconds the SDK waits to connect, and then for each piece of the reply,
            before the request fails (and is retried, then fails with an
            ``LLMTimeoutError``); ``None``: the client's own setting (10 minutes unless
            the client was made with another).
    """

    client_classes: ClassVar[tuple[str, ...]] = ()
    """The SDK's async client classes, the usual one first (see :func:`check_client`)."""
    sdk_name: ClassVar[str] = ""
    """The provider's name in errors, e.g. "OpenAI"."""
    own_setting: ClassVar[str] = "the client's own setting"
    """What a ``max_retries`` or ``timeout`` of ``None`` leaves them to, in errors."""
    most_temperature: ClassVar[float] = math.inf
    """The highest ``temperature`` the provider's API takes (the top of its documented
    range: OpenAI's and Gemini's 2, Anthropic's and Bedrock's Converse 1)."""
    api_name: ClassVar[str] = ""
    """Whose API the ranges are, in errors, if not the SDK's (an OpenAI-compatible server's
    name, e.g. "Groq")."""

    async_client: object = None
    temperature: float | None = call_option(None)
    top_p: float | None = call_option(None)
    max_retries: int | None = None
    timeout: float | None = None

    def check(self, alias: str) -> None:
        """Refuse an argument of the wrong kind: every LLM agent's, and every SDK agent's.

        Those are ``async_client``, ``temperature``, ``top_p``, ``max_retries`` and
        ``timeout``.

        Raises:
            LLMConfigurationError: for one of the wrong kind, naming it and the fix.
        """
        super().check(alias)
        check_client(self.async_client, self.client_classes, self.sdk_name, alias)
        hottest = (self.api_name or self.sdk_name, self.most_temperature)
        check_sampling(alias, temperature=self.temperature, top_p=self.top_p, hottest=hottest)
        check_retries_and_timeout(self.max_retries, self.timeout, alias.lower(), self.own_setting)


def sdk_arguments(
    create: Callable[..., object],
    options: LLMOptions,
    what: str,
    typed: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """The keyword arguments for the SDK's API call ``create``, from the agent's options.

    Typed call options go under their own names; those the installed SDK does not name
    (e.g. ``temperature`` for an SDK version without it) go in ``extra_body``, so they
    reach the API either way. ``extra_options`` go unchanged, and must be arguments of
    ``create``.

    Args:
        create: The SDK method, e.g. ``client.chat.completions.create``.
        options: The agent's options.
        what: How to name ``create`` in an error, e.g. "The OpenAI SDK's chat.completions".
        typed: The typed call options by the API's names, when they are not the options'
            own (default: ``options.typed_call_options()``).

    Raises:
        LLMConfigurationError: if ``extra_options`` has an argument ``create`` does not take.
    """
    if typed is None and not options.extra_options:  # the same for every call: worked out once
        memo = _memo_of(options)
        key = ("sdk_arguments", getattr(create, "__func__", create))
        known = memo.get(key)
        if known is None:
            known = memo[key] = _sdk_arguments(create, options, what, typed)
        return dict(known)
    return _sdk_arguments(create, options, what, typed)


def _sdk_arguments(
    create: Callable[..., object],
    options: LLMOptions,
    what: str,
    typed: Mapping[str, object] | None,
) -> dict[str, object]:
    accepts = _accepts(create)
    arguments: dict[str, object] = {}
    body: dict[str, object] = {}
    for name, value in (options.typed_call_options() if typed is None else typed).items():
        (arguments if accepts(name) else body)[name] = value
    for name, value in (options.extra_options or {}).items():
        if not accepts(name):
            raise LLMConfigurationError(
                f"{what}.create() takes no argument {name!r} (given in extra_options). "
                "Check its spelling; to send a field the installed SDK does not know, put it "
                f"in extra_options={{'extra_body': {{{name!r}: ...}}}}."
            )
        arguments[name] = value
    if body:
        given = arguments.get("extra_body")
        arguments["extra_body"] = {**(given if isinstance(given, Mapping) else {}), **body}
    return arguments


def accepts(create: Callable[..., object], name: str) -> bool:
    """Whether the SDK method ``create`` takes the keyword argument ``name``."""
    return _accepts(create)(name)


_ACCEPTED: WeakKeyDictionary[Callable[..., object], Callable[[str], bool]] = WeakKeyDictionary()
"""What each SDK function takes, read once: ``inspect.signature`` costs more than the rest
of preparing a call (about 0.1 ms, on every call of the model)."""


def _accepts(create: Callable[..., object]) -> Callable[[str], bool]:
    """Which keyword arguments ``create`` takes (all of them, if it cannot tell)."""
    function = getattr(create, "__func__", create)  # a bound method: its class's function
    try:
        known = _ACCEPTED.get(function)
    except TypeError:  # not weakly referable: read each time
        return _read_accepts(create)
    if known is None:
        known = _ACCEPTED[function] = _read_accepts(create)
    return known


def _read_accepts(create: Callable[..., object]) -> Callable[[str], bool]:
    try:
        parameters = inspect.signature(create).parameters.values()
    except (TypeError, ValueError):
        return lambda name: True
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return lambda name: True
    names = {
        parameter.name
        for parameter in parameters
        if parameter.kind
        in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    return names.__contains__


# -- the client's retries and timeout ------------------------------------------------------

_COPIES: WeakKeyDictionary[Any, dict[tuple[int | None, float | None], Any]] = WeakKeyDictionary()
"""The copies of each client made for other retries or timeouts (a copy per setting)."""

_MAX_COPIES = 32
"""How many copies of one client are kept, the latest used (a timeout computed per call,
from a deadline, would otherwise keep a copy per value for the client's life)."""


def client_with_options(
    client: Any,
    max_retries: int | None,
    timeout: float | None,
    agent: str,
    base_url_from: str = "",
) -> Any:
    """``client``, or a copy of it (``with_options``) with the agent's retries and timeout.

    Both SDKs copy a client cheaply (the copy shares its connection pool); a copy is made
    once per client and setting, and the 32 latest used are kept.

    Args:
        client: The SDK client (``openai.AsyncOpenAI``, ``anthropic.AsyncAnthropic``).
        max_retries: How many times the SDK retries a failed request (``None``: the
            client's own setting).
        timeout: Seconds the SDK waits for each request (``None``: the client's own).
        agent: How to name the agent in an error, e.g. "openai_agent".
        base_url_from: Where the client's base URL was set, for the error about a
            malformed one (see :func:`base_url_source`).

    The call's HTTP errors are noted from here on, for :func:`recent_http_error`.

    Raises:
        LLMConfigurationError: for a closed client, a base URL that is not an http(s) URL
            (checked once per HTTP client: no request could reach it), a ``max_retries`` that is
            not a whole number of at least 0, or a ``timeout`` that is not a positive number
            of seconds.
    """
    closed = getattr(client, "is_closed", None)
    if closed is not None and closed():
        raise LLMConfigurationError(
            f"The client of {agent} is closed (its async with block ended, or close() was "
            "called), so it can send no request: give the agent a client that stays open "
            f"while it runs, {agent}.fork(async_client=...), or none, for the one the "
            "MiniAgents context makes from the environment."
        )
    _note_http_errors(client, agent, base_url_from)
    if max_retries is None and timeout is None:
        return client
    check_retries_and_timeout(max_retries, timeout, agent)
    key = (max_retries, None if timeout is None else float(timeout))
    try:
        copies = _COPIES.setdefault(client, {})
    except TypeError:  # a client that cannot be weakly referenced: a copy per call
        copies = {}
    copy = copies.pop(key, None)
    if copy is None:
        settings: dict[str, object] = {}
        if max_retries is not None:
            settings["max_retries"] = max_retries
        if timeout is not None:
            settings["timeout"] = float(timeout)
        copy = client.with_options(**settings)
        if len(copies) >= _MAX_COPIES:
            del copies[next(iter(copies))]  # the one used longest ago
    copies[key] = copy  # (last: the latest used)
    return copy


def check_retries_and_timeout(
    max_retries: object, timeout: object, agent: str, default: str = "the client's own setting"
) -> None:
    """Refuse an agent's ``max_retries`` or ``timeout`` of the wrong kind (``None``: ``default``).

    Raises:
        LLMConfigurationError: for a ``max_retries`` that is not a whole number of at least
            0, or a ``timeout`` that is not a positive, finite number of seconds.
    """
    if max_retries is not None:
        fix = f"E.g. {agent}.fork(max_retries=0) for no retry, or None for {default}."
        check_count(max_retries, "max_retries", least=0, fix=fix, error=LLMConfigurationError)
    if timeout is not None:
        fix = f"E.g. {agent}.fork(timeout=30.0), or None for {default}."
        check_seconds(timeout, "timeout", fix=fix, error=LLMConfigurationError)


def base_url_source(variable: str, *, given: bool) -> str:
    """Where a client's base URL was set, in words, for :func:`check_base_url`.

    Args:
        variable: The environment variable it came from (e.g. ``"OLLAMA_BASE_URL"``), or
            that the SDK reads when a client is made without one (``"OPENAI_BASE_URL"``).
        given: Whether the client was given (``async_client=``), not made from the
            environment by the agent.
    """
    if not given:
        return f"{variable} in the environment"
    return (
        "the base_url= of the client given as async_client= (or, if it was made without "
        f"one, {variable} in the environment, which the SDK then reads)"
    )


def check_base_url(url: object, agent: str, source: str) -> None:
    """Refuse a base URL that is no http(s) URL: a scheme of the two, a host, a port if any.

    Every provider's base URL goes through it (given in the environment or with a client),
    before any request: the SDK's own error would read as a server that cannot be reached.

    Args:
        url: The URL (a ``str``, or an SDK's URL object).
        agent: How to name the agent, e.g. "ollama_agent".
        source: Where the URL was set, e.g. "OLLAMA_BASE_URL in the environment" (see
            :func:`base_url_source`).

    Raises:
        LLMConfigurationError: naming the URL, where it was set and what it must be.
    """
    text = str(url)
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018  # (a port that is no number raises here)
    except ValueError:
        parts = None
    host = "" if parts is None else parts.hostname or ""
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not host
        or any(c in host for c in "% ")
    ):
        raise LLMConfigurationError(
            f"The base URL of {agent}, {text!r}, is not an http(s) URL (http:// or "
            "https://, a host, a port if any, then the path, e.g. "
            f"https://api.example.com/v1), so no request could reach it: fix it where it was "
            f"set, {source}."
        )


def _check_base_url(client: Any, agent: str, source: str) -> None:
    """Refuse an SDK client whose base URL is no http(s) URL (see :func:`check_base_url`)."""
    url: Any = getattr(client, "base_url", None)
    if isinstance(getattr(url, "scheme", None), str):  # (else a test's stand-in: no URL)
        check_base_url(url, agent, source or "the base_url= of the client given as async_client=")


# -- the HTTP errors the SDK retries -------------------------------------------------------

_HTTP_ERROR: ContextVar[tuple[float, BaseException] | None] = ContextVar(
    "miniagents_llm_http_error", default=None
)
"""The last error response of the task's current call: when (the loop's clock), and its
error (the HTTP client's ``HTTPStatusError``)."""

_NOTING: WeakSet[Any] = WeakSet()
"""The HTTP clients whose responses are noted (each gets the hook once)."""


def _note_http_errors(client: Any, agent: str, source: str) -> None:
    """Note the error responses of ``client``'s HTTP client from now on, in each task.

    Both SDKs send through an ``httpx`` client (``client._client``); a response hook, added
    once per HTTP client, notes an error response in the task that sent the request (the
    agent's), which is all that the SDK's retries leave of it. The last call's is forgotten.
    The client's base URL is checked before its HTTP client is first noted (once: no cost
    per call).

    Raises:
        LLMConfigurationError: for a base URL that is no http(s) URL.
    """
    if _HTTP_ERROR.get() is not None:
        _HTTP_ERROR.set(None)
    http: Any = getattr(client, "_client", None)
    hooks = getattr(http, "event_hooks", None)
    if not isinstance(hooks, Mapping):
        return
    try:
        if http in _NOTING:
            return
        _check_base_url(client, agent, source)
        _NOTING.add(http)
    except TypeError:  # not weakly referable: not noted
        return
    http.event_hooks = {**hooks, "response": [*hooks.get("response", ()), _note_http_error]}


async def _note_http_error(response: Any) -> None:
    """The response hook: note an error response (its ``HTTPStatusError``)."""
    if response.status_code >= 400:
        try:
            response.raise_for_status()
        except Exception as error:
            _HTTP_ERROR.set((asyncio.get_running_loop().time(), error))


def recent_http_error(seconds: float) -> BaseException | None:
    """The error response that the current call got in the last ``seconds``, if any.

    A call that waits that long for its reply after one waits for the SDK to retry the
    request (its backoff, or the ``Retry-After`` of a 429): the error names the status.
    """
    noted = _HTTP_ERROR.get()
    if noted is None or noted[0] < asyncio.get_running_loop().time() - seconds:
        return None
    return noted[1]


def tool_declaration(tool: Tool, **schema: object) -> dict[str, Any]:
    """``tool`` as a request declares it: its name, ``schema``, then its description if any.

    ``schema``: the API's own fields, e.g. ``input_schema=tool.parameters``.
    """
    declared: dict[str, Any] = {"name": tool.name, **schema}
    if tool.description:
        declared["description"] = tool.description
    return declared


def whole_reply(reply: Any, provider: str) -> Any:
    """Return ``reply``, a reply that was not streamed, if the SDK could read it as its API's.

    An SDK hands back a body that is not JSON (a proxy's or a captive portal's web page,
    answered with status 200) as a ``str`` rather than fail.

    Raises:
        LLMResponseError: if it is such a body, showing its start.
    """
    if not isinstance(reply, str | bytes):
        return reply
    start = reply[:200]
    raise LLMResponseError(
        f"{provider} answered with a body that is not the JSON of its API: {start!r}"
        f"{' (cut)' if len(reply) > len(start) else ''}. Check that the base URL is the "
        "API's (not a web page or a proxy's sign-in page), then try again."
    )


def check_one_reply(arguments: Mapping[str, object], name: str, provider: str) -> None:
    """Refuse an ``extra_options`` entry ``name`` (``n``, ``candidate_count``) other than 1.

    An agent's reply is one answer: the answers of several choices (candidates) of one
    call would be mixed into its text.

    Raises:
        LLMConfigurationError: naming the entry and what to do instead.
    """
    count = arguments.get(name)
    if count is None or (count == 1 and not isinstance(count, bool)):
        return
    raise LLMConfigurationError(
        f"extra_options has {name}={count!r}, but an agent's reply is one answer: the "
        f"{provider} answers of several {name} would be mixed into one text. Leave {name} "
        "out, and call the agent once per answer you want (e.g. concurrently)."
    )
