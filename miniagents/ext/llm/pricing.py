"""What an LLM call cost, in US dollars, by the price table of the ``genai-prices`` package.

The table is the package's own, kept up to date by its maintainers: no price is written
here. A model the table does not know has no price (``None``), never a guess. A provider
says whose prices it pays with an optional ``price_provider`` attribute (genai-prices'
provider id: ``"openai"`` for ``OpenAIProvider``, ``"anthropic"`` for
``AnthropicProvider``); without one (the offline model, your own provider), the table
finds the provider from the model's name, so an offline model named after a real one is
priced as it would be (an estimate of what a run would cost), and ``"offline"`` is not.

::

    TokenUsage(input_tokens=1000, output_tokens=100, cached_input_tokens=200)
    + "gpt-4o-mini" of "openai"   ->  cost_usd(...) == 0.000195

``genai-prices`` comes with the ``openai``, ``anthropic`` and ``all`` extras; without it
every cost is ``None``.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Protocol, TypeGuard

from miniagents.ext.llm.messages import TokenUsage
from miniagents.promising.lowlevel import logger

if TYPE_CHECKING:
    from types import ModuleType

__all__ = [
    "ReportedAudio",
    "ReportedFinish",
    "ReportedTokens",
    "audio_cost_usd",
    "cost_usd",
    "finish_usage",
    "is_priced",
    "is_token_count",
    "modal_cost_usd",
    "output_token_price",
    "price_provider_of",
    "priced_model",
    "prices_installed",
    "reported_count",
    "reported_usage",
]

_MILLION = 1_000_000


def price_provider_of(provider: object) -> str | None:
    """A provider's ``price_provider`` (genai-prices' provider id), or ``None``."""
    given = getattr(provider, "price_provider", None)
    return given if isinstance(given, str) else None


class _ReportedCounts(Protocol):
    """The counts every part of a call reports: the whole call's, or its audio's."""

    @property
    def input_tokens(self) -> int | None:
        """The prompt's tokens (of that part), the cached ones included."""
        ...

    @property
    def output_tokens(self) -> int | None:
        """The reply's tokens (of that part), the reasoning ones included."""
        ...

    @property
    def cached_input_tokens(self) -> int | None:
        """Prompt tokens (of that part) read from the provider's cache."""
        ...


class ReportedTokens(_ReportedCounts, Protocol):
    """The tokens a call reported (a provider's ``Finish`` is one)."""

    @property
    def cache_write_tokens(self) -> int | None:
        """Prompt tokens written to the provider's cache."""
        ...

    @property
    def reasoning_tokens(self) -> int | None:
        """Output tokens spent reasoning."""
        ...


class ReportedAudio(_ReportedCounts, Protocol):
    """The tokens of audio a call reported, each part of the call's own (``AudioTokens``)."""


class ReportedFinish(ReportedTokens, Protocol):
    """The end of a call: its tokens, and how it was served (a provider's ``Finish``)."""

    @property
    def audio(self) -> ReportedAudio | None:
        """Its tokens of audio (``None``: a text call, priced at the text rates)."""
        ...

    @property
    def model(self) -> str | None:
        """The model that answered, as the API named it (``None``: not said)."""
        ...

    @property
    def batch_id(self) -> str | None:
        """The provider's batch the reply came in (``None``: a live call)."""
        ...

    @property
    def replayed(self) -> bool:
        """Whether a call cache replayed the reply (no request was made)."""
        ...


def reported_usage(reported: ReportedTokens) -> TokenUsage:
    """The ``TokenUsage`` of the tokens a call reported (no cost yet: see :func:`cost_usd`).

    A count that is not a whole number of at least 0 (a misbehaving server's) is unknown,
    ``None``: it is neither priced nor taken off a budget's totals.
    """
    return TokenUsage(
        input_tokens=reported_count(reported.input_tokens),
        output_tokens=reported_count(reported.output_tokens),
        cached_input_tokens=reported_count(reported.cached_input_tokens),
        cache_write_tokens=reported_count(reported.cache_write_tokens),
        reasoning_tokens=reported_count(reported.reasoning_tokens),
    )


def is_token_count(value: object) -> TypeGuard[int]:
    """Whether ``value`` is a count of tokens: an ``int`` (no subclass of it) of at least 0.

    A bool is no count (``True`` is an ``int`` to Python, not a number of tokens), nor is
    ``1.0``, ``-5`` or ``"200"``. What a provider reports is read by it
    (:func:`reported_count`), and so are the counts of an eval report read back
    (``miniagents.evals.tree.check_amounts``).
    """
    return type(value) is int and value >= 0


