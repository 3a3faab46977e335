"""dummy-a2a's side of ``test_dummy_a2a.py``, run by the Python of ``.venv-dummy-a2a``.

dummy-a2a (PyPI) needs Python 3.12 or newer and pins its own a2a-sdk, so ``.ci/setup``
installs it, with its requirements, into a virtual environment of its own
(``.venv-dummy-a2a``, made from the newest Python 3.12 or newer of the machine), and the
tests run this script there, on any Python of ours. It imports dummy-a2a and the standard
library only (never ``miniagents`` or ``tests``), and stops when its standard input ends
(the test closes it, or the test's process died):

- ``serve``: dummy-a2a's own server on a free port of 127.0.0.1; once it listens, its URL
  is the first line of the standard output;
- ``contracts``: dummy-a2a's portable contracts, on request: each line of the standard
  input is a JSON request, answered by one JSON line: ``{"list": true}`` gives the ids of
  every contract, ``{"verify": id, "url": url}`` runs that contract against the A2A server
  at ``url`` (``{"passed": ..., "detail": ..., "traceback": ...}``).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from dummy_a2a import DummyA2AServer
from dummy_a2a.contracts import a2a_contracts


async def _stdin_line() -> str:
    """The next line of the standard input ("" at its end), read without blocking the loop."""
    return await asyncio.to_thread(sys.stdin.readline)


def _say(answer: object) -> None:
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


async def _serve() -> None:
    async with DummyA2AServer(host="127.0.0.1", port=0) as server:
        _say(server.url)
        while await _stdin_line():
            pass


async def _answer(request: dict[str, Any]) -> object:
    if request.get("list"):
        return [contract.id for contract in a2a_contracts]
    [contract] = [found for found in a2a_contracts if found.id == request["verify"]]
    verdict = await contract.verify(request["url"])
    return {"passed": verdict.passed, "detail": verdict.detail, "traceback": verdict.traceback}


async def _contracts() -> None:
    while line := await _stdin_line():
        _say(await _answer(json.loads(line)))


if __name__ == "__main__":
    asyncio.run({"serve": _serve, "contracts": _contracts}[sys.argv[1]]())
