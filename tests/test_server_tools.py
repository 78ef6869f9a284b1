"""Rich chat through the gateway for real clients: the official openai SDK (`AsyncOpenAI`) and raw
SSE read with aiohttp, over real sockets, in front of providerhub-openai providers on
FakeUpstreams. Tool calls (streamed, interleaved, unstreamed, multi-turn), content parts and the
vision capability, usage, refusals, logprobs, and tool-call answers counting as health successes.

Providers: `blind` (`supports_vision = false`) and `seeing`, each on its own upstream; chain
`vision` is [blind, seeing], chain `blinds` is [blind] alone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from providerhub import HealthStore, MemoryHealthStore, Registry, default_health_store
from providerhub.config import parse_config
from providerhub.routing.health import Ticket
from providerhub.server import create_app, start
from providerhub.testing import FakeUpstream, Reply, ToolCallScript
from pydantic import BaseModel
from test_server import events, post

Ups = tuple[FakeUpstream, FakeUpstream]
KEY = "sk-gateway-key-for-tools"
USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
WEATHER = ("get_weather", '{"city": "Paris", "unit": "celsius"}')
TIME = ("get_time", '{"tz": "Europe/Paris", "h24": true}')
"""As many 4-character fragments as WEATHER's: interleaved, no two fragments of a call touch."""
CALLS = [
    {"id": "call_0", "type": "function", "function": {"name": WEATHER[0], "arguments": WEATHER[1]}},
    {"id": "call_1", "type": "function", "function": {"name": TIME[0], "arguments": TIME[1]}},
]
ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Weather and time in Paris?"}]
TOOLS: list[ChatCompletionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {
                "type": "object",
                "properties": {"tz": {"type": "string"}, "h24": {"type": "boolean"}},
            },
        },
    },
]
PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PARTS: list[ChatCompletionMessageParam] = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture, and what is said here?"},
            {"type": "image_url", "image_url": {"url": PIXEL, "detail": "low"}},
            {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}},
        ],
    }
]


def config_text(blind: FakeUpstream, seeing: FakeUpstream) -> str:
    return f"""
[providers.blind]
use = "openai"
base_url = "{blind.url}/v1"
default_model = "blind-model"
supports_vision = false

[providers.seeing]
use = "openai"
base_url = "{seeing.url}/v1"
default_model = "seeing-model"

[chains.vision]
providers = ["blind", "seeing"]

[chains.blinds]
providers = ["blind"]
"""


@asynccontextmanager
async def gateway(text: str, health: HealthStore | None) -> AsyncIterator[str]:
    """Serve `text`'s config with `health` (None: the process's default store); the base URL."""
    config = parse_config(text)
    registry = config.build_registry(Registry.discover())
    app = create_app(registry, config, api_key=KEY, health=health)
    runner, url = await start(app, "127.0.0.1", 0, grace=0.5)
    try:
        yield url
    finally:
        await runner.cleanup()


@asynccontextmanager
async def sdk(ups: Ups) -> AsyncIterator[tuple[str, openai.AsyncOpenAI]]:
    """The gateway in front of `ups` (its own health store) and an AsyncOpenAI client."""
    async with (
        gateway(config_text(*ups), MemoryHealthStore()) as url,
        openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0) as client,
    ):
        yield url, client


def raw(url: str, body: dict[str, Any]) -> Any:
    return post(url, body, headers={"Authorization": f"Bearer {KEY}"})


@pytest.fixture
async def ups(fake_upstream: Any) -> Ups:
    return await fake_upstream(), await fake_upstream()


def two_calls(**options: Any) -> Reply:
    return Reply.tool_call(WEATHER, TIME, fragment=4, usage=USAGE, **options)


def dumped(calls: Any) -> list[dict[str, Any]]:
    """The SDK's tool calls as chat-completions dicts (id, type, function name and arguments)."""
    return [
        {
            "id": call.id,
            "type": call.type,
            "function": {"name": call.function.name, "arguments": call.function.arguments},
        }
        for call in calls
    ]


def opening(index: int) -> dict[str, Any]:
    call = CALLS[index]
    function = {"name": call["function"]["name"], "arguments": ""}
    return {
        "tool_calls": [{"index": index, "id": call["id"], "type": "function", "function": function}]
    }


