"""The run recorder: the tree of a real run, written off the loop in batches, live.

The run is the OpenAI SDK's against the fake server: its tree, messages, tokens, requests,
cost and errors.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sqlite3
import subprocess
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import closing
from pathlib import Path

import pytest

from miniagents import InteractionContext, MessagePromise, MiniAgents, miniagent
from miniagents.ext.llm import LLMToolApprovalRequest
from miniagents.ext.llm.cache import request_key
from miniagents.ext.llm.messages import TokenUsage
from miniagents.ext.llm.offline import CallTool, offline_agent, one_per_call
from miniagents.ext.llm.pricing import cost_usd
from miniagents.ext.otel import instrument, uninstrument
from miniagents.ext.studio import Recorder, RunStore, RunTree
from miniagents.ext.studio.errors import (
    StudioConfigurationError,
    StudioNotFoundError,
    StudioStoreError,
)
from miniagents.ext.studio.events import MAX_TEXT, encode_batch
from miniagents.ext.studio.store import ABANDONED, RunInfo, RunStatus, RunWriter, WrittenChunk
from miniagents.ext.tools import FunctionTool
from miniagents.miniagents.lowlevel import observe_interactions
from miniagents.testing import FakeLLMServer
from tests.ext.studio import program
from tests.ext.web.serving import until
from tests.fakes.fixtures import WAIT, fake_llm  # noqa: F401
from tests.fakes.tracing import Traces, plugged_observers, traces  # noqa: F401


@miniagent
async def echo(ctx: InteractionContext) -> None:
    ctx.reply("echoed")


async def test_a_run_is_its_tree_of_agent_calls_with_messages_tokens_requests_and_cost(
    openai_env: FakeLLMServer, store: RunStore
) -> None:
    program.script(openai_env)
    with Recorder(store, name="three levels", command=()) as recorder:
        written = await program.amain()
    tree = RunTree.of(store, recorder.run_id)
    assert tree.run.status == "ok"
    assert tree.run.name == "three levels"
    assert len(tree.agents()) == program.AGENT_CALLS
    [top] = tree.roots
    assert top.name == "ORCHESTRATOR"
    assert [child.name for child in top.children] == [
        "RESEARCHER",
        "RESEARCHER",
        "CRITIC",
        "WRITER",
    ]
    paris, rome, critic, writer = top.children
    # who inquired whom: the librarian under the tool call the researcher's model made
    [tool] = paris.children
    assert (tool.kind, tool.name, tool.arguments) == ("tool", "LIBRARIAN", '{"city":"Paris"}')
    [library] = tool.children
    assert (library.kind, library.name) == ("agent", "LIBRARIAN")
    assert library.reply_text == "Paris has 2.1 million people."
    assert tool.result is not None
    assert tool.result["text"] == "Paris has 2.1 million people."
    # with which messages, and what each model call was asked and said, token by token
    assert [message["message"]["text"] for message in paris.inputs] == ["Tell me about Paris."]
    first, second = paris.calls
    assert first.tools_called == ["LIBRARIAN"]
    assert second.text == "Paris has 2.1 million people."
    assert [item for _, item in second.items] == ["Paris ", "has ", "2.1 ", "million ", "people."]
    times = [t for t, _ in second.items]
    assert second.started <= times[0] <= times[-1] <= (second.ended or 0.0)
    assert times == sorted(times)
    assert second.request["model"] == "paris-model"
    assert second.request["messages"][0] == {"role": "user", "text": "Tell me about Paris."}
    assert second.key == request_key(second.request)  # the call cache's key of the request
    assert second.finish is not None
    assert second.tokens() == (40, 5)
    assert str(rome.calls[1].text) == "Rome has 2.8 million people."
    # an error, on its node
    assert critic.error == {"type": "ValueError", "message": "The critic has nothing to say."}
    # the writer: the fake server echoed its prompt; a priced model, so a cost
    assert (
        writer.reply_text
        == written
        == "Notes: Paris has 2.1 million people. Rome has 2.8 million people."
    )
    [call] = writer.calls
    input_tokens, output_tokens = call.tokens()
    expected = cost_usd(
        "gpt-4o-mini", TokenUsage(input_tokens=input_tokens, output_tokens=output_tokens), "openai"
    )
    assert expected is not None
    assert expected > 0
    assert call.cost_usd == pytest.approx(expected)
    assert top.cost_usd() == pytest.approx(expected)  # the other models have no price
    assert top.tokens() == (20 + 40 + 20 + 40 + input_tokens, 5 * 4 + output_tokens)
    # the slowest branch goes down from the top; a node's first token comes after its start
    assert tree.slowest_path()[0] is top
    assert writer.first_token is not None
    assert writer.started <= writer.first_token


async def test_the_loop_only_queues_and_a_thread_writes_in_batches(store: RunStore) -> None:
    @miniagent
    async def worker(ctx: InteractionContext, index: int) -> None:
        ctx.reply(f"reply {index}")

    @miniagent
    async def aggregator(ctx: InteractionContext) -> None:
        ctx.reply([worker.inquire(index=index) for index in range(200)])

    batches: list[tuple[str, int]] = []
    append = RunStore.append

    def spied(self: RunStore, run_id: str, chunks: list[WrittenChunk]) -> None:
        batches.append((threading.current_thread().name, sum(count for _, count, _ in chunks)))
        append(self, run_id, chunks)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RunStore, "append", spied)
        recorder = Recorder(store, command=(), flush_interval=3600).start()
        try:
            async with MiniAgents():
                assert len(await aggregator.inquire()) == 200
            assert batches == []  # nothing written on the loop, nor yet
        finally:
            await recorder.aclose()
    # one batch at the close, by the writer's thread: 201 nodes, 201 ends, 400 replies (the
    # workers' 200, which are the aggregator's 200 too)
    assert batches == [(f"miniagents-studio:{recorder.run_id}", 201 * 2 + 400)]
    tree = RunTree.of(store, recorder.run_id)
    assert [node.reply_text for node in tree.roots[0].children][-1] == "reply 199"


async def test_a_run_read_back_before_its_recorder_closes_has_what_was_recorded(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.sqlite"
    recorder = Recorder(path, command=(), flush_interval=3600).start()  # (its thread waits)
    other = RunStore(tmp_path / "." / "runs.sqlite")  # (the same file, named otherwise)
    try:
        async with MiniAgents():
            assert str(await echo.inquire()) == "echoed"
        # what the writer's thread has not written yet is written by the read itself
        [node] = RunTree.of(recorder.store, recorder.run_id).agents()
        assert (node.name, node.reply_text) == ("ECHO", "echoed")
        assert [node.name for node in RunTree.of(other, "last").agents()] == ["ECHO"]
        assert RunTree.of(other, recorder.run_id).run.status == "running"
    finally:
        other.close()
        recorder.close()
    assert [node.name for node in RunTree.of(recorder.store, recorder.run_id).agents()] == ["ECHO"]


async def test_a_reply_entered_complete_is_written_with_one_time_and_a_streamed_one_with_two(
    store: RunStore,
) -> None:
    release = asyncio.Event()

    async def later() -> AsyncIterator[str]:
        await release.wait()
        yield "streamed"

    @miniagent
    async def talker(ctx: InteractionContext) -> None:
        ctx.reply("ready")
        ctx.reply(MessagePromise(later()))

    with Recorder(store, command=()) as recorder:
        async with MiniAgents():
            texts = []
            async for promise in talker.inquire():
                texts.append(str(await promise))
                release.set()  # (the second entered with the first: it streams from here)
            assert texts == ["ready", "streamed"]
    raw = [item for _, _, data in store.chunks(recorder.run_id) for item in json.loads(data)]
    ready_item, streamed_item = [item for item in raw if item[0] == "message"]
    assert ready_item[4] is None  # (complete as it entered: one time, t)
    assert isinstance(streamed_item[4], int)
    assert streamed_item[4] < streamed_item[5]  # entered, then complete after the release
    first, second = RunTree.of(store, recorder.run_id).roots[0].replies
    assert first["entered"] == ready_item[5] / 1e9
    assert second["entered"] == streamed_item[4] / 1e9


async def _recorded_until_the_writer_pauses(
    openai_env: FakeLLMServer, store: RunStore
) -> tuple[Recorder, asyncio.Future[str]]:
    """The program, recorded and running, until its writer's first two tokens are stored.

    Its call is paused after them (``openai_env.requests[-1].resume()`` goes on).
    """
    program.script(openai_env, paused_writer=True)
    recorder = Recorder(store, command=()).start()
    running = asyncio.ensure_future(program.amain())

    def writers_tokens() -> str:
        recorder.flush()
        calls = RunTree.of(store, recorder.run_id).calls.values()
        return "".join(call.text for call in calls if call.model == "gpt-4o-mini")

    try:
        await openai_env.wait_paused_async(len(program.CITIES) * 2, timeout=WAIT)
        await until(lambda: writers_tokens() == "Notes so ")  # its first two, as they came
    except BaseException:
        running.cancel()
        recorder.close()
        raise
    return recorder, running


async def test_a_live_runs_tokens_are_in_the_store_before_it_ends(
    openai_env: FakeLLMServer, store: RunStore
) -> None:
    recorder, running = await _recorded_until_the_writer_pauses(openai_env, store)
    try:
        tree = RunTree.of(store, recorder.run_id)
        assert tree.run.status == "running"
        writer = tree.roots[0].children[-1]
        assert (writer.name, writer.ended) == ("WRITER", None)
    finally:
        openai_env.requests[-1].resume()
        written = await running
        recorder.close()
    assert written == "Notes so far, then more."
    assert RunTree.of(store, recorder.run_id).run.status == "ok"


async def test_an_observer_set_before_is_told_everything_still(
    openai_env: FakeLLMServer,
    store: RunStore,
    traces: Traces,  # noqa: F811
) -> None:
    program.script(openai_env)
    before = observe_interactions(None)
    observe_interactions(before)
    with Recorder(store, command=()):
        await program.amain()
    assert observe_interactions(None) is before  # put back as it was
    observe_interactions(before)
    names = sorted(span.name for span in traces.spans())
    assert names.count("invoke_agent RESEARCHER") == 2
    assert names.count("execute_tool LIBRARIAN") == 2
    assert names.count("chat paris-model") == 2


async def _recorded_while(store: RunStore, meanwhile: Callable[[], None]) -> RunTree:
    """A run recorded while an LLM agent runs, ``meanwhile`` called between its two steps."""
    asked, go_on = asyncio.Event(), asyncio.Event()
    llm = offline_agent.fork(alias="LATER", token_delay=0)

    @miniagent
    async def asks_later(ctx: InteractionContext) -> None:
        asked.set()
        await go_on.wait()
        ctx.reply(llm.inquire("Rivers."))

    with Recorder(store, command=()) as recorder:
        async with MiniAgents():
            reply = asks_later.inquire()
            await asked.wait()
            meanwhile()
            go_on.set()
            await reply
    return RunTree.of(store, recorder.run_id)


async def test_instrument_while_recording_traces_beside_the_recorder_and_stays_after_it(
    store: RunStore,
    traces: Traces,  # noqa: F811
) -> None:
    uninstrument()  # (instrumented again while the run is recorded)
    tree = await _recorded_while(
        store, lambda: instrument(traces.tracer_provider, meter_provider=traces.meter_provider)
    )
    assert [node.name for node in tree.agents()] == ["ASKS_LATER", "LATER"]  # still recorded
    assert traces.tree() == ["invoke_agent LATER", "  chat offline"]  # and traced
    plugged = plugged_observers()
    assert type(plugged[0]).__name__ == "Telemetry"
    assert plugged == (plugged[0],) * 3  # the tracing alone stays after the run
    uninstrument()
    assert plugged_observers() == (None,) * 3


async def test_uninstrument_while_recording_leaves_no_tracing_plugged_in_after_it(
    store: RunStore,
    traces: Traces,  # noqa: F811
) -> None:
    tree = await _recorded_while(store, uninstrument)
    assert [node.name for node in tree.agents()] == ["ASKS_LATER", "LATER"]
    assert plugged_observers() == (None,) * 3  # no uninstalled tracing put back
    async with MiniAgents():
        await offline_agent.fork(alias="AFTER", token_delay=0).inquire("Seas.")
    # the run's first agent started before uninstrument() (its span ends); nothing after
    assert traces.tree() == ["invoke_agent ASKS_LATER"]


async def test_a_message_longer_than_the_most_kept_is_cut_and_says_so(store: RunStore) -> None:
    @miniagent
    async def long(ctx: InteractionContext) -> None:
        ctx.reply("x" * (MAX_TEXT + 10))

    with Recorder(store, command=()) as recorder:
        async with MiniAgents():
            await long.inquire()
    [node] = RunTree.of(store, recorder.run_id).roots
    [reply] = node.replies
    assert len(reply["message"]["text"]) == MAX_TEXT
    assert reply["message"]["cut"] == MAX_TEXT + 10


def test_a_program_that_fails_is_a_failed_run_and_a_killed_one_is_lost(store: RunStore) -> None:
    with pytest.raises(KeyError), Recorder(store, command=()) as failed:
        raise KeyError("k")
    assert store.run(failed.run_id).status == "failed"
    assert store.run(failed.run_id).error == "KeyError: 'k'"
    with pytest.raises(SystemExit), Recorder(store, command=()) as exited:
        raise SystemExit(0)  # (a program's clean exit is no failure)
    assert store.run(exited.run_id).status == "ok"
    lost = Recorder(store, command=()).start()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with closing(sqlite3.connect(store.path)) as connection:  # as if its process was killed
        connection.execute("UPDATE studio_runs SET pid = ? WHERE id = ?", (gone.pid, lost.run_id))
        connection.commit()
    assert store.run(lost.run_id).status == "lost"
    lost.close()
    assert store.run("last").id == lost.run_id


def test_a_store_that_is_not_one_and_a_run_it_lacks_are_clear_errors(tmp_path: Path) -> None:
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("not a database, " * 100)
    with pytest.raises(StudioStoreError, match=r"is not a SQLite database.*with --store"):
        RunStore(not_sqlite).runs()
    empty = RunStore(tmp_path / "empty.sqlite")
    assert empty.runs() == []
    with pytest.raises(StudioNotFoundError, match="holds no run yet"):
        empty.run("last")
    with Recorder(empty, command=()):
        pass
    with pytest.raises(StudioNotFoundError, match="no run 'nope'"):
        empty.run("nope")
    with closing(sqlite3.connect(empty.path)) as connection:
        connection.execute("UPDATE studio_meta SET value = '0' WHERE key = 'schema'")
        connection.commit()
    with pytest.raises(StudioStoreError, match="another version of the studio"):
        RunStore(empty.path).runs()
    with pytest.raises(StudioConfigurationError, match="flush_interval"):
        Recorder(empty, flush_interval=0)


def test_a_batch_that_cannot_be_written_is_logged_once_and_the_program_goes_on(
    store: RunStore, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_batch: list[tuple[object, ...]]) -> bytes:
        raise RuntimeError("broken encoder")

    writer = RunWriter(store, "r1", broken, interval=3600)
    writer.put(("node",))
    writer.flush()
    writer.put(("node",))
    writer.close()
    assert [record.getMessage().count("broken encoder") for record in caplog.records] == [1]


async def test_a_tool_call_that_waited_for_approval_has_the_decision_on_its_node(
    store: RunStore,
) -> None:
    cleaned: list[str] = []

    def clean(path: str) -> str:
        """Clean a file up."""
        cleaned.append(path)
        return f"Cleaned {path}"

    llm = offline_agent.fork(
        tools=[FunctionTool(clean, requires_approval=True)],
        reply=one_per_call(CallTool("clean", {"path": "a.txt"}), "Done."),
        token_delay=0,
    )
    with Recorder(store, command=()) as recorder:
        async with MiniAgents():
            reply = llm.inquire("Clean a.txt up")
            async for promise in reply:
                message = await promise
                if isinstance(message, LLMToolApprovalRequest):
                    message.approve(by="ada")
            await reply
    assert cleaned == ["a.txt"]
    tree = RunTree.of(store, recorder.run_id)
    [tool] = [node for node in tree.nodes.values() if node.kind == "tool"]
    assert tool.decision is not None
    assert (tool.decision["approved"], tool.decision["decided_by"]) == (True, "ada")
    assert tool.result is not None
    assert tool.result["text"] == "Cleaned a.txt"
    classes = [reply["message"]["class"] for reply in tree.roots[0].replies]
    assert "LLMToolApprovalRequest" in classes


async def test_two_recorders_side_by_side_each_record_their_own_tree(
    tmp_path: Path,
) -> None:
    @miniagent
    async def inner(ctx: InteractionContext) -> None:
        ctx.reply("inner")

    @miniagent
    async def outer(ctx: InteractionContext) -> None:
        ctx.reply(inner.inquire())

    first_store, second_store = RunStore(tmp_path / "a.sqlite"), RunStore(tmp_path / "b.sqlite")
    with Recorder(first_store, command=()) as first:
        async with MiniAgents():
            await inner.inquire()  # (the first's numbers run ahead of the second's)
            with Recorder(second_store, command=()) as second:
                await outer.inquire()
    for store, roots in ((first_store, ["INNER", "OUTER"]), (second_store, ["OUTER"])):
        recorder = first if store is first_store else second
        tree = RunTree.of(store, recorder.run_id)
        assert [root.name for root in tree.roots] == roots  # (was: the other's ids as parents)
        top = tree.roots[-1]
        assert [(child.name, child.reply_text) for child in top.children] == [("INNER", "inner")]
    first_store.close()
    second_store.close()


async def test_after_close_a_call_still_streaming_writes_nothing_and_goes_on(
    openai_env: FakeLLMServer, store: RunStore
) -> None:
    recorder, running = await _recorded_until_the_writer_pauses(openai_env, store)
    recorder.close()  # (the writer's call streams still, paused)
    written_at_close = len(store.events(recorder.run_id))
    openai_env.requests[-1].resume()
    assert await running == "Notes so far, then more."  # (nothing raised into the program)
    recorder.flush()
    assert len(store.events(recorder.run_id)) == written_at_close  # (was: its tokens, its end)
    assert RunTree.of(store, recorder.run_id).run.status == "ok"


def _opened(store: RunStore, run_id: str) -> RunStore:
    """``store``, with the row of a running run ``run_id`` in it."""
    store.open_run(RunInfo(run_id, "r", (), ".", 0.0, None, "running", None, None, None))
    return store


def test_a_writer_dropped_unclosed_goes_writes_what_it_queued_and_abandons_its_run(
    store: RunStore,
) -> None:
    writer = RunWriter(_opened(store, "r1"), "r1", encode_batch, interval=3600)
    [thread] = [each for each in threading.enumerate() if each.name == "miniagents-studio:r1"]
    writer.put(("token", 1, 0, "queued"))  # (its thread writes it in an hour: never)
    dropped = weakref.ref(writer)
    with pytest.warns(ResourceWarning, match="RunWriter of the run 'r1' was dropped"):
        del writer  # (no cycle holds it: it goes at once)
    gc.collect()
    assert dropped() is None  # (nothing of the studio's holds it: not its thread, nor a list)
    thread.join(WAIT)
    assert not thread.is_alive()
    assert [event.data["piece"] for event in store.events("r1")] == ["queued"]  # (was: lost)
    run = store.run("r1")
    assert (run.status, run.error) == ("abandoned", ABANDONED)  # (was: "running" for ever)
    assert run.ended is not None


def test_a_writer_dropped_after_its_run_ended_leaves_how_it_ended(store: RunStore) -> None:
    writer = RunWriter(_opened(store, "r1"), "r1", encode_batch, interval=3600)
    store.end_run("r1", "ok", None)
    with pytest.warns(ResourceWarning):
        del writer  # (no cycle holds it: it goes at once)
    gc.collect()
    assert store.run("r1").status == "ok"


async def test_a_recorder_dropped_unclosed_goes_unplugged_and_its_run_is_abandoned(
    store: RunStore,
) -> None:
    recorder = Recorder(store, command=(), flush_interval=3600).start()
    run_id = recorder.run_id
    [thread] = [each for each in threading.enumerate() if each.name.endswith(run_id)]
    async with MiniAgents():
        await echo.inquire()
    dropped = weakref.ref(recorder)
    with pytest.warns(ResourceWarning, match=f"Recorder of the run '{run_id}' was dropped"):
        del recorder  # (no cycle holds it: it goes at once)
    gc.collect()
    assert dropped() is None  # (was: held by the three hooks for the process's life)
    assert plugged_observers() == (None,) * 3  # (unplugged)
    thread.join(WAIT)  # (dropped in the loop: its writer's thread ends the run)
    run = store.run(run_id)
    assert (run.status, run.error) == ("abandoned", ABANDONED)
    [node] = RunTree.of(store, run_id).roots  # (what it recorded, written at the drop)
    assert node.reply_text == "echoed"
    async with MiniAgents():
        await echo.inquire()  # (runs on, recorded by none)
    assert len(RunTree.of(store, run_id).roots) == 1


class _HeldStore(RunStore):
    """A store whose batches wait for the test's word (its writer's thread held in a write)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.ended = threading.Event()
        self.writing: list[str] = []  # (the threads that wrote a batch or the end, in order)

    def append(self, run_id: str, chunks: Sequence[WrittenChunk]) -> None:
        self.writing.append(threading.current_thread().name)
        self.gate.wait(WAIT)
        super().append(run_id, chunks)

    def end_run(
        self, run_id: str, status: RunStatus, error: str | None, *, if_running: bool = False
    ) -> None:
        self.writing.append(threading.current_thread().name)
        super().end_run(run_id, status, error, if_running=if_running)
        self.ended.set()

    def status(self, run_id: str) -> str:
        """The run's status as the file says it now (not waiting for this process's writers)."""
        with closing(sqlite3.connect(self.path)) as reading:
            [(status,)] = reading.execute("SELECT status FROM studio_runs WHERE id = ?", (run_id,))
        return str(status)


