"""What "persisted once" means for ``on_persist_message``, and that its memory stays bounded."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from functools import partial

import pytest

from miniagents import InteractionContext, Message, MessagePromise, MiniAgents, miniagent
from miniagents.miniagents import context as context_module
from miniagents.miniagents._persist import PERSIST_WINDOW, PersistMemory


class Recorder:
    """An ``on_persist_message`` handler that keeps what it is given."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, promise: MessagePromise, message: Message) -> None:
        self.messages.append(message)

    @property
    def texts(self) -> list[str | None]:
        return [message.text for message in self.messages]


class Opaque:
    """A value without a canonical encoding: a message holding it has no ``hash_key``."""


def test_the_memory_remembers_the_last_window_of_distinct_contents() -> None:
    memory = PersistMemory(window=3)

    assert [memory.first_time(Message(text=text)) for text in "abca"] == [True] * 3 + [False]
    assert memory.first_time(Message(text="d"))  # "b" is now the least recently seen...
    assert memory.first_time(Message(text="b"))  # ...and was forgotten
    assert not memory.first_time(Message(text="a"))  # "a" was seen again: still remembered
    assert len(memory) == 3


def test_a_message_without_a_hash_key_is_remembered_by_object() -> None:
    memory = PersistMemory(window=3)
    message = Message(text="x", thing=Opaque())

    assert memory.first_time(message)
    assert not memory.first_time(message)
    assert memory.first_time(Message(text="x", thing=Opaque()))


async def test_equal_content_is_persisted_again_only_after_the_window() -> None:
    recorder = Recorder()
    async with MiniAgents(on_persist_message=recorder):
        first = Message(text="first")
        MessagePromise(prefill_message=first)
        MessagePromise(prefill_message=Message(text="first"))  # equal content: not again
        for index in range(PERSIST_WINDOW):
            MessagePromise(prefill_message=Message(text=f"other {index}"))
        MessagePromise(prefill_message=first)  # the same object, but forgotten by now
    assert recorder.texts.count("first") == 2
    assert len(recorder.messages) == PERSIST_WINDOW + 2


async def test_a_handler_of_a_nested_context_gets_content_only_the_outer_ones_had() -> None:
    outer, inner = Recorder(), Recorder()
    async with MiniAgents(on_persist_message=outer):
        MessagePromise(prefill_message=Message(text="seen outside"))
        async with MiniAgents(on_persist_message=inner):
            MessagePromise(prefill_message=Message(text="seen outside"))
            MessagePromise(prefill_message=Message(text="new inside"))
            MessagePromise(prefill_message=Message(text="new inside"))
    assert outer.texts == ["seen outside", "new inside"]
    assert inner.texts == ["seen outside", "new inside"]  # each once: passed to it once


async def test_a_handler_given_to_nested_contexts_gets_each_content_once() -> None:
    both, inner = Recorder(), Recorder()
    async with MiniAgents(on_persist_message=both):
        MessagePromise(prefill_message=Message(text="outside"))
        async with MiniAgents(on_persist_message=[both, inner]):
            MessagePromise(prefill_message=Message(text="outside"))
            MessagePromise(prefill_message=Message(text="inside"))
    assert both.texts == ["outside", "inside"]
    assert inner.texts == ["outside", "inside"]


async def test_a_context_entered_again_persists_afresh() -> None:
    # (the memory of the first use carried over: "same" was not passed again in the second)
    recorder = Recorder()
    context = MiniAgents(on_persist_message=recorder)
    async with context:
        MessagePromise(prefill_message=Message(text="same"))
        MessagePromise(prefill_message=Message(text="same"))  # once per use of the context
    async with context:
        MessagePromise(prefill_message=Message(text="same"))
    assert recorder.texts == ["same", "same"]


async def test_a_message_without_a_hash_key_is_persisted_once_per_object() -> None:
    recorder = Recorder()

    @miniagent
    async def opaque(ctx: InteractionContext) -> None:
        message = Message(text="x", thing=Opaque())
        ctx.reply([message, message, Message(text="x", thing=Opaque())])

    async with MiniAgents(on_persist_message=recorder):
        await opaque.inquire()
    assert recorder.texts == ["x", "x"]
    assert recorder.messages[0] is not recorder.messages[1]


@pytest.mark.timeout(300)
@pytest.mark.usefixtures("lazy_and_eager_tasks")
async def test_the_bookkeeping_stays_bounded_over_many_distinct_messages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The context's window made 1,000 (from PERSIST_WINDOW's 10,000), so that 20,000
    # messages replace it many times over, as 100,000 did with the real one (5 times the CPU
    # for nothing more: the window's size is a parameter, tested above at its real value).
    # With eager tasks, a handler's task that ended in its first step was registered all the
    # same, and its done callback kept it until the loop turned: 16 MB over these messages.
    window = 1_000
    monkeypatch.setattr(context_module, "PersistMemory", partial(PersistMemory, window=window))
    total, batch = 20 * window, window
    # Tracing starts once the window is full, and the reference point is taken once it has
    # been replaced since: from then on, what the window frees is traced as well.
    trace_from, settle_at = 2 * window, 4 * window
    assert settle_at <= total // 2, "the window is too large for this test to say anything"
    persisted = 0
    batch_done = asyncio.Event()

    async def count(promise: MessagePromise, message: Message) -> None:
        nonlocal persisted
        persisted += 1
        if persisted % batch == 0:
            batch_done.set()

    settled = final = None
    async with MiniAgents(on_persist_message=count):
        try:
            for start in range(0, total, batch):
                for index in range(start, start + batch):
                    MessagePromise(prefill_message=Message(text=f"distinct message {index}"))
                await batch_done.wait()
                batch_done.clear()
                if start + batch == trace_from:
                    tracemalloc.start()
                elif start + batch == settle_at:
                    gc.collect()
                    settled = tracemalloc.get_traced_memory()[0]
            gc.collect()
            final = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
    assert persisted == total
    assert settled is not None
    assert final is not None
    # A set of every key ever persisted would grow by about 3.5 MB over these 16,000 (and
    # anything kept per message, 16 bytes or more, by 256 kB).
    assert final - settled < 200_000, f"grew by {final - settled:,} bytes"
