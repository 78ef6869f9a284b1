"""CodeLinkAva: the installed plugin, against a loopback server speaking its wire format."""

from __future__ import annotations

import asyncio
import json
import socket
import traceback
from collections.abc import Callable
from typing import TypeVar

import aiohttp
import importlib_metadata
import pytest
from helpers import BOUND, MakeUpstream, pointing, until
from providerhub import (
    InvalidRequestError,
    MalformedStreamError,
    Registry,
    Timeouts,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamHTTPError,
)
from providerhub.testing import FakeUpstream, Reply
from providerhub_codelinkava import CodeLinkAva

MESSAGES = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "Say hello"},
]


@pytest.fixture
def ava(monkeypatch: pytest.MonkeyPatch) -> Callable[[FakeUpstream], type[CodeLinkAva]]:
    """Point CodeLinkAva at a FakeUpstream."""
    return pointing(monkeypatch, CodeLinkAva)


Ava = Callable[[FakeUpstream], type[CodeLinkAva]]


async def chunks_of(provider: type[CodeLinkAva], **kwargs: object) -> list[str]:
    async with asyncio.timeout(BOUND):
        return [
            c async for c in provider.create_async_generator("gpt-3.5-turbo", MESSAGES, **kwargs)
        ]


E = TypeVar("E", bound=BaseException)


async def failing(provider: type[CodeLinkAva], error: type[E]) -> tuple[list[str], E]:
    """The chunks a call streamed before it raised `error`, which it must raise."""
    received: list[str] = []
    with pytest.raises(error) as info:
        async with asyncio.timeout(BOUND):
            async for chunk in provider.create_async_generator("", MESSAGES):
                received.append(chunk)
    return received, info.value


# Discovery through the installed distribution's entry point.


def test_entry_point_is_declared_by_the_distribution() -> None:
    points = importlib_metadata.entry_points(group="providerhub", name="codelinkava")
    (point,) = points
    assert point.value == "providerhub_codelinkava"
    assert point.dist is not None and point.dist.name == "providerhub-codelinkava"


def test_registry_discovers_codelinkava() -> None:
    registry = Registry.discover()
    found: object = registry.get("codelinkava")
    assert found is CodeLinkAva
    assert registry.get("CodeLinkAva").name == "CodeLinkAva"
    (info,) = [plugin for plugin in registry.plugins if plugin.name == "codelinkava"]
    assert info.distribution == "providerhub-codelinkava"
    assert info.providers == ["CodeLinkAva"]
    assert info.error is None
    assert "CodeLinkAva" not in [p.name for p in registry.providers(working=True)]
    usable = registry.providers(working=False, model="gpt-3.5-turbo")
    assert "CodeLinkAva" in [p.name for p in usable]
    assert "CodeLinkAva" not in [p.name for p in registry.providers(model="gpt-4")]


def test_flags() -> None:
    assert CodeLinkAva.name == "CodeLinkAva"
    assert CodeLinkAva.url == "https://ava-ai-ef611.web.app"
    assert CodeLinkAva.api_url == "https://ava-alpha-api.codelink.io/api/chat"
    assert CodeLinkAva.supports_gpt_35_turbo is True
    assert CodeLinkAva.supports_gpt_4 is False
    assert CodeLinkAva.working is False
    assert CodeLinkAva.supports_stream is True
    assert CodeLinkAva.needs_auth is False


# The request on the wire.


async def test_exact_request(fake_upstream: MakeUpstream, ava: Ava) -> None:
    upstream = await fake_upstream(Reply.text("Hel", "lo"))
    chunks = await chunks_of(ava(upstream), top_p=0.5, timeout=5, proxy=None)
    assert "".join(chunks) == "Hello"
    (request,) = upstream.requests
    assert (request.method, request.path) == ("POST", "/api/chat")
    headers = {key.lower(): value for key, value in request.headers.items()}
    assert headers["user-agent"].startswith("Mozilla/5.0 (Windows NT 10.0; Win64; x64)")
    assert "Chrome/" in headers["user-agent"]
    assert headers["accept"] == "*/*"
    assert headers["accept-language"].startswith("en,fr-FR;q=0.9")
    assert headers["origin"] == "https://ava-ai-ef611.web.app"
    assert headers["referer"] == "https://ava-ai-ef611.web.app/"
    assert headers["sec-fetch-dest"] == "empty"
    assert headers["sec-fetch-mode"] == "cors"
    assert headers["sec-fetch-site"] == "same-origin"
    assert headers["content-type"] == "application/json"
    assert "authorization" not in headers
    assert request.json == {
        "messages": MESSAGES,
        "temperature": 0.6,
        "stream": True,
        "top_p": 0.5,
    }
    assert list(request.json) == ["messages", "temperature", "stream", "top_p"]


