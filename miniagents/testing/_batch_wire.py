"""What the fake server's batch APIs share: answering a request, and paging a listing.

OpenAI's Files and Batch APIs (``_openai_batch_wire``), Anthropic's Message Batches
(``_anthropic_batch_wire``) and Gemini's Batch API (``_gemini_batch_wire``) each route a
request to an answer, a status and a JSON object or the bytes of a file; :class:`BatchWire`
writes that answer (or none, for a creation the test stalls), and :func:`page` cuts a
listing of batches the way the APIs do (the latest first, ``limit`` of them after the id
the client gives); :func:`iso_time` writes a time as Anthropic's and Gemini's do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs

from miniagents.testing._batches import BatchProvider, FakeBatch, FakeBatches, Unanswered
from miniagents.testing._http import Exchange
from miniagents.testing._wire import Wire, dumps

__all__ = ["Answer", "BatchWire", "iso_time", "page"]

Answer = tuple[int, dict[str, Any] | bytes]
"""A status, and a JSON object or the bytes of a file."""


class BatchWire:
    """A batch API of a fake server: it routes a request (``route``) and writes the answer."""

    provider: ClassVar[BatchProvider]
    """``openai``, ``anthropic`` or ``gemini``."""
    binary_type: ClassVar[str]
    """The content type of a file's bytes."""
    request_id_header: ClassVar[str]
    """The header that carries a request's id."""
    paths: ClassVar[tuple[str, ...]]
    """The paths of the API's collections (``/v1/batches``, ...)."""
    patterns: ClassVar[tuple[re.Pattern[str], ...]]
    """The paths of the API's objects (a batch, a file), as patterns."""
    _wire: ClassVar[Wire]
    """The wire format of the API's requests and errors (of an API of one endpoint)."""

    def __init__(self, batches: FakeBatches) -> None:
        self._batches = batches

    @classmethod
    def handles(cls, route: str) -> bool:
        """Whether ``route`` (a path) is the API's."""
        return route in cls.paths or any(pattern.fullmatch(route) for pattern in cls.patterns)

    def claims(self, route: str, headers: Mapping[str, str]) -> bool:
        """Whether a request to ``route`` with ``headers`` (lower-cased) is the API's."""
        return self.handles(route)

    def route(
        self, method: str, route: str, query: str, headers: Mapping[str, str], raw_body: bytes
    ) -> Answer:
        """The answer to one request (raises ``Unanswered`` for a creation left unanswered)."""
        raise NotImplementedError

    def answer(
        self,
        exchange: Exchange,
        method: str,
        route: str,
        query: str,
        headers: Mapping[str, str],
        raw_body: bytes,
    ) -> None:
        """Answer one request of the API (a 404 for a method or an id it does not have)."""
        try:
            status, payload = self.route(method, route, query, headers, raw_body)
        except Unanswered:  # the batch is made; its maker never hears of it
            exchange.wait(None)
            return
        if isinstance(payload, bytes):
            head = {"Content-Type": self.binary_type, "Content-Length": str(len(payload))}
            exchange.send_head(status, head)
            exchange.write(payload)
            return
        exchange.send_body(status, dumps(payload), {self.request_id_header: "req_fake_batches"})

    def _creation(self, raw_body: bytes, not_json: str) -> tuple[Any, Answer | None]:
        """The JSON body of a creation, or the answer that refuses it: the error the test
        scripted (``FakeBatches.refuse``), or a 400 saying ``not_json``."""
        refused = self._batches.take_refusal()
        if refused is not None:
            return None, (refused[0], self._error(*refused))
        try:
            return json.loads(raw_body), None
        except ValueError:
            return None, (400, self._error(400, not_json))

    def _known(self, batch_id: str) -> FakeBatch | None:
        """The batch ``batch_id``, not counted as a look (``None``: no such batch)."""
        return next((batch for batch in self._batches.created if batch.id == batch_id), None)

    def _look(self, batch_id: str, shown: Callable[[FakeBatch], dict[str, Any]]) -> Answer:
        """The batch as ``shown`` (or the failure a test scripted for a look, or a 404)."""
        failing = self._batches.take_look_failure()
        if failing is not None:
            return failing, self._error(failing, "The batch could not be read.")
        batch = self._batches.look(batch_id)
        return (200, shown(batch)) if batch else self._missing(batch_id)

    def _delete(self, batch_id: str, deleted: dict[str, Any]) -> Answer:
        """Delete a batch that has ended and answer ``deleted`` (a 404 for an id not
        known, a 400 for a batch still running)."""
        batch = self._batches.delete(batch_id)
        if batch is None:
            return self._missing(batch_id)
        if not batch.ended:
            return 400, self._error(400, "A batch must end before it is deleted: cancel it.")
        return 200, deleted

    def _cancelled(self, batch_id: str, shown: Callable[[FakeBatch], dict[str, Any]]) -> Answer:
        """Cancel a batch and answer it as ``shown`` (a 404 for an id not known)."""
        batch = self._batches.cancel(batch_id)
        return (200, shown(batch)) if batch is not None else self._missing(batch_id)

    def _missing(self, batch_id: str) -> tuple[int, dict[str, Any]]:
        """The 404 for a batch id not known."""
        return 404, self._error(404, f"No batch {batch_id!r}.")

    def _error(self, status: int, message: str | None) -> dict[str, Any]:
        """The API's error body."""
        return self._wire.error_body(status, message, "req_fake_batches")


def page(
    batches: FakeBatches, provider: BatchProvider, query: str, after_name: str
) -> tuple[list[FakeBatch], bool]:
    """The page of the provider's batches a listing asks for (``limit``, and the id named
    ``after_name``), and whether more follow."""
    params = parse_qs(query)
    limit = int(params.get("limit", ["20"])[0])
    after = params.get(after_name, [None])[0]
    listed = batches.listed(provider)
    if after is not None:
        ids = [batch.id for batch in listed]
        listed = listed[ids.index(after) + 1 :] if after in ids else []
    return listed[:limit], len(listed) > limit


def iso_time(seconds: float) -> str:
    """A time (seconds since the epoch) as the APIs write it: ISO 8601 in UTC, with ``Z``."""
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")
