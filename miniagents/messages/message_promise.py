"""``MessagePromise``: a message streamed token by token, awaitable as a ``Message``."""

from __future__ import annotations

import reprlib
from collections.abc import AsyncIterable, Callable, Generator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Generic, NoReturn, Self, overload

from reactivex import Observable
from typing_extensions import TypeVar

from miniagents.arguments import a_class
from miniagents.frozen.model import FrozenDict, freeze
from miniagents.messages.errors import (
    MessageTupleFieldError,
    MessageTypeError,
    SyncReadError,
    UnresolvedMessageError,
)
from miniagents.messages.message import Message
from miniagents.promising.errors import IncompleteStreamError, StreamArgumentError
from miniagents.promising.lowlevel import (
    ReplayCore,
    ReplayObservable,
    core_of,
    joined_text,
    pieces_are,
)
from miniagents.promising.sentinels import NO_VALUE
from miniagents.promising.streamed_promise import StreamedPromise, source_observable

__all__ = [
    "MessageListener",
    "MessagePromise",
    "MessageT",
    "MessageT_co",
    "is_ready",
    "message_listener",
]

MessageListener = Callable[["MessagePromise", Message], None]
"""Called with a promise and its complete message; it must not block or raise."""

message_listener: ContextVar[MessageListener | None] = ContextVar(
    "miniagents_message_listener", default=None
)
"""The listener for message promises created in the current context, if any (the agents
layer sets it: see :mod:`miniagents.messages.listener`)."""

MessageT_co = TypeVar("MessageT_co", bound=Message, default=Message, covariant=True)
"""The class of the messages of a stream (``Message`` unless it says otherwise)."""

MessageT = TypeVar("MessageT", bound=Message)
"""A message class a call chooses (e.g. ``message_class=``), kept in its result's type."""


def _require_str(token: object) -> BaseException | None:
    if isinstance(token, str):
        return None
    return MessageTypeError(
        f"A message token must be a str, but the token stream produced "
        f"{a_class(type(token))}: {token!r}. Convert tokens to str before streaming them."
    )


