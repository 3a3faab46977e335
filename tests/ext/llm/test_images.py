"""Images in LLM calls: the prompt, each API's wire shape, the history file, the logs.

``ImagePart`` itself is tested in ``tests/messages/test_image.py``.

The wire shapes are checked with the real SDKs over real HTTP, against the fake server,
for OpenAI Chat Completions, the OpenAI Responses API and Anthropic Messages.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from miniagents import Message, MiniAgents
from miniagents.errors import FrozenInstanceError, MessageTypeError
from miniagents.ext.history import ChatHistoryError, MalformedChatHistoryError
from miniagents.ext.history.agents import markdown_history_agent
from miniagents.ext.history.markdown import ChatHistoryMD
from miniagents.ext.llm import (
    AssistantMessage,
    ImagePart,
    PromptText,
    SystemMessage,
    UserMessage,
)
from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.llm.prompt import prompt_of
from miniagents.messages import MessageTuple
from miniagents.testing import FakeLLMServer
from miniagents.utils import adialog_loop
from tests.ext.history.histories import scripted_user
from tests.ext.llm.providers import LLM, SDKClient, client, llm, server  # noqa: F401
from tests.fakes.fixtures import fake_llm  # noqa: F401
from tests.messages.images import GIF, PNG, PNG64, URL


def test_the_prompt_keeps_the_images_of_user_messages_only() -> None:
    image = ImagePart(url=URL)
    _, prompt = prompt_of(
        MessageTuple([UserMessage(text="See.", images=(image,)), Message(images=[image])]), None
    )
    assert prompt == (PromptText("user", "See.", (image,)), PromptText("user", "", (image,)))
    role, text = prompt[0]  # a pair, as ever; the images ride along
    assert (role, text, prompt[0].images) == ("user", "See.", (image,))
    assert prompt[0] == ("user", "See.")
    assert prompt[0] != PromptText("user", "See.")  # another PromptText: images compared
    assert pickle.loads(pickle.dumps(prompt[0])) == prompt[0]
    with pytest.raises(FrozenInstanceError, match="PromptText is immutable"):
        prompt[0].images = ()  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError, match="PromptText is immutable"):
        del prompt[0].images
    for carrier in (SystemMessage, AssistantMessage):
        with pytest.raises(LLMConfigurationError) as raised:
            prompt_of(MessageTuple([carrier(text="x", images=(image,))]), None)
        assert "the LLM APIs take images in user messages only" in str(raised.value)


def test_the_prompt_reads_images_as_the_message_class_says() -> None:
    """Images as a field, an extra field, or a class's own ``images``; bad ones refused."""
    image = ImagePart(url=URL)

    class Captioned(Message):
        """A message whose images come from a field of another name."""

        picture: ImagePart | None = None

        @property  # type: ignore[misc]  # (a field to mypy; a property at run time)
        def images(self) -> tuple[ImagePart, ...]:
            return () if self.picture is None else (self.picture,)

    class Plain(Message):
        """A message of its own class, its images an extra field."""

    _, prompt = prompt_of(
        MessageTuple(
            [
                Captioned(text="Look.", picture=image),
                Plain(text="And this.", images=(image,)),
                Plain(text="Nothing.", images=()),
                Message(text="Plain."),
            ]
        ),
        None,
    )
    assert [item.images for item in prompt] == [(image,), (image,), (), ()]
    assert "images" not in vars(prompt[3])  # no state of its own without images
    wrong: Any = ["not an image"]
    with pytest.raises(MessageTypeError, match="must be ImagePart objects"):
        prompt_of(MessageTuple([Plain(text="x", images=wrong)]), None)


# -- the wire ------------------------------------------------------------------------------


# The fixtures llm (each provider API), server and client come from
# tests.ext.llm.test_llm_providers.


def wire(api: LLM, text: str, *images: ImagePart) -> dict[str, Any]:
    """A user message with images, exactly as the API's request carries it."""
    if api.name == "anthropic":
        blocks: list[dict[str, Any]] = []
        for image in images:
            source: dict[str, Any] = (
                {"type": "url", "url": image.url}
                if image.url
                else {"type": "base64", "media_type": image.media_type, "data": image.base64}
            )
            blocks.append({"type": "image", "source": source})
        text_part = [{"type": "text", "text": text}] if text else []
        return {"role": "user", "content": [*blocks, *text_part]}  # images first
    if api.name == "responses":
        parts: list[dict[str, Any]] = [{"type": "input_text", "text": text}] if text else []
        for image in images:
            detail = image.detail or "auto"
            parts.append({"type": "input_image", "image_url": image.data_url, "detail": detail})
        return {"role": "user", "content": parts}
    parts = [{"type": "text", "text": text}] if text else []
    for image in images:
        url = {"url": image.data_url, **({"detail": image.detail} if image.detail else {})}
        parts.append({"type": "image_url", "image_url": url})
    return {"role": "user", "content": parts}


def sent_messages(api: LLM, fake: FakeLLMServer, index: int = 0) -> list[Any]:
    body = fake.requests[index].json
    return list(body["input" if api.name == "responses" else "messages"])


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
async def test_images_go_in_each_apis_own_format(
    llm: LLM,  # noqa: F811
    client: SDKClient,  # noqa: F811
    server: FakeLLMServer,  # noqa: F811
    stream: bool,
) -> None:
    by_url = ImagePart(url=URL, detail="low")
    by_bytes = ImagePart(data=PNG)
    conversation = [
        Message(images=[by_bytes], role="user"),  # an image and no text
        UserMessage(text="And these two?", images=(by_url, by_bytes)),
    ]
    server.reply(["A cat."])
    async with MiniAgents():
        [answer] = await llm.agent.inquire(
            conversation, model=llm.model, async_client=client, stream=stream
        )
    assert str(answer) == "A cat."
    first, second = wire(llm, "", by_bytes), wire(llm, "And these two?", by_url, by_bytes)
    if llm.name == "anthropic":  # (its turns alternate: two user messages are one turn)
        assert sent_messages(llm, server) == [
            {**first, "content": first["content"] + second["content"]}
        ]
    else:
        assert sent_messages(llm, server) == [first, second]
    # the Responses API gets the default detail, "auto"; Anthropic has no detail at all
    recorded_bytes = ImagePart(data=PNG, detail="auto") if llm.name == "responses" else by_bytes
    recorded_url = ImagePart(url=URL) if llm.name == "anthropic" else by_url
    assert server.requests[0].images == (recorded_bytes, recorded_url, recorded_bytes)


