"""``Message``: an immutable message with text and any metadata."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, NoReturn, Self, cast

from pydantic import BaseModel, model_validator
from pydantic_core import PydanticSerializationError, to_json

from miniagents.arguments import a_class
from miniagents.frozen.model import Frozen
from miniagents.messages.errors import MessageArgumentError, MessageTypeError, SyncReadError
from miniagents.messages.image import ImagePart, images_of, read_images

__all__ = ["Message"]


class Message(Frozen):
    """An immutable message: optional ``text`` plus any metadata fields.

    Extra keyword arguments become (frozen) metadata fields (a type checker takes them
    on ``Message`` itself; for a subclass, declare the field or use ``model_validate``).
    Subclass it to declare typed fields; ``str(message)`` is the text.
    ``images=[ImagePart(...)]`` gives it images next to its text (see :attr:`images`).

    Example:
        >>> class CustomMessage(Message):
        ...     custom_field: str
        >>> message = CustomMessage(text="Hello", custom_field="Custom Value")
        >>> str(message)
        'Hello'
    """

    text: str | None = None

    if TYPE_CHECKING:  # the signature, for type checkers (at run time: the __init__ below)
        images: tuple[ImagePart, ...] = ()
        """The images the message carries next to its text (at run time: an extra field)."""

        def __init__(self, *, text: str | None = None, **metadata: object) -> None:
            """Create a message from its ``text`` and any metadata fields (``images`` too)."""

    else:

        def __init__(self, /, *given: object, **data: object) -> None:
            """Validate ``data`` and freeze it (pydantic's validation; see ``_plain_state``).

            A plain ``Message`` of a ``str`` alone (what a pipeline stage replies, once per
            message) needs neither validation (its one field is that ``str``) nor freezing
            (nothing mutable), so it gets its state directly: the state pydantic gives it
            (checked once, at import), with the keyword dict as its ``__dict__``.

            Raises:
                MessageArgumentError: if a value is given positionally (``Message("hi")``):
                    a message takes its fields as keywords (``Message(text="hi")``).
                MessageTypeError: if ``content=`` is given without ``text=`` to a class
                    that declares no ``content`` field (an OpenAI chat message's shape).
            """
            if given:
                raise _positional_error(type(self), given)
            if (
                len(data) == 1
                and "text" in data
                and type(data["text"]) is str
                and type(self) is _PLAIN
            ):
                _set_dict(self, data)  # {"text": text}: a new dict of this call's own
                _set_fields_set(self, {"text"})
                _set_extra(self, {})
                _set_private(self, None)
                return
            if "content" in data:
                refuse_content(type(self), data)
            __tracebackhide__ = True  # (pytest's: the frames of validation errors start below)
            validated = self.__pydantic_validator__.validate_python(data, self_instance=self)
            if validated is not self:
                _warn_replaced(type(self))

        # pydantic: this __init__ is not a custom one (validating a Message inside other
        # data, or with model_validate, builds it without calling __init__, as before)
        __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @model_validator(mode="after")
    def _typed_images(self) -> Self:
        """``images`` as ``ImagePart`` s (JSON gives mappings); ``[]`` or ``None``: no field."""
        extra = self.__pydantic_extra__
        if extra and "images" in extra:
            images = read_images(extra["images"])
            if images == ():
                del extra["images"]
            else:
                extra["images"] = images
        return self

    if not TYPE_CHECKING:  # not a declared field: a message without images has the same key

        @property
        def images(self) -> tuple[ImagePart, ...]:
            """The images the message carries next to its text (``images=`` when it was made).

            Raises:
                MessageTypeError: if ``images`` holds anything but ``ImagePart`` s.
            """
            return images_of(self)

    if not TYPE_CHECKING:  # (for mypy, `in` goes through the fields, as pydantic types it)

        def __contains__(self, item: object) -> NoReturn:
            """Refuse ``in``: Python would look among the fields as ``(name, value)`` pairs.

            (Text looked for so, ``"yes" in message``, was never found.)

            Raises:
                SyncReadError: always (a ``TypeError``), naming ``in message.text``.
            """
            raise SyncReadError(
                f"`{item!r:.40} in message` would look among the message's fields as (name, "
                "value) pairs, never in its text: look in the text, `... in message.text` "
                "(or `in str(message)`)."
            )

    def __str__(self) -> str:
        """The text; for a message without text, its fields (images aside) as JSON.

        A field that JSON cannot hold (bytes that are not UTF-8 text, an object of a class
        pydantic cannot serialize) is shown by its ``repr``, a JSON string: ``str()`` of a
        message never raises.
        """
        if self.text is not None:
            return self.text
        try:
            return self.model_dump_json(exclude=_NOT_SHOWN)
        except PydanticSerializationError:
            fields = self.model_dump(exclude=_NOT_SHOWN)
            return to_json({name: _json_or_repr(value) for name, value in fields.items()}).decode()


_NOT_SHOWN: Final = {"text", "images"}
"""The fields ``str()`` of a message without text leaves out."""


def _positional_error(cls: type[Message], given: tuple[object, ...]) -> MessageArgumentError:
    """The error for a message made with positional arguments (``Message("hi")``)."""
    name = cls.__name__
    if len(given) == 1 and isinstance(given[0], str):
        return MessageArgumentError(
            f"{name}({given[0]!r:.60}) gives the text positionally, but a message takes its "
            f"fields as keywords only: write {name}(text={given[0]!r:.60})."
        )
    return MessageArgumentError(
        f"{name}() takes its fields as keywords only, but got {len(given)} positional "
        f'argument(s), {given!r:.80}: name each field, e.g. {name}(text="hi"), or pass a '
        f"dict of them as {name}(**fields)."
    )


def refuse_content(cls: type[Message], data: object) -> None:
    """Refuse ``content=`` without ``text=`` (an OpenAI chat message's shape): no text at all.

    ``Message()`` calls it as a message is made, the role messages of ``miniagents.ext.llm``
    in ``model_validate`` too; a class that declares a ``content`` field takes it.

    Raises:
        MessageTypeError: naming the ``text`` field to use instead.
    """
    if (
        isinstance(data, dict)
        and "content" in data
        and data.get("text") is None
        and "content" not in cls.model_fields
    ):
        raise MessageTypeError(
            f"Given content= and no text=, {a_class(cls)} would be a message without text: "
            "content would only be a metadata field, which neither str() of the message "
            f"nor a model reads as its text: write {cls.__name__}(text=...) instead."
        )


def _json_or_repr(value: object) -> object:
    """``value`` if pydantic can write it as JSON, else its ``repr``."""
    try:
        to_json(value)
    except PydanticSerializationError:
        return repr(value)
    return value


def _writer(name: str) -> Callable[[Message, object], None]:
    """What writes pydantic's per-instance field ``name`` (``object.__setattr__`` for it).

    It is the setter of the slot ``BaseModel`` keeps it in, called directly (no lookup of
    the name per message); a pydantic without that slot gets ``object.__setattr__``.
    """
    slot = vars(BaseModel).get(name)
    if slot is not None and hasattr(slot, "__set__"):
        return cast("Callable[[Message, object], None]", slot.__set__)
    return lambda model, value: object.__setattr__(model, name, value)


_set_dict = _writer("__dict__")
_set_fields_set = _writer("__pydantic_fields_set__")
_set_extra = _writer("__pydantic_extra__")
_set_private = _writer("__pydantic_private__")


def _warn_replaced(cls: type[Message]) -> None:
    warnings.warn(
        f"A model validator of {cls.__qualname__} returned another object than the model "
        "being built; building it with keyword arguments keeps the model itself, so that "
        "object is dropped. Return the model (self) from an 'after' model validator.",
        stacklevel=3,
    )


def _plain_state(message: Message) -> tuple[object, ...]:
    """What pydantic keeps of a model: its fields, which were set, its extra and private values."""
    state = message.__getstate__()
    return tuple(sorted(state.items())) if isinstance(state, dict) else (state,)


_PLAIN: type[Message] | None = Message
"""The class whose text alone ``Message.__init__`` sets directly (``None``: no class, if
the state it would set is not the one pydantic's validation gives: checked just below)."""
if _plain_state(Message(text="x")) != _plain_state(
    Message.__pydantic_validator__.validate_python({"text": "x"})
):
    _PLAIN = None