class MessagePromise(StreamedPromise[str, Message], Generic[MessageT_co]):
    """A message that streams token by token: ``async for`` the tokens, ``await`` the message.

    Metadata known before the text is complete (a role, a model name) is given at
    creation and available at once as :attr:`metadata`; the resolved message is
    ``message_class(text=<all tokens joined>, **metadata)``. The type parameter is the
    message's class: ``MessagePromise[Weather]`` resolves to a ``Weather``;
    ``MessagePromise`` alone means ``MessagePromise[Message]``.

    Example:
        >>> async def tokens():
        ...     yield "Hel"
        ...     yield "lo"
        >>> promise = MessagePromise.from_async_iterable(tokens(), role="assistant")
        >>> # `async for token in promise` gives "Hel", "lo"; `await promise` gives
        >>> # Message(text="Hello", role="assistant").
    """

    __slots__ = ("_message_class", "_metadata")

    _message_class: type[Message]
    _metadata: FrozenDict | None  # None: a ready message's, read from it when first asked

    if TYPE_CHECKING:  # the same method, typed by the message's class (no run-time cost)

        def __await__(self) -> Generator[Any, None, MessageT_co]:
            """``await promise`` gives the whole message."""

    @overload
    def __init__(self, source: None = None, *, prefill_message: MessageT_co) -> None: ...

    @overload
    def __init__(
        self,
        source: AsyncIterable[str] | Observable[str],
        *,
        message_class: type[MessageT_co],
        **metadata: object,
    ) -> None: ...

    @overload
    def __init__(
        self: MessagePromise[Message],
        source: AsyncIterable[str] | Observable[str],
        *,
        prefill_message: None = None,
        message_class: type[Message] = ...,
        **metadata: object,
    ) -> None: ...

    # A ``**metadata`` spread is checked against every keyword above (mypy cannot tell that
    # it holds no ``message_class``): one of plain values (``dict[str, str]``) matches only
    # here, typed exactly, as its values cannot be a message class or a ready message. (So
    # mypy also takes ``message_class="Row"`` here, which fails at once at run time: the
    # price of a spread without ``message_class=Message``. The constructors below alike.)
    @overload
    def __init__(
        self: MessagePromise[Message],
        source: AsyncIterable[str] | Observable[str],
        **metadata: str | int | float | bool,
    ) -> None: ...

    def __init__(
        self,
        source: AsyncIterable[str] | Observable[str] | None = None,
        *,
        prefill_message: Any = None,  # a Message (Any: the overloads' **metadata may name it)
        message_class: Any = Message,  # a type[Message] (Any: the same)
        **metadata: object,
    ) -> None:
        """Create a message promise from a token source, or from a ready message.

        A message keeps every token of its source, so it takes no ``overflow`` policy (as a
        ``StreamedPromise`` does): see :meth:`from_observable`.

        Args:
            source: The tokens: an async iterable (pulled in a task) or an observable.
            prefill_message: A complete message; its text becomes the only token.
            message_class: The class of the resolved message (with a token source).
            **metadata: Fields of the resolved message known before its text.

        Raises:
            StreamArgumentError: if both or neither of ``source`` and ``prefill_message``
                are given, if metadata comes with ``prefill_message``, or for an
                ``overflow=`` that ``message_class`` does not declare as a field.
            MessageTypeError: if ``prefill_message`` is not a ``Message``.
        """
        if prefill_message is not None:
            if source is not None or metadata:
                raise StreamArgumentError(
                    "MessagePromise(prefill_message=...) takes no token source and no "
                    "metadata: the message already holds both."
                )
            try:  # (no check before: a message is the common case, and costs nothing here)
                self._init_prefilled(prefill_message)
            except AttributeError:  # (no ``text``: a str, a dict ... given for a message)
                if isinstance(prefill_message, Message):
                    raise
                raise MessageTypeError(
                    "MessagePromise(prefill_message=...) takes a Message, not "
                    f"{a_class(type(prefill_message))} ({reprlib.repr(prefill_message)}): wrap "
                    "it, MessagePromise(prefill_message=Message(text=...)), or make the promise "
                    "of a text with MessagePromise.of_text(text)."
                ) from None
        elif source is None:
            raise StreamArgumentError(
                "MessagePromise() needs a token source (an async iterable or an Observable "
                "of str) or a ready message: MessagePromise(prefill_message=Message(text=...))."
            )
        else:
            _refuse_overflow(metadata, message_class, "MessagePromise(source, ...)")
            self._init_streamed(source, message_class, metadata)

    @classmethod
    def of_text(cls, text: str) -> MessagePromise[Message]:
        """A complete message of just ``text`` (the fast path for plain strings)."""
        if cls is MessagePromise:  # the light promise (see _ReadyMessagePromise)
            # (Message.__init__ writes the state of a message of just a str directly)
            return _ReadyMessagePromise(Message(text=text))
        promise: MessagePromise[Message] = cls.__new__(cls)
        # a str needs no validation, and such a message has no metadata to read
        promise._init_prefilled(Message(text=text), _NO_METADATA)
        return promise

    @classmethod
    def of_message(cls, message: MessageT) -> MessagePromise[MessageT]:
        """A promise of a ready message (what ``MessagePromise(prefill_message=...)`` makes)."""
        if cls is MessagePromise:  # the light promise (see _ReadyMessagePromise)
            return _ReadyMessagePromise(message)
        promise: MessagePromise[MessageT] = cls.__new__(cls)  # type: ignore[arg-type]
        promise._init_prefilled(message)
        return promise

    def _init_prefilled(self, message: Message, metadata: FrozenDict | None = None) -> None:
        self._fill_ready(message, metadata)
        listener = message_listener.get()
        if listener is not None:
            listener(self, message)

    def _fill_ready(self, message: Message, metadata: FrozenDict | None = None) -> None:
        """Set what a promise of the ready ``message`` holds besides the message."""
        text = message.text
        # no flow, no handle: a finished core of the text as the only token (none if empty)
        self._core = ReplayCore.finished([text] if text else [], str)
        self._resolver = None
        self._whole = message
        self._view = False
        self._message_class = type(message)
        self._metadata = metadata  # None: read from the message when first asked

    def _init_streamed(
        self,
        source: AsyncIterable[str] | Observable[str] | None,
        message_class: type[Message],
        metadata: Mapping[str, object],
    ) -> None:
        """Stream tokens from ``source`` or, with no source, from the owner (an appender)."""
        if "text" in metadata:
            raise StreamArgumentError(
                "The text of a streamed message comes from its tokens; "
                "remove the text= keyword argument."
            )
        if message_class is not Message and not (
            isinstance(message_class, type) and issubclass(message_class, Message)
        ):
            raise StreamArgumentError(
                f"A streamed message's message_class must be Message or a subclass of it; got "
                f"{message_class!r}. Subclass Message (class Row(Message): ...) for typed fields."
            )
        observable = source_observable(source, "MessagePromise")
        self._message_class = message_class
        self._metadata = _metadata({name: freeze(value) for name, value in metadata.items()})
        if (
            observable is not None  # (an appender's message: no check of the ABC below)
            and isinstance(observable, ReplayObservable)
            and pieces_are(observable.core, str)
        ):
            core = observable.core  # another message's tokens, unchanged: share its record
            self._setup(core, view=True)
        else:
            core = ReplayCore(
                observable,
                validator=None if source is None else _require_str,
                piece_type=str,
                open_ended=source is None,
            )
            if observable is not None and observable is not source:
                # an async iterable pulled: once every consumer has given up, it is closed
                core.on_abandoned = core.cancel
            self._setup(core)
        listener = message_listener.get()
        if listener is not None:
            core.when_done(lambda: None if core.error else listener(self, self._build(core)))

    @overload
    @classmethod
    def from_async_iterable(
        cls, tokens: AsyncIterable[str], /, *, message_class: type[MessageT], **metadata: object
    ) -> MessagePromise[MessageT]: ...

    @overload
    @classmethod
    def from_async_iterable(
        cls,
        tokens: AsyncIterable[str],
        /,
        *,
        message_class: type[Message] = ...,
        **metadata: object,
    ) -> Self: ...

    @overload
    @classmethod
    def from_async_iterable(
        cls, tokens: AsyncIterable[str], /, **metadata: str | int | float | bool
    ) -> Self: ...

    @classmethod
    def from_async_iterable(
        cls,
        tokens: AsyncIterable[str],
        /,
        *,
        message_class: Any = Message,  # a type[Message]: Any as the overloads' **metadata
        **metadata: object,
    ) -> MessagePromise[Message]:
        """Stream the tokens of an async iterable (pulled in a task at the first consumer).

        The message is a ``message_class`` (``Message`` by default), which the result's type
        says: ``MessagePromise[message_class]``.
        """
        promise: MessagePromise[Message] = cls.__new__(cls)
        promise._init_streamed(tokens, message_class, metadata)
        return promise

    @overload
    @classmethod
    def from_observable(
        cls, tokens: Observable[str], /, *, message_class: type[MessageT], **metadata: object
    ) -> MessagePromise[MessageT]: ...

    @overload
    @classmethod
    def from_observable(
        cls, tokens: Observable[str], /, *, message_class: type[Message] = ..., **metadata: object
    ) -> Self: ...

    @overload
    @classmethod
    def from_observable(
        cls, tokens: Observable[str], /, **metadata: str | int | float | bool
    ) -> Self: ...

    @classmethod
    def from_observable(
        cls,
        tokens: Observable[str],
        /,
        *,
        message_class: Any = Message,  # a type[Message]: Any as the overloads' **metadata
        **metadata: object,
    ) -> MessagePromise[Message]:
        """Stream the tokens of an observable (subscribed to at the first consumer).

        The message keeps every token, however fast a hot observable emits them (its
        consumers read them late, none is dropped): unlike
        ``MessageSequencePromise.from_observable``, it takes no ``overflow`` policy, and
        its keyword arguments are the message's metadata.

        Marble::

            tokens:   --"Hel"--"lo"--|
            promise:  --"Hel"--"lo"--|   and `await promise` -> Message(text="Hello")

        Raises:
            StreamArgumentError: for an ``overflow=`` that ``message_class`` does not
                declare as a field (it would only become one, unlike the siblings' policy),
                or a ``message_class`` that is not a ``Message`` class.
        """
        _refuse_overflow(metadata, message_class, "MessagePromise.from_observable(...)")
        promise = cls.__new__(cls)
        promise._init_streamed(tokens, message_class, metadata)
        return promise

    @property
    def metadata(self) -> Mapping[str, object]:
        """The fields of the message known before its text (everything but ``text``)."""
        metadata = self._metadata
        if metadata is None:  # a ready message: its fields
            message = self._whole
            assert message is not NO_VALUE
            fields = {name: value for name, value in message if name != "text"}
            metadata = self._metadata = _metadata(fields)
        return metadata

    @property
    def message_class(self) -> type[MessageT_co]:
        """The class of the message this promise resolves to."""
        return self._message_class  # type: ignore[return-value]  # the overloads of __init__

    def _add_metadata(self, fields: Mapping[str, object]) -> None:
        """Add metadata learnt while the message streams (its owner does this, before the end)."""
        if "text" in fields:
            raise StreamArgumentError("The text of a streamed message comes from its tokens.")
        frozen = {name: freeze(value) for name, value in fields.items()}
        self._metadata = _metadata({**self.metadata, **frozen})

    def message_now(self) -> MessageT_co:
        """The complete message, without waiting.

        Raises:
            IncompleteStreamError: if the message is still streaming.
            BaseException: the error that ended the token stream, if it failed.
        """
        whole = self._whole
        if whole is not NO_VALUE:  # (built once; a ready message's is all it holds)
            return whole  # type: ignore[return-value]  # see _build
        core = self._core
        if not core.done:
            raise IncompleteStreamError(
                "The message is still streaming. Await it instead: `message = await promise`."
            )
        core.raise_if_failed()
        return self._build(core)

    async def aresolve(self) -> MessageT_co:
        """Wait for the whole message (or raise the error that ended its tokens)."""
        whole = self._whole
        if whole is not NO_VALUE:
            return whole  # type: ignore[return-value]  # see _build
        core = self._core
        await core.await_done()
        core.raise_if_failed()
        return self._build(core)

    def _build(self, core: ReplayCore[str]) -> MessageT_co:
        """The message of a finished core of tokens (made once)."""
        # the whole is a ``message_class``, a ``MessageT_co`` (see the overloads of __init__)
        if self._whole is not NO_VALUE:
            return self._whole  # type: ignore[return-value]
        message = self._message_class(text=joined_text(core), **self.metadata)
        self._whole = message
        return message  # type: ignore[return-value]

    def __str__(self) -> str:
        """The text of the message, once it has been streamed completely.

        Raises:
            IncompleteStreamError: if the message is still streaming.
        """
        if not self._core.done:
            raise IncompleteStreamError(
                "str() was called on a MessagePromise that is still streaming. "
                "Await it first: `message = await promise`, then use str(message)."
            )
        return str(self.message_now())

    def __repr__(self) -> str:
        """Show the class, the state, the number of tokens so far and the metadata."""
        return f"{super().__repr__()[:-1]}, {dict(self.metadata)!r}>"

    if not TYPE_CHECKING:  # (for mypy a promise has only its own attributes, as it does)

        def __getattr__(self, name: str) -> NoReturn:
            """Called only for an attribute it lacks: a message's field, read too soon.

            Raises:
                UnresolvedMessageError: for a public name (an ``AttributeError``, so that
                    ``hasattr`` still says no), telling to await the promise first.
                AttributeError: for a private or special one, as without this method.
            """
            _refuse_attribute(
                self,
                name,
                f"A MessagePromise has no attribute {name!r}: it is the promise of a message "
                "(which may still be streaming). Await it, then read the message: `message = "
                f"await promise`, then `message.{name}`.",
            )

        def __getitem__(self, index: object) -> NoReturn:
            """Refuse reading the tokens with ``for``, ``list()``, ``in`` or an index.

            Python falls back on ``__getitem__`` for these; an ``__iter__`` would make every
            promise an ``Iterable`` to ``isinstance`` checks (and a ``__len__`` a ``Sized``).

            Raises:
                SyncReadError: always, saying to use ``async for`` or ``await``.
            """
            _refuse_sync_read(
                "A MessagePromise streams its tokens, so it is read asynchronously",
                each="`async for token in message:` for each token as it comes",
                whole="`message = await message` for the whole message (then `message.text`)",
            )


