"""Reading a reply sequence in tests: its texts in order, and the error that ends it."""

from __future__ import annotations

from miniagents import MessageSequencePromise


async def texts(sequence: MessageSequencePromise) -> list[str | None]:
    """The texts of a reply sequence, in order, consumed message by message."""
    return [(await promise).text async for promise in sequence]


async def texts_until_error(
    sequence: MessageSequencePromise,
    catching: tuple[type[BaseException], ...] = (Exception,),
) -> tuple[list[str | None], BaseException | None]:
    """The texts before the error that ends ``sequence`` (if any, of ``catching``), and it."""
    seen: list[str | None] = []
    try:
        async for promise in sequence:
            seen.append((await promise).text)
    except catching as error:
        return seen, error
    return seen, None
