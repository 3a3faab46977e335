"""Image bytes and addresses the tests of ``ImagePart`` and of the LLM wire shapes share."""

from __future__ import annotations

import base64

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x80"  # a PNG's signature; not UTF-8
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF"
GIF = b"GIF89a\x01\x00\x01\x00"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 "
PNG64 = base64.b64encode(PNG).decode()
URL = "https://example.com/cat.png"