def _refuse_sync_read(subject: str, *, each: str, whole: str) -> NoReturn:
    """Refuse a synchronous read (``for``, ``list()``, ``in``, an index) of a stream of messages.

    The one refusal of a ``MessagePromise`` and a ``MessageSequencePromise`` read so (their
    ``__getitem__``, hidden from mypy): a sentence naming the ``async for`` and the ``await``
    that read them.

    Args:
        subject: What was read, and that it is read asynchronously (the sentence's start).
        each: The ``async for`` that reads it piece by piece, and what each piece is.
        whole: The ``await`` that reads it whole, and what that gives.

    Raises:
        SyncReadError: always.
    """
    raise SyncReadError(f"{subject}: use {each}, or {whole}.")


def _refuse_attribute(
    obj: object,
    name: str,
    sentence: str,
    error: type[UnresolvedMessageError | MessageTupleFieldError] = UnresolvedMessageError,
) -> NoReturn:
    """Refuse reading ``name``, which ``obj`` (messages, or a promise of them) lacks.

    The one refusal of the ``__getattr__`` of a ``MessagePromise``, a
    ``MessageSequencePromise`` (hidden from mypy) and a ``MessageTuple``: a message's field
    read too soon, or from many messages.

    Raises:
        UnresolvedMessageError: (or ``error``) for a public name (an ``AttributeError``, so
            that ``hasattr`` still says no), saying ``sentence``: where to read it instead.
        AttributeError: for a private or special one, as without a ``__getattr__``.
    """
    if name[:1] == "_":
        raise AttributeError(f"{type(obj).__name__!r} object has no attribute {name!r}")
    raise error(sentence, name=name, obj=obj)