async def test_a_writer_dropped_in_a_running_loop_writes_nothing_in_the_loops_thread(
    tmp_path: Path,
) -> None:
    with closing(_HeldStore(tmp_path / "runs.sqlite")) as store:
        writer = RunWriter(_opened(store, "r1"), "r1", encode_batch, interval=3600)
        writer.put(("token", 1, 0, "queued"))
        with pytest.warns(ResourceWarning, match="RunWriter of the run 'r1' was dropped"):
            del writer  # (in the loop: its thread, held in its last batch, writes it)
        assert not store.ended.is_set()  # (was: the batch and the end written here, the loop's)
        store.gate.set()
        await asyncio.to_thread(store.ended.wait, WAIT)
        assert store.writing == ["miniagents-studio:r1"] * 2  # (its batch, then the end)
        assert [event.data["piece"] for event in store.events("r1")] == ["queued"]
        assert (store.run("r1").status, store.run("r1").error) == ("abandoned", ABANDONED)


async def test_close_in_a_running_loop_waits_for_no_thread_and_the_run_ends_after_its_last_batch(
    tmp_path: Path,
) -> None:
    with closing(_HeldStore(tmp_path / "runs.sqlite")) as store:
        with Recorder(store, command=(), flush_interval=3600) as recorder:
            async with MiniAgents():
                await echo.inquire()
        # (was: the loop waited for the held thread, up to 60 s, then ended the run even if
        # the thread still wrote)
        assert not store.ended.is_set()
        assert store.status(recorder.run_id) == "running"  # (its last batch is not written)
        store.gate.set()
        [listed] = store.runs()  # (a read here waits for the thread: the list too, read at once,
        # was "running", before the thread wrote the end)
        assert (listed.id, listed.status) == (recorder.run_id, "ok")
        assert store.run(recorder.run_id).status == "ok"
        assert store.writing == [f"miniagents-studio:{recorder.run_id}"] * 2
        [node] = RunTree.of(store, recorder.run_id).roots
        assert node.reply_text == "echoed"


