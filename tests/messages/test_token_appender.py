"""What a token appender tells of the message it builds: the text appended so far."""

from __future__ import annotations

import pytest

from miniagents.messages.appender import MessageTokenAppender
from miniagents.messages.errors import MessageTypeError
from miniagents.promising.lowlevel import core_of

_MANY = 5_000
"""Tokens enough for the record to pack its front (a long record of str keeps it packed)."""


async def test_appended_is_every_token_so_far_joined_packed_front_included() -> None:
    appender = MessageTokenAppender(role="assistant")
    assert appender.appended == ""
    tokens = [f"t{number} " for number in range(_MANY)]
    for number, token in enumerate(tokens, 1):
        appender.append(token)
        if number in (1, 2, _MANY // 2):
            assert appender.appended == "".join(tokens[:number])
    assert core_of(appender.promise).packed is not None  # the front was packed
    appender.complete()
    assert appender.appended == "".join(tokens)
    assert str(await appender.promise) == "".join(tokens)


def test_a_token_that_is_no_str_is_named_after_the_article_of_its_class() -> None:
    # on main: "A token must be a str, got a int: 42."
    appender = MessageTokenAppender()
    with pytest.raises(MessageTypeError, match=r"^A token must be a str, got an int: 42\.$"):
        appender.append(42)  # type: ignore[arg-type]


async def test_appended_keeps_the_tokens_of_a_message_that_failed() -> None:
    appender = MessageTokenAppender()
    appender.append("half ")
    appender.append("a reply")
    appender.fail(RuntimeError("the producer broke"))
    assert appender.appended == "half a reply"
    with pytest.raises(RuntimeError, match="the producer broke"):
        await appender.promise
