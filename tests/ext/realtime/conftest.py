"""The realtime tests' fixtures: each realtime API in turn, and the traces of a test."""

from __future__ import annotations

import pytest

from tests.ext.realtime.kit import APIS, Api
from tests.fakes.tracing import traces as traces

__all__ = ["api", "traces"]


@pytest.fixture(params=APIS, ids=[api.name for api in APIS])
def api(request: pytest.FixtureRequest) -> Api:
    """Each realtime API in turn (OpenAI Realtime, Gemini Live), with the fake server's."""
    found: Api = request.param
    return found
