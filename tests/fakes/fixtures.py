"""Pytest fixtures: the fake LLM server (``miniagents.testing``) and a virtual clock.

Use in a test module by importing the fixture (the import is what registers it there; the
``noqa`` keeps ruff from calling it unused, as it is only used as a parameter name)::

    from miniagents.testing import FakeLLMServer
    from tests.fakes.fixtures import fake_llm  # noqa: F401


    async def test_something(fake_llm: FakeLLMServer) -> None:  # noqa: F811
        fake_llm.reply(tokens=["Hel", "lo"])
        client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test")
        ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from miniagents.testing import FakeLLMServer
from tests.fakes.virtual_clock import VirtualClock, virtual_time


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    """A started ``FakeLLMServer`` on a free local port, stopped after the test.

    After the test, it fails if the server itself raised an unexpected error.
    """
    with FakeLLMServer() as server:
        yield server
    assert not server.errors, f"the fake LLM server failed: {server.errors!r}"


@pytest.fixture
async def virtual_clock() -> AsyncIterator[VirtualClock]:
    """The test's event loop on a virtual clock (see ``tests.fakes.virtual_clock``)."""
    with virtual_time() as clock:
        yield clock
