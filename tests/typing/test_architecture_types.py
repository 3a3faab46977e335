"""Static typing tests for the low levels, the operators and the extension settings.

The ``check_*`` functions are never called: they exist to be type-checked by mypy (strict,
``warn_unused_ignores``); each line that must be rejected carries a precise
``# type: ignore[code]``. :func:`test_architecture_types_pass_mypy` runs mypy on this file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import assert_type

from reactivex import Observable

from miniagents import (
    InteractionContext,
    Message,
    MessagePromise,
    MessageSequencePromise,
    MessageType,
    MiniAgent,
    MiniAgents,
    Promise,
    StreamedPromise,
    miniagent,
)
from miniagents.ext.llm.settings import LLMSettings, llm_settings
from miniagents.messages import MessageSequenceAppender, as_message_sequence
from miniagents.miniagents.lowlevel import (
    InteractionPreparer,
    InteractionScope,
    ObservedAgent,
    context_settings,
    enclosing_contexts,
    extension_settings,
    prepare_interactions,
    with_settings,
)
from miniagents.operators import agent_operator, flatten_messages, resolve_messages
from miniagents.promising.lowlevel import (
    ReplayCore,
    RunFirst,
    core_of,
    handoffs,
    joined_text,
    pieces_are,
    run_first,
    stream_on,
)
from tests.fakes.typecheck import assert_passes_mypy


@miniagent
async def named_agent(ctx: InteractionContext, name: str, count: int = 1) -> None:
    ctx.reply(f"{name} x{count}")


@dataclass(frozen=True)
class MySettings:
    my_colour: str = "red"


def check_the_replay_core(stream: StreamedPromise[int, str], promise: Promise[bytes]) -> None:
    assert_type(core_of(stream), ReplayCore[int])
    assert_type(core_of(promise), ReplayCore[bytes])
    assert_type(handoffs(), int)
    assert_type(run_first(), RunFirst | None)
    assert_type(core_of(stream).record(), list[int])
    assert_type(core_of(stream).piece(0), int)
    assert_type(joined_text(core_of(MessagePromise.of_text("a"))), str)
    joined_text(core_of(stream))  # type: ignore[arg-type]  # a core of str only
    core: ReplayCore[object] = ReplayCore()
    # mypy gives a generic class object unsolved parameters (Any), not their defaults:
    # name the class with its type to keep them
    promise_class: type[MessagePromise] = MessagePromise
    if pieces_are(core, promise_class):
        assert_type(core, ReplayCore[MessagePromise])
    sequence = MessageSequencePromise(["a"])
    sequence_class: type[MessageSequencePromise] = MessageSequencePromise
    assert_type(stream_on(sequence_class, core_of(sequence)), MessageSequencePromise)
    stream_on(int, core)  # type: ignore[type-var]
    text_core = core_of(MessagePromise.of_text("a"))
    assert_type(text_core.add_end_observer(lambda error: None, lambda: None), Callable[[], None])
    text_core.add_end_observer(lambda: None, lambda: None)  # type: ignore[arg-type,misc]
    appender = MessageSequenceAppender(lambda promise: None, ready_too=False)
    assert_type(appender, MessageSequenceAppender)
    MessageSequenceAppender(ready_too="no")  # type: ignore[arg-type]


def check_the_agents_low_level() -> None:
    assert_type(extension_settings(MySettings), MySettings)
    assert_type(llm_settings(), LLMSettings)
    assert_type(llm_settings().llm_stall_timeout, float | None)
    assert_type(llm_settings().llm_parse_in_turn, bool)
    assert_type(llm_settings().llm_max_turn_chars, int)
    assert_type(context_settings(), dict[str, object])
    assert_type(enclosing_contexts(), list[MiniAgents])
    assert_type(with_settings(MiniAgents(), {"my_colour": "blue"}), MiniAgents)
    assert_type(InteractionScope().running, int)
    print(MiniAgents().stream_llm_tokens_by_default)  # type: ignore[attr-defined]
    MiniAgents().start(None, "x")  # type: ignore[attr-defined]


class _Preparer:
    def interaction_inquired(self, agent: ObservedAgent) -> Callable[[], object] | None:
        return None


class _NotAPreparer:
    def interaction_inquired(self, agent: ObservedAgent) -> str:
        return agent.alias


def check_the_interaction_preparer() -> None:
    assert_type(prepare_interactions(_Preparer()), InteractionPreparer | None)
    assert_type(prepare_interactions(None), InteractionPreparer | None)
    prepare_interactions(_NotAPreparer())  # type: ignore[arg-type]


async def check_a_scope() -> None:
    with InteractionScope() as scope:
        assert_type(scope, InteractionScope)
    assert_type(await scope.astopped(), None)


def check_the_operators(source: Observable[MessageType], messages: Observable[Message]) -> None:
    assert_type(flatten_messages(), Callable[[Observable[MessageType]], Observable[MessagePromise]])
    assert_type(source.pipe(flatten_messages()), Observable[MessagePromise])
    assert_type(source.pipe(resolve_messages(overflow="drop_oldest")), Observable[Message])
    operator = agent_operator(named_agent, name="x")
    assert_type(operator, Callable[[Observable[MessageType]], Observable[Message]])
    assert_type(messages.pipe(operator), Observable[Message])
    assert_type(source.pipe(flatten_messages(), operator), Observable[Message])
    assert_type(as_message_sequence(["a", "b"]), MessageSequencePromise)


def check_the_operators_errors(agent: MiniAgent[[]]) -> None:
    agent_operator(named_agent, name=1)  # type: ignore[arg-type]
    agent_operator(named_agent, nam="x")  # type: ignore[call-arg]
    agent_operator(agent, "positional")  # type: ignore[call-arg]
    resolve_messages(overflow="sometimes")  # type: ignore[arg-type]
    as_message_sequence(42)  # type: ignore[arg-type]


def test_architecture_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
