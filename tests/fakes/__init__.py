"""Test doubles: a fake OpenAI / Anthropic HTTP server, and a virtual clock.

See ``tests/fakes/llm_server.py`` for the server, ``tests/fakes/virtual_clock.py`` for the
clock, and ``tests/fakes/fixtures.py`` for the ``fake_llm`` and ``virtual_clock`` pytest
fixtures (registered for every test module by ``tests/conftest.py``).
"""

from tests.fakes.llm_server import FAST_RETRY, Failure, FakeLLMServer, RecordedRequest, Reply
from tests.fakes.virtual_clock import VirtualClock, manual_time, virtual_time

__all__ = [
    "FAST_RETRY",
    "Failure",
    "FakeLLMServer",
    "RecordedRequest",
    "Reply",
    "VirtualClock",
    "manual_time",
    "virtual_time",
]
