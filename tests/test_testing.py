"""FakeUpstream and Reply: the scripted loopback server tests and plugin authors rely on."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from helpers import until
from providerhub.sse import SSEDecoder
from providerhub.testing import FakeUpstream, Reply, serve_in_thread

MakeUpstream = Callable[..., Awaitable[FakeUpstream]]
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def datas(wire: bytes) -> list[str]:
    decoder = SSEDecoder()
    return [event.data for event in decoder.feed(wire) + decoder.flush()]


def contents(wire: bytes) -> list[str | None]:
    out = []
    for data in datas(wire):
        if data != "[DONE]":
            out.append(json.loads(data)["choices"][0]["delta"].get("content"))
    return out


async def post(
    url: str, body: Any = BODY, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers) as response,
    ):
        return response.status, await response.read()


def test_wire_renders_the_stream() -> None:
    wire = Reply.text("a", "b").wire()
    assert contents(wire) == [None, "a", "b", None]
    assert datas(wire)[-1] == "[DONE]"
    first = json.loads(datas(wire)[0])
    assert first["object"] == "chat.completion.chunk"
    assert first["choices"][0]["delta"] == {"role": "assistant"}
    assert json.loads(datas(wire)[-2])["choices"][0]["finish_reason"] == "stop"


def test_wire_options() -> None:
    assert datas(Reply.text("a", done=False).wire())[-1] != "[DONE]"
    assert datas(Reply.text("a", after_done=("late",)).wire())[-2:] == ["[DONE]", "late"]
    crlf = Reply.text("a", line_ending="\r\n", keepalive=True).wire()
    assert b"\r\n\r\n" in crlf and b"\n\n" not in crlf.replace(b"\r\n", b"")
    assert crlf.count(b": keep-alive") == 4
    assert Reply.raw_bytes(b"data: x\n\n").wire() == b"data: x\n\n"
    with pytest.raises(ValueError, match="a keep-alive trickle has no end"):
        Reply.keepalive_trickle().wire()


def test_fault_constructors_take_options() -> None:
    reply = Reply.close_after_chunks("a", split=4, line_ending="\r")
    assert (reply.close_after, reply.split, reply.line_ending) == (1, 4, "\r")
    assert Reply.hang_after_chunks("a", "b", delay=0.1).hang_after == 2
    assert Reply.malformed_after_chunks(keepalive=True).malformed_after == 0


async def test_records_requests_and_follows_the_script(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(Reply.text("x"), Reply.error(418, "teapot"))
    status, body = await post(upstream.url + "/v1/chat/completions", headers={"X-Test": "1"})
    assert status == 200 and contents(body) == [None, "x", None]
    status, body = await post(upstream.url + "/api/chat")
    assert status == 418
    assert json.loads(body)["error"]["message"] == "teapot"
    status, body = await post(upstream.url + "/chat/completions")
    assert status == 500 and b"FakeUpstream: script exhausted" in body
    first = upstream.requests[0]
    assert (first.method, first.path, first.json) == ("POST", "/v1/chat/completions", BODY)
    assert first.headers["X-Test"] == "1"
    assert json.loads(first.body) == BODY
    assert [r.path for r in upstream.requests[1:]] == ["/api/chat", "/chat/completions"]


async def test_default_reply_and_late_script(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(default=Reply.text("d"))
    upstream.script(Reply.text("s"))
    bodies = [(await post(upstream.url + "/api/chat"))[1] for _ in range(3)]
    assert [contents(body)[1] for body in bodies] == ["s", "d", "d"]


async def test_non_streaming_completion_and_usage(fake_upstream: MakeUpstream) -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    upstream = await fake_upstream(default=Reply.text("a", "b", usage=usage))
    _, body = await post(upstream.url + "/api/chat", {**BODY, "stream": False})
    completion = json.loads(body)
    assert completion["choices"][0]["message"] == {"role": "assistant", "content": "ab"}
    assert completion["usage"] == usage
    options = {**BODY, "stream_options": {"include_usage": True}}
    _, body = await post(upstream.url + "/api/chat", options)
    assert json.loads(datas(body)[-2])["usage"] == usage


async def test_models(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream()
    async with aiohttp.ClientSession() as session, session.get(upstream.url + "/v1/models") as r:
        assert (await r.json())["data"][0]["id"] == "fake-model"


async def test_raw_bytes_are_sent_verbatim_in_split_pieces(fake_upstream: MakeUpstream) -> None:
    wire = b"\xef\xbb\xbfdata: one\r\n\r\n: c\rdata: two\r\r"
    upstream = await fake_upstream(Reply.raw_bytes(wire, split=3))
    assert (await post(upstream.url + "/api/chat"))[1] == wire


async def test_end_close_drops_the_connection(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(Reply.text("a", end="close"))
    with pytest.raises(aiohttp.ClientPayloadError):
        await post(upstream.url + "/api/chat")


async def test_end_hang_and_trickle_stall_until_the_client_leaves(
    fake_upstream: MakeUpstream,
) -> None:
    upstream = await fake_upstream(Reply.text("a", end="hang"), Reply.keepalive_trickle(0.01))
    for expected in (b"[DONE]", b": keep-alive\n\n: keep-alive"):
        async with (
            aiohttp.ClientSession() as session,
            session.post(upstream.url + "/api/chat", json=BODY) as response,
        ):
            seen = b""
            async with asyncio.timeout(5):
                while expected not in seen:
                    seen += await response.content.readany()
            assert b"content" not in seen or expected == b"[DONE]"
            assert upstream.active == 1
    await until(lambda: upstream.disconnects == 2 and upstream.active == 0)
    assert (upstream.disconnects, upstream.active) == (2, 0)


def test_serve_in_thread_for_sync_code() -> None:
    with serve_in_thread(Reply.text("sync")) as upstream:
        request = urllib.request.Request(
            upstream.url + "/api/chat",
            data=json.dumps(BODY).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert contents(response.read())[1] == "sync"
        assert upstream.requests[0].json == BODY
