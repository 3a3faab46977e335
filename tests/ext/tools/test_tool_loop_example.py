"""``examples/tools.py`` with a key: the model (the fake server) decides which tools to call."""

from __future__ import annotations

from pathlib import Path

from miniagents.testing import FakeLLMServer, ToolCall
from tests.subprocesses import run_python

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "tools.py"


def test_the_tools_example_runs_the_calls_a_real_model_asks_for(
    tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    fake_llm.reply(
        ["Let me check."],
        tool_calls=[
            ToolCall("get_weather", {"city": "Oslo", "unit": "F"}, id="c1"),
            ToolCall("multiply", {"a": 6, "b": 7}, id="c2"),
            ToolCall("POET", {"subject": "rivers"}, id="c3"),
        ],
    )
    fake_llm.reply(["Rivers ", "flow."])  # the poet's own model
    fake_llm.reply(["Oslo is sunny, ", "and 6 times 7 is 42."])
    result = run_python([str(EXAMPLE)], cwd=tmp_path, llm=fake_llm)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines()[1:] == [
        "ASSISTANT: Let me check.",
        'CALL get_weather: {"city":"Oslo","unit":"F"}',
        'CALL multiply: {"a":6,"b":7}',
        'CALL POET: {"subject":"rivers"}',
        "RESULT get_weather: Sunny, 70 °F in Oslo",
        "RESULT multiply: 42",
        "RESULT POET: Rivers flow.",
        "ASSISTANT: Oslo is sunny, and 6 times 7 is 42.",
    ]
    first, poet, last = fake_llm.requests
    tools = [tool["function"]["name"] for tool in first.json["tools"]]
    assert tools == ["get_weather", "multiply", "POET"]
    assert poet.json["messages"][-1] == {"role": "user", "content": "A poem about rivers."}
    assert "tools" not in poet.json
    assert [message["role"] for message in last.json["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "tool",
    ]


def test_the_docs_show_what_the_example_prints_offline(tmp_path: Path) -> None:
    readme = (EXAMPLE.parents[1] / "docs" / "tools.md").read_text(encoding="utf-8")
    start = readme.index("$ python examples/tools.py\n", readme.index("## Tools"))
    shown = readme[start : readme.index("```", start)].splitlines()[1:]
    result = run_python([str(EXAMPLE)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == shown
