"""The budgets' live link, opened by the Ray agents: when it is, and what it costs when it is not.

(The link at work, across a real cluster's workers, is in ``test_budgets.py``.)
"""

from __future__ import annotations

import subprocess
import sys

import miniagents.ext.ray  # noqa: F401  # registers the budgets' link opener
from miniagents import MiniAgents
from miniagents.ext.llm import Budget, charged_to, with_budget
from miniagents.miniagents.lowlevel import outgoing_links


async def test_without_a_budget_no_link_is_opened_and_with_one_it_is() -> None:
    async with MiniAgents():
        assert outgoing_links() == []  # the context's own meter needs none
        with charged_to(Budget()):
            assert len(outgoing_links()) == 1
    async with with_budget(MiniAgents(), Budget()):
        assert len(outgoing_links()) == 1
    assert len(outgoing_links([Budget()])) == 1  # one travelling in the call's arguments


def test_the_ray_agents_do_not_load_the_llm_agents_to_open_no_link() -> None:
    """No budget can apply before ``miniagents.ext.llm.usage`` is loaded: it is not loaded."""
    code = (
        "import sys, miniagents.ext.ray\n"
        "from miniagents.miniagents.lowlevel import outgoing_links\n"
        "links = outgoing_links()\n"
        "loaded = [name for name in sys.modules if name.startswith('miniagents.ext.llm')]\n"
        "print(links, sorted(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[] []"