def fragment(index: int, arguments: str) -> dict[str, Any]:
    return {"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}


def pieces(text: str, size: int = 4) -> list[str]:
    return [text[start : start + size] for start in range(0, len(text), size)]


def chunk_deltas(text: str) -> tuple[list[dict[str, Any]], list[Any]]:
    """The deltas of every choice chunk of an SSE body, and the chunks themselves ([DONE] last)."""
    found = events(text)
    assert found[-1] == "[DONE]" and found.count("[DONE]") == 1
    chunks = found[:-1]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1
    return [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]], chunks


# 1. Streamed tool calls -------------------------------------------------------------------------


@pytest.mark.parametrize("interleave", [False, True])
async def test_sdk_accumulates_streamed_parallel_tool_calls(ups: Ups, interleave: bool) -> None:
    _, seeing = ups
    seeing.script(two_calls(interleave_tool_calls=interleave))
    async with (
        sdk(ups) as (_, client),
        client.chat.completions.stream(model="seeing", messages=ASK, tools=TOOLS) as stream,
    ):
        kinds = [event.type async for event in stream]
        final = await stream.get_final_completion()
    choice = final.choices[0]
    assert dumped(choice.message.tool_calls) == CALLS
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None, "an answer of only tool calls has null content"
    assert "content.delta" not in kinds
    assert kinds.count("tool_calls.function.arguments.done") == 2
    assert seeing.requests[0].json["tools"] == TOOLS


async def test_raw_sse_interleaved_tool_call_chunks_are_openai_exact(ups: Ups) -> None:
    _, seeing = ups
    seeing.script(two_calls(interleave_tool_calls=True))
    body = {"model": "seeing", "messages": ASK, "tools": TOOLS, "stream": True}
    async with gateway(config_text(*ups), MemoryHealthStore()) as url:
        status, headers, text = await raw(url, body)
    assert status == 200, text
    assert headers["x-providerhub-provider"] == "seeing"
    deltas, chunks = chunk_deltas(text)
    weather, time = pieces(WEATHER[1]), pieces(TIME[1])
    rounds = [
        delta
        for pair in zip(weather, time, strict=True)
        for delta in (fragment(0, pair[0]), fragment(1, pair[1]))
    ]
    assert deltas == [
        {"role": "assistant", "content": None},
        opening(0),
        opening(1),
        *rounds,
        {},
    ]
    assert [chunk["choices"][0]["finish_reason"] for chunk in chunks] == [None] * (
        len(chunks) - 1
    ) + ["tool_calls"]
    assert not any("usage" in chunk for chunk in chunks), "usage only when asked"


async def test_raw_sse_sequential_tool_call_chunks(ups: Ups) -> None:
    """Without interleaving, a call's fragments that arrive in one read may be joined (the
    parser merges neighbours of a batch): each call opens with its exact first delta, then
    argument-only fragments of its own index that join to its arguments."""
    _, seeing = ups
    seeing.script(two_calls())
    body = {"model": "seeing", "messages": ASK, "tools": TOOLS, "stream": True}
    async with gateway(config_text(*ups), MemoryHealthStore()) as url:
        status, _, text = await raw(url, body)
    assert status == 200, text
    deltas, chunks = chunk_deltas(text)
    assert deltas[0] == {"role": "assistant", "content": None}
    assert deltas[-1] == {} and chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    calls = deltas[1:-1]
    assert calls[0] == opening(0)
    second = calls.index(opening(1))
    for index, run in ((0, calls[1:second]), (1, calls[second + 1 :])):
        assert run, "each call's arguments follow its first delta"
        for delta in run:
            (call,) = delta["tool_calls"]
            assert set(delta) == {"tool_calls"}
            assert set(call) == {"index", "function"} and call["index"] == index
            assert set(call["function"]) == {"arguments"} and call["function"]["arguments"]
        joined = "".join(delta["tool_calls"][0]["function"]["arguments"] for delta in run)
        assert joined == CALLS[index]["function"]["arguments"]


async def test_text_then_tool_call_streams_both(ups: Ups) -> None:
    _, seeing = ups
    seeing.script(Reply.tool_call(WEATHER, text="Let me check.", fragment=5))
    async with (
        sdk(ups) as (_, client),
        client.chat.completions.stream(model="seeing", messages=ASK, tools=TOOLS) as stream,
    ):
        final = await stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Let me check."
    assert dumped(message.tool_calls) == CALLS[:1]
    assert final.choices[0].finish_reason == "tool_calls"


