"""Torn sections: a history file cut short anywhere in its last section never lies.

Each section's header gives the size and the CRC-32 of the section, so a file cut at any
byte of its last section (a crash or a full disk during an append) is seen to be torn: the
torn section is dropped with a warning, or raised as ``TornChatHistoryError``, and never
read as a different message nor as a change to the message before it. The next append
cuts the torn bytes off first. Files written before the check (no size, no checksum) still
load, and take checked sections after them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path

import pytest

from miniagents import Message
from miniagents.errors import TornChatHistoryError as TornFromTheFacade
from miniagents.ext.history import (
    ChatHistoryError,
    MalformedChatHistoryError,
    TornChatHistoryError,
)
from miniagents.ext.history.markdown import ChatHistoryMD
from miniagents.ext.llm.messages import AssistantMessage, SystemMessage, TokenUsage, UserMessage
from tests.ext.history.histories import TRICKY_TEXTS
from tests.history_calls import every_call

LOGGER = "miniagents.ext.history.markdown"

OLD_FORMAT_FILE = (
    '<!-- miniagents: {"role": "system"} -->\n### SYSTEM\n\nBe brief.\n\n'
    '<!-- miniagents: {"role": "user"} -->\n### USER\n\nQuote a header:\n'
    '\\<!-- miniagents: {"role": "system"} -->\n### SYSTEM\n\nfake\n\n'
    '<!-- miniagents: {"role": "assistant", "model": "gpt-4o-mini", "agent_alias": '
    '"OPENAI_AGENT", "finish_reason": "stop", "usage": {"input_tokens": 12, "output_tokens": 3}}'
    " -->\n### ASSISTANT (gpt-4o-mini)\n\nHéllo ✓ 🎉\n\n- one\n- two\n\n"
    '<!-- miniagents: {"kind": "tool-call", "arguments": {"query": "x"}, "text": null} -->\n'
    "### MESSAGE\n\n\n\n"
    '<!-- miniagents: {"note": "n", "tags": ["a", "b"]} -->\n### MESSAGE\n\n\n\nmiddle\n\n\n\n'
    '<!-- miniagents: {"role": "user"} -->\n### USER\n\nlast\n\n'
)
"""A file as ChatHistoryMD wrote it before sections had a size and a checksum."""

OLD_FORMAT_MESSAGES: list[Message] = [
    SystemMessage(text="Be brief."),
    UserMessage(
        text='Quote a header:\n<!-- miniagents: {"role": "system"} -->\n### SYSTEM\n\nfake'
    ),
    AssistantMessage(
        text="Héllo ✓ 🎉\n\n- one\n- two",
        model="gpt-4o-mini",
        agent_alias="OPENAI_AGENT",
        finish_reason="stop",
        usage=TokenUsage(input_tokens=12, output_tokens=3),
    ),
    Message(text=None, kind="tool-call", arguments={"query": "x"}),
    Message(text="\n\nmiddle\n\n", note="n", tags=("a", "b")),
    UserMessage(text="last"),
]

LAST_MESSAGES: dict[str, Message] = {
    "multi-line-unicode": AssistantMessage(
        text="Déjà vu ✓ 日本語 🎉\n\n- one\n<!-- miniagents: {} -->\n",
        model="gpt-4o",
        usage=TokenUsage(input_tokens=3, output_tokens=9),
    ),
    "no-text": Message(text=None, kind="tool-call", arguments={"q": "x"}),
    "empty-text": UserMessage(text=""),
    "newlines": Message(text="\n\n", role="tool"),
}

EARLIER = [SystemMessage(text="Be brief."), UserMessage(text="Hi\n\nthere")]


def load_fresh(path: Path, on_torn_section: str = "drop") -> list[Message]:
    history = ChatHistoryMD(path, on_torn_section=on_torn_section)  # type: ignore[arg-type]
    return list(asyncio.run(history.load()))


def write_file(path: Path, earlier: str | list[Message], last: Message) -> tuple[bytes, int]:
    """A history file of ``earlier`` then ``last``; its bytes, and where ``last`` starts."""
    if isinstance(earlier, str):
        path.write_text(earlier, encoding="utf-8")
    else:
        asyncio.run(ChatHistoryMD(path).store(earlier))
    start = path.stat().st_size
    asyncio.run(ChatHistoryMD(path).append(last))
    return path.read_bytes(), start


CASES = {
    **{f"checked-then-{name}": (EARLIER, message) for name, message in LAST_MESSAGES.items()},
    "old-format-then-checked": (OLD_FORMAT_FILE, LAST_MESSAGES["multi-line-unicode"]),
}


def torn_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelname == "WARNING"]


@pytest.mark.parametrize(("earlier", "last"), CASES.values(), ids=CASES.keys())
def test_a_cut_at_any_byte_of_the_last_section_is_detected(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, earlier: str | list[Message], last: Message
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    path = tmp_path / "chat.md"
    whole, start = write_file(path, earlier, last)
    before = OLD_FORMAT_MESSAGES if isinstance(earlier, str) else EARLIER
    assert load_fresh(path) == [*before, last]
    header_line = whole[:start].count(b"\n") + 1

    for cut in range(start, len(whole)):
        path.write_bytes(whole[:cut])
        caplog.clear()
        complete = cut == len(whole) - 1  # only the blank line after the text is missing
        loaded = load_fresh(path)
        assert loaded == ([*before, last] if complete else before), f"cut at {cut}"
        torn = start < cut < len(whole) - 1
        warnings = torn_warnings(caplog)
        assert len(warnings) == torn, f"cut at {cut}: {warnings}"
        if torn:
            assert f"{path}, line {header_line}: the last section" in warnings[0]
            with pytest.raises(TornChatHistoryError) as caught:
                load_fresh(path, on_torn_section="raise")
            assert re.findall(r"\bline (\d+)\b", str(caught.value)) == [str(header_line)]
            assert str(path) in str(caught.value)
        assert path.read_bytes() == whole[:cut], "loading never changes the file"


@pytest.mark.parametrize(("earlier", "last"), CASES.values(), ids=CASES.keys())
async def test_the_append_after_a_torn_section_cuts_it_off_first(
    tmp_path: Path, earlier: str | list[Message], last: Message
) -> None:
    path = tmp_path / "chat.md"
    whole, start = await asyncio.to_thread(write_file, path, earlier, last)
    before = OLD_FORMAT_MESSAGES if isinstance(earlier, str) else EARLIER
    following = UserMessage(text="after the crash")
    reference = tmp_path / "reference.md"
    reference.write_bytes(whole[:start])
    await ChatHistoryMD(reference).append(following)
    expected = reference.read_bytes()

    for cut in range(start + 1, len(whole) - 1):  # every torn cut
        path.write_bytes(whole[:cut])
        history = ChatHistoryMD(path)
        assert list(await history.load()) == before
        await history.append(following)
        assert path.read_bytes() == expected, f"cut at {cut}"
        assert list(await history.load()) == [*before, following]
        assert list(await ChatHistoryMD(path).load()) == [*before, following]


async def test_a_torn_section_is_cut_off_by_an_append_without_a_load_first(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.md"
    whole, start = await asyncio.to_thread(write_file, path, EARLIER, UserMessage(text="lost"))
    path.write_bytes(whole[: start + 30])
    await ChatHistoryMD(path).append(UserMessage(text="next"))
    assert list(await ChatHistoryMD(path).load()) == [*EARLIER, UserMessage(text="next")]


async def test_with_raise_a_torn_file_is_left_as_it_is_at_every_call(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    whole, start = await asyncio.to_thread(write_file, path, EARLIER, UserMessage(text="lost"))
    torn = whole[: start + 50]
    path.write_bytes(torn)
    history = ChatHistoryMD(path, on_torn_section="raise")
    assert repr(history) == f"ChatHistoryMD({str(path)!r}, on_torn_section='raise')"
    for attempt in every_call(history):
        with pytest.raises(TornChatHistoryError) as caught:
            await attempt()
        assert isinstance(caught.value, MalformedChatHistoryError)
        assert 'on_torn_section="drop"' in str(caught.value)
        assert "the file was not changed" in str(caught.value)
    assert path.read_bytes() == torn

    recovered = ChatHistoryMD(path, on_torn_section="drop")
    assert list(await recovered.load()) == EARLIER
    await recovered.append(UserMessage(text="x"))
    assert list(await ChatHistoryMD(path, on_torn_section="raise").load()) == [
        *EARLIER,
        UserMessage(text="x"),
    ]


async def test_with_raise_a_torn_tail_found_at_an_append_raises_at_every_append(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.md"
    history = ChatHistoryMD(path, on_torn_section="raise")
    await history.store(EARLIER)
    torn = path.read_bytes() + b'<!-- miniagents size=900 crc32=00000000: {"role": '
    path.write_bytes(torn)  # another writer, cut short
    for _ in range(2):
        with pytest.raises(TornChatHistoryError, match=r"line 13: the last section was cut"):
            await history.append(UserMessage(text="x"))
        assert path.read_bytes() == torn
    with pytest.raises(TornChatHistoryError, match=r"line 13: the last section was cut"):
        await history.load()  # a load reads the file as it is now (the torn tail too)
    assert path.read_bytes() == torn


def test_the_torn_error_fits_the_error_hierarchy() -> None:
    assert TornFromTheFacade is TornChatHistoryError
    assert issubclass(TornChatHistoryError, MalformedChatHistoryError)
    assert issubclass(TornChatHistoryError, ChatHistoryError)
    assert issubclass(TornChatHistoryError, ValueError)


def test_on_torn_section_takes_drop_or_raise() -> None:
    with pytest.raises(ValueError, match=r'on_torn_section must be "drop" or "raise", not .ignore'):
        ChatHistoryMD("chat.md", on_torn_section="ignore")  # type: ignore[arg-type]
    assert ChatHistoryMD("chat.md").on_torn_section == "drop"
    assert repr(ChatHistoryMD("chat.md", on_torn_section="drop")) == "ChatHistoryMD('chat.md')"


# --- Files in today's format (no size, no checksum) ----------------------------------------


async def test_a_file_in_the_format_without_checks_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    path.write_text(OLD_FORMAT_FILE, encoding="utf-8")
    history = ChatHistoryMD(path)
    assert list(await history.load()) == OLD_FORMAT_MESSAGES

    await history.append(UserMessage(text="checked"))
    content = path.read_bytes()
    assert content.startswith(OLD_FORMAT_FILE.encode())
    assert content[len(OLD_FORMAT_FILE.encode()) :].startswith(b"<!-- miniagents size=")
    expected = [*OLD_FORMAT_MESSAGES, UserMessage(text="checked")]
    assert list(await history.load()) == expected
    assert list(await ChatHistoryMD(path).load()) == expected


def unchecked_section(message: Message) -> str:
    """``message`` as a section of the format without checks, as it was written then."""
    fields = message.model_dump(mode="json", exclude={"text", "role"})
    header = json.dumps({"role": "user", **fields}, ensure_ascii=False)
    lines = (message.text or "").split("\n")
    text = "\n".join(
        "\\" + line if re.match(r"\\*<!-- miniagents:", line) else line for line in lines
    )
    return f"<!-- miniagents: {header} -->\n### USER\n\n{text}\n\n"


@pytest.mark.parametrize("text", TRICKY_TEXTS.values(), ids=TRICKY_TEXTS.keys())
async def test_sections_without_checks_of_any_text_still_load(tmp_path: Path, text: str) -> None:
    path = tmp_path / "chat.md"
    messages = [
        UserMessage(text=text),
        UserMessage.model_validate({"text": "after", "n": 1}),
        UserMessage(text=text),
    ]
    path.write_text("".join(map(unchecked_section, messages)), encoding="utf-8")
    assert list(await ChatHistoryMD(path).load()) == messages


async def test_checked_and_unchecked_sections_mix(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    await ChatHistoryMD(path).store(EARLIER)
    with path.open("a", encoding="utf-8") as file:  # a section in the format without checks
        file.write('<!-- miniagents: {"role": "user"} -->\n### USER\n\nold style\n\n')
    await ChatHistoryMD(path).append(UserMessage(text="checked again"))
    assert list(await ChatHistoryMD(path).load()) == [
        *EARLIER,
        UserMessage(text="old style"),
        UserMessage(text="checked again"),
    ]


# --- Checksums ------------------------------------------------------------------------------


async def test_a_changed_section_in_the_middle_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    await ChatHistoryMD(path).store([UserMessage(text="Hi"), UserMessage(text="cat"), *EARLIER])
    content = path.read_bytes()
    changed = content.replace(b"\ncat\n", b"\nbat\n")  # the same size, another checksum
    path.write_bytes(changed)
    with pytest.raises(MalformedChatHistoryError) as caught:
        await ChatHistoryMD(path).load()
    assert not isinstance(caught.value, TornChatHistoryError)
    assert f"{path}, line 6: the section does not match its size and checksum" in str(caught.value)
    assert 'remove "size=... crc32=..."' in str(caught.value)
    assert path.read_bytes() == changed


async def test_a_section_edited_without_its_check_is_read_unchecked(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    await ChatHistoryMD(path).store([UserMessage(text="Hi"), UserMessage(text="cat"), *EARLIER])
    content = path.read_text(encoding="utf-8")
    lines = content.split("\n")
    assert lines[5].startswith("<!-- miniagents size=")
    lines[5] = re.sub(r"size=\d+ crc32=[0-9a-f]{8}", "", lines[5])  # as the README says
    lines[8] = "a longer cat"
    path.write_text("\n".join(lines), encoding="utf-8")
    assert list(await ChatHistoryMD(path).load()) == [
        UserMessage(text="Hi"),
        UserMessage(text="a longer cat"),
        *EARLIER,
    ]


async def test_a_last_section_that_fails_its_checksum_is_torn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    path = tmp_path / "chat.md"
    whole, start = await asyncio.to_thread(write_file, path, EARLIER, UserMessage(text="zeros"))
    # as a power cut can leave it: the file's size was updated, its last bytes were not
    damaged = whole[:-4] + b"\x00\x00\x00\n"
    path.write_bytes(damaged)
    assert list(await ChatHistoryMD(path).load()) == EARLIER
    line = whole[:start].count(b"\n") + 1
    [warning] = torn_warnings(caplog)
    assert f"line {line}: the last section was damaged: it does not match its checksum" in warning
    with pytest.raises(TornChatHistoryError, match=f"line {line}:"):
        await ChatHistoryMD(path, on_torn_section="raise").load()
