"""The official `openai` SDK talking to the gateway in front of an Anthropic provider: text,
tools, images, usage and finish reasons as OpenAI's shapes, and chains mixing both formats.

Provider `claude` (use = "anthropic") answers from a FakeUpstream speaking Anthropic's format,
`gpt` (use = "openai") from one speaking chat-completions; chain `claude_first` is [claude,
gpt], `gpt_first` [gpt, claude].
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from anthropic_helpers import OPENAI_USAGE, USAGE
from helpers import MakeUpstream
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from providerhub.testing import FakeUpstream, Reply, ToolCallScript
from test_server import gateway

KEY = "sk-ant-gateway-test-key"
VAR = "PROVIDERHUB_TEST_GATEWAY_ANTHROPIC_KEY"
ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Weather in Paris?"}]
TOOLS: list[ChatCompletionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
WEATHER = ToolCallScript("get_weather", '{"city": "Paris"}', "toolu_1")
PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def config_text(claude: FakeUpstream, gpt: FakeUpstream) -> str:
    return f"""
[providers.claude]
use = "anthropic"
base_url = "{claude.url}"
api_key_env = "{VAR}"
default_model = "claude-test"

[providers.gpt]
use = "openai"
base_url = "{gpt.url}/v1"
default_model = "gpt-test"

[chains.claude_first]
providers = ["claude", "gpt"]