# 2. Unstreamed tool calls -----------------------------------------------------------------------


async def test_sdk_unstreamed_tool_calls(ups: Ups) -> None:
    _, seeing = ups
    seeing.script(two_calls())
    async with sdk(ups) as (_, client):
        answer = await client.chat.completions.with_raw_response.create(
            model="seeing", messages=ASK, tools=TOOLS
        )
    completion = answer.parse()
    choice = completion.choices[0]
    assert dumped(choice.message.tool_calls) == CALLS
    assert choice.message.content is None
    assert choice.finish_reason == "tool_calls"
    assert completion.usage is not None
    assert completion.usage.model_dump(exclude_none=True) == USAGE, "usage, though not asked"
    assert answer.headers["x-providerhub-provider"] == "seeing"


# 3. Multi-turn history and pass-through ---------------------------------------------------------


async def test_history_with_tool_results_reaches_the_upstream_exactly(ups: Ups) -> None:
    _, seeing = ups
    seeing.script(two_calls(), Reply.text("18 °C and sunny; it is 14:05.", usage=USAGE))
    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
                "additionalProperties": False,
            },
        },
    }
    choice = {"type": "function", "function": {"name": "get_weather"}}
    async with sdk(ups) as (_, client):
        first = await client.chat.completions.create(model="seeing", messages=ASK, tools=TOOLS)
        calls = first.choices[0].message.tool_calls
        assert calls is not None
        history: list[ChatCompletionMessageParam] = [
            *ASK,
            {"role": "assistant", "content": None, "tool_calls": dumped(calls)},  # type: ignore[typeddict-item]
            {"role": "tool", "tool_call_id": "call_0", "content": '{"celsius": 18}'},
            {"role": "tool", "tool_call_id": "call_1", "content": '{"time": "14:05"}'},
        ]
        final = await client.chat.completions.create(
            model="seeing",
            messages=history,
            tools=TOOLS,
            tool_choice=choice,  # type: ignore[arg-type]
            parallel_tool_calls=False,
            response_format=schema,  # type: ignore[arg-type]
            temperature=0.0,
        )
    assert final.choices[0].message.content == "18 °C and sunny; it is 14:05."
    assert final.choices[0].finish_reason == "stop"
    sent = seeing.requests[-1].json
    assert sent["messages"] == history
    assert sent["messages"][1]["content"] is None
    assert sent["tools"] == TOOLS
    assert sent["tool_choice"] == choice
    assert sent["parallel_tool_calls"] is False
    assert sent["response_format"] == schema
    assert sent["temperature"] == 0.0
    assert sent["model"] == "seeing-model"
    assert (sent["stream"], sent["stream_options"]) == (True, {"include_usage": True})


async def test_sdk_assistant_message_sent_back_as_dumped(ups: Ups) -> None:
    """The agent-loop idiom: `message.model_dump(exclude_none=True)` goes back in the history."""
    _, seeing = ups
    seeing.script(two_calls(), Reply.text("done"))
    async with sdk(ups) as (_, client):
        first = await client.chat.completions.create(model="seeing", messages=ASK, tools=TOOLS)
        message = first.choices[0].message.model_dump(exclude_none=True)
        history: list[Any] = [
            *ASK,
            message,
            {"role": "tool", "tool_call_id": "call_0", "content": "18"},
            {"role": "tool", "tool_call_id": "call_1", "content": "14:05"},
        ]
        final = await client.chat.completions.create(model="seeing", messages=history, tools=TOOLS)
    assert final.choices[0].message.content == "done"
    assert message == {"role": "assistant", "tool_calls": CALLS}
    assert seeing.requests[-1].json["messages"] == history


