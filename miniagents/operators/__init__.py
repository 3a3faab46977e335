"""Stream operators on messages: one home for every way to reshape a message stream.

Each operator is documented with a marble diagram, in the style of ``reactivex``: time runs
to the right, ``-`` is time passing, a name or a ``"token"`` is an item, ``|`` the end of a
stream, ``#`` an error, and the operator stands in brackets between its input and output.

Operators on observables, for ``Observable.pipe`` (each subscription reads its source anew):

- :func:`flatten_messages`: any ``MessageType`` items in, message promises out, in order;
- :func:`resolve_messages`: message promises (any ``MessageType``) in, complete messages out;
- :func:`agent_operator`: an agent as an operator, one interaction per subscription (the same
  as ``agent.as_operator(...)``);
- :func:`map_agent`: an agent (or a chain) as an operator, one interaction per item, run
  concurrently, emitting an ``ItemResult`` per item (the operator twin of ``pipeline``).

Operators on messages of any shape (a ``MessageType``: strings, messages, sequences, an
agent's replies...), which stream while their input streams:

- :func:`join_messages`: many messages into one;
- :func:`split_messages`: the text of messages cut at a delimiter into messages;
- :func:`as_message_sequence`: any ``MessageType`` as a ``MessageSequencePromise``.

A stream of many messages keeps them within its replay window and pulls its producers with
backpressure; a *hot* source (an observable that emits on its own) is handled by its
``overflow`` policy (:data:`~miniagents.promising.limits.Overflow`). Example::

    source.pipe(
        agent_operator(upper),            # each message upper-cased by an agent
        resolve_messages(),               # the complete messages, in order
        ops.to_list(),
    )
"""

from miniagents.messages.sequence import as_message_sequence as as_message_sequence
from miniagents.operators._agent import agent_operator as agent_operator
from miniagents.operators._flatten import flatten_messages as flatten_messages
from miniagents.operators._join import join_messages as join_messages
from miniagents.operators._map_agent import map_agent as map_agent
from miniagents.operators._resolve import resolve_messages as resolve_messages
from miniagents.operators._split import split_messages as split_messages
from miniagents.operators.errors import OperatorArgumentError as OperatorArgumentError

__all__ = [
    "OperatorArgumentError",
    "agent_operator",
    "as_message_sequence",
    "flatten_messages",
    "join_messages",
    "map_agent",
    "resolve_messages",
    "split_messages",
]
