"""The thought blocks a streamed reply keeps go back once, with the call that follows them.

Anthropic's thinking blocks and Bedrock's reasoning blocks, each provider's own, kept by
one :class:`~miniagents.ext.llm._turn_chars.KeptThoughts`: a call takes the blocks since
the call before it (none: no signature), and each block counts toward the turn's bound.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

from miniagents.ext.llm._turn_chars import TURN_COUNT, TurnCount
from miniagents.ext.llm.anthropic import _Thinking
from miniagents.ext.llm.bedrock import _Reasonings


def test_anthropic_thinking_goes_back_with_the_next_call_only() -> None:
    counted = TurnCount(100)
    token = TURN_COUNT.set(counted)
    try:
        kept = _Thinking()
        kept.start(0, SimpleNamespace(type="thinking", thinking="", signature=""))
        kept.delta(0, SimpleNamespace(type="thinking_delta", thinking="abc"))
        kept.delta(0, SimpleNamespace(type="signature_delta", signature="s"))
        first = kept.taken()
        kept.start(2, SimpleNamespace(type="redacted_thinking", data="rr"))
        second, third = kept.taken(), kept.taken()
    finally:
        TURN_COUNT.reset(token)
    assert first is not None
    assert second is not None
    assert json.loads(first) == [{"type": "thinking", "thinking": "abc", "signature": "s"}]
    assert json.loads(second) == [{"type": "redacted_thinking", "data": "rr"}]
    assert third is None
    assert counted.left == 100 - 4 - 2


def test_bedrock_reasoning_goes_back_with_the_next_call_only() -> None:
    counted = TurnCount(100)
    token = TURN_COUNT.set(counted)
    try:
        kept = _Reasonings()
        kept.add(0, {"text": "ab"})
        kept.add(0, {"text": "c", "signature": "s"})
        first = kept.taken()
        kept.add(2, {"redactedContent": b"rr"})
        second, third = kept.taken(), kept.taken()
    finally:
        TURN_COUNT.reset(token)
    assert first is not None
    assert second is not None
    assert json.loads(first) == [{"reasoningText": {"text": "abc", "signature": "s"}}]
    assert json.loads(second) == [{"redactedContent": "cnI="}]
    assert third is None
    assert counted.left == 100 - 4 - 2