async def test_aclose_waits_for_the_runs_end_off_the_loop(tmp_path: Path) -> None:
    with closing(_HeldStore(tmp_path / "runs.sqlite")) as store:
        recorder = Recorder(store, command=(), flush_interval=3600).start()
        async with MiniAgents():
            await echo.inquire()
        closing_task = asyncio.create_task(recorder.aclose(KeyError("x")))
        await asyncio.sleep(0)  # (it runs to its wait, in a thread: the loop goes on)
        assert not closing_task.done()
        assert store.status(recorder.run_id) == "running"
        store.gate.set()
        await closing_task
        assert store.status(recorder.run_id) == "failed"  # (said as it returns)
        assert store.writing == [f"miniagents-studio:{recorder.run_id}"] * 2
        await recorder.aclose()  # (once)
        recorder.close()


async def test_an_async_with_recorder_ends_through_aclose_its_run_ended_as_the_block_does(
    tmp_path: Path,
) -> None:
    """(was: refused, a StudioConfigurationError saying to write a plain `with` block)."""
    with closing(_HeldStore(tmp_path / "runs.sqlite")) as store:
        store.gate.set()
        async with Recorder(store, command=(), flush_interval=3600) as recorder:
            assert isinstance(recorder, Recorder)
            async with MiniAgents():
                await echo.inquire()
        assert store.status(recorder.run_id) == "ok"  # (the file says it: no wait for a read)
        with pytest.raises(KeyError):
            async with Recorder(store, command=(), flush_interval=3600) as failing:
                raise KeyError("x")
        assert (store.status(failing.run_id), store.run(failing.run_id).error) == (
            "failed",
            "KeyError: 'x'",
        )


