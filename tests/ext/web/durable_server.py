"""A web server the durable web tests run (and kill -9): a durable agent served over SSE.

``python durable_server.py``, with ``DB_URL`` (the database of durable runs),
``SIDE_EFFECTS`` (the file the ``note`` and ``remove`` tools append to), ``PROTOCOL``
(``ag-ui`` or ``ai-sdk``), ``GRACE`` (the app's grace period, 60 s by default),
``MAX_LIVE`` (the app's ``max_live_runs``, if set) and
``MOUNT`` (if set, the app is mounted there in a Starlette app of its own, whose lifespan
does not run the mounted app's) and ``AUTH`` (if set, the app knows two principals by their
bearer tokens: ``alice-secret-token`` and ``bob-secret-token``; else it knows nobody:
``NoAuthentication``). Approvals may edit a call's arguments. It
listens on a free port of 127.0.0.1 and prints ``PORT <n>``, flushed, before it serves (a
request waits in the socket's backlog until DBOS has launched and recovered the runs a kill
stopped). The agent is an OpenAI agent (the test's fake LLM server, with the real SDK) with
a ``note`` tool and a ``remove`` tool that needs approval.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from miniagents.ext.dbos import durable
from miniagents.ext.llm.openai import openai_agent
from miniagents.ext.tools import FunctionTool
from miniagents.ext.web import (
    BearerTokenAuth,
    NoAuthentication,
    WebSettings,
    agui_app,
    ai_sdk_app,
)


def note(text: str) -> str:
    """Write a note down (a side effect: a line in a file)."""
    with Path(os.environ["SIDE_EFFECTS"]).open("a", encoding="utf-8") as file:
        file.write(f"note {text}\n")
    return f"noted {text}"


def remove(name: str) -> str:
    """Remove a file (it waits for a person's approval first)."""
    with Path(os.environ["SIDE_EFFECTS"]).open("a", encoding="utf-8") as file:
        file.write(f"removed {name}\n")
    return f"removed {name}"


assistant = durable(
    openai_agent.fork(
        alias="WEB_ASSISTANT",
        model="main-model",
        tools=[note, FunctionTool(remove, requires_approval=True)],
        stream=True,
        stall_timeout=None,
    ),
    database_url=os.environ["DB_URL"],
)


class _OneLine(logging.Formatter):
    """A record as one line, without its traceback.

    The app logs an agent's failure with its traceback (under the reference its client is
    told), which is no crash of the server: the test's ``Server.stop`` looks for those.
    """

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname} {record.name}: {record.getMessage()}"


def main() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_OneLine())
    logging.getLogger("miniagents.ext.web").addHandler(handler)
    make_app = ai_sdk_app if os.environ.get("PROTOCOL") == "ai-sdk" else agui_app
    tokens = BearerTokenAuth({"alice-secret-token": "alice", "bob-secret-token": "bob"})
    # (its clients get an agent's error as written: the tests follow it across a restart)
    settings = WebSettings(
        grace_period=float(os.environ.get("GRACE", "60")), approval_edits=True, error_texts=True
    )
    if os.environ.get("MAX_LIVE"):
        settings = dataclasses.replace(settings, max_live_runs=int(os.environ["MAX_LIVE"]))
    app = make_app(
        assistant,
        authentication=tokens if os.environ.get("AUTH") else NoAuthentication(),
        settings=settings,
    )
    if os.environ.get("MOUNT"):
        app = Starlette(routes=[Mount(os.environ["MOUNT"], app=app)])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    print("PORT", sock.getsockname()[1], flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
