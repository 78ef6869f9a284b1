"""Hostile request bodies: field names that are Python argument names, nesting deep enough to
exhaust the recursion limit, NaN and infinity, and bytes aiohttp's HTTP parser refuses. Each is
forwarded or refused with an OpenAI-shaped 400, and the gateway keeps serving afterwards."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from providerhub import FallbackChain, InvalidRequestError, MemoryHealthStore, Messages, Registry
from providerhub.provider import AsyncGeneratorProvider, open_stream
from providerhub.server import create_app, start
from providerhub.testing import FakeUpstream, Reply
from providerhub_openai import OpenAICompatible
from test_server import HELLO, config_text, gateway, post

Ups = tuple[FakeUpstream, FakeUpstream]
ARGUMENT_NAMES = ("self", "this", "cls", "provider", "func", "kwargs", "options", "params")


@pytest.fixture
async def ups(fake_upstream: Any) -> Ups:
    return await fake_upstream(), await fake_upstream()


def assert_error(text: str, message: str, param: str | None, code: str | None = None) -> None:
    """`text` is exactly an OpenAI error object of type invalid_request_error."""
    error = json.loads(text)
    assert list(error) == ["error"]
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"].startswith(message)
    assert (error["error"]["param"], error["error"]["code"]) == (param, code)


async def still_serves(url: str, upstream: FakeUpstream) -> None:
    """A normal request after the hostile one is answered."""
    upstream.script(Reply.text("still here"))
    status, _, text = await post(url, {"model": "quick", "messages": HELLO})
    assert status == 200, text
    assert json.loads(text)["choices"][0]["message"]["content"] == "still here"


# Field names that are Python argument names.


@pytest.mark.parametrize("stream", [False, True])
async def test_argument_names_as_fields_go_upstream(ups: Ups, stream: bool) -> None:
    a, b = ups
    a.script(Reply.text("ok"))
    fields = {name: index for index, name in enumerate(ARGUMENT_NAMES)}
    async with gateway(config_text(a, b)) as url:
        body = {"model": "quick", "messages": HELLO, "stream": stream, **fields}
        status, headers, text = await post(url, body)
        assert status == 200, text
        assert headers["x-providerhub-provider"] == "a"
        await still_serves(url, a)
    sent = a.requests[0].json
    assert {name: sent[name] for name in ARGUMENT_NAMES} == fields
    assert sent["model"] == "model-a"
    assert b.requests == []


class Unmarked(AsyncGeneratorProvider):
    """An implementation written without `/`: `self`, `model` and `messages` can be named."""

    working = True

    async def create_async_generator(
        self, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncIterator[str]:
        yield f"asked {sorted(kwargs)}"


async def test_a_field_clashing_with_an_implementation_argument_is_a_400(ups: Ups) -> None:
    a, b = ups
    async with gateway(config_text(a, b), extra=[Unmarked()]) as url:
        status, _, text = await post(url, {"model": "Unmarked", "messages": HELLO, "self": 1})
        assert status == 400
        assert_error(
            text,
            "all providers failed:\n  Unmarked: 'self' cannot be a request parameter",
            None,
            "upstream_rejected_request",
        )
        status, _, text = await post(url, {"model": "Unmarked", "messages": HELLO, "this": 1})
        assert status == 200
        assert json.loads(text)["choices"][0]["message"]["content"] == "asked ['this', 'timeout']"
        await still_serves(url, a)


async def test_library_calls_forward_argument_names_or_refuse_them(ups: Ups) -> None:
    a, _ = ups
    provider = OpenAICompatible(name="a", base_url=a.url + "/v1", default_model="m")
    chain = FallbackChain([provider])
    fields = {name: 1 for name in ARGUMENT_NAMES}
    for opened in (
        provider.stream("m", HELLO, **fields),
        open_stream(provider, "m", HELLO, **fields),
        chain.stream("m", HELLO, **fields),
        open_stream(chain, "m", HELLO, **fields),
    ):
        a.script(Reply.text("ok"))
        async with opened as stream:
            assert [chunk async for chunk in stream] == ["ok"]
    a.script(Reply.text("ok"))
    assert await provider.create_async("m", HELLO, **fields) == "ok"
    assert all({k: r.json[k] for k in ARGUMENT_NAMES} == fields for r in a.requests)
    assert [r.json["model"] for r in a.requests] == ["m"] * 5
    for call in (provider.stream, provider.create_event_generator, chain.stream):
        for name in ("model", "messages"):
            with pytest.raises(InvalidRequestError, match=f"'{name}' cannot be a request"):
                call("m", HELLO, **{name: 2})
    with pytest.raises(InvalidRequestError, match="'self' cannot be a request parameter"):
        Unmarked().stream("m", HELLO, self=1)
    with pytest.raises(InvalidRequestError, match="'model' cannot be a request parameter"):
        list(provider.create_completion("m", HELLO, model=2))
    assert len(a.requests) == 5


# Nesting deep enough to exhaust the recursion limit.


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("field", "value", "param", "message"),
    [
        (b"metadata", nested(1000), None, "request body nests more than 64 levels"),
        (b"messages", nested(1000), None, "request body nests more than 64 levels"),
        (b"tools", nested(100), "tools", "'tools' nests more than 64 levels"),
        (
            b"messages",
            b'[{"role": "user", "content": [{"type": "text", "text": "x", "x": '
            + nested(100)
            + b"}]}]",
            "messages",
            "'messages' nests more than 64 levels",
        ),
    ],
)
@pytest.mark.parametrize("stream", [b"false", b"true"])
async def test_deep_nesting_is_a_400_before_any_upstream_request(
    ups: Ups, field: bytes, value: bytes, param: str | None, message: str, stream: bytes
) -> None:
    a, b = ups
    hello = json.dumps(HELLO).encode()
    body = b'{"model": "quick", "stream": ' + stream + b', "messages": ' + hello
    body += b', "' + field + b'": ' + value + b"}"
    async with gateway(config_text(a, b)) as url:
        status, headers, text = await post(url, body)
        assert status == 400
        assert headers["Content-Type"].startswith("application/json")
        assert_error(text, message, param)
        assert a.requests == b.requests == []
        await still_serves(url, a)


async def test_nesting_up_to_the_limit_goes_upstream(ups: Ups) -> None:
    a, b = ups
    a.script(Reply.text("ok"))
    body = json.dumps({"model": "quick", "messages": HELLO}).encode()[:-1]
    async with gateway(config_text(a, b)) as url:
        status, _, text = await post(url, body + b', "metadata": ' + nested(63) + b"}")
    assert status == 200, text
    assert a.requests[0].json["metadata"] == json.loads(nested(63))


# NaN and infinity, which Python's json reads and JSON does not have.


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        (b"temperature", b"NaN", "nan"),
        (b"temperature", b"Infinity", "inf"),
        (b"max_tokens", b"-Infinity", "-inf"),
        (b"top_p", b"1e999", "inf"),
        (b"response_format", b'{"type": "json_schema", "x": [1, NaN]}', "nan"),
    ],
)
async def test_nan_and_infinity_are_a_400_before_any_upstream_request(
    ups: Ups, field: bytes, value: bytes, shown: str
) -> None:
    a, b = ups
    body = json.dumps({"model": "quick", "messages": HELLO}).encode()[:-1]
    body += b', "' + field + b'": ' + value + b"}"
    async with gateway(config_text(a, b)) as url:
        status, _, text = await post(url, body)
        assert status == 400
        name = field.decode()
        assert_error(text, f"{name!r} holds {shown}: NaN and infinity are not JSON numbers", name)
        assert a.requests == b.requests == []
        await still_serves(url, a)


RAW_REQUESTS = {
    "Content-Length with Transfer-Encoding": (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "oversize header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
    "bad request line": b"NOT HTTP AT ALL\r\n\r\n",
    "NUL in a header value": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
}


@pytest.mark.parametrize("raw", RAW_REQUESTS.values(), ids=list(RAW_REQUESTS))
async def test_requests_aiohttp_refuses_get_an_openai_shaped_400(
    raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """aiohttp's parser answers these before any handler runs: still JSON, logged as one info
    line without a traceback (bad requests must not flood the log with errors), then the
    server serves the next client."""
    caplog.set_level(logging.INFO)
    app = create_app(Registry(entry_points=False), health=MemoryHealthStore())
    runner, url = await start(app, "127.0.0.1", 0, grace=0.5)
    try:
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=5)
        writer.close()
        await writer.wait_closed()
        head, _, body = answer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
        assert status_line.split(" ")[1] == "400", status_line
        assert headers["content-type"].startswith("application/json")
        error = json.loads(body)["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == "invalid_request_error" and error["message"]
        async with aiohttp.ClientSession() as session, session.get(f"{url}/healthz") as response:
            assert response.status == 200
    finally:
        await runner.cleanup()
    refused = [r for r in caplog.records if r.getMessage().startswith("bad request from ")]
    assert [(r.levelno, r.exc_info) for r in refused] == [(logging.INFO, None)]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
