"""Agents across services: A2A (the Agent2Agent protocol) served and called (extra ``a2a``).

:func:`a2a_app` serves any agent over A2A (an ASGI app: its agent card, and its tasks over
JSON-RPC, streamed token by token; push notifications when asked for), on the web layer's
run manager, identity and ownership. :func:`a2a_agent` is a remote A2A agent as a
``MiniAgent``: its reply streams token by token into its caller's, as a tool of an LLM
agent, in a pipeline or on Ray. Both sides speak every part type and task state in typed
messages (:mod:`miniagents.ext.a2a.messages`: files, data, questions to the caller;
``A2ATaskRejectedError``). Both use the official ``a2a-sdk``; importing this package
without it (or without the web extra's Starlette and sse-starlette) raises a
``MissingExtraError`` that says ``pip install "miniagents[a2a]"``.

Why not the a2a-sdk's own server layer (its JSON-RPC dispatcher, request handler and task
store): the package uses the SDK's types, error reasons and client, but that layer would
keep a second copy of each task, beside the run manager's owners, limits, approvals, pauses
and forgetting, and re-encode each logged event for each follower (thousands of times the
cost of framing it here: ``tests/benchmarks/a2a_framing.py``), with no event ids to resume
a stream by, no bound on the body it reads, and notifications answered (docs/a2a.md, "Why
its own JSON-RPC layer").
"""

from miniagents.ext.errors import MissingExtraError

MissingExtraError.unless_importable(
    ["a2a.types", "starlette", "sse_starlette", "ag_ui"],
    "miniagents.ext.a2a needs {module} (the official a2a-sdk, and the web extra's "
    "Starlette, sse-starlette and ag-ui-protocol). Install them with: "
    'pip install "miniagents[a2a]"',
)

from miniagents.ext.a2a.client import a2a_agent as a2a_agent  # noqa: E402
from miniagents.ext.a2a.client import afetch_agent_card as afetch_agent_card  # noqa: E402
from miniagents.ext.a2a.errors import A2ATaskRejectedError as A2ATaskRejectedError  # noqa: E402
from miniagents.ext.a2a.messages import A2AAuthRequest as A2AAuthRequest  # noqa: E402
from miniagents.ext.a2a.messages import A2AData as A2AData  # noqa: E402
from miniagents.ext.a2a.messages import A2AFile as A2AFile  # noqa: E402
from miniagents.ext.a2a.messages import A2AInputRequest as A2AInputRequest  # noqa: E402
from miniagents.ext.a2a.messages import A2AMessage as A2AMessage  # noqa: E402
from miniagents.ext.a2a.messages import A2AReply as A2AReply  # noqa: E402
from miniagents.ext.a2a.push import A2APushNotifications as A2APushNotifications  # noqa: E402
from miniagents.ext.a2a.server import A2ASkill as A2ASkill  # noqa: E402
from miniagents.ext.a2a.server import a2a_app as a2a_app  # noqa: E402

__all__ = [
    "A2AAuthRequest",
    "A2AData",
    "A2AFile",
    "A2AInputRequest",
    "A2AMessage",
    "A2APushNotifications",
    "A2AReply",
    "A2ASkill",
    "A2ATaskRejectedError",
    "a2a_agent",
    "a2a_app",
    "afetch_agent_card",
]
