"""Agents across services: A2A (the Agent2Agent protocol) served and called (extra ``a2a``).

:func:`a2a_app` serves any agent over A2A (an ASGI app: its agent card, and its tasks over
JSON-RPC, streamed token by token; push notifications when asked for), on the web layer's
run manager, identity and ownership. :func:`a2a_agent` is a remote A2A agent as a
``MiniAgent``: its reply streams token by token into its caller's, as a tool of an LLM
agent, in a pipeline or on Ray. Both sides speak every part type and task state in typed
messages (:mod:`miniagents.ext.a2a.messages`: files, data, questions to the caller;
``A2ATaskRejectedError``). Both use the official ``a2a-sdk``; importing this package
without it raises a ``MissingExtraError`` that says ``pip install "miniagents[a2a]"``
(``a2a_app``, imported at its first use, also needs the web extra's Starlette: a client
loads neither it nor the web layer).
"""

from __future__ import annotations

from miniagents.ext.errors import MissingExtraError
from miniagents.reexports import Reexports

MissingExtraError.unless_importable(  # (a2a_app's Starlette: checked by miniagents.ext.web)
    ["a2a.types"],
    "miniagents.ext.a2a needs {module} (the official a2a-sdk). Install it with: "
    'pip install "miniagents[a2a]"',
)

_REEXPORTS = Reexports(
    __name__,
    {
        "miniagents.ext.a2a.client": "a2a_agent afetch_agent_card",
        "miniagents.ext.a2a.errors": "A2ATaskRejectedError",
        "miniagents.ext.a2a.messages": (
            "A2AAuthRequest A2AData A2AFile A2AInputRequest A2AMessage A2AReply"
        ),
        "miniagents.ext.a2a.push": "A2APushNotifications",
        "miniagents.ext.a2a.server": "A2ASkill a2a_app",
    },
    eager=[
        "miniagents.ext.a2a.client",
        "miniagents.ext.a2a.errors",
        "miniagents.ext.a2a.messages",
        "miniagents.ext.a2a.push",
    ],
)
"""The package's names by module; the server's (``a2a_app``, ``A2ASkill``) are imported at
their first use, so that a client (``a2a_agent``, e.g. unpickled on a Ray worker) loads
neither the web layer nor its server; type checkers read ``__init__.pyi``, made of this
table."""
globals().update(_REEXPORTS.imported())

__all__ = _REEXPORTS.names
__getattr__ = _REEXPORTS.attribute
__dir__ = _REEXPORTS.dir
