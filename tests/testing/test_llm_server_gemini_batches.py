"""The fake server's Gemini Batch API (inline requests), driven by the real google-genai SDK over
HTTP: create, look, results, errors, expiry, failures, cancellation, listing, deletion."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import openai
import pytest
from google import genai
from google.genai import errors, types

from miniagents.testing import FakeLLMServer
from tests.fakes.fixtures import fake_llm  # noqa: F401

MODEL = "gemini-2.5-flash"


@pytest.fixture
async def client(fake_llm: FakeLLMServer) -> AsyncIterator[genai.client.AsyncClient]:  # noqa: F811
    options = types.HttpOptions(
        base_url=fake_llm.gemini_base_url,
        async_client_args={"transport": httpx2.AsyncHTTPTransport()},
    )
    made = genai.Client(vertexai=False, api_key="test", http_options=options)
    yield made.aio
    await made.aio.aclose()
    made.close()


def _request(key: str | None, text: str, role: str = "user") -> types.InlinedRequest:
    content = types.Content(role=role, parts=[types.Part(text=text)])
    return types.InlinedRequest(contents=[content], metadata=None if key is None else {"key": key})


def _responses(job: types.BatchJob) -> dict[str, types.InlinedResponse]:
    assert job.dest is not None
    return {
        (response.metadata or {})["key"]: response for response in job.dest.inlined_responses or ()
    }


async def test_a_batch_runs_each_request_through_the_script(
    client: genai.client.AsyncClient,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(["Hel", "lo"], usage=(3, 2))
    fake_llm.fail(429, message="Slow down.")
    created = await client.batches.create(
        model=MODEL,
        src=[_request("r-1", "hi"), _request("r-2", "there"), _request("r-3", "you")],
        config={"display_name": "tag-1"},
    )
    assert created.state == types.JobState.JOB_STATE_PENDING
    assert (created.display_name, str(created.name).startswith("batches/")) == ("tag-1", True)
    job = await client.batches.get(name=str(created.name))
    assert job.state == types.JobState.JOB_STATE_SUCCEEDED
    responses = _responses(job)
    first = responses["r-1"].response
    assert first is not None
    assert first.text == "Hello"
    assert first.usage_metadata is not None
    assert (first.usage_metadata.prompt_token_count, first.model_version) == (3, MODEL)
    error = responses["r-2"].error
    assert error is not None
    assert (error.code, error.message) == (8, "Slow down.")  # RESOURCE_EXHAUSTED, gRPC's
    echoed = responses["r-3"].response
    assert echoed is not None
    assert echoed.text == "you"  # the script ran out: the request is echoed
    (batch,) = fake_llm.batches.created
    assert (batch.provider, batch.model, batch.custom_ids) == (
        "gemini",
        MODEL,
        ("r-1", "r-2", "r-3"),
    )
    assert batch.requests[0].body == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert batch.looks == 1


async def test_a_request_the_api_would_refuse_is_its_error_alone(
    client: genai.client.AsyncClient,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    bad = _request("bad", "hi", role="robot")
    created = await client.batches.create(model=MODEL, src=[bad, _request("good", "fine")])
    responses = _responses(await client.batches.get(name=str(created.name)))
    error = responses["bad"].error
    assert error is not None
    assert error.code == 3  # INVALID_ARGUMENT
    assert "Please use a valid role" in str(error.message)
    assert responses["good"].response is not None


async def test_a_request_without_a_key_of_its_own_makes_the_create_a_400(
    client: genai.client.AsyncClient,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    for requests in ([_request(None, "a")], [_request("k", "a"), _request("k", "b")]):
        with pytest.raises(errors.ClientError) as raised:
            await client.batches.create(model=MODEL, src=requests)
        assert raised.value.code == 400
        assert "a key of its own" in str(raised.value.message)
    assert fake_llm.batches.created == []


async def test_a_held_batch_is_pending_until_released(
    client: genai.client.AsyncClient,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.hold()
    created = await client.batches.create(model=MODEL, src=[_request("r", "x")])
    held = await client.batches.get(name=str(created.name))
    assert (held.state, held.dest) == (types.JobState.JOB_STATE_PENDING, None)
    fake_llm.batches.release()
    done = await client.batches.get(name=str(created.name))
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED
    assert _responses(done)["r"].response is not None


async def test_an_expired_or_cancelled_batch_has_no_result_for_the_requests_it_did_not_run(
    client: genai.client.AsyncClient,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.expire_next(after=1)
    expired = await client.batches.create(model=MODEL, src=[_request("a", "x"), _request("b", "y")])
    job = await client.batches.get(name=str(expired.name))
    assert job.state == types.JobState.JOB_STATE_EXPIRED
    assert list(_responses(job)) == ["a"]

    fake_llm.batches.hold()
    held = await client.batches.create(model=MODEL, src=[_request("c", "z")])
    await client.batches.cancel(name=str(held.name))
    job = await client.batches.get(name=str(held.name))
    assert job.state == types.JobState.JOB_STATE_CANCELLED
    assert _responses(job) == {}
    assert fake_llm.batches.get(str(held.name)).cancel_asked


async def test_a_failed_batch_has_no_result_and_a_refused_creation_makes_none(
    client: genai.client.AsyncClient,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.batches.fail_next("The batch is not valid.")
    failed = await client.batches.create(model=MODEL, src=[_request("a", "x")])
    job = await client.batches.get(name=str(failed.name))
    assert (job.state, job.dest) == (types.JobState.JOB_STATE_FAILED, None)

    fake_llm.batches.refuse_next_create(403, message="Batches are not enabled.")
    with pytest.raises(errors.ClientError) as raised:
        await client.batches.create(model=MODEL, src=[_request("a", "x")])
    assert (raised.value.code, raised.value.message) == (403, "Batches are not enabled.")
    fake_llm.batches.fail_looks(1, status=503)
    with pytest.raises(errors.ServerError):
        await client.batches.get(name=str(failed.name))
    assert len(fake_llm.batches.created) == 1


async def test_the_batches_are_listed_the_latest_first_page_by_page_and_deleted_once_ended(
    client: genai.client.AsyncClient,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    names = []
    for number in range(3):
        made = await client.batches.create(
            model=MODEL, src=[_request("r", "x")], config={"display_name": f"tag-{number}"}
        )
        names.append(str(made.name))
    pager = await client.batches.list(config={"page_size": 2})
    assert [job.display_name async for job in pager] == ["tag-2", "tag-1", "tag-0"]
    await client.batches.delete(name=names[0])
    with pytest.raises(errors.ClientError) as raised:
        await client.batches.get(name=names[0])
    assert raised.value.code == 404


async def test_openais_batches_are_still_openais_on_the_same_paths(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    async with openai.AsyncOpenAI(
        base_url=fake_llm.openai_base_url, api_key="test"
    ) as openai_client:
        page = await openai_client.batches.list()
        assert page.data == []
    (request,) = fake_llm.requests
    assert (request.path, request.provider) == ("/v1/batches", "openai")
