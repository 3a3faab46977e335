"""Fixtures of the tool loop tests: each provider API, the fake server, an SDK client for it."""

from tests.ext.llm.providers import client, llm, server  # noqa: F401
