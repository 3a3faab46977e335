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