async def test_caller_kwargs_win_and_transport_options_stay_out(
    fake_upstream: MakeUpstream, ava: Ava
) -> None:
    upstream = await fake_upstream(Reply.text("ok"))
    limits = Timeouts(first_chunk=5)
    assert await chunks_of(ava(upstream), temperature=0.1, timeout=limits) == ["ok"]
    assert upstream.requests[0].json == {"messages": MESSAGES, "temperature": 0.1, "stream": True}


# Parsing whatever the TCP chunking.

TEXT = ("Hé", "llo, ", "wörld ✓", "\n", "  ", "!")


@pytest.mark.parametrize("split", [1, 3, 7, 61])
@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
async def test_awkward_reads(
    fake_upstream: MakeUpstream, ava: Ava, split: int, ending: str
) -> None:
    text = TEXT[:2] if split == 1 else TEXT
    reply = Reply.text(*text, split=split, line_ending=ending, keepalive=split % 2 == 1)
    upstream = await fake_upstream(reply)
    chunks = await chunks_of(ava(upstream))
    assert "".join(chunks) == "".join(text)
    assert all(chunks)


async def test_several_events_per_read_arrive_as_one_chunk(
    fake_upstream: MakeUpstream, ava: Ava
) -> None:
    upstream = await fake_upstream(Reply.text(*TEXT, keepalive=True, line_ending="\r\n"))
    assert await chunks_of(ava(upstream)) == ["".join(TEXT)]


async def test_slow_chunks_are_not_held_back(fake_upstream: MakeUpstream, ava: Ava) -> None:
    upstream = await fake_upstream(Reply.text("a", "b", "c", delay=0.1))
    chunks = await chunks_of(ava(upstream))
    assert "".join(chunks) == "abc"
    assert len(chunks) > 1, "text that arrived in separate reads must not wait for the end"


# Line-oriented upstreams: `data:` lines with no blank line between them.


def delta(content: str) -> str:
    return json.dumps({"choices": [{"delta": {"content": content}}]})


def line_oriented(*lines: str, ending: str = "\n") -> bytes:
    return "".join(f"data: {line}{ending}" for line in lines).encode()


@pytest.mark.parametrize("split", [None, 1, 7])
@pytest.mark.parametrize("ending", ["\n", "\r\n"])
async def test_line_oriented_stream(
    fake_upstream: MakeUpstream, ava: Ava, split: int | None, ending: str
) -> None:
    body = line_oriented(delta("Hé"), delta("llo"), "[DONE]", ending=ending)
    upstream = await fake_upstream(Reply.raw_bytes(body, split=split))
    assert "".join(await chunks_of(ava(upstream))) == "Héllo"


async def test_line_oriented_stream_ignores_what_follows_done(
    fake_upstream: MakeUpstream, ava: Ava
) -> None:
    body = line_oriented(delta("a"), "", delta("b"), "[DONE]", "{not json", delta("zz"))
    upstream = await fake_upstream(Reply.raw_bytes(body))
    assert await chunks_of(ava(upstream)) == ["ab"]


async def test_line_oriented_stream_without_done(fake_upstream: MakeUpstream, ava: Ava) -> None:
    upstream = await fake_upstream(Reply.raw_bytes(line_oriented(delta("a"), delta("b"))))
    received, error = await failing(ava(upstream), UpstreamConnectionError)
    assert str(error).startswith(
        "CodeLinkAva: stream ended before data: [DONE] (answer may be truncated)"
    )
    assert received == ["ab"]


