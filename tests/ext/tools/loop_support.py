"""What the tool loop tests share: a tool, and the providers' wire formats of tool turns."""

from __future__ import annotations

from typing import Any

from miniagents import MessageSequencePromise
from miniagents.testing import RecordedRequest
from tests.ext.llm.providers import LLM, SDKClient


def add(a: int, b: int) -> int:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def ask(llm: LLM, client: SDKClient, messages: Any, **kwargs: Any) -> MessageSequencePromise:
    """Inquire the provider's agent with the test model and client."""
    return llm.agent.inquire(messages, model=llm.model, async_client=client, **kwargs)


def conversation(llm: LLM, request: RecordedRequest) -> list[Any]:
    """The messages of a request (OpenAI's without its system message).

    The Responses API's input items, with each turn of tool calls (the assistant's text,
    if any, then its ``function_call`` items) as one list, as ``wire_turn`` gives it.
    """
    if llm.name != "responses":
        messages: list[Any] = request.json["messages"]
        return messages
    grouped: list[Any] = []
    for item in request.json["input"]:
        if item.get("type") == "function_call":
            last = grouped[-1] if grouped else None
            if isinstance(last, list):
                last.append(item)
            elif isinstance(last, dict) and last.get("role") == "assistant":
                grouped[-1] = [last, item]
            else:
                grouped.append([item])
        else:
            grouped.append(item)
    return grouped


def wire_call(llm: LLM, call_id: str, name: str, arguments: str, input: Any) -> Any:
    """A tool call as the provider's request carries it back."""
    if llm.name == "openai":
        function = {"name": name, "arguments": arguments}
        return {"id": call_id, "type": "function", "function": function}
    if llm.name == "responses":
        return {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}
    return {"type": "tool_use", "id": call_id, "name": name, "input": input}


def wire_turn(llm: LLM, text: str | None, calls: list[Any]) -> Any:
    """The assistant message of a turn of tool calls."""
    if llm.name == "openai":
        return {"role": "assistant", "content": text, "tool_calls": calls}
    if llm.name == "responses":
        return [{"role": "assistant", "content": text}, *calls] if text else calls
    blocks = [{"type": "text", "text": text}] if text else []
    return {"role": "assistant", "content": [*blocks, *calls]}


def wire_results(llm: LLM, results: list[tuple[str, str, bool]]) -> list[Any]:
    """The results of a turn, ``(call_id, text, is_error)``, as the provider's messages."""
    if llm.name == "openai":
        return [{"role": "tool", "tool_call_id": id_, "content": text} for id_, text, _ in results]
    if llm.name == "responses":
        return [
            {"type": "function_call_output", "call_id": id_, "output": text}
            for id_, text, _ in results
        ]
    blocks = [
        {"type": "tool_result", "tool_use_id": id_, "content": text, "is_error": error}
        for id_, text, error in results
    ]
    return [{"role": "user", "content": blocks}]


def user(text: str) -> Any:
    return {"role": "user", "content": text}


def alternated(llm: LLM, messages: list[Any]) -> list[Any]:
    """``messages`` as the provider sends them: Anthropic's turns alternate (messages of one
    role in a row are one message, of their blocks)."""
    if llm.name != "anthropic":
        return messages
    merged: list[Any] = []
    for message in messages:
        if merged and merged[-1]["role"] == message["role"]:
            blocks = [*_blocks(merged[-1]["content"]), *_blocks(message["content"])]
            merged[-1] = {"role": message["role"], "content": blocks}
        else:
            merged.append(message)
    return merged


def _blocks(content: Any) -> list[Any]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
