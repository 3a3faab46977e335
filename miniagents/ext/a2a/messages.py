"""The messages of A2A's parts and states, on both sides of a hop.

A remote agent's reply, as :func:`~miniagents.ext.a2a.a2a_agent` gives it, and what an
agent served with :func:`~miniagents.ext.a2a.a2a_app` replies with:

- texts are :class:`A2AMessage` s: assistant messages (``isinstance(message,
  AssistantMessage)``), with the model, the usage and cost, and the agent's alias when the
  remote said them (a MiniAgents server does), and the remote task they came from (a
  served agent replies with any message: its text is a text part);
- files are :class:`A2AFile` s (bytes or a URL, a name and a media type: A2A's file
  part), structured data :class:`A2AData` s (JSON: its data part); a client's files and
  data, as a served agent's input, are these too (``role="user"``);
- a question of the remote agent to its caller (``TASK_STATE_INPUT_REQUIRED``) is an
  :class:`A2AInputRequest`, and a request to authenticate (``TASK_STATE_AUTH_REQUIRED``)
  an :class:`A2AAuthRequest`: answer it (``request.answer("...")``) and the reply goes
  on; a served agent asks with any ``InputRequest`` (``request_input(...)``, see
  :mod:`miniagents.ext.input_requests`);
- a MiniAgents server's tool calls, approval requests and tools' results are
  ``LLMToolCallMessage``, ``LLMToolApprovalRequest`` and ``LLMToolResultMessage``, as an
  LLM agent's own are.

:data:`A2AReply` is the type of such a reply message. A message a remote sent whole, with
no task (a direct answer), is an ``A2AMessage`` (and files and data) whose ``task_id`` is
``None``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any, Self, TypeAlias, Union

from pydantic import field_serializer, model_validator

from miniagents.ext.a2a.errors import A2AConfigurationError
from miniagents.ext.history.storage import add_built_in_message_classes
from miniagents.ext.input_requests import AuthRequest, InputRequest
from miniagents.ext.llm.messages import (
    AssistantMessage,
    LLMMessage,
    LLMToolApprovalRequest,
    LLMToolCallMessage,
    LLMToolResultMessage,
)

__all__ = [
    "A2AAuthRequest",
    "A2AData",
    "A2AFile",
    "A2AInputRequest",
    "A2AMessage",
    "A2APart",
    "A2AReply",
    "JSONValue",
]

JSONValue: TypeAlias = Mapping[str, object] | Sequence[object] | str | int | float | bool | None
"""A JSON value (an object, an array, a string, a number, a Boolean or ``null``)."""


class A2AMessage(AssistantMessage):
    """A text of a remote A2A agent's reply (an artifact of its task, or a direct answer).

    Attributes:
        task_id: The remote task's id (``None``: the remote answered without a task).
        context_id: The remote task's context.
        artifact_id: The artifact of the task it is.
    """

    task_id: str | None = None
    context_id: str | None = None
    artifact_id: str | None = None


class A2APart(LLMMessage):
    """What a file and data share (A2A's parts other than text): their media type and origin.

    Attributes:
        media_type: The media type (``text/plain``, ``application/json``, ...), if said.
        task_id: The remote task it came from, if any.
        context_id: That task's context.
        artifact_id: The artifact of the task it is.
    """

    media_type: str | None = None
    task_id: str | None = None
    context_id: str | None = None
    artifact_id: str | None = None


class A2AFile(A2APart):
    """A file: its bytes or its URL, with its name and media type (A2A's file part).

    Reply with one from an agent served with ``a2a_app`` to send a file (an artifact of
    one file part, after a text part if the message has text); ``a2a_agent`` gives a
    remote's file parts so, and a client's file parts are a served agent's input so. Give
    exactly one of ``data`` and ``url``. An image (a PNG, JPEG, GIF or WebP) is also the
    message's ``images``, so that a model that reads images sees it.

    Attributes:
        data: The file's bytes (given as ``str``: their base64 text).
        url: Where the file is.
        filename: Its name.

    Example:
        >>> A2AFile(data=b"Hello", filename="hello.txt", media_type="text/plain")
        A2AFile(data=<5 bytes>, filename='hello.txt', media_type='text/plain')
    """

    data: bytes | None = None
    url: str | None = None
    filename: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _bytes_of_base64(cls, given: Any) -> Any:
        """Base64 text given as ``data`` (JSON's way to hold bytes) as the bytes it says."""
        if isinstance(given, Mapping) and isinstance(given.get("data"), str):
            try:
                return {**given, "data": base64.b64decode(given["data"], validate=True)}
            except (binascii.Error, ValueError) as error:
                raise A2AConfigurationError(
                    f"An A2AFile's data given as text must be the file's bytes in base64 "
                    f"({error}): give the bytes themselves as data=b'...'."
                ) from error
        return given

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.data is None) == (self.url is None):
            raise A2AConfigurationError(
                "An A2AFile takes either data=... (the file's bytes) or url=... (where it "
                "is): give exactly one of them."
            )
        return self

    @field_serializer("data", when_used="json")
    def _base64_data(self, data: bytes | None) -> str | None:
        """Bytes are written as their base64 text (and read back from it)."""
        return None if data is None else base64.b64encode(data).decode("ascii")

    def __str__(self) -> str:
        """The text; without one, what the file is (its name, media type and size or URL)."""
        if self.text is not None:
            return self.text
        about = ", ".join(
            said
            for said in (
                self.media_type,
                f"{len(self.data)} bytes" if self.data is not None else None,
            )
            if said
        )
        name = self.filename or (self.url if self.url is not None else "a file")
        where = f" at {self.url}" if self.url is not None and self.filename else ""
        return f"[file {name}{where}{f' ({about})' if about else ''}]"

    def __repr_args__(self) -> Any:
        """The fields that are set; bytes by their size only."""
        for name, value in super().__repr_args__():
            if value is not None:
                yield name, (_Size(len(value)) if isinstance(value, bytes) else value)


class A2AData(A2APart):
    """Structured data: a JSON value (A2A's data part), its text that JSON.

    Reply with one from an agent served with ``a2a_app`` to send data (an artifact of one
    data part); ``a2a_agent`` gives a remote's data parts so, and a client's data parts are
    a served agent's input so.

    Attributes:
        data: The value (an object, mostly); its media type is ``application/json`` when
            not said.

    Example:
        >>> str(A2AData(data={"city": "Paris", "celsius": 21}))
        '{"city": "Paris", "celsius": 21}'
    """

    data: JSONValue = None

    @model_validator(mode="before")
    @classmethod
    def _text_of_data(cls, given: Any) -> Any:
        """The text is the data's JSON, unless one is given."""
        if isinstance(given, Mapping) and given.get("text") is None:
            text = json.dumps(given.get("data"), ensure_ascii=False, default=str)
            return {**given, "text": text}
        return given


class A2AInputRequest(InputRequest, LLMMessage):
    """A question of a remote agent's task to its caller (``TASK_STATE_INPUT_REQUIRED``).

    Answer it (``request.answer("Paris")``, or messages: texts, ``A2AFile`` s,
    ``A2AData``) and ``a2a_agent`` sends the answer to the task, whose reply goes on.

    Attributes:
        task_id: The remote task that waits for the answer.
        context_id: Its context.
    """

    task_id: str | None = None
    context_id: str | None = None


class A2AAuthRequest(A2AInputRequest, AuthRequest):
    """A remote agent's task waits for its caller to authenticate (``TASK_STATE_AUTH_REQUIRED``).

    Its text says where and how; answer it once done (or with the credential it asks
    for), as an :class:`A2AInputRequest`.
    """


class _Size:
    """How ``repr`` shows a file's bytes: by their count."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __repr__(self) -> str:
        return f"<{self.count} bytes>"


A2AReply: TypeAlias = Union[  # noqa: UP007  (each an LLMMessage: its usage, model, alias typed)
    A2AMessage,
    A2AFile,
    A2AData,
    A2AInputRequest,
    LLMToolCallMessage,
    LLMToolApprovalRequest,
    LLMToolResultMessage,
]
"""A message of an ``a2a_agent``'s reply: a text (:class:`A2AMessage`), a file, data, the
remote's question (:class:`A2AInputRequest`, an :class:`A2AAuthRequest` among them), or one
of a MiniAgents server's tool calls, approval requests and tools' results. Every one is an
``LLMMessage`` (``role``, ``model``, ``agent_alias``, ``usage`` typed on each), as an LLM
agent's replies are."""

add_built_in_message_classes(A2AMessage, A2AFile, A2AData, A2AInputRequest, A2AAuthRequest)
# (chat histories load each back as itself: the history package may not import this one)