async def test_line_oriented_malformed_line(fake_upstream: MakeUpstream, ava: Ava) -> None:
    body = line_oriented(delta("a"), "{bad", "[DONE]")
    upstream = await fake_upstream(Reply.raw_bytes(body))
    with pytest.raises(MalformedStreamError) as info:
        await chunks_of(ava(upstream))
    assert str(info.value) == "CodeLinkAva: malformed event: '{bad'"


async def test_huge_line_larger_than_the_read_buffer(fake_upstream: MakeUpstream, ava: Ava) -> None:
    upstream = await fake_upstream(Reply.huge_line(300_000))
    assert "".join(await chunks_of(ava(upstream))) == "x" * 300_000


async def test_empty_answer_yields_nothing(fake_upstream: MakeUpstream, ava: Ava) -> None:
    upstream = await fake_upstream(Reply.empty())
    assert await chunks_of(ava(upstream)) == []


async def test_done_stops_reading(fake_upstream: MakeUpstream, ava: Ava) -> None:
    upstream = await fake_upstream(
        Reply.text(
            "a", after_done=("{not json", '{"choices": [{"delta": {"content": "zz"}}]}'), end="hang"
        )
    )
    assert await chunks_of(ava(upstream)) == ["a"]
    await until(lambda: upstream.disconnects == 1)


async def test_done_stops_reading_across_reads(fake_upstream: MakeUpstream, ava: Ava) -> None:
    after = ('{"choices": [{"delta": {"content": "zz"}}]}', "{bad")
    upstream = await fake_upstream(Reply.text("a", "b", split=5, after_done=after, end="hang"))
    assert "".join(await chunks_of(ava(upstream))) == "ab"
    await until(lambda: upstream.disconnects == 1)


# Failures, classified.


@pytest.mark.parametrize(
    ("reply", "status", "message", "retry_after", "retryable"),
    [
        (Reply.error(400, "bad request: messages"), 400, "bad request: messages", None, False),
        (Reply.error(401, "invalid key"), 401, "invalid key", None, False),
        (Reply.error(429, "slow down", retry_after="7"), 429, "slow down", 7.0, True),
        (Reply.error(500, "boom"), 500, "boom", None, True),
        (
            Reply.error(502, body="<html> Bad\n Gateway </html>"),
            502,
            "<html> Bad Gateway </html>",
            None,
            True,
        ),
        (
            Reply.error(503, body='{"error": "overloaded"}', retry_after="1.5"),
            503,
            "overloaded",
            1.5,
            True,
        ),
    ],
)
async def test_http_error_status(
    fake_upstream: MakeUpstream,
    ava: Ava,
    reply: Reply,
    status: int,
    message: str,
    retry_after: float | None,
    retryable: bool,
) -> None:
    upstream = await fake_upstream(reply)
    with pytest.raises(aiohttp.ClientResponseError) as info:
        await chunks_of(ava(upstream))
    error = info.value
    assert isinstance(error, UpstreamHTTPError)
    assert (error.status, error.message, error.retry_after) == (status, message, retry_after)
    assert (error.provider, error.retryable, error.auth_failed) == (
        "CodeLinkAva",
        retryable,
        status == 401,
    )
    assert str(error) == f"CodeLinkAva: HTTP {status}: {message}"
    assert len(upstream.requests) == 1


async def test_malformed_json_names_the_provider(fake_upstream: MakeUpstream, ava: Ava) -> None:
    upstream = await fake_upstream(Reply.malformed_after_chunks("a", "b"))
    received, error = await failing(ava(upstream), MalformedStreamError)
    assert error.provider == "CodeLinkAva"
    assert str(error) == "CodeLinkAva: malformed event: '{not json'"
    assert error.excerpt == "{not json"
    assert error.__cause__ is None and error.__suppress_context__
    assert received == ["ab"]


async def test_connection_closed_mid_stream(fake_upstream: MakeUpstream, ava: Ava) -> None:
    upstream = await fake_upstream(Reply.close_after_chunks("a", "b", split=40))
    received, error = await failing(ava(upstream), UpstreamConnectionError)
    assert error.provider == "CodeLinkAva"
    assert "connection closed before the response was complete" in str(error)
    assert "".join(received) == "ab"


