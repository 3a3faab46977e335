"""``role_of``: the one reading of a message's role, shared by the history and the LLM agents."""

from __future__ import annotations

from miniagents import Message
from miniagents.ext import history
from miniagents.ext.llm.messages import AssistantMessage, SystemMessage, UserMessage
from miniagents.ext.llm.prompt import prompt_of
from miniagents.ext.roles import role_of
from miniagents.messages import MessageTuple


class _Narrated(Message):
    """A message whose class body defines its role (read as an attribute)."""

    @property
    def role(self) -> str:
        return "narrator"


def test_the_history_package_re_exports_the_one_role_of() -> None:
    # (was: role_of lived in miniagents.ext.history, which the LLM agents may not import
    # (it is built on their messages), so the prompt, the log, the realtime session and the
    # A2A client each read a role with a getattr of their own)
    assert history.role_of is role_of


def test_the_prompt_gives_each_message_the_role_role_of_reads() -> None:
    messages = (
        UserMessage(text="u"),
        AssistantMessage(text="a", model="m"),
        Message(text="n", role="narrator"),
        Message(text="none"),
        Message(text="number", role=3),
        _Narrated(text="property"),
    )
    _, conversation = prompt_of(MessageTuple(messages), None)
    assert [item.role for item in conversation] == [role_of(message) for message in messages]
    assert [role_of(message) for message in messages] == [
        "user",
        "assistant",
        "narrator",
        "user",
        "user",
        "narrator",
    ]
    assert role_of(SystemMessage(text="s")) == "system"
