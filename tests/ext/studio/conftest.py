"""Fixtures of the studio's tests: the fake server as the OpenAI SDK's, and a store of runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from miniagents.ext.studio import RunStore
from miniagents.testing import FakeLLMServer
from tests.fakes.fixtures import fake_llm  # noqa: F401


@pytest.fixture
def openai_env(
    fake_llm: FakeLLMServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> FakeLLMServer:
    """The fake server, which the OpenAI SDK of the program (``program.py``) talks to."""
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    return fake_llm


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    """A store of runs in the test's folder."""
    made = RunStore(tmp_path / "runs.sqlite")
    yield made
    made.close()
