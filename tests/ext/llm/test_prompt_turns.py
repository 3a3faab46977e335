"""``turns_for``: any conversation, in the form each API takes (the one place it is made so)."""

from __future__ import annotations

from miniagents.ext.llm.messages import LLMToolCallMessage, LLMToolResultMessage
from miniagents.ext.llm.prompt import ConversationRules, PromptText, Turn, turns_for
from miniagents.messages.image import ImagePart

STRICT = ConversationRules()
OPENAI = ConversationRules(
    roles=frozenset({"user", "assistant", "developer"}), alternate=False, skip_blank=False
)

CALL = LLMToolCallMessage(text='{"q": "x"}', tool_name="lookup", call_id="c1")
RESULT = LLMToolResultMessage(text="found x", tool_name="lookup", call_id="c1")


def shape(turns: tuple[Turn, ...]) -> list[tuple[str, list[str]]]:
    return [(turn.role, [f"{item.role}:{item.text}" for item in turn.items]) for turn in turns]


def test_another_agents_reply_given_alone_opens_with_the_users_turn() -> None:
    reply = (CALL, RESULT, PromptText("assistant", "Found x."))
    assert shape(turns_for(reply, STRICT)) == [
        (
            "user",
            [
                'user:(A call of the tool lookup: {"q": "x"})',
                "user:(The tool lookup answered: found x)",
                "user:Found x.",
            ],
        )
    ]
    # an API without the rule keeps it as it is: calls, results, the answer
    assert [turn.role for turn in turns_for(reply, OPENAI)] == ["assistant", "user", "assistant"]


def test_turns_alternate_odd_roles_map_and_blank_texts_go() -> None:
    image = ImagePart(data=b"\x89PNG\r\n\x1a\n", media_type="image/png")
    conversation = (
        PromptText("user", "Hi"),
        PromptText("user", "Look:", (image,)),
        PromptText("critic", "Too long."),
        PromptText("user", "  "),
        PromptText("model", "Ok."),
        PromptText("assistant", "Shorter:"),
        CALL,
        RESULT,
        PromptText("user", "Thanks"),
    )
    turns = turns_for(conversation, STRICT)
    assert shape(turns) == [
        ("user", ["user:Hi", "user:Look:", "user:Too long."]),
        ("assistant", ["assistant:Ok.", "assistant:Shorter:", 'assistant:{"q": "x"}']),
        ("user", ["tool:found x", "user:Thanks"]),  # the results first, as the APIs want
    ]
    assert turns[0].items[1] == PromptText("user", "Look:", (image,))  # its image kept
    # OpenAI's rules: its roles kept (developer too), the rest the user's, no text left out
    openai = turns_for((PromptText("developer", "Be brief."), *conversation), OPENAI)
    assert [item.role for turn in openai for item in turn.items][:5] == [
        "developer",
        "user",
        "user",
        "user",
        "user",
    ]


def test_a_call_id_another_api_would_refuse_is_replaced_for_the_call_and_its_result() -> None:
    call = CALL.model_copy(update={"call_id": "functions.lookup:0"})
    result = RESULT.model_copy(update={"call_id": "functions.lookup:0"})
    turns = turns_for((PromptText("user", "Find x."), call, result), STRICT)
    made, answered = turns[1].items[0], turns[2].items[0]
    assert isinstance(made, LLMToolCallMessage)
    assert isinstance(answered, LLMToolResultMessage)
    assert made.call_id == answered.call_id
    assert made.call_id.startswith("call_")
    assert len(made.call_id) <= 40
    assert made.call_id.replace("_", "").isalnum()
    assert (made.tool_name, made.arguments) == (call.tool_name, call.arguments)
    long = CALL.model_copy(update={"call_id": "x" * 41})
    assert turns_for((long,), OPENAI)[0].items[0] != long  # (OpenAI takes 40 at most)
    assert turns_for((CALL,), OPENAI)[0].items[0] is CALL  # a safe id is kept as it is


def test_the_usual_prompt_is_one_turn_of_its_own() -> None:
    only = PromptText("user", "Hi")
    assert turns_for((only,), STRICT) == (Turn("user", (only,)),)
    assert turns_for((), STRICT) == ()


def test_trim_last_ends_the_last_assistant_text_with_no_whitespace() -> None:
    # Claude's rule (Anthropic's and Bedrock's providers, one rule for both): only the last
    # text of a conversation that ends with the assistant's turn loses its whitespace
    claude = ConversationRules(trim_last=True)
    conversation = (
        PromptText("user", "Write a line. "),
        PromptText("assistant", "Rivers run.\n\n"),
    )
    assert shape(turns_for(conversation, claude)) == [
        ("user", ["user:Write a line. "]),
        ("assistant", ["assistant:Rivers run."]),
    ]
    assert shape(turns_for(conversation, STRICT))[-1] == (
        "assistant",
        ["assistant:Rivers run.\n\n"],
    )
    ended_by_the_user = (*conversation, PromptText("user", "Thanks.\n"))
    assert shape(turns_for(ended_by_the_user, claude))[1:] == [
        ("assistant", ["assistant:Rivers run.\n\n"]),
        ("user", ["user:Thanks.\n"]),
    ]
    ended_by_a_call = (*conversation, CALL)
    assert shape(turns_for(ended_by_a_call, claude))[-1] == (
        "assistant",
        ["assistant:Rivers run.\n\n", 'assistant:{"q": "x"}'],
    )
    # a text that trims to nothing is left out, as a blank one (were blank texts kept)
    keeping = ConversationRules(skip_blank=False, trim_last=True)
    blank_last = (*conversation, PromptText("assistant", " \n"))
    assert shape(turns_for(blank_last, keeping))[-1] == ("assistant", ["assistant:Rivers run."])
    only_blank = (PromptText("user", "Hi"), PromptText("assistant", "\n"))
    assert shape(turns_for(only_blank, keeping)) == [("user", ["user:Hi"])]
