"""``dummy-a2a``: its portable contracts against ``a2a_app``, and its server for ``a2a_agent``.

``dummy-a2a`` (PyPI) needs Python 3.12 or newer: these tests run on CI's second pass
(Python 3.13, where ``.ci/setup`` installs it), and are skipped on 3.11 (the first pass),
where the same shapes are tested against ``a2a_app`` and the SDK's server
(``test_parts_and_states.py``, ``test_client_parts.py``).

- Every contract of ``dummy_a2a.contracts`` passes against the contract agent
  (``contract_agent.py``), but the three that need an extension the app declares (it
  declares none): the card lists extensions, a request activates one, its artifacts say so.
- ``a2a_agent`` reads the dummy's own server (the official SDK's): its texts, streams,
  files, data, three artifacts, a question answered, a request to authenticate answered,
  a rejection and a failure as typed errors.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from miniagents import MiniAgents
from miniagents.errors import A2ATaskFailedError, A2ATaskRejectedError
from miniagents.ext.a2a import (
    A2AAuthRequest,
    A2AData,
    A2AFile,
    A2AInputRequest,
    A2AMessage,
    a2a_agent,
)
from tests.ext.a2a.contract_agent import app
from tests.ext.a2a.rpc import serving

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 12),
    reason="dummy-a2a needs Python 3.12 or newer (CI's Python 3.13 pass runs these tests)",
)

UNDECLARED_EXTENSIONS = {
    "ext.card-advertises-extensions",
    "ext.negotiation-activates",
    "ext.artifact-tagged",
}
"""The contracts of extensions the app does not declare (it declares none): they fail."""


def contracts() -> list[Any]:
    from dummy_a2a.contracts import a2a_contracts

    found: list[Any] = a2a_contracts
    return found


@pytest.mark.parametrize(
    "contract_id",
    [
        "card.well-known",  # (the ids, listed here: dummy-a2a is not imported at collection)
        "card.required-fields",
        "card.skills-have-required-fields",
        "card.interface-protocol-version",
        "card.extended-card",
        "send.completed",
        "send.has-task-id",
        "send.has-artifacts",
        "send.has-history",
        "state.failed",
        "state.rejected",
        "state.input-required",
        "state.auth-required",
        "multi-turn.input-required-follow-up",
        "multi-turn.auth-required-follow-up",
        "get-task.retrieves-task",
        "get-task.not-found",
        "get-task.includes-artifacts",
        "list-tasks.returns-tasks",
        "cancel.cancels-task",
        "cancel.nonexistent-task",
        "stream.sse-events",
        "content.text-part",
        "content.file-part",
        "content.data-part",
        "content.multi-artifact",
        "push.create-config",
        "push.delete-config",
        "push.get-config",
        "push.list-configs",
        "subscribe.reattach",
        "error.method-not-found",
        "error.invalid-jsonrpc",
        "ext.card-advertises-extensions",
        "ext.negotiation-activates",
        "ext.unknown-ignored",
        "ext.artifact-tagged",
        "ext.multiple-extensions",
        "ext.params-in-card",
        "ext.required-enforced",
        "ext.required-satisfied",
        "ext.partial-activation",
        "ext.all-non-required",
        "ext.artifact-extensions-exact",
        "ext.header-and-artifact-agree",
        "ext.ordering-stable",
    ],
)
async def test_each_contract_passes_but_those_of_undeclared_extensions(contract_id: str) -> None:
    [contract] = [found for found in contracts() if found.id == contract_id]
    async with serving(lambda url: app()) as url:
        verdict = await contract.verify(url.rstrip("/"))
    if contract_id in UNDECLARED_EXTENSIONS:
        assert not verdict.passed
        assert "extension" in verdict.detail.lower()
    else:
        assert verdict.passed, verdict.detail + (verdict.traceback or "")


def test_the_contracts_listed_are_all_of_dummy_a2as() -> None:
    listed = test_each_contract_passes_but_those_of_undeclared_extensions.pytestmark  # type: ignore[attr-defined]
    [parametrized] = [mark for mark in listed if mark.name == "parametrize"]
    assert sorted(parametrized.args[1]) == sorted(found.id for found in contracts())


@asynccontextmanager
async def dummy_server() -> AsyncIterator[str]:
    """The dummy's own server (the official SDK's), on a free port of 127.0.0.1."""
    from dummy_a2a import DummyA2AServer

    async with DummyA2AServer(host="127.0.0.1", port=0) as server:
        url: str = server.url
        yield url


async def test_the_remote_agent_reads_the_dummys_texts_files_data_and_artifacts() -> None:
    async with dummy_server() as url, MiniAgents():
        remote = a2a_agent(url, alias="DUMMY")
        echoed = await remote.inquire("echo Hello there")
        streamed = await remote.inquire("stream three little words")
        [file] = await remote.inquire("file")
        [data] = await remote.inquire("data")
        multi = await remote.inquire("multi")
    assert [type(message) for message in echoed] == [A2AMessage]
    assert "Hello there" in str(echoed)
    assert "three little words" in str(streamed)
    assert isinstance(file, A2AFile)
    assert (file.filename, file.media_type, bool(file.data)) == ("test.txt", "text/plain", True)
    assert isinstance(data, A2AData)
    assert isinstance(data.data, dict)
    assert [type(message) for message in multi] == [A2AMessage, A2AMessage, A2AData]
    assert str(multi[1]) == "Beginning of the second artifact content."


async def test_the_remote_agent_answers_the_dummys_questions() -> None:
    async with dummy_server() as url, MiniAgents():
        remote = a2a_agent(url, alias="DUMMY")
        said: list[str] = []
        for command, answer in (("ask", "Claude"), ("auth", "my-token")):
            async for promise in remote.inquire(command):
                message = await promise
                said.append(f"{type(message).__name__}: {message}")
                if isinstance(message, A2AInputRequest):
                    message.answer(answer)
    assert said == [
        "A2AInputRequest: What is your name?",
        "A2AMessage: Hello, Claude!",
        "A2AAuthRequest: Authentication required. Provide a token in your next message.",
        "A2AMessage: Authenticated with token: my-token",
    ]
    assert A2AAuthRequest.__mro__.index(A2AInputRequest) > 0


async def test_the_dummys_rejection_and_failure_are_typed_errors() -> None:
    async with dummy_server() as url, MiniAgents():
        remote = a2a_agent(url, alias="DUMMY")
        with pytest.raises(A2ATaskRejectedError, match="rejected its task"):
            await remote.inquire("reject")
        with pytest.raises(A2ATaskFailedError, match="ended failed") as failed:
            await remote.inquire("fail")
    assert not isinstance(failed.value, A2ATaskRejectedError)
