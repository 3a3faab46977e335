"""Streams of the three APIs that the fake server does not send, read by the real SDK clients.

Each reply is a body of server-sent events (``tests/ext/llm/wire.py``) paced on a virtual
clock: what takes seconds here takes no time.
"""

from __future__ import annotations

import pytest

from miniagents import MiniAgents
from miniagents.ext.llm.errors import LLMTimeoutError
from miniagents.testing import run_with_virtual_time
from tests.ext.llm.wire import APIS, EVENTS, paced_agent


@pytest.mark.parametrize("api", APIS)
def test_thinking_events_keep_a_reply_alive_past_its_stall_timeout(api: str) -> None:
    """Extended thinking, reasoning content or summaries: events of the reply, if not text.

    Ten thinking events, 0.4 s apart, with a stall timeout of 1 s: 4 s with no text, yet
    never 1 s without an event. The same stream with events 1.5 s apart stalls, and says
    that nothing came for 1 second.
    """
    before, deltas, after = EVENTS[api](["Answer."], thinking=["Hmm. "] * 10)

    async def answer(gap: float) -> str:
        agent = paced_agent(api, [*before, *deltas, *after], gap)
        async with MiniAgents(llm_stall_timeout=1.0):
            return str((await agent.inquire("Think first."))[0])

    assert run_with_virtual_time(answer(0.4)) == "Answer."
    with pytest.raises(LLMTimeoutError, match="sent nothing for 1 seconds"):
        run_with_virtual_time(answer(1.5))