# 4. Content parts and the vision capability -----------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True])
async def test_content_parts_pass_through_exactly(ups: Ups, streamed: bool) -> None:
    _, seeing = ups
    seeing.script(Reply.text("A pixel."))
    async with sdk(ups) as (_, client):
        if streamed:
            stream = await client.chat.completions.create(
                model="seeing", messages=PARTS, stream=True
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        else:
            answer = await client.chat.completions.create(model="seeing", messages=PARTS)
            text = answer.choices[0].message.content or ""
    assert text == "A pixel."
    assert seeing.requests[0].json["messages"] == PARTS


@pytest.mark.parametrize("model", ["blind", "blinds", "blinds/other"])
@pytest.mark.parametrize("streamed", [False, True])
async def test_images_to_a_target_without_vision_is_400_before_io(
    ups: Ups, model: str, streamed: bool
) -> None:
    blind, seeing = ups
    async with sdk(ups) as (_, client):
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(model=model, messages=PARTS, stream=streamed)
    error = refused.value
    assert error.status_code == 400
    body = error.body
    assert isinstance(body, dict)
    assert body["type"] == "invalid_request_error"
    assert body["code"] == "unsupported_capability"
    assert body["param"] == "messages"
    who = "provider 'blind' does not" if model == "blind" else "no provider of 'blinds'"
    verb = "support" if model == "blind" else "supports"
    assert body["message"] == f"model {model!r}: {who} {verb} vision, which the request uses"
    assert set(body) == {"message", "type", "param", "code"}
    assert blind.requests == seeing.requests == []


HISTORY: list[Any] = [
    *ASK,
    {"role": "assistant", "content": None, "tool_calls": CALLS[:1]},
    {"role": "tool", "tool_call_id": "call_0", "content": "18"},
]


@pytest.mark.parametrize(
    ("messages", "extra", "param", "lacking"),
    [
        (ASK, {"tools": TOOLS}, "tools", "tools"),
        (ASK, {"tool_choice": "none"}, "tool_choice", "tools"),
        (HISTORY, {}, "messages", "tools"),
        (ASK, {"response_format": {"type": "json_object"}}, "response_format", "response_format"),
        (PARTS, {"tools": TOOLS}, "tools", "tools, vision, audio"),
    ],
)
async def test_each_capability_refusal_names_the_field(
    ups: Ups, messages: Any, extra: dict[str, Any], param: str, lacking: str
) -> None:
    """CodeLinkAva declares no capability: whatever the request needs beyond text is refused."""
    async with gateway(config_text(*ups), MemoryHealthStore()) as url:
        status, _, text = await raw(url, {"model": "CodeLinkAva", "messages": messages, **extra})
    assert status == 400
    assert json.loads(text) == {
        "error": {
            "message": f"model 'CodeLinkAva': provider 'CodeLinkAva' does not support {lacking}, "
            "which the request uses",
            "type": "invalid_request_error",
            "param": param,
            "code": "unsupported_capability",
        }
    }
    assert ups[0].requests == ups[1].requests == []


async def test_a_chain_skips_the_member_without_vision(
    ups: Ups, caplog: pytest.LogCaptureFixture
) -> None:
    blind, seeing = ups
    seeing.script(Reply.text("A pixel."), Reply.text("A pixel, streamed."))
    blind.script(Reply.text("plain"))
    caplog.set_level(logging.INFO, logger="providerhub.routing")
    async with sdk(ups) as (_, client):
        answer = await client.chat.completions.with_raw_response.create(
            model="vision", messages=PARTS
        )
        async with client.chat.completions.stream(model="vision", messages=PARTS) as stream:
            streamed = await stream.get_final_completion()
        plain = await client.chat.completions.with_raw_response.create(model="vision", messages=ASK)
    assert answer.parse().choices[0].message.content == "A pixel."
    assert streamed.choices[0].message.content == "A pixel, streamed."
    assert answer.headers["x-providerhub-provider"] == "seeing"
    assert answer.headers["x-providerhub-route"] == "vision > seeing"
    assert [request.json["messages"] for request in seeing.requests] == [PARTS, PARTS]
    assert len(blind.requests) == 1, "only the text request reached the member without vision"
    assert plain.headers["x-providerhub-route"] == "vision > blind"
    skips = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert skips == ["vision: blind: skipped (does not support vision)"] * 2


# 5. Usage ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("asked", [False, True])
async def test_usage_json_always_streamed_only_when_asked(ups: Ups, asked: bool) -> None:
    _, seeing = ups
    seeing.script(two_calls(), two_calls(), Reply.text("hi", usage=USAGE))
    options: Any = {"stream_options": {"include_usage": True}} if asked else {}
    async with sdk(ups) as (url, client):
        async with client.chat.completions.stream(
            model="seeing", messages=ASK, tools=TOOLS, **options
        ) as stream:
            final = await stream.get_final_completion()
        body = {"model": "seeing", "messages": ASK, "tools": TOOLS, "stream": True, **options}
        status, _, text = await raw(url, body)
        whole = await client.chat.completions.create(model="seeing", messages=ASK, **options)
    assert dumped(final.choices[0].message.tool_calls) == CALLS
    if asked:
        assert final.usage is not None and final.usage.model_dump(exclude_none=True) == USAGE
    else:
        assert final.usage is None
    assert status == 200
    _, chunks = chunk_deltas(text)
    usage_chunks = [chunk for chunk in chunks if "usage" in chunk]
    assert usage_chunks == ([chunks[-1]] if asked else [])
    if asked:
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == USAGE
    assert whole.usage is not None and whole.usage.model_dump(exclude_none=True) == USAGE
    assert all(r.json["stream_options"] == {"include_usage": True} for r in seeing.requests)


# 6. Refusal and logprobs ------------------------------------------------------------------------

REFUSAL = "I can't help with that request."


async def test_refusal_streamed_and_unstreamed(ups: Ups) -> None:
    _, seeing = ups
    seeing.script(
        Reply.refusal_text(REFUSAL), Reply.refusal_text(REFUSAL), Reply.refusal_text(REFUSAL)
    )
    async with sdk(ups) as (url, client):
        async with client.chat.completions.stream(model="seeing", messages=ASK) as stream:
            kinds = [event.type async for event in stream]
            streamed = await stream.get_final_completion()
        whole = await client.chat.completions.create(model="seeing", messages=ASK)
        status, _, text = await raw(url, {"model": "seeing", "messages": ASK, "stream": True})
    assert status == 200
    assert streamed.choices[0].message.refusal == REFUSAL
    assert streamed.choices[0].message.content is None
    assert "refusal.done" in kinds and "content.delta" not in kinds
    assert whole.choices[0].message.refusal == REFUSAL
    assert whole.choices[0].message.content is None
    deltas, _ = chunk_deltas(text)
    assert deltas[0] == {"role": "assistant", "content": None}
    refusals = [delta["refusal"] for delta in deltas[1:-1]]
    assert "".join(refusals) == REFUSAL
    assert all(set(delta) == {"refusal"} for delta in deltas[1:-1])


async def test_logprobs_streamed_and_unstreamed(ups: Ups) -> None:
    _, seeing = ups
    seeing.script(*[Reply.text("Hel", "lo", logprobs=True, delay=0.01)] * 3)
    expected = [
        {"token": token, "logprob": -0.5, "bytes": list(token.encode()), "top_logprobs": []}
        for token in ("Hel", "lo")
    ]
    async with sdk(ups) as (url, client):
        async with client.chat.completions.stream(
            model="seeing", messages=ASK, logprobs=True, top_logprobs=0
        ) as stream:
            streamed = await stream.get_final_completion()
        whole = await client.chat.completions.with_raw_response.create(
            model="seeing", messages=ASK, logprobs=True
        )
        status, _, text = await raw(
            url, {"model": "seeing", "messages": ASK, "stream": True, "logprobs": True}
        )
    assert status == 200
    assert streamed.choices[0].message.content == "Hello"
    logprobs = streamed.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert [item.model_dump() for item in logprobs.content] == expected
    assert json.loads(whole.text)["choices"][0]["logprobs"] == {"content": expected}
    assert seeing.requests[0].json["logprobs"] is True
    assert seeing.requests[0].json["top_logprobs"] == 0
    _, chunks = chunk_deltas(text)
    sent = [
        item
        for c in chunks
        if c["choices"]
        for item in (c["choices"][0].get("logprobs") or {}).get("content", [])
    ]
    assert sent == expected


# 7. Tool-call answers are health successes ------------------------------------------------------


@pytest.mark.parametrize("store", ["memory", "default"])
async def test_tool_call_answers_never_open_the_circuit(
    ups: Ups, store: str, fresh_health: None, caplog: pytest.LogCaptureFixture
) -> None:
    blind, seeing = ups
    rounds = 8
    health = MemoryHealthStore(failure_threshold=1) if store == "memory" else None
    replies = [two_calls(interleave_tool_calls=bool(n % 2)) for n in range(2 * rounds)]
    blind.script(*replies, Reply.text("plain answer"))
    caplog.set_level(logging.INFO, logger="providerhub.routing")
    async with (
        gateway(config_text(*ups), health) as url,
        openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=KEY) as client,  # default retries
    ):
        for _ in range(rounds):
            answer = await client.chat.completions.with_raw_response.create(
                model="vision", messages=ASK, tools=TOOLS
            )
            assert answer.headers["x-providerhub-provider"] == "blind"
            assert dumped(answer.parse().choices[0].message.tool_calls) == CALLS
            async with client.chat.completions.stream(
                model="vision", messages=ASK, tools=TOOLS
            ) as stream:
                final = await stream.get_final_completion()
            assert dumped(final.choices[0].message.tool_calls) == CALLS
        plain = await client.chat.completions.with_raw_response.create(model="vision", messages=ASK)
    assert plain.headers["x-providerhub-route"] == "vision > blind"
    assert plain.parse().choices[0].message.content == "plain answer"
    assert len(blind.requests) == 2 * rounds + 1
    assert seeing.requests == []
    lines = [record.getMessage() for record in caplog.records]
    assert not [line for line in lines if "skipped" in line or "failed" in line]
    assert sum("vision: blind: served" in line for line in lines) == 2 * rounds + 1
    used = health if health is not None else default_health_store()
    assert isinstance(used.admit_now("blind"), Ticket)