_NO_METADATA = FrozenDict()


def is_ready(promise: MessagePromise[Any]) -> bool:
    """Whether ``promise`` is complete and did not fail (``message_now`` then returns it).

    It makes nothing to ask (the promise of a ready message makes its token stream only
    when something needs it) and, unlike ``message_now``, never raises: an observer that
    must not receive a message's error asks this first.
    """
    if type(promise) is _ReadyMessagePromise:
        return True
    core = core_of(promise)
    return core.done and core.error is None


class _ReadyMessagePromise(MessagePromise[Any]):
    """The promise of a ready message as ``of_message`` and ``of_text`` make it: only the whole.

    A ready message is wrapped once per message replied or flattened, and most of these
    promises are only awaited (``await`` reads the whole), so this one sets the whole alone
    and makes the rest (a finished core of the text, the message's class ...) when any of
    it is first read or written (the properties below): it then becomes a plain
    ``MessagePromise`` (the same slots) holding what ``_fill_ready`` sets, which is what a
    promise of a ready message made eagerly holds. So ``isinstance`` and every behaviour are
    those of a ``MessagePromise``; only ``type()`` tells it until then. It is named
    ``MessagePromise`` (``__name__``, ``__qualname__``), as what users see of it (Python's own
    errors, ``type(promise).__name__``) is a ``MessagePromise``; ``type(promise) is
    _ReadyMessagePromise`` still tells it.
    """

    __slots__ = ()
    __qualname__ = "MessagePromise"

    def __init__(self, message: Message) -> None:  # (the overloads are MessagePromise's)
        """Wrap ``message`` (the listener of the context is told, as for any promise)."""
        self._whole = message
        listener = message_listener.get()
        if listener is not None:
            listener(self, message)

    def _made(self) -> None:
        """Become a plain ``MessagePromise`` holding all that a ready message's promise holds."""
        self.__class__ = MessagePromise  # type: ignore[assignment]  # (same slots)
        self._fill_ready(self._whole)  # type: ignore[arg-type]  # (always a message here)


