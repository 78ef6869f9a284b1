"""The gateway's failures: 400 before any upstream I/O, statuses for chains that failed before
the first chunk, an error event after it, client disconnects, auth and the access log."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from helpers import until
from providerhub import MemoryHealthStore, Registry
from providerhub.server import create_app, start
from providerhub.testing import FakeUpstream, Reply
from test_server import HELLO, config_text, contents, events, gateway, post

Ups = tuple[FakeUpstream, FakeUpstream]


@pytest.fixture
async def ups(fake_upstream: Any) -> Ups:
    return await fake_upstream(), await fake_upstream()


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        (b"{not json", None, "request body is not valid JSON: "),
        (b"[1, 2]", None, "request body must be a JSON object"),
        ({"messages": HELLO}, "model", "'model' is required and must be a non-empty string"),
        (
            {"model": "main", "messages": [{"role": "user", "content": 5}]},
            "messages",
            "messages[0].content must be a string or a list of content parts, not int",
        ),
        ({"model": "main", "messages": []}, "messages", "messages must not be empty"),
        ({"model": "main", "messages": HELLO, "stream": "yes"}, "stream", "'stream' must be"),
        ({"model": "main", "messages": HELLO, "n": 2}, "n", "only n=1 is supported"),
        (
            {"model": "main", "messages": HELLO, "proxy": "http://evil.example"},
            "proxy",
            "parameter 'proxy' is not accepted by the gateway",
        ),
        (
            {"model": "main", "messages": HELLO, "stream_options": {"include_usage": 1}},
            "stream_options.include_usage",
            "'stream_options.include_usage' must be true or false",
        ),
    ],
)
async def test_bad_request_is_400_before_any_upstream_request(
    ups: Ups, body: Any, param: str | None, message: str
) -> None:
    a, b = ups
    async with gateway(config_text(a, b)) as url:
        status, _, text = await post(url, body)
    assert status == 400
    error = json.loads(text)["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"].startswith(message)
    assert a.requests == b.requests == []


@pytest.mark.parametrize("stream", [True, False])
async def test_all_failed_is_502_with_a_line_per_provider(ups: Ups, stream: bool) -> None:
    a, b = ups
    a.script(Reply.error(500, "model crashed"))
    b.script(Reply.error(503, "overloaded"))
    async with gateway(config_text(a, b)) as url:
        status, headers, text = await post(
            url, {"model": "main", "messages": HELLO, "stream": stream}
        )
    assert status == 502
    assert headers["Content-Type"].startswith("application/json")
    error = json.loads(text)["error"]
    assert error["type"] == "upstream_error"
    assert error["code"] == "all_providers_failed"
    lines = error["message"].splitlines()
    assert lines[0] == "all providers failed:"
    assert lines[1] == "  CodeLinkAva: skipped (not working)"
    assert lines[2:] == ["  a: HTTP 500: model crashed", "  b: HTTP 503: overloaded"]


async def test_rate_limited_everywhere_is_429_with_retry_after(ups: Ups) -> None:
    a, b = ups
    a.script(Reply.error(429, "slow down", retry_after="7"))
    b.script(Reply.error(429, "slow down", retry_after="3"))
    async with gateway(config_text(a, b)) as url:
        first = await post(url, {"model": "quick", "messages": HELLO, "stream": True})
        again = await post(url, {"model": "quick", "messages": HELLO, "stream": True})
    for status, _, text in (first, again):
        assert status == 429
        error = json.loads(text)["error"]
        assert error["type"] == "rate_limit_error"
        assert error["code"] == "rate_limit_exceeded"
    assert first[1]["Retry-After"] == "3"
    assert "cooling down" in json.loads(again[2])["error"]["message"]
    assert len(a.requests) == len(b.requests) == 1


async def test_nobody_to_ask_is_503(ups: Ups) -> None:
    a, b = ups
    async with gateway(config_text(a, b)) as url:
        status, _, text = await post(url, {"model": "codelinkava", "messages": HELLO})
    assert status == 503
    error = json.loads(text)["error"]
    assert error["code"] == "no_provider_available"
    assert error["message"] == "all providers failed:\n  CodeLinkAva: skipped (not working)"


async def test_every_provider_timing_out_is_504(ups: Ups) -> None:
    a, b = ups
    a.script(Reply.hang())
    b.script(Reply.keepalive_trickle(0.05))
    async with gateway(config_text(a, b)) as url:
        status, _, text = await asyncio.wait_for(
            post(url, {"model": "quick", "messages": HELLO, "stream": True}), 5
        )
    assert status == 504
    error = json.loads(text)["error"]
    assert error["code"] == "upstream_timeout"
    assert "a: first chunk timeout after 0.3s" in error["message"]
    assert "b: first chunk timeout after 0.3s" in error["message"]


async def test_failure_after_first_chunk_is_an_error_event_without_done(ups: Ups) -> None:
    a, b = ups
    a.script(Reply.close_after_chunks("one ", "two ", delay=0.01))
    b.script(Reply.text("never"))
    async with gateway(config_text(a, b)) as url:
        status, headers, text = await post(
            url, {"model": "main", "messages": HELLO, "stream": True}
        )
    assert status == 200
    assert headers["x-providerhub-provider"] == "a"
    found = events(text)
    assert "[DONE]" not in found
    assert contents(found) == ["one ", "two "]
    error = found[-1]["error"]
    assert error["code"] == "stream_interrupted"
    assert error["message"].startswith("stream from a interrupted after 8 characters: ")
    assert b.requests == []


async def test_non_streamed_answer_cut_midway_is_502_without_partial_text(ups: Ups) -> None:
    a, b = ups
    a.script(Reply.close_after_chunks("one ", "two "))
    async with gateway(config_text(a, b)) as url:
        status, _, text = await post(url, {"model": "a", "messages": HELLO})
    assert status == 502
    error = json.loads(text)["error"]
    assert error["code"] == "stream_interrupted"
    assert "one" not in error["message"]


async def test_client_disconnect_closes_the_upstream(ups: Ups) -> None:
    a, b = ups
    a.script(Reply.hang_after_chunks("first"))
    async with gateway(config_text(a, b)) as url:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{url}/v1/chat/completions",
                json={"model": "a", "messages": HELLO, "stream": True},
            ) as response,
        ):
            assert response.status == 200
            line = await asyncio.wait_for(response.content.readline(), 5)
            assert line.startswith(b"data: {")
            assert a.active == 1
        await until(lambda: a.disconnects)
        assert a.disconnects == 1
        assert a.active == 0


async def test_client_giving_up_before_the_first_chunk_closes_the_upstream(ups: Ups) -> None:
    a, b = ups
    a.script(Reply.hang())
    async with gateway(config_text(a, b)) as url:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(TimeoutError):
                await session.post(
                    f"{url}/v1/chat/completions",
                    json={"model": "a", "messages": HELLO, "stream": True},
                    timeout=aiohttp.ClientTimeout(total=0.3),
                )
        await until(lambda: a.disconnects)
        assert a.disconnects == 1
        assert a.active == 0


async def test_auth_required_and_key_never_shown(
    ups: Ups, caplog: pytest.LogCaptureFixture
) -> None:
    key = "sk-gateway-5ecret-value"
    a, b = ups
    a.script(Reply.text("hi"))
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    async with gateway(config_text(a, b), api_key=key) as url:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": key}):
            status, response_headers, text = await post(
                url, {"model": "a", "messages": HELLO}, headers=headers
            )
            assert status == 401
            assert response_headers["WWW-Authenticate"] == "Bearer"
            assert json.loads(text)["error"]["code"] == "invalid_api_key"
            seen.append(text)
        status, _, text = await post(
            url, {"model": "a", "messages": HELLO}, headers={"Authorization": f"Bearer {key}"}
        )
        assert status == 200
        seen.append(text)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/v1/models") as response:
                assert response.status == 401
                seen.append(await response.text())
            async with session.get(f"{url}/healthz") as response:
                assert response.status == 200
                seen.append(await response.text())
    assert len(a.requests) == 1
    assert "Authorization" not in a.requests[0].headers
    assert not any(key in text for text in seen)
    assert caplog.records
    assert not any(key in record.getMessage() for record in caplog.records)


async def test_one_access_log_line_per_request(ups: Ups, caplog: pytest.LogCaptureFixture) -> None:
    a, b = ups
    a.script(Reply.text("hi"))
    caplog.set_level(logging.INFO, logger="providerhub.server")
    async with gateway(config_text(a, b)) as url:
        await post(url, {"model": "a", "messages": HELLO, "stream": True})
        await post(url, {"model": "nope/x", "messages": [{"role": "user"}]})
    lines = [r.getMessage() for r in caplog.records if r.name == "providerhub.server"]
    assert len(lines) == 2
    assert lines[0].startswith("POST /v1/chat/completions 200 provider=a ")
    assert lines[0].endswith("ms")
    assert lines[1].startswith("POST /v1/chat/completions 400 provider=- ")
    assert "Hello" not in "".join(lines)


async def test_a_provider_refusing_the_request_before_sending_it_is_a_400() -> None:
    """A member that finds the request untranslatable (an InvalidRequestError before any I/O)
    blames the request, as an upstream 400 would: the client gets 400, not 502."""
    from providerhub import AsyncGeneratorProvider, InvalidRequestError

    class Picky(AsyncGeneratorProvider):
        working = True

        @classmethod
        async def create_async_generator(
            cls, model: str, messages: Any, **params: Any
        ) -> AsyncIterator[str]:
            raise InvalidRequestError(f"{cls.name}: 'seed' has no equivalent here")
            yield ""

    registry = Registry(entry_points=False)
    registry.register(Picky)
    app = create_app(registry, health=MemoryHealthStore())
    runner, url = await start(app, "127.0.0.1", 0, grace=0.5)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{url}/v1/chat/completions",
                json={"model": "Picky", "messages": [{"role": "user", "content": "hi"}]},
            ) as response,
        ):
            status, body = response.status, await response.json()
    finally:
        await runner.cleanup()
    assert status == 400
    assert body["error"]["code"] == "upstream_rejected_request"
    assert "'seed' has no equivalent here" in body["error"]["message"]
