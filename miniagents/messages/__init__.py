"""Messages and streams of messages: the documented face of the streams layer.

:class:`Message` is an immutable pydantic model; :class:`MessagePromise` streams one
message token by token; :class:`MessageSequencePromise` streams many messages;
:data:`MessageType` is everything that may stand where messages are expected, and
:func:`as_message_sequence` makes any of it a sequence; :class:`ImagePart` is an image a
message carries next to its text.
"""

from miniagents.messages.appender import MessageSequenceAppender as MessageSequenceAppender
from miniagents.messages.appender import MessageTokenAppender as MessageTokenAppender
from miniagents.messages.errors import AppenderClosedError as AppenderClosedError
from miniagents.messages.errors import MessageTypeError as MessageTypeError
from miniagents.messages.image import ImagePart as ImagePart
from miniagents.messages.message import Message as Message
from miniagents.messages.message_promise import MessagePromise as MessagePromise
from miniagents.messages.sequence import MessageObservable as MessageObservable
from miniagents.messages.sequence import MessageSequencePromise as MessageSequencePromise
from miniagents.messages.sequence import MessageTuple as MessageTuple
from miniagents.messages.sequence import MessageType as MessageType
from miniagents.messages.sequence import as_message_sequence as as_message_sequence

__all__ = [
    "AppenderClosedError",
    "ImagePart",
    "Message",
    "MessageObservable",
    "MessagePromise",
    "MessageSequenceAppender",
    "MessageSequencePromise",
    "MessageTokenAppender",
    "MessageTuple",
    "MessageType",
    "MessageTypeError",
    "as_message_sequence",
]