async def test_tool_calls_with_scripted_ids_and_no_finish_reason(ups: Ups) -> None:
    """An upstream that reports no finish_reason: the gateway says "tool_calls" itself."""
    _, seeing = ups
    script = ToolCallScript("get_weather", WEATHER[1], id="call_abc")
    seeing.script(
        Reply.tool_call(script, finish_reason=None), Reply.tool_call(script, finish_reason=None)
    )
    async with sdk(ups) as (_, client):
        async with client.chat.completions.stream(model="seeing", messages=ASK, tools=TOOLS) as s:
            streamed = await s.get_final_completion()
        whole = await client.chat.completions.create(model="seeing", messages=ASK, tools=TOOLS)
    for completion in (streamed, whole):
        choice = completion.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert dumped(choice.message.tool_calls) == [{**CALLS[0], "id": "call_abc"}]


# Structured outputs and strict tools parsed by the SDK's own helpers ------------------------------


class Answer(BaseModel):
    city: str
    celsius: int


class GetWeather(BaseModel):
    """The current weather in a city."""

    city: str
    unit: str


async def test_sdk_parse_helpers_read_structured_output_and_strict_tools(ups: Ups) -> None:
    _, seeing = ups
    document = '{"city": "Paris", "celsius": 18}'
    seeing.script(
        Reply.text(document[:10], document[10:]),
        Reply.text(document[:10], document[10:], delay=0.01),
        Reply.tool_call(WEATHER, fragment=4, usage=USAGE),
        Reply.tool_call(WEATHER, fragment=4, interleave_tool_calls=True),
    )
    tool = openai.pydantic_function_tool(GetWeather, name="get_weather")
    async with sdk(ups) as (_, client):
        parsed = await client.chat.completions.parse(
            model="seeing", messages=ASK, response_format=Answer
        )
        async with client.chat.completions.stream(
            model="seeing", messages=ASK, response_format=Answer
        ) as stream:
            streamed = await stream.get_final_completion()
        called = await client.chat.completions.parse(model="seeing", messages=ASK, tools=[tool])
        async with client.chat.completions.stream(
            model="seeing", messages=ASK, tools=[tool]
        ) as stream:
            streamed_call = await stream.get_final_completion()
    assert parsed.choices[0].message.parsed == Answer(city="Paris", celsius=18)
    assert streamed.choices[0].message.parsed == Answer(city="Paris", celsius=18)
    for completion in (called, streamed_call):
        (call,) = completion.choices[0].message.tool_calls or []
        assert call.function.parsed_arguments == GetWeather(city="Paris", unit="celsius")
        assert (call.id, call.function.name) == ("call_0", "get_weather")
    schema = seeing.requests[0].json["response_format"]
    assert schema["type"] == "json_schema" and schema["json_schema"]["name"] == "Answer"
    assert seeing.requests[2].json["tools"] == [tool]


