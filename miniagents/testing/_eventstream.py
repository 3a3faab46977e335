"""AWS's binary event-stream framing (``application/vnd.amazon.eventstream``), as Bedrock sends it.

Each message: a prelude (its total length and its headers' length, 4 bytes each, big
endian, then their CRC32), the headers (a byte for the name's length, the name, the type
7 for a string, 2 bytes for the value's length, the value), the payload (JSON), and the
CRC32 of everything before it::

    [total][headers length][prelude crc] [:event-type=contentBlockDelta ...] {"delta": ...} [crc]

An event carries ``:message-type`` ``event`` and its ``:event-type``; an error in the
middle of a stream, ``:message-type`` ``exception`` and its ``:exception-type``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from typing import Literal

__all__ = ["frame", "stream_message"]

_STRING = 7  # the header value type of a string


def frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message of string ``headers`` and ``payload``."""
    encoded = b"".join(
        bytes([len(name)])
        + name.encode()
        + bytes([_STRING])
        + struct.pack(">H", len(value))
        + value.encode()
        for name, value in ((name, str(value)) for name, value in headers.items())
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def stream_message(message_type: Literal["event", "exception"], name: str, payload: bytes) -> bytes:
    """An event named ``name`` (``contentBlockDelta``), or an error in the stream
    (``modelStreamErrorException``: ``message_type`` ``exception``), with a JSON payload."""
    headers = {
        f":{message_type}-type": name,
        ":content-type": "application/json",
        ":message-type": message_type,
    }
    return frame(headers, payload)