def _made_when_used(name: str) -> property:
    """A field of ``_ReadyMessagePromise`` that makes the rest first (see ``_made``)."""

    def read(self: _ReadyMessagePromise) -> object:
        self._made()
        return getattr(self, name)  # the slot now

    def write(self: _ReadyMessagePromise, value: object) -> None:
        self._made()
        setattr(self, name, value)

    return property(read, write)


for _name in ("_core", "_resolver", "_view", "_message_class", "_metadata"):
    setattr(_ReadyMessagePromise, _name, _made_when_used(_name))
_ReadyMessagePromise.__name__ = "MessagePromise"  # (see its docstring)


def _refuse_overflow(metadata: Mapping[str, object], message_class: object, made_by: str) -> None:
    """Refuse ``overflow=`` as metadata unless the message class declares that field.

    ``StreamedPromise(..., overflow=...)`` and ``MessageSequencePromise.from_observable(...,
    overflow=...)`` take an overflow policy; a message keeps every token, so it takes none,
    and its keyword arguments are its metadata: ``overflow='drop_oldest'`` there would only
    become a field of the message, silently.
    """
    if "overflow" in metadata and "overflow" not in getattr(message_class, "model_fields", ()):
        raise StreamArgumentError(
            f"{made_by} takes no overflow policy: a message keeps every token of its source, "
            f"however fast a hot one emits them, so overflow={metadata['overflow']!r:.40} "
            "would only become a field of the message. Remove overflow=, or, for a field of "
            "that name, declare it in a Message subclass and pass message_class=."
        )


def _metadata(fields: dict[str, object]) -> FrozenDict:
    return FrozenDict(fields) if fields else _NO_METADATA
