"""Chat-completions requests translated to Anthropic Messages bodies (pure, no I/O): every
rule exactly, and every refusal naming what has no Anthropic equivalent."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from anthropic_helpers import call
from providerhub import InvalidRequestError, validate_messages
from providerhub_anthropic.request import request_body, translate_messages

PNG = "iVBORw0KGgo="
PDF = base64.b64encode(b"%PDF-1.4 tiny").decode()
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": WEATHER_SCHEMA,
        },
    },
    {"type": "function", "function": {"name": "get_time"}},
]


def body(messages: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    return request_body(
        "claude-x", validate_messages(messages), params, max_tokens=4096, stream=True
    )


def text(value: str) -> dict[str, str]:
    return {"type": "text", "text": value}


def test_plain_text_request() -> None:
    assert body([{"role": "user", "content": "Hi"}]) == {
        "model": "claude-x",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [text("Hi")]}],
        "stream": True,
    }


def test_system_and_developer_messages_become_the_system_blocks_in_order() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "developer", "content": [text("Use French."), text("")]},
        {"role": "user", "content": "Again"},
    ]

    result = body(messages)

    assert result["system"] == [text("Be brief."), text("Use French.")]
    assert result["messages"] == [{"role": "user", "content": [text("Hi"), text("Again")]}]


def test_content_parts_become_blocks() -> None:
    parts = [
        text("What is in these?"),
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {
            "type": "image_url",
            "image_url": {"url": "https://example.com/cat.jpg", "detail": "auto"},
        },
        {"type": "image_url", "image_url": {"url": f"data:image/jpg;base64,{PNG}"}},
        {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}"}},
        {
            "type": "file",
            "file": {
                "filename": "notes.txt",
                "file_data": "data:text/plain;base64," + base64.b64encode(b"caf\xc3\xa9").decode(),
            },
        },
    ]

    (turn,) = body([{"role": "user", "content": parts}])["messages"]

    assert turn["content"] == [
        text("What is in these?"),
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
        },
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "café"},
            "title": "notes.txt",
        },
    ]


def test_tool_history_becomes_tool_use_and_merged_tool_results() -> None:
    messages = [
        {"role": "user", "content": "Weather and time in Paris?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                call("toolu_1", "get_weather", '{"city": "Paris"}'),
                call("toolu_2", "get_time", ""),
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18°C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": [text("14:00")]},
        {"role": "user", "content": "Thanks"},
    ]

    assert body(messages, tools=TOOLS)["messages"] == [
        {"role": "user", "content": [text("Weather and time in Paris?")]},
        {
            "role": "assistant",
            "content": [
                text("Checking."),
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": [text("14:00")]},
                text("Thanks"),
            ],
        },
    ]


def test_consecutive_same_role_turns_are_merged_and_empty_ones_left_out() -> None:
    messages = [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": "a", "tool_calls": None},
        {"role": "assistant", "content": None, "refusal": "I can't help with that."},
    ]

    assert body(messages)["messages"] == [
        {"role": "user", "content": [text("one"), text("two")]},
        {"role": "assistant", "content": [text("a"), text("I can't help with that.")]},
    ]


def test_tools_and_tool_choice() -> None:
    result = body([{"role": "user", "content": "Hi"}], tools=TOOLS, tool_choice="required")

    assert result["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": WEATHER_SCHEMA,
        },
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert result["tool_choice"] == {"type": "any"}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"tool_choice": "auto"}, {"type": "auto"}),
        ({"tool_choice": "none"}, {"type": "none"}),
        ({"tool_choice": "required"}, {"type": "any"}),
        (
            {"tool_choice": {"type": "function", "function": {"name": "get_time"}}},
            {"type": "tool", "name": "get_time"},
        ),
        ({"parallel_tool_calls": False}, {"type": "auto", "disable_parallel_tool_use": True}),
        (
            {"tool_choice": "required", "parallel_tool_calls": False},
            {"type": "any", "disable_parallel_tool_use": True},
        ),
        ({"tool_choice": "none", "parallel_tool_calls": False}, {"type": "none"}),
        ({"parallel_tool_calls": True}, None),
    ],
)
def test_tool_choice_translation(params: dict[str, Any], expected: dict[str, Any] | None) -> None:
    result = body([{"role": "user", "content": "Hi"}], tools=TOOLS, **params)

    assert result.get("tool_choice") == expected


def test_sampling_stop_user_and_limits() -> None:
    result = body(
        [{"role": "user", "content": "Hi"}],
        temperature=0.3,
        top_p=0.9,
        top_k=40,
        stop="END",
        user="user-42",
        max_completion_tokens=256,
        n=1,
        logprobs=False,
        response_format={"type": "text"},
        stream_options={"include_usage": True},
        presence_penalty=None,
    )

    assert result == {
        "model": "claude-x",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": [text("Hi")]}],
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 40,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "user-42"},
        "stream": True,
    }
    assert body([{"role": "user", "content": "Hi"}], stop=["a", "b"], max_tokens=9)[
        "stop_sequences"
    ] == ["a", "b"]
    assert body([{"role": "user", "content": "Hi"}], safety_identifier="s")["metadata"] == {
        "user_id": "s"
    }


def test_translation_does_not_modify_the_messages() -> None:
    messages = validate_messages(
        [{"role": "user", "content": "a"}, {"role": "user", "content": [text("b")]}]
    )
    before = repr(messages)

    translate_messages(messages)
    translate_messages(messages)

    assert repr(messages) == before


def assistant_call(arguments: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "tool_calls": [call("t1", "f", arguments)]},
    ]


def user(*parts: dict[str, Any]) -> list[dict[str, Any]]:
    """One user message made of `parts`."""
    return [{"role": "user", "content": list(parts)}]


def image(url: str, **extra: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, **extra}}


def file(**fields: str) -> dict[str, Any]:
    return {"type": "file", "file": fields}


@pytest.mark.parametrize(
    ("messages", "params", "message"),
    [
        (
            [{"role": "user", "content": "Hi"}],
            {"frequency_penalty": 0.5, "seed": 7},
            "parameters with no Anthropic equivalent: 'frequency_penalty', 'seed'",
        ),
        (
            [{"role": "user", "content": "Hi"}],
            {"response_format": {"type": "json_object"}},
            "response_format other than text has no Anthropic equivalent",
        ),
        ([{"role": "user", "content": "Hi"}], {"n": 2}, "n must be 1"),
        ([{"role": "user", "content": "Hi"}], {"logprobs": True}, "logprobs has no Anthropic"),
        (
            [{"role": "user", "content": "Hi"}],
            {"temperature": 1.5},
            "temperature must be a number from 0 to 1 for Anthropic",
        ),
        (
            [{"role": "user", "content": "Hi"}],
            {"max_tokens": 10, "max_completion_tokens": 20},
            "max_tokens and max_completion_tokens disagree",
        ),
        ([{"role": "user", "content": "Hi"}], {"max_tokens": 0}, "max_tokens must be a positive"),
        (
            [{"role": "user", "content": "Hi"}],
            {"user": "a", "safety_identifier": "b"},
            "user and safety_identifier disagree",
        ),
        (
            [{"role": "user", "content": "Hi"}],
            {"stream_options": {"include_obfuscation": True}},
            "stream_options may hold only include_usage",
        ),
        ([{"role": "user", "content": "Hi"}], {"stop": [1]}, "stop must be a string or a list"),
        (
            [{"role": "user", "content": "Hi"}],
            {"tools": [{"type": "function", "function": {"name": "f", "strict": True}}]},
            "tools[0].function.strict has no Anthropic equivalent",
        ),
        (
            [{"role": "user", "content": "Hi"}],
            {"tools": [{"type": "web_search"}]},
            "tools[0] must be a {'type': 'function'",
        ),
        ([{"role": "user", "content": "Hi"}], {"tool_choice": "any"}, "tool_choice must be"),
        (assistant_call("{not json"), {}, "messages[1].tool_calls[0].function.arguments is not"),
        (assistant_call("[1, 2]"), {}, "function.arguments must be a JSON object"),
        (
            [{"role": "user", "content": "Hi", "name": "ann"}],
            {},
            "messages[0].name has no Anthropic equivalent",
        ),
        (
            [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "a", "audio": {}}],
            {},
            "messages[1].audio has no Anthropic equivalent",
        ),
        (
            user(image("ftp://x")),
            {},
            "messages[0].content[0].image_url.url must be an http(s) URL or a base64 data URL",
        ),
        (
            user(image("data:image/bmp;base64,AA==")),
            {},
            "messages[0].content[0] is an image of type image/bmp",
        ),
        (
            user(image("https://x/a.png", detail="low")),
            {},
            "image_url.detail 'low' has no Anthropic equivalent",
        ),
        (
            user({"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}),
            {},
            "messages[0].content[0] has type 'input_audio', which Anthropic cannot take",
        ),
        (user(file(file_id="file-1")), {}, "file.file_id names a file stored with another API"),
        (
            user(file(file_data="data:application/zip;base64,AA==")),
            {},
            "is a file of type application/zip; Anthropic takes application/pdf and text/plain",
        ),
        (
            user(file(file_data="data:text/plain;base64,//==")),
            {},
            "file.file_data is not base64 of UTF-8 text",
        ),
        (
            [{"role": "system", "content": "only a system prompt"}],
            {},
            "messages hold no user or assistant content to send",
        ),
    ],
)
def test_refused_before_any_io(
    messages: list[dict[str, Any]], params: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        body(messages, **params)

    assert message in str(caught.value)
