"""FakeUpstream's NDJSON format (Ollama's /api/chat): exact lines on a socket, the
non-streamed object, errors and faults; and what every format shares: any path, one format
per upstream, options a format lacks refused."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from helpers import MakeUpstream
from providerhub.sse import SSEDecoder
from providerhub.testing import FakeUpstream, Reply, ToolCallScript

BODY = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}
AT = '"created_at":"2024-01-01T00:00:00Z"'
HELLO = (
    f'{{"model":"llama3.2",{AT},"message":{{"role":"assistant","content":"Hel"}},"done":false}}\n'
    f'{{"model":"llama3.2",{AT},"message":{{"role":"assistant","content":"lo"}},"done":false}}\n'
    f'{{"model":"llama3.2",{AT},"message":{{"role":"assistant","content":""}},"done":true,'
    '"done_reason":"stop","prompt_eval_count":3,"eval_count":2}\n'
)
COUNTS = {"prompt_eval_count": 3, "eval_count": 2}


async def post(
    url: str, body: dict[str, Any] = BODY, path: str = "/api/chat"
) -> tuple[int, bytes, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + path, json=body) as response,
    ):
        return response.status, await response.read(), dict(response.headers)


def line(content: str, **extra: Any) -> str:
    message = {"role": "assistant", "content": content, **extra}
    data = {"model": "llama3.2", "created_at": "2024-01-01T00:00:00Z", "message": message}
    return json.dumps({**data, "done": False}, separators=(",", ":")) + "\n"


async def test_stream_exact_lines(fake_upstream: MakeUpstream) -> None:
    reply = Reply.text("Hel", "lo", usage=COUNTS)
    upstream = await fake_upstream(reply, wire="ndjson")
    status, wire, headers = await post(upstream.url)
    assert (status, wire.decode(), headers["Content-Type"]) == (200, HELLO, "application/x-ndjson")
    assert reply.wire(BODY, "ndjson") == wire


async def test_tool_calls_whole_and_the_non_streamed_object(fake_upstream: MakeUpstream) -> None:
    calls = (ToolCallScript("get_weather", '{"city": "Paris"}', id="call_w"), ("now", ""))
    reply = Reply.tool_call(*calls, text="Checking.", usage=COUNTS)
    upstream = await fake_upstream(reply, reply, wire="ndjson")
    weather = {"id": "call_w", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    now = {"function": {"name": "now", "arguments": {}}}
    lines = (await post(upstream.url))[1].decode().splitlines(keepends=True)
    assert lines[:3] == [
        line("Checking."),
        line("", tool_calls=[weather]),
        line("", tool_calls=[now]),
    ]
    assert json.loads(lines[3])["done_reason"] == "stop"
    status, whole, headers = await post(upstream.url, {**BODY, "stream": False})
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert json.loads(whole) == {
        "model": "llama3.2",
        "created_at": "2024-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": "Checking.", "tool_calls": [weather, now]},
        "done": True,
        "done_reason": "stop",
        **COUNTS,
    }


async def test_errors_and_faults(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(
        Reply.error(404, 'model "x" not found'),
        Reply.error_after_chunks("Hel", message="boom"),
        Reply.text("Hel", "lo", malformed_after=1, keepalive=True, line_ending="\r\n", split=5),
        Reply.text("Hel", finish_reason="length", done=False, after_done=('{"late":1}',)),
        wire="ndjson",
    )
    assert (await post(upstream.url))[:2] == (404, b'{"error":"model \\"x\\" not found"}')
    assert (await post(upstream.url))[1].decode() == line("Hel") + '{"error":"boom"}\n'
    wire = (await post(upstream.url))[1].decode()
    done = HELLO.splitlines()[2].replace(',"prompt_eval_count":3,"eval_count":2', "")
    lines = [line("Hel"), '{"message":{"content"\n', line("lo"), done + "\n"]
    assert wire == "".join("\r\n" + text.replace("\n", "\r\n") for text in lines)
    assert (await post(upstream.url))[1].decode() == line("Hel") + '{"late":1}\n'


async def test_close_after_chunks(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(Reply.close_after_chunks("Hel"), wire="ndjson")
    seen = b""
    async with (
        aiohttp.ClientSession() as session,
        session.post(upstream.url + "/api/chat", json=BODY) as response,
    ):
        with pytest.raises(aiohttp.ClientPayloadError):
            while chunk := await response.content.readany():
                seen += chunk
    assert seen.decode() == line("Hel")


async def test_any_path_and_one_format_per_upstream(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(default=Reply.text("x"))
    for path in ("/v1/chat/completions", "/api/chat", "/v1/messages", "/deployments/a/chat"):
        status, wire, _ = await post(upstream.url, {"stream": True}, path)
        decoder = SSEDecoder()
        datas = [event.data for event in decoder.feed(wire) + decoder.flush()]
        deltas = [json.loads(data)["choices"][0]["delta"] for data in datas[:-1]]
        assert (status, deltas, datas[-1]) == (
            200,
            [{"role": "assistant"}, {"content": "x"}, {}],
            "[DONE]",
        )
    assert [request.path for request in upstream.requests][-1] == "/deployments/a/chat"
    with pytest.raises(ValueError, match="unknown wire format 'grpc'"):
        FakeUpstream(wire="grpc")  # type: ignore[arg-type]


async def test_options_a_format_lacks_are_refused(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(
        Reply.text("a", logprobs=True),
        Reply.tool_call(("f", "{}"), ("g", "{}"), interleave_tool_calls=True),
        Reply.events({"type": "message_start"}),
        wire="anthropic",
    )
    expected = [
        b"FakeUpstream: logprobs exists in the OpenAI format only, not anthropic",
        b"FakeUpstream: interleave_tool_calls exists in the OpenAI format only, not anthropic",
        b"FakeUpstream: scripted events are streamed only in the anthropic format",
    ]
    for body, message in zip(({"stream": True}, {"stream": True}, {}), expected, strict=True):
        assert (await post(upstream.url, body))[:2] == (500, message)