async def test_stream_ending_without_done(fake_upstream: MakeUpstream, ava: Ava) -> None:
    upstream = await fake_upstream(Reply.text("a", done=False))
    received, error = await failing(ava(upstream), UpstreamConnectionError)
    assert type(error) is UpstreamConnectionError
    assert str(error) == "CodeLinkAva: stream ended before data: [DONE] (answer may be truncated)"
    assert error.url == CodeLinkAva.api_url == f"{upstream.url}/api/chat"
    assert received == ["a"]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ({"message": "model overloaded", "type": "server_error"}, "model overloaded"),
        ("rate limited", "rate limited"),
        ({"code": 500}, "{'code': 500}"),
    ],
)
async def test_error_event_in_stream(
    fake_upstream: MakeUpstream, ava: Ava, error: object, message: str
) -> None:
    body = (
        f"data: {delta('a')}\n\n"
        f"data: {json.dumps({'error': error})}\n\n"
        f"data: {delta('zz')}\n\ndata: [DONE]\n\n"
    )
    upstream = await fake_upstream(Reply.raw_bytes(body.encode()))
    received, raised = await failing(ava(upstream), UpstreamError)
    assert type(raised) is UpstreamError
    assert str(raised) == f"CodeLinkAva: error in stream: {message}"
    assert raised.provider == "CodeLinkAva"
    assert received == ["a"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (object(), "Object of type object is not JSON serializable"),
        (float("nan"), "NaN and infinity are not valid JSON"),
        (float("inf"), "NaN and infinity are not valid JSON"),
    ],
)
async def test_bad_parameter_fails_before_any_request(
    fake_upstream: MakeUpstream, ava: Ava, value: object, problem: str
) -> None:
    upstream = await fake_upstream(Reply.text("a"))
    with pytest.raises(InvalidRequestError) as info:
        await chunks_of(ava(upstream), temperature=value)
    assert type(info.value) is InvalidRequestError
    assert str(info.value) == f"request parameter 'temperature' cannot be sent as JSON: {problem}"
    assert upstream.requests == []


async def test_connection_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(CodeLinkAva, "api_url", f"http://127.0.0.1:{port}/api/chat")
    with pytest.raises(UpstreamConnectionError) as info:
        await chunks_of(CodeLinkAva)
    assert str(info.value) == "CodeLinkAva: cannot connect: Connection refused"


def test_sync_create_completion(monkeypatch: pytest.MonkeyPatch) -> None:
    from providerhub.testing import serve_in_thread

    with serve_in_thread(Reply.text("Hel", "lo"), Reply.text("a", "b", delay=0.1)) as upstream:
        monkeypatch.setattr(CodeLinkAva, "api_url", upstream.url + "/api/chat")
        assert list(CodeLinkAva.create_completion("gpt-3.5-turbo", MESSAGES)) == ["Hello"]
        streamed = list(CodeLinkAva.create_completion("", MESSAGES, stream=True))
        assert "".join(streamed) == "ab"
        assert len(streamed) > 1


# Secrets never leak into errors.


async def test_http_error_never_contains_the_authorization_value(
    fake_upstream: MakeUpstream,
) -> None:
    from providerhub import http

    secret = "sk-secret-0123456789abcdef"
    upstream = await fake_upstream(
        Reply.error(401, "invalid key", headers={"Set-Cookie": f"session={secret}"})
    )
    headers = {"Authorization": f"Bearer {secret}", "X-Api-Key": secret, "Accept": "*/*"}
    with pytest.raises(UpstreamHTTPError) as info:
        async with http.request("Keyed", upstream.url + "/v1/chat/completions", headers=headers):
            pass
    error = info.value
    assert upstream.requests[0].headers["Authorization"] == f"Bearer {secret}"
    rendered = [
        str(error),
        repr(error),
        repr(error.args),
        repr(error.request_info),
        repr(error.headers),
        "".join(traceback.format_exception(error)),
        aiohttp.ClientResponseError.__str__(error),
        aiohttp.ClientResponseError.__repr__(error),
    ]
    for text in rendered:
        assert secret not in text
    assert error.request_info.headers["Authorization"] == "<redacted>"
    assert error.request_info.headers["X-Api-Key"] == "<redacted>"
    assert error.request_info.headers["Accept"] == "*/*"
    assert error.headers is not None and error.headers["Set-Cookie"] == "<redacted>"
    assert error.auth_failed and not error.retryable
