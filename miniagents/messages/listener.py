"""The former home of the message listener, kept so that old imports still work.

A hook that hears about every message promise whose message is complete.
The agents layer (``MiniAgents``) sets :data:`message_listener` for the code running
inside it, so that ``on_persist_message`` and ``on_promise_resolved`` handlers are
called once a message is complete, whether or not anyone awaits it. Both names are
defined beside ``MessagePromise`` (which calls the listener) and re-exported here.
"""

from __future__ import annotations

from miniagents.messages.message_promise import MessageListener as MessageListener
from miniagents.messages.message_promise import message_listener as message_listener

__all__ = ["MessageListener", "message_listener"]