# Upstreams that repeat a call's id and name in every delta ----------------------------------------


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return {
        "id": "up",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [choice],
    }


def repeated(index: int, arguments: str) -> dict[str, Any]:
    """A delta carrying the call's id and name again, as some servers send every delta."""
    call = CALLS[index]
    function = {"name": call["function"]["name"], "arguments": arguments}
    return chunk(
        {
            "tool_calls": [
                {"index": index, "id": call["id"], "type": "function", "function": function}
            ]
        }
    )


async def through_sdk_and_raw(ups: Ups, script: list[Any]) -> tuple[Any, int, str]:
    """`script` streamed twice through the gateway: the SDK's final completion of the first,
    then the status and raw SSE body of the second."""
    ups[1].script(Reply.events(*script, delay=0.005), Reply.events(*script))
    async with sdk(ups) as (url, client):
        async with client.chat.completions.stream(model="seeing", messages=ASK, tools=TOOLS) as s:
            final = await s.get_final_completion()
        status, _, text = await raw(
            url, {"model": "seeing", "messages": ASK, "tools": TOOLS, "stream": True}
        )
    return final, status, text


async def test_ids_and_names_repeated_by_the_upstream_are_sent_once(ups: Ups) -> None:
    script = [
        chunk({"role": "assistant", "content": None}),
        *(repeated(0, piece) for piece in pieces(WEATHER[1], 12)),
        *(repeated(1, piece) for piece in pieces(TIME[1], 12)),
        chunk({}, "tool_calls"),
        "[DONE]",
    ]
    final, status, text = await through_sdk_and_raw(ups, script)
    assert dumped(final.choices[0].message.tool_calls) == CALLS
    assert status == 200
    deltas, _ = chunk_deltas(text)
    calls = [delta["tool_calls"][0] for delta in deltas if "tool_calls" in delta]
    assert [call for call in calls if "id" in call] == [
        opening(0)["tool_calls"][0],
        opening(1)["tool_calls"][0],
    ]
    assert all(set(call) == {"index", "function"} for call in calls if "id" not in call)


