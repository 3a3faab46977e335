"""``Answer``: the structured answer of one interaction, held back until it validates.

::

    model (try 1):  '{"city": "Pa' 'ris"}'        -> errors: celsius missing -> back to the model
    model (try 2):  '{"city": "Paris", ' '"celsius": 21}'  -> valid
    partials:       Weather(city='Paris', celsius=21.0)  (only try 2 had one that validates)
    message:        Weather, in the reply from try 1's first token; its tokens (try 2's)
                    and fields come when try 2 validates

A message cannot take back tokens it streamed, so the message gets only the tokens of the
try that validated; the partial objects (see :mod:`miniagents.ext.llm.structured`) stream
live, try after try.
"""

from __future__ import annotations

import asyncio

from miniagents.ext.llm._output_schema import PartialParser, error_summary, validated_fields
from miniagents.ext.llm.errors import LLMOutputValidationError
from miniagents.ext.llm.messages import TokenUsage
from miniagents.ext.llm.prompt import PromptText
from miniagents.ext.llm.provider import Finish, LLMOptions
from miniagents.ext.llm.structured import LivePartials, _register_partials
from miniagents.messages.appender import MessageTokenAppender
from miniagents.messages.message import Message
from miniagents.messages.message_promise import MessagePromise
from miniagents.miniagents import InteractionContext

__all__ = [
    "CONTEXT_FULL",
    "PER_REQUEST_LIMIT",
    "Answer",
    "cut_answer",
    "cut_by",
    "invalid_answer",
    "retry_prompt",
]

CONTEXT_FULL = "model_context_window_exceeded"
"""The finish reason of a reply that the model's context window cut off (Anthropic's and
Bedrock's): its prompt and reply filled the window, whatever the reply's max_tokens."""

PER_REQUEST_LIMIT = "CONTINUATION"
"""The finish reason of a Gemini reply cut off by the API's own limit on one request, not
by its max_tokens: the reply is not finished, and goes on in a request with its
continuation token (what the Gemini SDK does itself unless ``automatic_continuation`` is
off, or when the reply came without a token)."""


def cut_by(alias: str, reason: str | None) -> tuple[str, str]:
    """What cut a reply off, in words, and the fix: its max_tokens, its context window, or
    Gemini's limit on one request (which a larger max_tokens does not lift)."""
    if reason == PER_REQUEST_LIMIT:
        return (
            "reached the API's token limit of one request",
            "A larger max_tokens does not lift that limit: leave the Gemini SDK's automatic "
            "continuation on, which asks for the rest of the reply in requests of its own "
            "(on by default in a google-genai recent enough to have it; "
            "extra_options={'automatic_continuation': False} turns it off), or ask the "
            "model for a shorter reply.",
        )
    if reason == CONTEXT_FULL:
        return (
            "filled its context window",
            "Shorten the conversation (fewer or shorter messages and tool results), or use "
            "a model with a larger context window.",
        )
    return (
        "reached its max_tokens",
        f"Give it more room with {alias.lower()}.fork(max_tokens=...), or leave max_tokens out.",
    )


