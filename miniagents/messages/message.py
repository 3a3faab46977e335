"""``Message``: an immutable message with text and any metadata."""

from __future__ import annotations

from typing import TYPE_CHECKING

from miniagents.frozen.model import Frozen
from miniagents.messages.image import ImagePart, images_of

__all__ = ["Message"]


class Message(Frozen):
    """An immutable message: optional ``text`` plus any metadata fields.

    Extra keyword arguments become (frozen) metadata fields. Subclass it to declare
    typed fields; ``str(message)`` is the text. ``images=[ImagePart(...)]`` gives it
    images next to its text (see :attr:`images`).

    Example:
        >>> class CustomMessage(Message):
        ...     custom_field: str
        >>> message = CustomMessage(text="Hello", custom_field="Custom Value")
        >>> str(message)
        'Hello'
    """

    text: str | None = None

    if TYPE_CHECKING:  # at run time pydantic's own __init__ does it, one call less
        images: tuple[ImagePart, ...] = ()
        """The images the message carries next to its text (at run time: an extra field)."""

        def __init__(self, *, text: str | None = None, **metadata: object) -> None:
            """Create a message from its ``text`` and any metadata fields (``images`` too)."""

    else:  # not a declared field: a message without images has the same fields and key

        @property
        def images(self) -> tuple[ImagePart, ...]:
            """The images the message carries next to its text (``images=`` when it was made).

            Raises:
                MessageTypeError: if ``images`` holds anything but ``ImagePart`` s.
            """
            return images_of(self)

    def __str__(self) -> str:
        """The text; for a message without text, its fields (images aside) as JSON."""
        if self.text is not None:
            return self.text
        return self.model_dump_json(exclude={"text", "images"})