[chains.gpt_first]
providers = ["gpt", "claude"]
"""


@pytest.fixture
def gpt(fake_upstream: Any, monkeypatch: pytest.MonkeyPatch) -> FakeUpstream:
    monkeypatch.setenv(VAR, KEY)
    upstream: FakeUpstream = fake_upstream.serve()
    return upstream


def client(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


async def test_text_streamed_and_whole_with_usage(
    fake_upstream: MakeUpstream, gpt: FakeUpstream
) -> None:
    claude = await fake_upstream(
        Reply.text("Hel", "lo", usage=USAGE),
        Reply.text("Whole", finish_reason="length", usage=USAGE),
        wire="anthropic",
    )
    async with (
        gateway(config_text(claude, gpt)) as url,
        client(url) as sdk,
    ):
        chunks = await sdk.chat.completions.create(
            model="claude",
            messages=ASK,
            stream=True,
            stream_options={"include_usage": True},
            max_tokens=50,
        )
        pieces, reasons, usage = [], [], None
        async for chunk in chunks:
            if chunk.choices:
                pieces.append(chunk.choices[0].delta.content or "")
                reasons.append(chunk.choices[0].finish_reason)
            usage = chunk.usage or usage
        whole = await sdk.chat.completions.create(model="claude", messages=ASK)
    assert "".join(pieces) == "Hello"
    assert reasons[-1] == "stop"
    assert usage is not None and usage.model_dump(exclude_none=True) == OPENAI_USAGE
    assert whole.choices[0].message.content == "Whole"
    assert whole.choices[0].finish_reason == "length"
    assert whole.usage is not None and whole.usage.prompt_tokens_details is not None
    assert whole.usage.prompt_tokens_details.cached_tokens == 10
    first = claude.requests[0]
    assert first.path == "/v1/messages"
    assert first.headers["x-api-key"] == KEY
    assert first.json["max_tokens"] == 50
    assert "stream_options" not in first.json
    assert gpt.requests == []


async def test_tool_calls_and_the_tool_turn(fake_upstream: MakeUpstream, gpt: FakeUpstream) -> None:
    claude = await fake_upstream(
        Reply.tool_call(WEATHER, text="Checking.", fragment=4, split=5),
        Reply.text("18°C in Paris."),
        wire="anthropic",
    )
    async with (
        gateway(config_text(claude, gpt)) as url,
        client(url) as sdk,
    ):
        chunks = await sdk.chat.completions.create(
            model="claude", messages=ASK, tools=TOOLS, tool_choice="required", stream=True
        )
        calls: dict[int, dict[str, str]] = {}
        reasons = []
        async for chunk in chunks:
            choice = chunk.choices[0]
            reasons.append(choice.finish_reason)
            for delta in choice.delta.tool_calls or ():
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += delta.id or ""
                if delta.function is not None:
                    call["name"] += delta.function.name or ""
                    call["arguments"] += delta.function.arguments or ""
        history: list[ChatCompletionMessageParam] = [
            *ASK,
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": calls[0]["id"],
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": calls[0]["arguments"]},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": "18°C"},
        ]
        answer = await sdk.chat.completions.create(model="claude", messages=history, tools=TOOLS)
    assert calls == {0: {"id": "toolu_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}}
    assert reasons[-1] == "tool_calls"
    assert claude.requests[0].json["tool_choice"] == {"type": "any"}
    assert claude.requests[0].json["tools"][0]["input_schema"] == TOOLS[0]["function"]["parameters"]
    assert claude.requests[1].json["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"}],
        },
    ]
    assert answer.choices[0].message.content == "18°C in Paris."


async def test_images_reach_anthropic_as_blocks(
    fake_upstream: MakeUpstream, gpt: FakeUpstream
) -> None:
    look: list[ChatCompletionMessageParam] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}},
            ],
        }
    ]
    claude = await fake_upstream(Reply.text("A pixel and a cat."), wire="anthropic")
    async with (
        gateway(config_text(claude, gpt)) as url,
        client(url) as sdk,
    ):
        answer = await sdk.chat.completions.create(model="claude", messages=look)
    assert answer.choices[0].message.content == "A pixel and a cat."
    assert claude.requests[0].json["messages"][0]["content"][1:] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.webp"}},
    ]


async def test_untranslatable_request_is_never_sent(
    fake_upstream: MakeUpstream, gpt: FakeUpstream
) -> None:
    """A parameter Anthropic has no equivalent for: refused by name before any request; in a
    chain the next member serves. (Alone, the gateway reports the refusal as its chain's failure:
    502, see the report on server/status.py.)"""
    gpt.script(Reply.text("from gpt"))
    claude = await fake_upstream(wire="anthropic")
    async with (
        gateway(config_text(claude, gpt)) as url,
        client(url) as sdk,
    ):
        with pytest.raises(openai.APIStatusError) as caught:
            await sdk.chat.completions.create(model="claude", messages=ASK, seed=3)
        served = await sdk.chat.completions.create(model="claude_first", messages=ASK, seed=3)
    assert "claude: parameters with no Anthropic equivalent: 'seed'" in caught.value.message
    assert served.choices[0].message.content == "from gpt"
    assert gpt.requests[0].json["seed"] == 3
    assert claude.requests == []


async def test_overloaded_anthropic_fails_over_to_openai_with_tools(
    fake_upstream: MakeUpstream, gpt: FakeUpstream
) -> None:
    gpt.script(Reply.tool_call(("get_weather", '{"city": "Paris"}'), text="Let me see."))
    claude = await fake_upstream(Reply.error(529, "Overloaded"), wire="anthropic")
    async with (
        gateway(config_text(claude, gpt)) as url,
        client(url) as sdk,
    ):
        raw = await sdk.chat.completions.with_raw_response.create(
            model="claude_first", messages=ASK, tools=TOOLS
        )
        answer = raw.parse()
    assert raw.headers["x-providerhub-provider"] == "gpt"
    assert raw.headers["x-providerhub-route"] == "claude_first > gpt"
    assert answer.choices[0].finish_reason == "tool_calls"
    (call,) = answer.choices[0].message.tool_calls or []
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    assert len(claude.requests) == 1
    assert gpt.requests[0].json["tools"] == TOOLS


async def test_failing_openai_fails_over_to_anthropic_with_tools(
    fake_upstream: MakeUpstream, gpt: FakeUpstream
) -> None:
    gpt.script(Reply.error(500, "model crashed"))
    claude = await fake_upstream(Reply.tool_call(WEATHER, usage=USAGE), wire="anthropic")
    async with (
        gateway(config_text(claude, gpt)) as url,
        client(url) as sdk,
    ):
        raw = await sdk.chat.completions.with_raw_response.create(
            model="gpt_first", messages=ASK, tools=TOOLS, tool_choice="auto"
        )
        answer = raw.parse()
    assert raw.headers["x-providerhub-provider"] == "claude"
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert (call.id, call.function.name) == ("toolu_1", "get_weather")  # type: ignore[union-attr]
    assert call.function.arguments == '{"city": "Paris"}'  # type: ignore[union-attr]
    assert claude.requests[0].json["tool_choice"] == {"type": "auto"}
    assert answer.usage is not None and answer.usage.total_tokens == 54