class Answer:
    """The message of a structured answer, and its partial objects.

    Args:
        ctx: The interaction whose reply gets the message.
        output_type: The answer's class.
        metadata: The message's metadata known at once (role, model, agent alias).
    """

    __slots__ = (
        "_appender",
        "_ctx",
        "_opened",
        "_output_type",
        "_parsed",
        "_parser",
        "_partials",
        "_tokens",
    )

    def __init__(
        self, ctx: InteractionContext, output_type: type[Message], metadata: dict[str, object]
    ) -> None:
        self._ctx = ctx
        self._output_type = output_type
        self._appender = MessageTokenAppender(message_class=output_type, **metadata)
        self._partials = LivePartials()
        _register_partials(self._appender.promise, self._partials)
        self._opened = False
        self._parser = PartialParser(output_type)
        self._tokens: list[str] = []
        self._parsed = 0  # how many of the tokens the parser has had

    @property
    def promise(self) -> MessagePromise:
        """The answer's message promise."""
        return self._appender.promise

    @property
    def output_type(self) -> type[Message]:
        """The answer's class."""
        return self._output_type

    @property
    def text(self) -> str:
        """The text of the current try."""
        return "".join(self._tokens)

    def open(self) -> None:
        """Put the message in the reply (once)."""
        if self._opened:
            return
        self._opened = True
        task = asyncio.current_task()
        if task is not None:  # every consumer of it giving up stops the call
            self._appender.cancel_when_abandoned(task)
        self._ctx.reply(self._appender.promise)

    def start_try(self) -> None:
        """A new call of the model: its text starts from nothing."""
        self._parser = PartialParser(self._output_type)
        self._tokens = []
        self._parsed = 0

    def feed(self, token: str) -> None:
        """A token of the current try: held, and parsed for a partial object.

        The message is put in the reply by :meth:`open` (the agent does, at once or when
        the text starts like an answer) or by :meth:`settle`.
        """
        self._tokens.append(token)
        if self._partials.wanted:  # else nobody is to see the partials: no parsing
            partial = self._parser.feed("".join(self._tokens[self._parsed :]))
            self._parsed = len(self._tokens)
            if partial is not None:
                self._partials.core.accept(partial)

    def settle(self, finish: Finish, usage: TokenUsage) -> list[dict[str, object]]:
        """Validate the current try: if it does, complete the message with it.

        Returns:
            The validation errors (none: the message is complete).
        """
        fields, errors = validated_fields(self._output_type, self.text)
        if errors:
            return errors
        self.open()
        for token in self._tokens:
            self._appender.append(token)
        self._appender.update_metadata(**{"finish_reason": finish.reason, "usage": usage, **fields})
        self._appender.complete()
        self._partials.core.complete()
        return []

    def fail(self, error: BaseException) -> None:
        """End the message and its partials with ``error`` (if they have not ended).

        A message never put in the reply stays out of it: nobody can see it.
        """
        if self._opened and not self._appender.closed:
            self._appender.fail(error)
        if not self._partials.core.done:
            self._partials.core.fail(error)


def retry_prompt(answer: Answer, errors: list[dict[str, object]]) -> tuple[PromptText, PromptText]:
    """The refused answer, and what was wrong with it, for the model's next try."""
    return (
        PromptText("assistant", answer.text),
        PromptText(
            "user",
            f"That answer is not a valid {answer.output_type.__name__}: "
            f"{error_summary(errors)}. Answer again with only the corrected JSON object.",
        ),
    )


def cut_answer(
    alias: str, model: str, answer: Answer, errors: list[dict[str, object]], reason: str | None
) -> LLMOutputValidationError:
    """The error of a structured answer that the token limit (or context window) cut short.

    It is not retried: a retry under the same limit would be cut short too.
    """
    what, fix = cut_by(alias, reason)
    return LLMOutputValidationError(
        f"The agent {alias} gave up on its structured answer: the model {model!r} {what} "
        f"(finish reason {reason!r}) while it wrote it, so its JSON is cut short "
        f"({error_summary(errors)}) and a retry under the same limit would be too. {fix}",
        errors,
        answer.text,
    )


def invalid_answer(
    alias: str, model: str, answer: Answer, errors: list[dict[str, object]], options: LLMOptions
) -> LLMOutputValidationError:
    """The error of a structured answer that did not validate, its last try given."""
    tries = options.output_retries + 1
    return LLMOutputValidationError(
        f"The agent {alias} gave up on its structured answer: the model {model!r} answered "
        f"{tries} time(s) with JSON that is not a valid {answer.output_type.__name__} (last: "
        f"{error_summary(errors)}). Give it more tries with {alias.lower()}.fork("
        "output_retries=...), or make the type easier to follow (field descriptions, "
        "looser constraints).",
        errors,
        answer.text,
    )
