"""What the batch APIs of the providers' own SDKs share: the client and its capturing copy.

OpenAI's and Anthropic's SDKs are alike where batch mode meets them: the agent's provider
names the client a call uses (``client(options)``, its ``async_client`` or the context's),
a copy of it made with ``with_options`` sends through batch mode's HTTP client, and the
agent's options take that copy as their ``async_client``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import replace
from typing import Any

from miniagents.promising.lowlevel import logger

__all__ = ["SDKBatchAPI", "afirst_among_latest", "aresult_lines"]

LATEST: int = 100
"""How many of the latest batches a lookup by tag reads (one page of the listing)."""


class SDKBatchAPI:
    """The part of a ``BatchAPI`` common to the providers whose options carry an SDK client.

    A subclass names its provider's class (:meth:`provider_class`, imported when first
    asked) and adds the rest of ``BatchAPI``.
    """

    def provider_class(self) -> type[Any]:
        """The class of the agents' provider whose calls this API runs."""
        raise NotImplementedError

    def accepts(self, provider: object) -> bool:
        """Whether ``provider`` is of :meth:`provider_class` (a subclass is another's)."""
        return type(provider) is self.provider_class()

    def client(self, options: Any) -> Any:
        """The client the provider's call would use: ``async_client``, else the context's."""
        return self.provider_class().client(options)  # (a static method: no provider made)

    def capturing(self, client: Any, http_client: Any) -> Any:
        """A copy of ``client`` sending through ``http_client``, without retries of its own."""
        return client.with_options(http_client=http_client, max_retries=0)

    def options_with(self, options: Any, client: Any) -> Any:
        """``options`` with ``client`` (and the client's own retries and timeout)."""
        return replace(options, async_client=client, max_retries=None, timeout=None)


async def afirst_among_latest(
    batches: AsyncIterable[Any], tagged: Callable[[Any], bool]
) -> Any | None:
    """The first of the latest :data:`LATEST` ``batches`` that ``tagged`` accepts, else ``None``."""
    seen = 0
    async for batch in batches:
        if tagged(batch):
            return batch
        seen += 1
        if seen >= LATEST:
            break
    return None


async def aresult_lines(
    lines: AsyncIterable[str], where: str
) -> AsyncIterator[tuple[dict[str, Any], str]]:
    """The results of a JSONL file (``where`` it is), each with where it is in the file.

    A line that is not a JSON object with a ``custom_id`` is logged (naming its place) and
    skipped: the lines after it still give their results, and its own request ends
    without one.
    """
    number = 0
    async for line in lines:
        number += 1
        if not line.strip():
            continue
        place = f"line {number} of {where}"
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        if not isinstance(item, dict) or not isinstance(item.get("custom_id"), str):
            logger.warning(
                "Batch mode skipped %s: it is not a JSON object with a custom_id (%r). Its "
                "request ends without a result.",
                place,
                line[:200],
            )
            continue
        yield item, place
