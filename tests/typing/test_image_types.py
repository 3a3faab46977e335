"""Static typing tests for images in messages, the Responses API option and the output hook.

The ``check_*`` functions are never called: mypy checks them (strict, with
``warn_unused_ignores``), ``assert_type`` pins the inferred types and each line that must
be rejected carries a precise ``# type: ignore[code]``. :func:`test_image_types_pass_mypy`
runs mypy on this file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal, assert_type

from miniagents import Message
from miniagents.ext.llm import LLMCall, OutputFormat, PromptText, UserMessage
from miniagents.ext.llm.openai import OpenAIOptions, create_openai_agent
from miniagents.messages import ImagePart
from miniagents.testing import RecordedRequest
from tests.fakes.typecheck import assert_passes_mypy


def check_images(path: Path, request: RecordedRequest) -> None:
    image = ImagePart(url="https://example.com/cat.png", detail="low")
    from_bytes = ImagePart(data=b"\x89PNG...", media_type="image/png")
    assert_type(ImagePart.from_file(path), ImagePart)
    assert_type(image.url, str | None)
    assert_type(from_bytes.data, bytes | None)
    assert_type(from_bytes.media_type, str | None)
    assert_type(image.detail, Literal["auto", "low", "high"] | None)
    assert_type(image.data_url, str)
    assert_type(from_bytes.base64, str | None)
    message = UserMessage(text="What is this?", images=(image, from_bytes))
    UserMessage(text="A list?", images=[image])  # type: ignore[arg-type]  # frozen: a tuple
    UserMessage(text="A URL?", images=("https://example.com/cat.png",))  # type: ignore[arg-type]
    Message(text="Any metadata", images=[image])  # Message itself takes any keyword
    assert_type(message.images, tuple[ImagePart, ...])
    assert_type(Message(text="plain").images, tuple[ImagePart, ...])
    assert_type(str(message), str)
    assert_type(PromptText("user", "See.", (image,)).images, tuple[ImagePart, ...])
    assert_type(request.images, tuple[ImagePart, ...])
    ImagePart(url=42)  # type: ignore[arg-type]
    ImagePart(data=b"x", detail="medium")  # type: ignore[arg-type]
    ImagePart(ulr="https://example.com")  # type: ignore[call-arg]
    message.images = ()  # type: ignore[misc]


def check_api_and_output_format() -> None:
    options = OpenAIOptions(model="gpt-4o-mini", api="responses")
    assert_type(options.api, Literal["chat_completions", "responses"])
    create_openai_agent(model="gpt-4o-mini", api="responses")
    create_openai_agent(model="gpt-4o-mini", api="assistants")  # type: ignore[arg-type]
    output = OutputFormat(name="Weather", schema={"type": "object"})
    assert_type(output.schema, Mapping[str, object])
    assert_type(output.strict, bool)
    call = LLMCall("m", True, None, (), output_format=output)
    assert_type(call.output_format, OutputFormat | None)
    OutputFormat(name="Weather")  # type: ignore[call-arg]


# --- The test that pytest runs --------------------------------------------------------


def test_image_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
