"""The pages of the LLM agents' docs: a reference to a section of the same page finds it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[3] / "docs"
PAGES = ["llm-agents.md", "production.md", "testing.md"]

_REFERENCE = re.compile(r'"([^"\n]+)"\s+(above|below)')
_SECTION = r"^#+ {title}\s*$|\*\*{title}\.?\*\*"  # a heading, or a paragraph's bold lead


@pytest.mark.parametrize("page", PAGES)
def test_a_section_named_above_or_below_is_there(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    missing = []
    for reference in _REFERENCE.finditer(text):
        title, where = reference.groups()
        part = text[: reference.start()] if where == "above" else text[reference.end() :]
        pattern = _SECTION.format(title=re.escape(re.sub(r"\s+", " ", title)))
        if not re.search(pattern, part, re.MULTILINE):
            missing.append(f'"{title}" {where}')
    assert not missing, f"{page} refers to sections it does not have: {missing}"


def test_the_lists_of_every_llm_agents_arguments_and_of_llm_agent_from_envs_name_them_all() -> None:
    import dataclasses
    import inspect

    from miniagents.ext.llm import LLMOptions
    from miniagents.ext.llm.from_env import llm_agent_from_env

    text = re.sub(r"\s+", " ", (DOCS / "llm-agents.md").read_text(encoding="utf-8"))
    every = text[text.index("Besides `model`") : text.index("which every LLM agent takes")]
    named = set(re.findall(r"`(\w+)`", every))
    assert {option.name for option in dataclasses.fields(LLMOptions)} - named == set()
    listed = text[text.index("`llm_agent_from_env(") :]
    listed = listed[: listed.index(")`")]
    parameters = set(inspect.signature(llm_agent_from_env).parameters)
    assert parameters - set(re.findall(r"(\w+)=", listed)) == set()
