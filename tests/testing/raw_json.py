"""What the tests of the fake LLM server share: a raw JSON request, as no SDK would send it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from miniagents.testing import FakeLLMServer


def post_json(server: FakeLLMServer, path: str, payload: object) -> tuple[int, Any]:
    """POST ``payload`` as JSON to the server; its status and JSON reply."""
    request = urllib.request.Request(
        server.base_url + path,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())
