"""Input requests: an agent's question to whoever reads its reply, and the answer it waits for.

An agent that needs more from its caller before it goes on (a detail the request left
out, a choice, a confirmation) replies with an :class:`InputRequest` made by
:func:`request_input` and awaits its answer, with no thread blocked and nothing else held;
whoever reads the reply (a person at a console, a web page, an A2A client) answers it with
:meth:`~InputRequest.answer`, and the agent goes on from there::

    reply:   "Which city?" (an InputRequest) ------------(answer "Paris")---- "Sunny in Paris."
    agent:            awaits aanswer() .......................^ goes on

An :class:`AuthRequest` asks the caller to authenticate first (sign in somewhere, grant a
permission: its text says where and how); its answer says it is done, or carries the
credential the agent asked for.

Served over A2A (``a2a_app``), an input request makes the task ``TASK_STATE_INPUT_REQUIRED``
(an ``AuthRequest``: ``TASK_STATE_AUTH_REQUIRED``), its text the status's message, and the
next message to the task is the answer; ``a2a_agent`` puts a remote task's question in its
reply as one (``A2AInputRequest``, ``A2AAuthRequest``), and sends the answer it is given to
the task. A request that can no longer be answered (its reply was given up on, or it is
served where nobody can answer it) is *withdrawn*: ``aanswer()`` raises an
``InputRequestError`` that says why.
"""

from __future__ import annotations

import asyncio
import json

from pydantic import PrivateAttr
from typing_extensions import TypeVar

from miniagents.ext.errors import InputRequestError
from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageTuple

__all__ = [
    "AuthRequest",
    "InputRequest",
    "quoted_question",
    "quoted_words",
    "request_input",
    "withdraw_input_request",
]


class InputRequest(Message):
    """A question of an agent to whoever reads its reply: :meth:`answer` it.

    The request :func:`request_input` made is *pending*: answering it once lets the agent
    go on. A request rebuilt from its fields (read back from a history, say) is not: it was
    answered where it was asked.

    Attributes:
        text: The question, for a person to read.
        role: ``assistant``: the question is part of the agent's turn.
    """

    role: str = "assistant"

    _answer: asyncio.Future[MessageTuple[Message]] | None = PrivateAttr(default=None)
    _withdrawn: str | None = PrivateAttr(default=None)  # why it can no longer be answered

    @property
    def pending(self) -> bool:
        """Whether the agent waits for this request's answer."""
        return self._answer is not None and not self._answer.done()

    def answer(self, *messages: Message | str) -> None:
        """Answer the request with ``messages`` (a ``str`` is a message of that text).

        Raises:
            InputRequestError: if the request is not pending (answered already, withdrawn,
                or not made for an agent that waits), or the answer has no message.
        """
        if not messages:
            raise InputRequestError(
                "An answer needs at least one message (or str): e.g. request.answer('Paris')."
            )
        if not self.pending or self._answer is None:
            raise InputRequestError(self._not_pending())
        self._answer.set_result(
            MessageTuple(
                message if isinstance(message, Message) else Message(text=message)
                for message in messages
            )
        )

    async def aanswer(self) -> MessageTuple[Message]:
        """Wait for the answer: its messages (``str()`` of it joins their texts).

        Raises:
            InputRequestError: if the request was not made for an agent that waits, or it
                was withdrawn (nobody can answer it where it is served).
        """
        if self._answer is None:
            raise InputRequestError(self._not_pending())
        try:
            return await asyncio.shield(self._answer)
        except asyncio.CancelledError:
            if self._withdrawn is not None and self._answer.cancelled():
                raise InputRequestError(self._withdrawn) from None
            raise

    def _not_pending(self) -> str:
        if self._answer is None:
            return (
                "This input request is not pending: it was not made for an agent that waits "
                "here (e.g. it was read back from a history). Answer the request the reply "
                "carried, made by request_input()."
            )
        if self._withdrawn is not None:
            return self._withdrawn
        if self._answer.cancelled():
            return (
                "This input request no longer waits for an answer: its reply was given up on "
                "(cancelled)."
            )
        return "This input request was answered already; a request is answered once."


class AuthRequest(InputRequest):
    """An input request that asks the caller to authenticate before the agent goes on.

    Its text says where and how (a sign-in link, the permission to grant); its answer says
    it is done, or carries the credential asked for.
    """


RequestT = TypeVar("RequestT", bound=InputRequest, default=InputRequest)


def request_input(
    text: str,
    *,
    request_class: type[RequestT] = InputRequest,  # type: ignore[assignment]
    **metadata: object,
) -> RequestT:
    """A pending input request that asks ``text`` (a ``request_class``, with ``metadata``).

    Reply with it, then await its answer::

        question = request_input("Which city?")
        ctx.reply(question)
        city = str(await question.aanswer())

    Call it in the event loop the agent runs in: the answer is a future of that loop.
    """
    request = request_class.model_validate({**metadata, "text": text})
    object.__setattr__(request, "_answer", asyncio.get_running_loop().create_future())
    return request


def withdraw_input_request(request: InputRequest, why: str) -> None:
    """``request`` can no longer be answered: ``aanswer()`` raises ``InputRequestError(why)``.

    ``why`` is a full sentence (where it is served, nobody can answer it, say). A request
    that is not pending is left as it is.
    """
    answer = request._answer
    if answer is not None and not answer.done():
        object.__setattr__(request, "_withdrawn", why)
        answer.cancel()


_QUESTION_CHARS = 200
"""The most characters of a question that ``quoted_question`` shows."""


def quoted_words(words: str, most: int) -> str:
    """``words`` in double quotes they cannot close, on one line, at most ``most`` characters.

    For a sentence of ours that quotes words that may be a remote agent's (its question,
    its rejection): control and format characters (line breaks, bidirectional marks) become
    spaces, runs of spaces one; a longer text is cut, its end marked with "…" inside the
    quotes; a quote or a backslash is escaped (as JSON writes a string).
    """
    shown = " ".join("".join(c if c.isprintable() else " " for c in words).split())
    if len(shown) > most:
        shown = shown[: most - 1] + "…"
    return json.dumps(shown, ensure_ascii=False)


def quoted_question(request: InputRequest) -> str:
    """``request``'s text quoted as :func:`quoted_words` quotes, at most 200 characters."""
    return quoted_words(str(request), _QUESTION_CHARS)
