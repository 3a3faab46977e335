"""``ImagePart``: an image a message carries next to its text, by URL or as bytes.

A message takes its images as ``images=``, a sequence of ``ImagePart`` s, and gives them
back, typed, as ``message.images``; ``str(message)`` stays its text::

    Message(text="What is in this picture?", images=[ImagePart(url="https://...")])
    UserMessage(text="And this one?", images=[ImagePart.from_file("cat.png")])

An ``ImagePart`` is a ``Frozen`` model like every message: immutable, hashable, equal by
content. The LLM agents send images in their API's format (a data URL or a base64 source
for bytes); a chat history file records them (bytes as base64).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import field_serializer, model_serializer, model_validator
from pydantic_core.core_schema import SerializerFunctionWrapHandler

from miniagents.frozen.model import Frozen
from miniagents.messages.errors import ImagePartError, MessageTypeError

__all__ = ["IMAGE_MEDIA_TYPES", "ImagePart", "images_of", "read_images"]

IMAGE_MEDIA_TYPES: tuple[str, ...] = ("image/png", "image/jpeg", "image/gif", "image/webp")
"""The media types of image bytes that the LLM APIs (OpenAI and Anthropic) take."""

_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),  # after "RIFF" and the size
)


def _sniffed(data: bytes) -> str | None:
    """The media type the first bytes of an image announce, if they announce one."""
    for signature, offset, media_type in _SIGNATURES:
        if data[offset : offset + len(signature)] == signature and (
            media_type != "image/webp" or data[:4] == b"RIFF"
        ):
            return media_type
    return None


class ImagePart(Frozen, extra="forbid"):
    """An image of a message: a URL, or the image's bytes with their media type.

    Give exactly one of ``url`` and ``data``. A ``data:`` URL is taken apart into
    ``data`` and ``media_type``. Without ``media_type``, it is told from the bytes (PNG,
    JPEG, GIF and WebP announce themselves).

    Attributes:
        url: Where the model fetches the image (``https://...``).
        data: The image's bytes (given as ``str``: their base64 text).
        media_type: The bytes' media type: one of :data:`IMAGE_MEDIA_TYPES`.
        detail: How closely an OpenAI model looks (``"low"``, ``"high"``, ``"auto"``);
            other providers ignore it.

    Example:
        >>> ImagePart(data=b"GIF89a...")
        ImagePart(data=<9 bytes>, media_type='image/gif')
    """

    url: str | None = None
    data: bytes | None = None
    media_type: str | None = None
    detail: Literal["auto", "low", "high"] | None = None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ImagePart:
        """The image in the file at ``path`` (its media type told from its bytes).

        Raises:
            OSError: if the file cannot be read.
            pydantic.ValidationError: if its bytes are not a PNG, JPEG, GIF or WebP image
                (an ``ImagePartError`` inside it).
        """
        return cls(data=Path(path).read_bytes())

    @model_validator(mode="before")
    @classmethod
    def _taken_apart(cls, given: Any) -> Any:
        """A ``data:`` URL as ``data`` and ``media_type``; base64 text as bytes."""
        if not isinstance(given, Mapping):
            return given
        fields = dict(given)
        url = fields.get("url")
        if isinstance(url, str) and url[:5].lower() == "data:":
            header, comma, encoded = url[5:].partition(",")
            media_type, _, encoding = header.partition(";")
            if not comma or encoding.lower() != "base64":
                raise ImagePartError(
                    "A data: URL of an image must be base64-encoded "
                    "(data:image/png;base64,...): encode it so, or give the bytes as data=...."
                )
            fields.pop("url")
            fields.setdefault("media_type", media_type.lower() or None)
            fields["data"] = encoded
        data = fields.get("data")
        if isinstance(data, str):
            try:
                data = fields["data"] = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError) as error:
                raise ImagePartError(
                    f"The data given as text must be the image's bytes in base64 ({error}): "
                    "give the bytes themselves as data=b'...'."
                ) from error
        if isinstance(data, bytes) and fields.get("media_type") is None:
            fields["media_type"] = _sniffed(data)
        return fields

    @model_validator(mode="after")
    def _complete(self) -> Self:
        """Exactly one source; bytes with a media type that the LLM APIs take."""
        if (self.url is None) == (self.data is None):
            raise ImagePartError(
                "An ImagePart takes either url=... or data=... (the image's bytes): "
                "give exactly one of them."
            )
        if self.url is not None and not self.url.lower().startswith(("https://", "http://")):
            raise ImagePartError(
                f"The url must be an http(s) URL (or a data: URL), not {self.url!r:.60}: "
                "to send a file, give ImagePart.from_file(path)."
            )
        if self.data is None:
            if self.media_type is not None:
                raise ImagePartError(
                    "The media_type goes with data=... only (a URL's server tells its own): "
                    "leave it out."
                )
            return self
        if not self.data:
            raise ImagePartError("The data is empty: give the image's bytes.")
        if self.media_type is None:
            raise ImagePartError(
                "The media type of these bytes is unknown: they are not a PNG, JPEG, GIF or "
                "WebP image. Convert the image to one of those, or give media_type=...."
            )
        if self.media_type not in IMAGE_MEDIA_TYPES:
            raise ImagePartError(
                f"The media_type {self.media_type!r} is not one the LLM APIs take: use one of "
                f"{', '.join(IMAGE_MEDIA_TYPES)}."
            )
        return self

    @field_serializer("data", when_used="json")
    def _base64_data(self, data: bytes | None) -> str | None:
        """Bytes are written as their base64 text (and read back from it)."""
        return None if data is None else base64.b64encode(data).decode("ascii")

    @model_serializer(mode="wrap")
    def _given_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        """Only the fields that are set: a URL, or bytes and their media type."""
        dumped: dict[str, object] = handler(self)
        return {name: value for name, value in dumped.items() if value is not None}

    @property
    def base64(self) -> str | None:
        """The bytes in base64 (``None`` for an image given by URL)."""
        return None if self.data is None else base64.b64encode(self.data).decode("ascii")

    @property
    def data_url(self) -> str:
        """The URL of the image: ``url``, or a ``data:`` URL of the bytes."""
        if self.url is not None:
            return self.url
        return f"data:{self.media_type};base64,{self.base64}"

    def __repr_args__(self) -> Any:
        """The fields that are set; bytes by their size only."""
        for name, value in super().__repr_args__():
            if value is not None:
                yield name, (_Size(len(value)) if isinstance(value, bytes) else value)


class _Size:
    """How ``repr`` shows bytes of an image: by their count."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __repr__(self) -> str:
        return f"<{self.count} bytes>"


def read_images(images: object) -> object:
    """The ``images`` given to a message, as it keeps them: each mapping as an ``ImagePart``.

    A mapping is an image read from JSON (``{"url": ...}``): it is validated as an
    ``ImagePart``. ``None`` is no images: ``()``. Anything else is kept, for
    :func:`images_of` to refuse.

    Raises:
        pydantic.ValidationError: if a mapping is not an image (an ``ImagePartError`` in it).
    """
    if images is None:
        return ()
    if isinstance(images, tuple) and any(isinstance(image, Mapping) for image in images):
        return tuple(
            ImagePart.model_validate(image) if isinstance(image, Mapping) else image
            for image in images
        )
    return images


def images_of(message: object) -> tuple[ImagePart, ...]:
    """The image parts a message carries (its ``images`` field), in order.

    Raises:
        MessageTypeError: if the field holds anything but ``ImagePart`` s.
    """
    values: Mapping[str, object] = getattr(message, "__dict__", {})
    images = values.get("images")
    if images is None:
        extra = getattr(message, "__pydantic_extra__", None)
        images = extra.get("images") if extra else None
    if images is None or images == ():
        return ()
    if isinstance(images, tuple) and all(isinstance(image, ImagePart) for image in images):
        return images
    if isinstance(images, ImagePart):
        raise MessageTypeError(
            "A message's images must be a sequence of ImagePart: write images=[ImagePart(...)], "
            "not images=ImagePart(...)."
        )
    items = images if isinstance(images, tuple) else (images,)
    wrong = next(item for item in items if not isinstance(item, ImagePart))
    raise MessageTypeError(
        f"A message's images must be ImagePart objects, not {type(wrong).__name__} "
        f"({wrong!r:.60}): e.g. images=[ImagePart(url='https://...')] or "
        "images=[ImagePart(data=png_bytes)]."
    )