async def test_an_image_on_a_system_message_is_refused_before_the_request(
    llm: LLM,  # noqa: F811
    client: SDKClient,  # noqa: F811
    server: FakeLLMServer,  # noqa: F811
) -> None:
    conversation: list[Message | str] = [
        SystemMessage(text="Rules.", images=(ImagePart(url=URL),)),
        "Hi",
    ]
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match="take images in user messages only"):
            await llm.agent.inquire(conversation, model=llm.model, async_client=client)
    assert server.requests == []


async def test_a_conversation_with_images_resumes_from_its_history_file(
    llm: LLM,  # noqa: F811
    client: SDKClient,  # noqa: F811
    server: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    path = tmp_path / "CHAT.md"
    photo = ImagePart(data=PNG)
    assistant = llm.agent.fork(model=llm.model, async_client=client)
    history = markdown_history_agent.fork(history_md_file=path)
    user = scripted_user([UserMessage(text="What is this?", images=(photo,)), "Sure?"])
    server.reply(["A PNG."])
    async with MiniAgents():
        await adialog_loop(user, assistant, history)  # one turn: the image and its answer
    server.reply(["Yes."])
    async with MiniAgents():  # a new run: the history, images and all, comes from the file
        await adialog_loop(user, assistant, history)
    assert sent_messages(llm, server, 1) == [
        wire(llm, "What is this?", photo),
        {"role": "assistant", "content": "A PNG."},
        {"role": "user", "content": "Sure?"},
    ]
    saved = await ChatHistoryMD(path).load()
    assert saved[0] == UserMessage(text="What is this?", images=(photo,))


# -- the history file ----------------------------------------------------------------------


async def test_images_round_trip_through_the_history_file(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    messages = [
        UserMessage(
            text="Two pictures:", images=(ImagePart(url=URL, detail="high"), ImagePart(data=PNG))
        ),
        Message(images=[ImagePart(data=GIF)], role="user"),  # no text at all
        AssistantMessage(text="Two cats.", model="gpt-4o-mini"),
    ]
    await ChatHistoryMD(path).store(messages)
    loaded = await ChatHistoryMD(path).load()
    assert list(loaded) == messages
    assert [type(message) for message in loaded] == [UserMessage, Message, AssistantMessage]
    assert loaded[0].images[1].data == PNG

    content = path.read_text(encoding="utf-8")
    headings = [line for line in content.splitlines() if line.startswith("### ")]
    assert headings == ["### USER [2 images]", "### USER [1 image]", "### ASSISTANT (gpt-4o-mini)"]
    assert (
        f'{{"role": "user", "images": [{{"url": "{URL}", "detail": "high"}}, '
        f'{{"data": "{PNG64}", "media_type": "image/png"}}]}} -->\n'
        "### USER [2 images]\n\nTwo pictures:\n"
    ) in content

    damaged = content.replace(PNG64, PNG64[:-4] + "AAA=", 1)  # still base64, other bytes
    (tmp_path / "damaged.md").write_text(damaged, encoding="utf-8")
    with pytest.raises(MalformedChatHistoryError, match="does not match its size and checksum"):
        await ChatHistoryMD(tmp_path / "damaged.md").load()


async def test_images_in_a_hand_written_section_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    path.write_text(
        '<!-- miniagents: {"role": "user", "images": [{"url": "' + URL + '"}]} -->\n'
        "### USER\n\nThis one.\n\n"
        '<!-- miniagents: {"role": "user", "images": [{"data": "not base64!"}]} -->\n'
        "### USER\n\nAnd this one.\n",
        encoding="utf-8",
    )
    with pytest.raises(MalformedChatHistoryError) as raised:
        await ChatHistoryMD(path).load()
    assert f"{path}, line 6: the header's fields do not make a message" in str(raised.value)
    assert "base64" in str(raised.value)


async def test_a_message_whose_images_are_not_image_parts_is_not_appended(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    await ChatHistoryMD(path).append(UserMessage(text="first"))
    before = path.read_bytes()
    with pytest.raises(ChatHistoryError) as raised:
        await ChatHistoryMD(path).append(Message(text="x", images=[URL]))
    assert "images must be ImagePart objects, not str" in str(raised.value)
    assert "The file was not changed." in str(raised.value)
    assert path.read_bytes() == before


# -- logs ----------------------------------------------------------------------------------


async def test_the_llm_log_shows_the_images_of_the_prompt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    message = UserMessage(text="Look:", images=(ImagePart(url=URL), ImagePart(data=PNG)))
    async with MiniAgents(llm_logger_agent=True):
        await offline_agent.inquire(message, reply="Nice.", token_delay=0)
    [log] = (tmp_path / "llm_logs").iterdir()
    assert (
        f"## USER\n\nLook:\n\n![image]({URL})\n\n(image: image/png, {len(PNG)} bytes)\n\n"
        "## RESPONSE"
    ) in log.read_text(encoding="utf-8")
