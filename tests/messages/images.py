"""Image bytes and addresses the tests of ``ImagePart`` and of the LLM wire shapes share."""

from __future__ import annotations

import base64

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x80"  # a PNG's signature; not UTF-8
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF"
GIF = b"GIF89a\x01\x00\x01\x00"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 "
PNG64 = base64.b64encode(PNG).decode()
URL = "https://example.com/cat.png"
WHOLE_PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
    b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)
"""A whole 1x1 PNG (``PNG`` is only a signature): for the SDKs and servers that decode it."""