def reported_count(reported: object) -> int | None:
    """A reported token count, or ``None`` if it is no count (see :func:`is_token_count`).

    A provider's link reads the raw counts of its API's wire through it; a count that is
    none is logged (a ``WARNING``) and taken as unknown.
    """
    if reported is None or is_token_count(reported):
        return reported
    logger.warning("A provider reported %r tokens; the count is taken as unknown.", reported)
    return None


def cost_usd(
    model: str, usage: TokenUsage, provider: str | None = None, *, batch: bool = False
) -> float | None:
    """What ``usage`` of ``model`` cost in US dollars; ``None`` if unknown.

    Args:
        model: The model's name, as the provider knows it.
        usage: The tokens; without ``input_tokens`` and ``output_tokens`` there is no cost.
        provider: genai-prices' id of the provider (``None``: found from the model's name).
        batch: Price the call as one of a batch (the providers' batch APIs: half price at
            OpenAI and Anthropic), by the table's batch prices; a model the table has no
            batch price for is priced as a live call.
    """
    if usage.input_tokens is None or usage.output_tokens is None:
        return None
    if not is_priced(model, provider):  # known at once: the table is asked once per model
        return None
    return _cost(
        model,
        provider,
        usage.input_tokens,
        usage.output_tokens,
        usage.cached_input_tokens or 0,
        usage.cache_write_tokens or 0,
        batch,
    )


def priced_model(finish: ReportedFinish, model: str, provider: str | None = None) -> str:
    """The model a finished call is priced as: the one that answered, if the table knows it.

    An API may answer with another name than the one asked for (``"gpt-4o"`` answered as
    ``"gpt-4o-2024-05-13"``, a dated version, which may have prices of its own): the call
    is priced as the model that answered when the price table knows that name, else as the
    model asked for (an answer that names no model, or one the table does not know, as a
    fine-tuned model's or an OpenAI-compatible server's own name).

    Args:
        finish: The call's end (a provider's ``Finish``; its ``model``: the one that answered).
        model: The model the call asked for.
        provider: genai-prices' id of the provider (``None``: found from the model's name).
    """
    answered = finish.model
    if answered and answered != model and is_priced(answered, provider):
        return answered
    return model


def finish_usage(finish: ReportedFinish, model: str, provider: str | None = None) -> TokenUsage:
    """The usage a finished call reports, with what it cost (``None`` if unknown).

    The one pricing of a finished call, the budgets', the evals' trees' and the studio's
    alike: a reply a call cache replayed cost nothing (0.0, its tokens kept), one that came
    in a batch is priced at the batch price (see :func:`cost_usd`), and the call is priced
    as the model :func:`priced_model` chooses (the one that answered, if the table knows
    it, else the one asked for). A reply that says its audio (``finish.audio``: a realtime
    reply's) is priced as a realtime session prices it, by :func:`audio_cost_usd`.

    Args:
        finish: The call's end (a provider's ``Finish``).
        model: The model the call asked for (``LLMCall.model``).
        provider: genai-prices' id of the provider (``None``: found from the model's name).
    """
    usage = reported_usage(finish)
    if finish.replayed:
        return usage.model_copy(update={"cost_usd": 0.0})
    priced = priced_model(finish, model, provider)
    batch = finish.batch_id is not None
    audio = finish.audio
    if audio is None:
        cost = cost_usd(priced, usage, provider, batch=batch)
    else:
        cost = audio_cost_usd(priced, usage, audio, provider, batch=batch)
    return usage if cost is None else usage.model_copy(update={"cost_usd": cost})


def audio_cost_usd(
    model: str,
    usage: TokenUsage,
    audio: ReportedAudio,
    provider: str | None = None,
    *,
    batch: bool = False,
) -> float | None:
    """What a reply with audio cost in US dollars (a realtime reply); ``None`` if unknown.

    The one rule of a reply with audio, a realtime session's and a ``Finish``'s
    (:func:`finish_usage`) alike: each audio count is priced at its own rate
    (:func:`modal_cost_usd`), so one that is unknown (not said, or no count: see
    :func:`reported_count`) leaves the price unknown, never priced as text (audio costs
    several times what text does). Only the cached audio may go unsaid where no prompt
    token was cached: then it is none.

    Args:
        model: The model's name, as the provider knows it.
        usage: The reply's tokens (its counts checked: :func:`reported_usage`); the audio
            ones are part of them.
        audio: The reply's tokens of audio.
        provider: genai-prices' id of the provider (``None``: found from the model's name).
        batch: Price the reply as one of a batch (see :func:`cost_usd`).
    """
    given, made = reported_count(audio.input_tokens), reported_count(audio.output_tokens)
    cached = reported_count(audio.cached_input_tokens)
    if cached is None and not usage.cached_input_tokens:
        cached = 0  # (no cached prompt: none of it audio)
    if usage.input_tokens is None or usage.output_tokens is None:
        return None
    if given is None or made is None or cached is None:
        return None
    return modal_cost_usd(
        model,
        provider,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_input_tokens=usage.cached_input_tokens or 0,
        cache_write_tokens=usage.cache_write_tokens or 0,
        input_audio_tokens=given,
        output_audio_tokens=made,
        cached_audio_tokens=cached,
        batch=batch,
    )


