"""The former home of the message listener; deprecated, it warns when imported.

Import ``message_listener`` and ``MessageListener`` from
:mod:`miniagents.messages.message_promise`, where they are defined beside ``MessagePromise``
(which calls the listener). This module goes in the first release after
:data:`miniagents.reexports.FORMER_HOMES_GO_AFTER`.
"""

from miniagents.messages.message_promise import MessageListener as MessageListener
from miniagents.messages.message_promise import message_listener as message_listener
from miniagents.reexports import warn_former_home

__all__ = ["MessageListener", "message_listener"]

warn_former_home(__name__, "miniagents.messages.message_promise")
