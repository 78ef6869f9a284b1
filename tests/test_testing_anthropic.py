"""FakeUpstream's Anthropic Messages format: the exact named events on a socket, the
non-streamed message, errors and every fault, and the official SDK reading them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import anthropic
import pytest
from helpers import MakeUpstream, until
from providerhub.testing import Reply, ToolCallScript

BODY = {"model": "claude-x", "max_tokens": 10, "messages": [], "stream": True}
USAGE = {
    "input_tokens": 12,
    "cache_creation_input_tokens": 3,
    "cache_read_input_tokens": 4,
    "output_tokens": 7,
}
HELLO = (
    "event: message_start\n"
    'data: {"type":"message_start","message":{"id":"msg_fake","type":"message",'
    '"role":"assistant","model":"claude-x","content":[],"stop_reason":null,'
    '"stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":3,'
    '"cache_read_input_tokens":4,"output_tokens":1}}}\n\n'
    "event: content_block_start\n"
    'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'
    "\n\n"
    'event: ping\ndata: {"type":"ping"}\n\n'
    "event: content_block_delta\n"
    'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}'
    "\n\n"
    "event: content_block_delta\n"
    'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}'
    "\n\n"
    'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    "event: message_delta\n"
    'data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    '"usage":{"output_tokens":7}}\n\n'
    'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


def sse(data: dict[str, Any]) -> str:
    """One event as Anthropic sends it: named by its type, compact JSON."""
    return f"event: {data['type']}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def events(wire: bytes) -> list[dict[str, Any]]:
    """The data of each event, checked to be named by its type."""
    out = []
    for frame in wire.decode().split("\n\n")[:-1]:
        name, data = frame.split("\n")
        parsed = json.loads(data.removeprefix("data: "))
        assert name == f"event: {parsed['type']}"
        out.append(parsed)
    return out


def delta(index: int, **fields: str) -> dict[str, Any]:
    kind = "text_delta" if "text" in fields else "input_json_delta"
    return {"type": "content_block_delta", "index": index, "delta": {"type": kind, **fields}}


def block(index: int, **content: Any) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": content}


def stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_delta(reason: str | None, output: int = 0, sequence: str | None = None) -> Any:
    fields = {"stop_reason": reason, "stop_sequence": sequence}
    return {"type": "message_delta", "delta": fields, "usage": {"output_tokens": output}}


PING = {"type": "ping"}
MESSAGE_STOP = {"type": "message_stop"}


async def post(url: str, body: dict[str, Any] = BODY) -> tuple[int, bytes, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/messages", json=body) as response,
    ):
        return response.status, await response.read(), dict(response.headers)


async def test_text_stream_exact_bytes_on_any_path(fake_upstream: MakeUpstream) -> None:
    reply = Reply.text("Hel", "lo", usage=USAGE)
    upstream = await fake_upstream(reply, wire="anthropic")
    status, wire, headers = await post(upstream.url)
    assert (status, wire.decode(), headers["Content-Type"]) == (200, HELLO, "text/event-stream")
    assert reply.wire(BODY, "anthropic") == wire
    assert (upstream.requests[0].path, upstream.requests[0].json) == ("/v1/messages", BODY)


async def test_stop_reasons(fake_upstream: MakeUpstream) -> None:
    cases = [
        (Reply.text("a", finish_reason="length"), message_delta("max_tokens")),
        (
            Reply.text("a", finish_reason="stop_sequence", stop_sequence="\n\nH:"),
            message_delta("stop_sequence", sequence="\n\nH:"),
        ),
        (Reply.text("a", finish_reason="end_turn"), message_delta("end_turn")),
        (Reply.text("a", finish_reason="refusal"), message_delta("refusal")),
        (Reply.empty(), message_delta(None)),
    ]
    upstream = await fake_upstream(*(reply for reply, _ in cases), wire="anthropic")
    for _, expected in cases:
        assert events((await post(upstream.url))[1])[-2] == expected
    refused = Reply.refusal_text("I can't.", argument_fragment=5).wire(BODY, "anthropic")
    assert events(refused)[1:] == [
        block(0, type="text", text=""),
        PING,
        delta(0, text="I can"),
        delta(0, text="'t."),
        stop(0),
        message_delta("refusal"),
        MESSAGE_STOP,
    ]
    assert events(Reply.empty().wire(BODY, "anthropic"))[1:] == [message_delta(None), MESSAGE_STOP]


TOOLS = (ToolCallScript("get_weather", '{"city": "Paris"}', id="toolu_a"), ("now", "{}"))
TOOL_A = {"type": "tool_use", "id": "toolu_a", "name": "get_weather"}
TOOL_B = {"type": "tool_use", "id": "toolu_1", "name": "now"}


def test_tool_use_blocks_with_arguments_in_fragments() -> None:
    wire = Reply.tool_call(*TOOLS, text="Checking.", fragment=6).wire(BODY, "anthropic")
    assert events(wire)[1:] == [
        block(0, type="text", text=""),
        PING,
        delta(0, text="Checking."),
        stop(0),
        block(1, **TOOL_A, input={}),
        delta(1, partial_json='{"city'),
        delta(1, partial_json='": "Pa'),
        delta(1, partial_json='ris"}'),
        stop(1),
        block(2, **TOOL_B, input={}),
        delta(2, partial_json="{}"),
        stop(2),
        message_delta("tool_use"),
        MESSAGE_STOP,
    ]


async def test_non_streamed_message(fake_upstream: MakeUpstream) -> None:
    reply = Reply.tool_call(*TOOLS, text="Checking.", usage=USAGE)
    upstream = await fake_upstream(reply, reply, wire="anthropic")
    for body in ({"model": "claude-x", "messages": []}, {**BODY, "stream": False}):
        status, answer, headers = await post(upstream.url, body)
        assert (status, headers["Content-Type"]) == (200, "application/json")
        assert json.loads(answer) == {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": [
                {"type": "text", "text": "Checking."},
                {**TOOL_A, "input": {"city": "Paris"}},
                {**TOOL_B, "input": {}},
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": USAGE,
        }


OPENING = sse(
    {
        "type": "message_start",
        "message": {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        },
    }
)
TEXT = sse(block(0, type="text", text="")) + sse(PING)
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


async def test_http_errors_and_the_error_event(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(
        Reply.error(529, "Overloaded"),
        Reply.error(429, "slow down", retry_after="7"),
        Reply.error(400, body="plain", headers={"request-id": "req_1"}),
        Reply.error_after_chunks("Hel"),
        Reply.error_after_chunks(message="busy", error_type="api_error"),
        wire="anthropic",
    )
    status, body, _ = await post(upstream.url)
    assert (status, body) == (529, json.dumps(OVERLOADED, separators=(",", ":")).encode())
    status, body, headers = await post(upstream.url)
    rate_limited = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    assert (status, json.loads(body), headers["Retry-After"]) == (429, rate_limited, "7")
    status, body, headers = await post(upstream.url)
    assert (status, body, headers["request-id"]) == (400, b"plain", "req_1")
    wire = (await post(upstream.url))[1].decode()
    assert wire == OPENING + TEXT + sse(delta(0, text="Hel")) + sse(OVERLOADED)
    busy = {"type": "error", "error": {"type": "api_error", "message": "busy"}}
    assert (await post(upstream.url))[1].decode() == OPENING + sse(busy)


async def read_until_cut(url: str) -> bytes:
    """What arrives before the connection drops."""
    seen = b""
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/messages", json=BODY) as response,
    ):
        with pytest.raises(aiohttp.ClientPayloadError):
            while chunk := await response.content.readany():
                seen += chunk
    return seen


async def read_until(url: str, expected: bytes) -> bytes:
    """Read a stalled stream until `expected` has arrived, then leave."""
    seen = b""
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/messages", json=BODY) as response,
    ):
        async with asyncio.timeout(5):
            while expected not in seen:
                seen += await response.content.readany()
    return seen


HEL = sse(delta(0, text="Hel"))
TAIL = sse(stop(0)) + sse(message_delta("end_turn")) + sse(MESSAGE_STOP)


async def test_split_line_endings_malformed_and_raw(fake_upstream: MakeUpstream) -> None:
    hello = Reply.text("Hel", "lo", usage=USAGE)
    upstream = await fake_upstream(
        Reply.text("Hel", "lo", usage=USAGE, split=3, line_ending="\r\n"),
        Reply.malformed_after_chunks("Hel"),
        Reply.text("Hel", "lo", malformed_after=1),
        Reply.raw_bytes(b"event: x\r\rdata: y\r\r", split=2),
        wire="anthropic",
    )
    crlf = hello.wire(BODY, "anthropic").decode().replace("\n", "\r\n")
    assert (await post(upstream.url))[1] == crlf.encode()
    assert (await post(upstream.url))[1].decode() == (
        OPENING + TEXT + HEL + "data: {not json\n\n" + TAIL
    )
    truncated = 'data: {"type":"content_block_delta","index"\n\n'
    assert (await post(upstream.url))[1].decode() == (
        OPENING + TEXT + HEL + truncated + sse(delta(0, text="lo")) + TAIL
    )
    assert (await post(upstream.url))[1] == b"event: x\r\rdata: y\r\r"


async def test_keepalive_done_and_after_done(fake_upstream: MakeUpstream) -> None:
    reply = Reply.text("a", keepalive=True, done=False, after_done=('{"type":"late"}',))
    upstream = await fake_upstream(reply, wire="anthropic")
    ping = sse(PING)
    assert (await post(upstream.url))[1].decode() == "".join(
        ping + event
        for event in (
            OPENING,
            sse(block(0, type="text", text="")),
            sse(PING),
            sse(delta(0, text="a")),
            sse(stop(0)),
            sse(message_delta("end_turn")),
            sse({"type": "late"}),
        )
    )


async def test_cut_hang_and_trickle(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(
        Reply.close_after_chunks("Hel", "lo"),
        Reply.hang_after_chunks("Hel"),
        Reply.keepalive_trickle(0.01),
        wire="anthropic",
    )
    assert (await read_until_cut(upstream.url)).decode() == (
        OPENING + TEXT + HEL + sse(delta(0, text="lo"))
    )
    assert await read_until(upstream.url, HEL.encode()) == (OPENING + TEXT + HEL).encode()
    trickle = await read_until(upstream.url, (sse(PING) * 2).encode())
    assert trickle.decode().startswith(OPENING + sse(PING) + sse(PING))
    assert set(trickle.decode().removeprefix(OPENING).split("\n\n")) == {sse(PING)[:-2], ""}
    await until(lambda: upstream.disconnects == 2 and upstream.active == 0)


async def test_the_sdk_reads_the_scripted_answers(fake_upstream: MakeUpstream) -> None:
    tools = Reply.tool_call(*TOOLS, text="Checking.", fragment=3, usage=USAGE)
    upstream = await fake_upstream(
        tools,
        tools,
        Reply.error_after_chunks("Hel"),
        Reply.error(529, "Overloaded"),
        wire="anthropic",
    )
    async with anthropic.AsyncAnthropic(
        base_url=upstream.url, api_key="k", max_retries=0
    ) as client:
        request: Any = {"model": "claude-x", "max_tokens": 10, "messages": []}
        async with client.messages.stream(**request) as stream:
            streamed = await stream.get_final_message()
        whole = await client.messages.create(**request)
        for message in (streamed, whole):
            assert [block.model_dump(exclude_none=True) for block in message.content] == [
                {"type": "text", "text": "Checking."},
                {**TOOL_A, "input": {"city": "Paris"}},
                {**TOOL_B, "input": {}},
            ]
            assert (message.stop_reason, message.usage.output_tokens) == ("tool_use", 7)
            assert message.usage.cache_read_input_tokens == 4
        with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
            async with client.messages.stream(**request) as stream:
                await stream.get_final_message()
        with pytest.raises(anthropic.APIStatusError, match="Overloaded") as error:
            await client.messages.create(**request)
        assert error.value.status_code == 529
    assert {request.path for request in upstream.requests} == {"/v1/messages"}