def modal_cost_usd(
    model: str,
    provider: str | None = None,
    *,
    input_tokens: int,
    output_tokens: int,
    cached_input_tokens: int = 0,
    cache_write_tokens: int = 0,
    input_audio_tokens: int = 0,
    output_audio_tokens: int = 0,
    cached_audio_tokens: int = 0,
    batch: bool = False,
) -> float | None:
    """What a call with audio cost in US dollars (a realtime reply); ``None`` if unknown.

    The audio counts are part of the totals (as the realtime APIs report them: OpenAI's
    ``input_token_details.audio_tokens`` is part of ``input_tokens``), and each is priced at
    its own rate (audio costs several times what text does).

    Args:
        model: The model's name, as the provider knows it.
        provider: genai-prices' id of the provider (``None``: found from the model's name).
        input_tokens: Every prompt token (text, audio, images; the cached ones included).
        output_tokens: Every reply token (text and audio).
        cached_input_tokens: Prompt tokens read from the cache (audio ones included).
        cache_write_tokens: Prompt tokens written to the cache, priced at the model's
            cache-write rate (as :func:`cost_usd` prices them; none: the prompt's rate).
        input_audio_tokens: Prompt tokens of audio.
        output_audio_tokens: Reply tokens of audio.
        cached_audio_tokens: Cached prompt tokens of audio.
        batch: Price the call as one of a batch (see :func:`cost_usd`).
    """
    if not is_priced(model, provider):
        return None
    prices = _prices()
    assert prices is not None  # (is_priced)
    usage = prices.Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cached_input_tokens or None,
        cache_write_tokens=cache_write_tokens or None,
        input_audio_tokens=input_audio_tokens or None,
        output_audio_tokens=output_audio_tokens or None,
        # (said, 0 too, of a cached prompt: genai-prices refuses an audio prompt's cache
        # read that does not say how much of it was audio)
        cache_audio_read_tokens=cached_audio_tokens if cached_input_tokens else None,
    )
    try:
        context = _BATCH if batch else None
        calculation = prices.calc_price(usage, model, provider_id=provider, price_context=context)
    except (LookupError, ValueError):
        return None
    return float(calculation.total_price)


def prices_installed() -> bool:
    """Whether the ``genai-prices`` package is installed (without it, nothing is priced)."""
    return _prices() is not None


def is_priced(model: str, provider: str | None = None) -> bool:
    """Whether the price table knows ``model`` (of ``provider``)."""
    return _cost(model, provider, 0, 0, 0, 0) is not None


@functools.lru_cache(maxsize=4096)  # read before each call's request (a cached one: no call)
def output_token_price(model: str, provider: str | None = None) -> float | None:
    """The price of one output token of ``model`` in US dollars, or ``None`` if unknown."""
    price = _cost(model, provider, 0, _MILLION, 0, 0)
    return None if price is None else price / _MILLION


@functools.lru_cache(maxsize=4096)
def _cost(
    model: str,
    provider: str | None,
    given: int,
    made: int,
    read: int,
    written: int,
    batch: bool = False,
) -> float | None:
    prices = _prices()
    if prices is None:
        return None
    usage = prices.Usage(
        input_tokens=given,
        output_tokens=made,
        cache_read_tokens=read or None,
        cache_write_tokens=written or None,
    )
    try:
        context = _BATCH if batch else None
        calculation = prices.calc_price(usage, model, provider_id=provider, price_context=context)
    except (LookupError, ValueError):  # not in the table (or counts it cannot price)
        return None
    return float(calculation.total_price)


_BATCH = {"processing": "batch"}
"""genai-prices' price context of a call made in a batch (its batch prices)."""


@functools.cache
def _prices() -> ModuleType | None:
    try:
        import genai_prices
    except ImportError:
        return None
    return genai_prices


def _load_the_table() -> None:
    """Load the price table now, with this module, rather than at the first call of a model.

    Importing ``genai-prices`` and its first lookup (which reads the table of every
    provider) take about 50 ms; done at the first call, before its request, they delayed that
    call's first token by as much (issue 24). A model's prices are then cached per model.
    """
    _cost("", None, 0, 0, 0, 0)


_load_the_table()