async def test_a_name_sent_after_the_id_reaches_the_client_once(ups: Ups) -> None:
    begin = {"index": 0, "id": "call_0", "type": "function", "function": {"arguments": ""}}
    named = {"index": 0, "function": {"name": "get_weather", "arguments": WEATHER[1][:9]}}
    rest = {"index": 0, "function": {"arguments": WEATHER[1][9:]}}
    script = [
        chunk({"role": "assistant"}),
        *(chunk({"tool_calls": [delta]}) for delta in (begin, named, rest)),
        chunk({}, "tool_calls"),
        "[DONE]",
    ]
    final, status, text = await through_sdk_and_raw(ups, script)
    assert dumped(final.choices[0].message.tool_calls) == CALLS[:1]
    assert status == 200
    deltas, _ = chunk_deltas(text)
    calls = [delta["tool_calls"][0] for delta in deltas if "tool_calls" in delta]
    assert calls[0] == {**opening(0)["tool_calls"][0], "function": {"name": "", "arguments": ""}}
    assert [call["function"]["name"] for call in calls if "name" in call["function"]] == [
        "",
        "get_weather",
    ]
    assert "".join(call["function"].get("arguments", "") for call in calls) == WEATHER[1]


async def test_sdk_separates_calls_an_upstream_sends_without_index(ups: Ups) -> None:
    _, seeing = ups
    script = [
        chunk({"tool_calls": [{"id": "call_a", "function": {"name": "f", "arguments": ""}}]}),
        chunk({"tool_calls": [{"function": {"arguments": '{"a": 1}'}}]}),
        chunk({"tool_calls": [{"id": "call_b", "function": {"name": "g", "arguments": "{}"}}]}),
        chunk({}, "tool_calls"),
        "[DONE]",
    ]
    seeing.script(Reply.events(*script, delay=0.002))
    async with (
        sdk(ups) as (_, client),
        client.chat.completions.stream(model="seeing", messages=ASK, tools=TOOLS) as stream,
    ):
        final = await stream.get_final_completion()
    assert dumped(final.choices[0].message.tool_calls) == [
        {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
        {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
    ]