async def test_a_recorder_dropped_in_a_running_loop_returns_at_once_and_its_run_is_abandoned(
    tmp_path: Path,
) -> None:
    with closing(_HeldStore(tmp_path / "runs.sqlite")) as store:
        recorder = Recorder(store, command=(), flush_interval=3600).start()
        run_id = recorder.run_id
        async with MiniAgents():
            await echo.inquire()
        with pytest.warns(ResourceWarning, match=f"Recorder of the run '{run_id}' was dropped"):
            del recorder  # (in the loop: its writer's thread, held in its last batch, waits)
        # returned before the run ended (was: the loop waited for the held thread, then ended it)
        assert not store.ended.is_set()
        store.gate.set()
        await asyncio.to_thread(store.ended.wait, WAIT)
        run = store.run(run_id)
        assert (run.status, run.error) == ("abandoned", ABANDONED)
        [node] = RunTree.of(store, run_id).roots  # (its last batch, written by the thread)
        assert node.reply_text == "echoed"


async def test_a_task_that_outlives_a_closed_recorder_holds_neither_its_writer_nor_its_store(
    tmp_path: Path,
) -> None:
    release = asyncio.Event()
    lingering: list[asyncio.Task[bool]] = []

    @miniagent
    async def starter(ctx: InteractionContext) -> None:
        lingering.append(asyncio.create_task(release.wait()))  # (its context: the agent's node)
        ctx.reply("started")

    store = RunStore(tmp_path / "runs.sqlite")
    recorder = Recorder(store, command=()).start()
    async with MiniAgents():
        await starter.inquire()
    await recorder.aclose()
    store.close()
    held = weakref.ref(store)
    del recorder, store
    gc.collect()
    assert held() is None  # (was: held by the node in the task's context, through its writer)
    [task] = lingering
    assert not task.done()
    release.set()
    await task


