"""A2A's parts as MiniAgents' messages, and back: texts, files, data, images.

Both sides of a hop use it: a served agent's reply messages become the parts of its
artifacts (:func:`parts_of`), a client's message the agent's input messages
(:func:`input_messages`: a text part a ``UserMessage``, a data part an ``A2AData``, a file
part an ``A2AFile``), and a remote's parts an ``a2a_agent``'s reply messages
(:func:`message_of`). The JSON is the protobuf JSON mapping's (``raw`` bytes in base64,
``mediaType``, ``filename``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Final

from a2a.types import Part
from google.protobuf.json_format import MessageToDict
from pydantic import ValidationError

from miniagents.ext.a2a._wire import Code, _RPCError
from miniagents.ext.a2a.messages import A2AData, A2AFile, JSONValue
from miniagents.ext.llm.messages import UserMessage
from miniagents.frozen.model import plain
from miniagents.messages.image import IMAGE_MEDIA_TYPES, ImagePart
from miniagents.messages.message import Message

__all__ = [
    "JSON_TYPE",
    "TEXT_TYPE",
    "accepts",
    "file_part",
    "input_messages",
    "message_of",
    "parts_of",
    "text_of",
]

TEXT_TYPE: Final = "text/plain"
"""The media type of a text part that says none."""

JSON_TYPE: Final = "application/json"
"""The media type of a data part that says none."""

_BYTES_TYPE: Final = "application/octet-stream"
"""The media type of a file part that says none."""


# -- a reply's messages, as parts ------------------------------------------------------------


def parts_of(message: Message) -> list[dict[str, object]]:
    """The parts of a reply's ``message`` sent whole: an ``A2AFile``, an ``A2AData``, images.

    A file is a file part (after a text part, if the message has text), data a data part;
    any other message's images are file parts (its text streams apart, as text parts).
    """
    if isinstance(message, A2AFile):
        said: list[dict[str, object]] = [{"text": message.text}] if message.text else []
        return [*said, file_part(message)]
    if isinstance(message, A2AData):
        return [{"data": plain(message.data), "mediaType": message.media_type or JSON_TYPE}]
    return [_image_part(image) for image in message.images]


def file_part(file: A2AFile) -> dict[str, object]:
    """The file part of ``file``: its bytes (base64) or its URL, its name and media type."""
    part: dict[str, object]
    if file.data is not None:
        part = {"raw": base64.b64encode(file.data).decode("ascii")}
    else:
        part = {"url": file.url}
    if file.filename:
        part["filename"] = file.filename
    if file.media_type:
        part["mediaType"] = file.media_type
    return part


def _image_part(image: ImagePart) -> dict[str, object]:
    if image.data is not None:
        return {"raw": image.base64, "mediaType": image.media_type}
    return {"url": image.url}


# -- a client's message, as the agent's input ------------------------------------------------


def accepts(modes: Sequence[str], media_type: str) -> bool:
    """Whether the input ``modes`` (media types, ``image/*`` or ``*/*``) take ``media_type``."""
    kind = media_type.partition(";")[0].strip().lower()
    family = kind.partition("/")[0]
    return any(mode in (kind, f"{family}/*", "*/*") for mode in modes)


def input_messages(
    parts: object, modes: Sequence[str], message_id: str | None = None
) -> list[Message]:
    """The agent's input messages of a client message's ``parts`` (their JSON).

    A text part is a ``UserMessage``, a data part an ``A2AData``, a file part an
    ``A2AFile`` (an image's also its ``images``, for a model that reads them); each says
    the client's message it came in (``message_id``, an extra field).

    Raises:
        _RPCError: for a part whose media type the input ``modes`` do not take (-32005), or
            a file part that holds no file (-32602).
    """
    inputs: list[Message] = []
    for place, part in enumerate(parts if isinstance(parts, list) else []):
        if not isinstance(part, Mapping):
            continue
        field = f"message.parts[{place}]"
        said = part.get("mediaType")
        if isinstance(part.get("text"), str):
            kind = said if isinstance(said, str) and said else TEXT_TYPE
        elif "data" in part:
            kind = said if isinstance(said, str) and said else JSON_TYPE
        else:
            kind = said if isinstance(said, str) and said else _BYTES_TYPE
        if not accepts(modes, kind):
            raise _RPCError(
                Code.CONTENT_TYPE_NOT_SUPPORTED,
                f"params.{field} is of the media type {kind!r}, which this agent does not "
                f"take: it takes {', '.join(modes)}.",
                metadata={"mediaType": kind, "accepted": ", ".join(modes)},
                violations=[(f"{field}.mediaType", "a media type the agent does not take")],
            )
        came = {"message_id": message_id} if message_id else {}
        if isinstance(part.get("text"), str):
            inputs.append(UserMessage.model_validate({"text": part["text"], **came}))
        elif "data" in part:
            data = {"data": part["data"], "media_type": _str(said), "role": "user", **came}
            inputs.append(A2AData.model_validate(data))
        else:
            inputs.append(_file_input(part, field, came))
    return inputs


def _file_input(part: Mapping[str, object], field: str, came: Mapping[str, str]) -> A2AFile:
    raw, url = part.get("raw"), part.get("url")
    name, media_type = _str(part.get("filename")), _str(part.get("mediaType"))
    try:
        data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else None
        found = A2AFile.model_validate(
            {
                "data": data,
                "url": url if isinstance(url, str) and data is None else None,
                "filename": name,
                "media_type": media_type,
                "images": _images(data, url, media_type),
                "role": "user",
                **came,
            }
        )
    except (binascii.Error, ValueError, ValidationError) as error:
        raise _RPCError(
            Code.INVALID_PARAMS,
            f"params.{field} holds no file: give its bytes (raw, base64) or its url ({error}).",
            violations=[(field, "no file: neither raw bytes nor a url")],
        ) from None
    return found


def _images(data: bytes | None, url: object, media_type: str | None) -> tuple[ImagePart, ...]:
    """An image file's ``ImagePart`` (for a model that reads images); none for another file."""
    if media_type not in IMAGE_MEDIA_TYPES:
        return ()
    try:
        if data is not None:
            return (ImagePart(data=data, media_type=media_type),)
        if isinstance(url, str) and url.lower().startswith(("https://", "http://")):
            return (ImagePart(url=url),)
    except ValueError:  # (bytes that are not the image they say: the file alone)
        return ()
    return ()


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


# -- a remote's parts, as reply messages -----------------------------------------------------


def message_of(
    part: Part,
    *,
    task_id: str | None,
    context_id: str | None,
    artifact_id: str | None,
    agent_alias: str | None = None,
) -> A2AFile | A2AData | None:
    """A remote's file or data ``part`` as an ``A2AFile`` or ``A2AData``, of its task.

    ``None`` for a text part (a text streams into an ``A2AMessage``).
    """
    content = part.WhichOneof("content")
    media_type = part.media_type or None
    if content == "data":
        data = _whole_numbers(MessageToDict(part).get("data"))
        return A2AData(
            data=data,
            media_type=media_type,
            task_id=task_id,
            context_id=context_id,
            artifact_id=artifact_id,
            agent_alias=agent_alias,
        )
    if content in ("raw", "url"):
        raw = part.raw if content == "raw" else None
        url = part.url if content == "url" else None
        return A2AFile(
            data=raw,
            url=url,
            filename=part.filename or None,
            media_type=media_type,
            images=_images(raw, url, media_type),
            task_id=task_id,
            context_id=context_id,
            artifact_id=artifact_id,
            agent_alias=agent_alias,
        )
    return None


def _whole_numbers(value: object) -> JSONValue:
    """``value`` with its whole numbers as ``int`` s (protobuf keeps JSON's numbers as floats)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, Mapping):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    return value if isinstance(value, str | int | float | bool) else None


def text_of(parts: Sequence[Part]) -> str:
    """The text of ``parts``' text parts, joined."""
    return "".join(part.text for part in parts if part.WhichOneof("content") == "text")
