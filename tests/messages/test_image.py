"""``ImagePart``: an image a message carries next to its text, and ``message.images``."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pydantic
import pytest

from miniagents.errors import FrozenInstanceError, ImagePartError, MessageTypeError
from miniagents.ext.llm.messages import UserMessage
from miniagents.messages import ImagePart, Message
from tests.messages.images import GIF, JPEG, PNG, PNG64, URL, WEBP

# -- ImagePart -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "media_type"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp")],
)
def test_the_media_type_of_bytes_is_told_from_the_bytes(data: bytes, media_type: str) -> None:
    image = ImagePart(data=data)
    assert (image.data, image.media_type, image.url) == (data, media_type, None)
    assert ImagePart(data=b"any bytes", media_type=media_type).media_type == media_type


def test_a_data_url_and_base64_text_are_the_same_image_as_the_bytes() -> None:
    image = ImagePart(data=PNG)
    assert image.data_url == f"data:image/png;base64,{PNG64}"
    assert image.base64 == PNG64
    assert ImagePart(url=image.data_url) == image
    from_text = ImagePart.model_validate({"data": PNG64})  # base64 text, as in JSON
    assert from_text == image
    assert from_text.hash_key == image.hash_key
    by_url = ImagePart(url=URL, detail="low")
    assert (by_url.data_url, by_url.base64, by_url.media_type) == (URL, None, None)


def test_an_image_is_frozen_hashable_and_equal_by_content() -> None:
    image = ImagePart(data=PNG)
    same = ImagePart(data=bytes(PNG), media_type="image/png")
    assert image == same
    assert hash(image) == hash(same)
    assert image.hash_key == same.hash_key
    assert image != ImagePart(data=PNG + b"\x00")
    assert image != ImagePart(url=URL)
    with pytest.raises(FrozenInstanceError):
        image.url = URL  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(image)) == image


def test_repr_shows_the_size_of_bytes_not_the_bytes() -> None:
    assert repr(ImagePart(data=PNG)) == "ImagePart(data=<19 bytes>, media_type='image/png')"
    assert repr(ImagePart(url=URL, detail="high")) == f"ImagePart(url='{URL}', detail='high')"


def test_as_json_bytes_are_base64_and_only_the_fields_set_are_written() -> None:
    image = ImagePart(data=PNG)
    assert image.model_dump(mode="json") == {"data": PNG64, "media_type": "image/png"}
    assert ImagePart.model_validate(image.model_dump(mode="json")) == image
    assert ImagePart.model_validate_json(image.model_dump_json()) == image
    assert ImagePart(url=URL).model_dump(mode="json") == {"url": URL}


def test_an_image_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(JPEG)
    assert ImagePart.from_file(path) == ImagePart(data=JPEG, media_type="image/jpeg")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(pydantic.ValidationError, match="The media type of these bytes is unknown"):
        ImagePart.from_file(tmp_path / "notes.txt")


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({}, "either url=... or data=..."),
        ({"url": URL, "data": PNG}, "either url=... or data=..."),
        ({"data": b""}, "The data is empty"),
        ({"data": b"plain text"}, "The media type of these bytes is unknown"),
        ({"data": PNG, "media_type": "image/bmp"}, "'image/bmp' is not one the LLM APIs take"),
        ({"data": "not base64!"}, "The data given as text must be the image's bytes in base64"),
        ({"url": "data:image/png,rawtext"}, "A data: URL of an image must be base64-encoded"),
        ({"url": "file:///tmp/cat.png"}, "The url must be an http(s) URL"),
        ({"url": URL, "media_type": "image/png"}, "The media_type goes with data=... only"),
    ],
)
def test_an_image_that_cannot_be_sent_is_refused_when_it_is_made(
    given: dict[str, Any], says: str
) -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        ImagePart(**given)
    assert says in str(raised.value)
    [entry] = raised.value.errors()
    assert isinstance(entry["ctx"]["error"], ImagePartError)


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"url": URL, "detail": "medium"}, "Input should be 'auto', 'low' or 'high'"),
        ({"ulr": URL}, "Extra inputs are not permitted"),
    ],
)
def test_an_image_with_a_field_pydantic_refuses_is_refused_too(
    given: dict[str, Any], says: str
) -> None:
    with pytest.raises(pydantic.ValidationError, match=says):
        ImagePart(**given)


# -- images in messages --------------------------------------------------------------------


def test_a_message_carries_images_next_to_its_text() -> None:
    images = (ImagePart(url=URL), ImagePart(data=PNG))
    message = Message(role="user", text="What is this?", images=images)
    assert message.images == images
    assert str(message) == "What is this?"  # the text, images aside
    # a list is frozen into a tuple, as in every Frozen model
    assert message == Message(role="user", text="What is this?", images=list(images))
    assert message != Message(role="user", text="What is this?")
    assert message.hash_key != Message(role="user", text="What is this?").hash_key
    assert Message(role="user", text="No image.").images == ()
    assert str(Message(images=images, note="x")) == '{"note":"x"}'  # no bytes in the text


@pytest.mark.parametrize("none", [[], (), None])
def test_a_message_given_no_images_is_the_message_without_images(none: object) -> None:
    message = Message(text="No image.", images=none)

    assert message == Message(text="No image.")
    assert message.hash_key == Message(text="No image.").hash_key
    assert message.model_dump() == {"text": "No image."}  # no images field at all
    assert message.images == ()


@pytest.mark.parametrize(
    ("images", "says"),
    [
        (["https://example.com/cat.png"], "must be ImagePart objects, not str"),
        ([ImagePart(url=URL), 3], "must be ImagePart objects, not int"),
        (ImagePart(url=URL), "not images=ImagePart(...)"),
    ],
)
def test_images_that_are_not_image_parts_are_refused_when_read(images: Any, says: str) -> None:
    message = Message(text="Look.", images=images)
    with pytest.raises(MessageTypeError) as raised:
        _ = message.images
    assert says in str(raised.value)


@pytest.mark.parametrize("cls", [Message, UserMessage])
def test_a_message_with_images_comes_back_equal_from_its_json(cls: type[Message]) -> None:
    message = cls(text="Look.", images=[ImagePart(url=URL, detail="low"), ImagePart(data=PNG)])

    for back in (
        cls.model_validate_json(message.model_dump_json()),
        cls.model_validate(message.model_dump(mode="json")),
        cls(text="Look.", images=[{"url": URL, "detail": "low"}, {"data": PNG}]),
    ):
        assert back == message
        assert back.hash_key == message.hash_key
        assert back.images == message.images


def test_an_image_read_from_json_that_is_no_image_is_refused_when_the_message_is_made() -> None:
    with pytest.raises(pydantic.ValidationError, match="takes either url="):
        Message.model_validate_json('{"text": "Look.", "images": [{"detail": "low"}]}')
