"""Message, model and timeout validation: exact messages naming the index and field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from providerhub import InvalidRequestError, Timeouts, validate_messages
from providerhub.messages import (
    CheckedMessages,
    check_messages,
    flatten_text,
    has_tool_history,
    parts_of,
    validate_model,
)

USER: dict[str, Any] = {"role": "user", "content": "hi"}
TEXT: dict[str, Any] = {"type": "text", "text": "look"}
IMAGE: dict[str, Any] = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
CALL: dict[str, Any] = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "f", "arguments": "{}"},
}
CALLER: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [CALL]}


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ("hi", "messages must be a list of {'role', 'content'} dicts, not str"),
        (b"hi", "messages must be a list of {'role', 'content'} dicts, not bytes"),
        (None, "messages must be a list of {'role', 'content'} dicts, not NoneType"),
        ({"role": "user"}, "messages must be a list of {'role', 'content'} dicts, not dict"),
        ([], "messages must not be empty"),
        ([USER, "hello"], "messages[1] must be a dict with 'role' and 'content', not str"),
        ([USER, {"content": "x"}], "messages[1] has no 'role'"),
        ([{"role": "user"}], "messages[0] has no 'content'"),
        (
            [USER, USER, {"role": "user", "content": 5}],
            "messages[2].content must be a string or a list of content parts, not int",
        ),
        ([{"role": None, "content": "x"}], "messages[0].role must be a string, not NoneType"),
        (
            [{"role": "user", "content": "x", "name": 3}],
            "messages[0].name must be a string, not int",
        ),
        ([{"role": "user", "content": "x", 1: "y"}], "messages[0] has a non-string key 1"),
        (
            [USER, {"role": "wizard", "content": "x"}],
            "messages[1].role is 'wizard'; "
            "expected one of assistant, developer, system, tool, user",
        ),
    ],
)
def test_invalid_messages_name_index_and_field(messages: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        validate_messages(messages)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def _user(*parts: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(parts)}]


def _call(**changes: Any) -> list[dict[str, Any]]:
    return [USER, {"role": "assistant", "tool_calls": [{**CALL, **changes}]}]


def _function(**changes: Any) -> list[dict[str, Any]]:
    return _call(function={**CALL["function"], **changes})


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        (
            [USER, USER, {"role": "user", "content": None}],
            "messages[2].content must be a string or a list of content parts, not NoneType",
        ),
        (
            [USER, {"role": "assistant", "content": None}],
            "messages[1].content may be null only when the message has tool_calls or a refusal",
        ),
        (
            [USER, {"role": "assistant", "refusal": None}],
            "messages[1] has no 'content'",
        ),
        (
            [USER, USER, {"role": "assistant", "content": 5}],
            "messages[2].content must be a string, a list of content parts or null, not int",
        ),
        (
            [{"role": "tool", "content": None, "tool_call_id": "c"}],
            "messages[0].content must be a string or a list of content parts, not NoneType",
        ),
        (_user(), "messages[0].content must not be an empty list"),
        (_user(TEXT, "x"), "messages[0].content[1] must be a dict with a 'type', not str"),
        (_user(TEXT, {"type": 3}), "messages[0].content[1].type must be a string, not int"),
        (_user(TEXT, {"text": "x"}), "messages[0].content[1] has no 'type'"),
        (
            _user({"type": "text", "text": 1}),
            "messages[0].content[0].text must be a string, not int",
        ),
        (_user({"type": "text"}), "messages[0].content[0] has no 'text'"),
        (
            _user(TEXT, {"type": "image_url", "image_url": "https://x"}),
            "messages[0].content[1].image_url must be a dict with a 'url'",
        ),
        (
            _user(TEXT, {"type": "image_url", "image_url": {"detail": "low"}}),
            "messages[0].content[1].image_url must be a dict with a 'url'",
        ),
        (_user(TEXT, {"type": "image_url"}), "messages[0].content[1] has no 'image_url'"),
        (
            _user(TEXT, {"type": "image_url", "image_url": {"url": 1}}),
            "messages[0].content[1].image_url.url must be a string, not int",
        ),
        (
            _user({"type": "image_url", "image_url": {"url": ""}}),
            "messages[0].content[0].image_url.url must not be empty",
        ),
        (
            _user({"type": "image_url", "image_url": {"url": "u", "detail": 2}}),
            "messages[0].content[0].image_url.detail must be a string, not int",
        ),
        (
            _user({"type": "input_audio", "input_audio": {"data": "QQ=="}}),
            "messages[0].content[0].input_audio must be a dict with 'data' and 'format'",
        ),
        (
            _user({"type": "input_audio", "input_audio": {"data": b"A", "format": "wav"}}),
            "messages[0].content[0].input_audio.data must be a string, not bytes",
        ),
        (
            _user({"type": "input_audio", "input_audio": {"data": "QQ==", "format": None}}),
            "messages[0].content[0].input_audio.format must be a string, not NoneType",
        ),
        (
            _user({"type": "file", "file": {"filename": "a.pdf"}}),
            "messages[0].content[0].file must be a dict with a 'file_data' or 'file_id'",
        ),
        (
            _user({"type": "file", "file": {"file_id": 7}}),
            "messages[0].content[0].file.file_id must be a string, not int",
        ),
        (
            _user({"type": "file", "file": {"file_data": "QQ==", "filename": 1}}),
            "messages[0].content[0].file.filename must be a string, not int",
        ),
        (
            [{"role": "system", "content": [TEXT, IMAGE]}],
            "messages[0].content[1] has type 'image_url', which a system message cannot carry",
        ),
        (
            [USER, {"role": "assistant", "content": [IMAGE]}],
            "messages[1].content[0] has type 'image_url', which an assistant message cannot carry",
        ),
        (
            _user({"type": "refusal", "refusal": "no"}),
            "messages[0].content[0] has type 'refusal', which a user message cannot carry",
        ),
        (
            [USER, {"role": "assistant", "content": [{"type": "refusal", "refusal": 1}]}],
            "messages[1].content[0].refusal must be a string, not int",
        ),
        (
            [USER, {"role": "assistant", "content": None, "tool_calls": {"0": CALL}}],
            "messages[1].tool_calls must be a list of tool calls, not dict",
        ),
        (
            [USER, {"role": "assistant", "content": None, "tool_calls": []}],
            "messages[1].tool_calls must not be empty",
        ),
        (
            [USER, {"role": "user", "content": "x", "tool_calls": [CALL]}],
            "messages[1].tool_calls is only allowed on assistant messages",
        ),
        (
            [USER, {"role": "assistant", "tool_calls": ["call_1"]}],
            "messages[1].tool_calls[0] must be a dict, not str",
        ),
        (_call(id=None), "messages[1].tool_calls[0].id must be a string, not NoneType"),
        (_call(id=""), "messages[1].tool_calls[0].id must not be empty"),
        (_call(type="x"), "messages[1].tool_calls[0].type is 'x'; expected 'function'"),
        (_call(type=1), "messages[1].tool_calls[0].type must be a string, not int"),
        (_call(function="f()"), "messages[1].tool_calls[0].function must be a dict, not str"),
        (_function(name=""), "messages[1].tool_calls[0].function.name must not be empty"),
        (
            _function(arguments={"x": 1}),
            "messages[1].tool_calls[0].function.arguments must be a string (JSON text), not dict",
        ),
        (
            [USER, {"role": "assistant", "tool_calls": [{"type": "function"}]}],
            "messages[1].tool_calls[0] has no 'id'",
        ),
        (
            [USER, {"role": "assistant", "tool_calls": [{"id": "c", "function": {}}]}],
            "messages[1].tool_calls[0] has no 'type'",
        ),
        (
            [USER, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function"}]}],
            "messages[1].tool_calls[0] has no 'function'",
        ),
        (_call(function={"arguments": "{}"}), "messages[1].tool_calls[0].function has no 'name'"),
        (_call(function={"name": "f"}), "messages[1].tool_calls[0].function has no 'arguments'"),
        ([USER, CALLER, {"role": "tool", "content": "4"}], "messages[2] has no 'tool_call_id'"),
        (
            [USER, CALLER, {"role": "tool", "content": "4", "tool_call_id": 1}],
            "messages[2].tool_call_id must be a string, not int",
        ),
        (
            [USER, CALLER, {"role": "tool", "content": "4", "tool_call_id": ""}],
            "messages[2].tool_call_id must not be empty",
        ),
        (
            [{**USER, "tool_call_id": "call_1"}],
            "messages[0].tool_call_id is only allowed on tool messages",
        ),
        ([{**USER, "refusal": "no"}], "messages[0].refusal is only allowed on assistant messages"),
        (
            [USER, {"role": "assistant", "content": "x", "refusal": 1}],
            "messages[1].refusal must be a string or null, not int",
        ),
    ],
)
def test_invalid_message_shapes_name_index_and_path(messages: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        validate_messages(messages)
    assert str(info.value) == message


def test_full_tool_history_validates_to_new_equal_dicts() -> None:
    second = {**CALL, "id": "call_2", "function": {"name": "g", "arguments": '{"a": 1}'}}
    history = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [TEXT, {**IMAGE, "image_url": {"url": "u", "detail": "low"}}]},
        {"role": "assistant", "content": None, "tool_calls": [CALL, second]},
        {"role": "tool", "tool_call_id": "call_1", "content": "1"},
        {"role": "tool", "tool_call_id": "call_2", "content": [TEXT]},
        {"role": "assistant", "content": "done", "name": "bot"},
    ]
    checked = validate_messages(history)
    assert checked == history
    assert all(type(m) is dict and m is not h for m, h in zip(checked, history, strict=True))
    assert parts_of(checked) == {"text", "image_url"}
    assert has_tool_history(checked)


def test_refusals_and_tool_calls_allow_missing_content() -> None:
    refused = {"role": "assistant", "refusal": "I can't help with that"}
    parts = {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}, TEXT]}
    bare = {"role": "assistant", "tool_calls": [CALL]}
    assert validate_messages([USER, refused, parts, bare]) == [USER, refused, parts, bare]


def test_unknown_part_types_and_keys_pass_through_untouched() -> None:
    video = {"type": "video_url", "video_url": {"url": 5}}
    original: list[dict[str, Any]] = [
        {"role": "system", "content": [video], "cache_control": {"type": "ephemeral"}},
        {"role": "user", "content": [TEXT, IMAGE, video], "audio": None},
        {**CALLER, "function_call": [1], "reasoning_content": 3},
    ]
    checked = validate_messages(original)
    assert checked == original
    for index, message in enumerate(original):
        for key, value in message.items():
            assert checked[index][key] is value
    assert parts_of(checked) == {"text", "image_url", "video_url"}


def test_flatten_text_joins_text_parts() -> None:
    checked = validate_messages(
        [
            {"role": "user", "content": [TEXT, {"type": "text", "text": "again"}], "name": "me"},
            CALLER,
            {"role": "user", "content": "plain"},
        ]
    )
    flat = flatten_text(checked, "CodeLinkAva")
    assert flat == [
        {"role": "user", "content": "look\nagain", "name": "me"},
        {**CALLER, "content": ""},
        {"role": "user", "content": "plain"},
    ]
    assert checked[0]["content"] == [TEXT, {"type": "text", "text": "again"}]
    assert all(f is not c for f, c in zip(flat, checked, strict=True))


def test_flatten_text_refuses_other_parts() -> None:
    checked = validate_messages([USER, {"role": "user", "content": [TEXT, IMAGE]}])
    with pytest.raises(InvalidRequestError) as info:
        flatten_text(checked, "CodeLinkAva")
    assert str(info.value) == (
        "CodeLinkAva takes text only: messages[1].content[1] has type 'image_url'"
    )


def test_parts_of_and_tool_history_of_plain_text() -> None:
    checked = validate_messages([{"role": "system", "content": "s"}, USER])
    assert parts_of(checked) == frozenset()
    assert not has_tool_history(checked)
    assert has_tool_history([USER, {"role": "tool", "content": "x", "tool_call_id": "c"}])


STRING_MESSAGES = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {
                "role": st.sampled_from(["system", "developer", "user", "assistant"]),
                "content": st.text(),
            },
            optional={"name": st.text()},
        ),
        st.fixed_dictionaries(
            {"role": st.just("tool"), "content": st.text(), "tool_call_id": st.text(min_size=1)}
        ),
    ),
    min_size=1,
)


@given(STRING_MESSAGES)
def test_valid_string_messages_round_trip(messages: list[dict[str, str]]) -> None:
    checked = validate_messages(messages)
    assert checked == messages
    assert not any(c is m for c, m in zip(checked, messages, strict=True))


def test_valid_messages_are_copied_to_plain_dicts() -> None:
    source = ({"role": "system", "content": "be brief"}, USER)
    checked = validate_messages(source)
    assert checked == [{"role": "system", "content": "be brief"}, USER]
    assert type(checked) is list
    assert checked[1] is not USER
    inner = check_messages(source)
    assert type(inner) is CheckedMessages and inner == checked
    assert check_messages(inner) is inner, "checked messages are not checked again"


@pytest.mark.parametrize(
    ("model", "message"),
    [(None, "model must be a string, not NoneType"), (4, "model must be a string, not int")],
)
def test_model_must_be_a_string(model: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=f"^{message}$"):
        validate_model(model)
    assert validate_model("") == ""


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5", "timeout must be a number of seconds or Timeouts, not '5'"),
        (True, "timeout must be a number of seconds or Timeouts, not True"),
        ([1], "timeout must be a number of seconds or Timeouts, not [1]"),
        (0, "timeout must be a positive number of seconds, not 0"),
        (-1.5, "timeout must be a positive number of seconds, not -1.5"),
        (float("nan"), "timeout must be a positive number of seconds, not nan"),
    ],
)
def test_timeout_coercion_errors(value: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        Timeouts.coerce(value)
    assert str(info.value) == message


def test_timeout_phase_errors() -> None:
    with pytest.raises(InvalidRequestError, match=r"^timeout idle must be .* not 0$"):
        Timeouts(idle=0)
    with pytest.raises(InvalidRequestError, match=r"^timeout total must be .* not '3'$"):
        Timeouts(total="3")  # type: ignore[arg-type]


def test_timeout_coercion() -> None:
    assert Timeouts.coerce(None) == Timeouts()
    limits = Timeouts(first_chunk=1, idle=None)
    assert Timeouts.coerce(limits) is limits
    assert Timeouts.coerce(5) == Timeouts(connect=5, first_chunk=5, idle=5, total=5)
    assert Timeouts.coerce(30.0) == Timeouts(connect=10, first_chunk=20, idle=30, total=30)
