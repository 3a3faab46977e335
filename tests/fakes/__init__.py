"""Test doubles: a fake OpenAI / Anthropic HTTP server (``tests.fakes.llm_server``).

See ``tests/fakes/llm_server.py`` for the server and ``tests/fakes/fixtures.py`` for the
``fake_llm`` pytest fixture (``from tests.fakes.fixtures import fake_llm  # noqa: F401``).
"""

from tests.fakes.llm_server import FAST_RETRY, Failure, FakeLLMServer, RecordedRequest, Reply

__all__ = ["FAST_RETRY", "Failure", "FakeLLMServer", "RecordedRequest", "Reply"]