def test_a_recorder_open_as_the_interpreter_exits_writes_its_run_and_abandons_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.sqlite"
    script = (
        "import asyncio\n"
        "from miniagents import MiniAgents, miniagent\n"
        "from miniagents.ext.studio import Recorder\n"
        "@miniagent\n"
        "async def echo(ctx):\n"
        "    ctx.reply('echoed')\n"
        "async def main():\n"
        "    async with MiniAgents():\n"
        "        await echo.inquire()\n"
        f"recorder = Recorder({str(path)!r}, command=(), flush_interval=3600).start()\n"
        "asyncio.run(main())\n"
        "print(recorder.run_id)\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", "-c", script],
        capture_output=True,
        text=True,
        timeout=WAIT * 6,
        check=True,
    )
    run_id = done.stdout.strip()
    assert "ResourceWarning: A Recorder of the run" in done.stderr
    with closing(RunStore(path)) as store:
        run = store.run(run_id)
        assert (run.status, run.error) == ("abandoned", ABANDONED)  # (was: "running")
        [node] = RunTree.of(store, run_id).roots  # (was: none, its batch lost)
        assert node.reply_text == "echoed"


def test_a_read_writes_first_what_a_writer_of_its_file_queues_whatever_path_named_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    (tmp_path / "link").symlink_to(there)
    monkeypatch.chdir(here)
    writing = RunStore("runs.sqlite")  # (named in one folder, opened in another)
    monkeypatch.chdir(there)
    writer = RunWriter(_opened(writing, "r1"), "r1", encode_batch, interval=3600)
    reading = RunStore(tmp_path / "link" / "runs.sqlite")
    try:
        writer.put(("token", 1, 0, "a"))
        assert [event.data["piece"] for event in reading.events("r1")] == ["a"]
    finally:
        writer.close()
        writing.close()
        reading.close()


def test_a_read_of_a_live_runs_events_has_those_recorded_before_it(store: RunStore) -> None:
    pieces = ["1", "2", "3"]

    def recording(batch: list[tuple[object, ...]]) -> bytes:
        if pieces:  # (the program records on while the read writes what it queued)
            writer.put(("token", 1, 0, pieces.pop(0)))
        return encode_batch(batch)

    writer = RunWriter(_opened(store, "r1"), "r1", recording, interval=3600)
    writer.put(("token", 1, 0, "0"))
    assert [event.data["piece"] for event in store.all_events("r1")] == ["0"]
    writer.close()
    assert [event.data["piece"] for event in store.all_events("r1")] == ["0", "1"]
