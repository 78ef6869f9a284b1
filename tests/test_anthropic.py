"""AnthropicProvider over real sockets: the exact request, streamed and JSON answers, tool calls
cut at every byte, the provider type, options and capabilities."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from typing import Any

import pytest
from anthropic_helpers import OPENAI_USAGE, USAGE, call
from helpers import BOUND, MakeUpstream
from providerhub import (
    ConfigError,
    EmptyStreamError,
    InvalidRequestError,
    ModelNotSupportedError,
    Registry,
    UnsupportedCapabilityError,
    UpstreamConnectionError,
)
from providerhub.config import parse_config
from providerhub.testing import FakeUpstream, Reply, ToolCallScript
from providerhub_anthropic import AnthropicProvider

HELLO = [{"role": "user", "content": "Hello"}]
KEY = "sk-ant-test-0123456789"
WEATHER = ToolCallScript("get_weather", '{"city": "Paris"}', "toolu_1")
TIME = ToolCallScript("get_time", '{"tz": "Europe/Paris"}', "toolu_2")
CALLS = [
    call("toolu_1", "get_weather", '{"city": "Paris"}'),
    call("toolu_2", "get_time", '{"tz": "Europe/Paris"}'),
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def claude(upstream: FakeUpstream, **options: Any) -> AnthropicProvider:
    options.setdefault("name", "claude")
    options.setdefault("default_model", "claude-test")
    options.setdefault("api_key", KEY)
    options.setdefault("base_url", upstream.url)
    return AnthropicProvider(**options)


async def test_exact_request(fake_upstream: MakeUpstream) -> None:
    png = base64.b64encode(b"\x89PNG").decode()
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
            ],
        },
    ]
    up = await fake_upstream(Reply.text("A", " dot."), wire="anthropic")
    provider = claude(up, headers={"anthropic-beta": "pdfs-2024-09-25"})
    answer = await provider.create_async(
        "claude-x", messages, temperature=0.2, tools=TOOLS, tool_choice="auto", stop=["##"]
    )
    assert answer == "A dot."
    (request,) = up.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["anthropic-beta"] == "pdfs-2024-09-25"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "text/event-stream"
    assert "Authorization" not in request.headers
    assert request.json == {
        "model": "claude-x",
        "max_tokens": 4096,
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": png},
                    },
                ],
            }
        ],
        "temperature": 0.2,
        "stop_sequences": ["##"],
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather for a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
        "tool_choice": {"type": "auto"},
        "stream": True,
    }


async def test_exact_request_with_history_files_and_tool_options(
    fake_upstream: MakeUpstream,
) -> None:
    pdf = base64.b64encode(b"%PDF-1.4").decode()
    messages = [
        {"role": "developer", "content": "Answer in French."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Summarise, then get the weather."},
                {
                    "type": "file",
                    "file": {
                        "filename": "a.pdf",
                        "file_data": f"data:application/pdf;base64,{pdf}",
                    },
                },
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": CALLS[:1]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18°C"},
        {"role": "user", "content": "And Lyon?"},
    ]
    up = await fake_upstream(Reply.text("Lyon: 20°C"), wire="anthropic")
    await claude(up).create_async(
        "",
        messages,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
        max_completion_tokens=300,
        stop="\n\nHuman:",
        top_p=0.5,
        safety_identifier="hashed-user",
        stream=False,
    )
    (request,) = up.requests
    assert (request.path, request.headers["Accept"]) == ("/v1/messages", "application/json")
    assert request.json == {
        "model": "claude-test",
        "max_tokens": 300,
        "system": [{"type": "text", "text": "Answer in French."}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Summarise, then get the weather."},
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": pdf},
                        "title": "a.pdf",
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"},
                    {"type": "text", "text": "And Lyon?"},
                ],
            },
        ],
        "top_p": 0.5,
        "stop_sequences": ["\n\nHuman:"],
        "metadata": {"user_id": "hashed-user"},
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather for a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
        "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        "stream": False,
    }


async def test_options_shape_the_request(fake_upstream: MakeUpstream) -> None:
    up = await fake_upstream(Reply.text("ok"), wire="anthropic")
    provider = claude(
        up, anthropic_version="2024-01-01", max_tokens=100, base_url=up.url + "/proxy/"
    )
    await provider.create_async("", HELLO, user="u-1")
    (request,) = up.requests
    assert request.path == "/proxy/v1/messages"
    assert request.headers["anthropic-version"] == "2024-01-01"
    assert request.json["max_tokens"] == 100
    assert request.json["model"] == "claude-test"
    assert request.json["metadata"] == {"user_id": "u-1"}


async def test_stream_reports_finish_reason_and_usage(fake_upstream: MakeUpstream) -> None:
    up = await fake_upstream(Reply.text("Hel", "lo", usage=USAGE), wire="anthropic")
    async with claude(up).stream("", HELLO) as answer:
        chunks = [chunk async for chunk in answer]
    assert "".join(chunks) == "Hello"
    assert answer.finish_reason == "stop"
    assert answer.usage == OPENAI_USAGE


async def test_non_streamed_call(fake_upstream: MakeUpstream) -> None:
    reply = Reply.text("Whole ", "answer", finish_reason="length", usage=USAGE)
    up = await fake_upstream(reply, wire="anthropic")
    answer = claude(up).stream("", HELLO, stream=False)
    assert await answer.text() == "Whole answer"
    (request,) = up.requests
    assert request.json["stream"] is False
    assert request.headers["Accept"] == "application/json"
    assert answer.finish_reason == "length"
    assert answer.usage == OPENAI_USAGE


async def test_non_streamed_tool_calls(fake_upstream: MakeUpstream) -> None:
    up = await fake_upstream(Reply.tool_call(WEATHER, TIME, text="Checking."), wire="anthropic")
    answer = claude(up, supports_stream=False).stream("", HELLO, tools=TOOLS)
    assert await answer.message() == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": CALLS,
    }
    assert up.requests[0].json["stream"] is False
    assert answer.finish_reason == "tool_calls"


@pytest.mark.parametrize("split", [1, 2, 3, 7, 64])
async def test_streamed_tool_calls_cut_at_every_byte(
    fake_upstream: MakeUpstream, split: int
) -> None:
    reply = Reply.tool_call(WEATHER, TIME, text="Checking.", fragment=3, split=split, usage=USAGE)
    up = await fake_upstream(reply, wire="anthropic")
    answer = claude(up).stream("", HELLO, tools=TOOLS)
    async with asyncio.timeout(BOUND * 4):
        events = [event async for event in answer.events()]
    assert "".join(e for e in events if isinstance(e, str)) == "Checking."
    assert answer.tool_calls == CALLS
    assert answer.finish_reason == "tool_calls"
    assert answer.usage == OPENAI_USAGE


async def test_stream_cut_before_message_stop(fake_upstream: MakeUpstream) -> None:
    up = await fake_upstream(Reply.text("par", "tial", done=False), wire="anthropic")
    answer = claude(up).stream("", HELLO)
    with pytest.raises(UpstreamConnectionError, match="stream ended before message_stop"):
        await answer.text()


async def test_answer_without_content_is_empty(fake_upstream: MakeUpstream) -> None:
    up = await fake_upstream(Reply.empty(), wire="anthropic")
    with pytest.raises(EmptyStreamError):
        await claude(up).create_async("", HELLO)


async def test_bad_calls_fail_before_any_request(fake_upstream: MakeUpstream) -> None:
    up = await fake_upstream(wire="anthropic")
    provider = claude(up, models=["claude-a"], default_model=None)
    audio = [
        {
            "role": "user",
            "content": [{"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}],
        }
    ]
    with pytest.raises(ModelNotSupportedError):
        provider.stream("claude-b", HELLO)
    with pytest.raises(InvalidRequestError, match="no model given"):
        provider.stream("", HELLO)
    with pytest.raises(UnsupportedCapabilityError, match="audio"):
        provider.stream("claude-a", audio)
    with pytest.raises(UnsupportedCapabilityError, match="response_format"):
        provider.stream("claude-a", HELLO, response_format={"type": "json_object"})
    with pytest.raises(
        InvalidRequestError, match=r"^claude: parameters with no Anthropic equivalent: 'seed'$"
    ):
        provider.stream("claude-a", HELLO, seed=1)
    with pytest.raises(InvalidRequestError, match="stream must be true or false"):
        provider.stream("claude-a", HELLO, stream="yes")
    assert up.requests == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"base_url": "ftp://x"}, "option 'base_url' must be an http:// or https:// URL"),
        ({"base_url": "https://api.anthropic.com/v1"}, "option 'base_url' is the API root"),
        ({"max_tokens": 0}, "option 'max_tokens' must be a positive integer"),
        ({"api_key_env": "sk-ant-abc"}, "option 'api_key_env' must be the NAME"),
        ({"api_key": "k", "api_key_env": "K"}, "give either 'api_key' or 'api_key_env'"),
        ({"headers": {"anthropic-version": "x"}}, "option 'headers' sets 'anthropic-version'"),
        ({"headers": {"x-api-key": "sk-ant-abc"}}, "option 'headers' sets 'x-api-key'"),
        (
            {"api_key_env": "K", "headers_env": {"X-Api-Key": "K2"}},
            "option 'headers_env' sets 'x-api-key', which the API key already fills",
        ),
        ({"supports_tools": "yes"}, "option 'supports_tools' must be true or false"),
    ],
)
def test_options_are_checked(options: dict[str, Any], message: str) -> None:
    with pytest.raises((TypeError, ValueError)) as caught:
        AnthropicProvider(name="c", **options)

    assert str(caught.value).startswith(message)
    assert "sk-ant-abc" not in str(caught.value)


def test_defaults_and_repr() -> None:
    provider = AnthropicProvider(name="c", api_key_env="ANTHROPIC_API_KEY")

    assert provider.endpoint == "https://api.anthropic.com/v1/messages"
    assert (provider.max_tokens, provider.anthropic_version) == (4096, "2023-06-01")
    assert (provider.supports_tools, provider.supports_vision, provider.supports_files) == (
        True,
        True,
        True,
    )
    assert (provider.supports_audio, provider.supports_response_format) == (False, False)
    assert repr(provider) == "AnthropicProvider(name='c', api_key_env='ANTHROPIC_API_KEY')"
    assert repr(AnthropicProvider(name="c", api_key=KEY, supports_files=False)) == (
        "AnthropicProvider(name='c', api_key=<redacted>, supports_files=False)"
    )


def test_plugin_registers_the_anthropic_type_through_its_entry_point() -> None:
    config = parse_config(
        """
[providers.claude]
use = "anthropic"
api_key_env = "ANTHROPIC_API_KEY"
default_model = "claude-sonnet-4-5"
max_tokens = 1024
headers = { anthropic-beta = "output-128k-2025-02-19" }
"""
    )
    registry = config.build_registry(Registry.discover())

    provider = registry.get("claude")
    assert isinstance(provider, AnthropicProvider)
    assert (provider.max_tokens, provider.headers) == (
        1024,
        {"anthropic-beta": "output-128k-2025-02-19"},
    )
    assert "anthropic" in {info.name for info in registry.plugins}


def test_a_literal_key_in_the_config_is_refused_unshown() -> None:
    text = '[providers.claude]\nuse = "anthropic"\napi_key = "sk-ant-literal-123"\n'

    with pytest.raises(ConfigError) as caught:
        parse_config(text)

    assert "'api_key': literal secrets are refused" in str(caught.value)
    assert "sk-ant-literal-123" not in str(caught.value)


def test_importing_the_plugin_does_not_import_aiohttp() -> None:
    script = "import sys, providerhub_anthropic; print('aiohttp' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )

    assert done.stdout == "False\n"
