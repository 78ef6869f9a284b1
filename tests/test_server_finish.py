"""The gateway passes on the serving provider's finish_reason and, when the client asks, its usage.

Chain "main" is [CodeLinkAva (not working, skipped), a, b] from test_server's config; here `a`
fails and `b` (providerhub-openai on a FakeUpstream) serves, cut at max_tokens ("length").
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from providerhub.testing import FakeUpstream, Reply
from routing_helpers import provider
from test_server import HELLO, USAGE, config_text, contents, events, gateway, post

Ups = tuple[FakeUpstream, FakeUpstream]
INCLUDE_USAGE = {"stream_options": {"include_usage": True}}


@pytest.fixture
async def ups(fake_upstream: Any) -> Ups:
    a, b = await fake_upstream(), await fake_upstream()
    a.script(Reply.error(500, "model crashed"))
    b.script(Reply.text("Hel", "lo", finish_reason="length", usage=USAGE))
    return a, b


@pytest.mark.parametrize("asked", [True, False])
async def test_sse_final_chunk_and_usage_chunk(ups: Ups, asked: bool) -> None:
    a, b = ups
    body = {"model": "main", "messages": HELLO, "stream": True, **(INCLUDE_USAGE if asked else {})}
    async with gateway(config_text(a, b)) as url:
        status, headers, text = await post(url, body)
    assert status == 200
    assert headers["x-providerhub-route"] == "main > b"
    found = events(text)
    assert "".join(contents(found)) == "Hello"
    assert found[-1] == "[DONE]"
    chunks = found[:-1]
    last = chunks[-2] if asked else chunks[-1]
    assert last["choices"] == [{"index": 0, "delta": {}, "finish_reason": "length"}]
    usage_chunks = [chunk for chunk in chunks if "usage" in chunk]
    if asked:
        assert usage_chunks == [chunks[-1]], "the usage chunk comes last, before [DONE]"
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == USAGE
        assert {chunk["id"] for chunk in chunks} == {last["id"]}
        assert chunks[-1]["object"] == "chat.completion.chunk"
        assert chunks[-1]["model"] == "main"
        assert b.requests[0].json["stream_options"] == {"include_usage": True}
    else:
        assert usage_chunks == [], "usage is streamed only when the client asks, as OpenAI does"
        assert b.requests[0].json["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("asked", [True, False])
async def test_json_finish_reason_and_usage(ups: Ups, asked: bool) -> None:
    a, b = ups
    body = {"model": "main", "messages": HELLO, **(INCLUDE_USAGE if asked else {})}
    async with gateway(config_text(a, b)) as url:
        status, headers, text = await post(url, body)
    assert status == 200
    assert headers["x-providerhub-provider"] == "b"
    completion = json.loads(text)
    assert completion["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello"},
            "finish_reason": "length",
        }
    ]
    assert completion["usage"] == USAGE, "JSON answers carry usage, asked for or not"


async def test_a_provider_reporting_nothing_gets_stop_and_no_usage(
    fake_upstream: Any, ups: Ups
) -> None:
    ava = await fake_upstream(default=Reply.text("Hi", finish_reason="length", usage=USAGE))
    async with gateway(config_text(*ups), extra=[provider("ava", ava)]) as url:
        streamed = await post(
            url, {"model": "ava", "messages": HELLO, "stream": True, **INCLUDE_USAGE}
        )
        whole = await post(url, {"model": "ava", "messages": HELLO, **INCLUDE_USAGE})
    status, headers, text = streamed
    assert (status, headers["x-providerhub-provider"]) == (200, "ava")
    found = events(text)
    assert contents(found) == ["Hi"]
    assert found[-2]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert found[-1] == "[DONE]"
    assert not any("usage" in event for event in found[:-1])
    status, _, text = whole
    completion = json.loads(text)
    assert (status, completion["choices"][0]["finish_reason"]) == (200, "stop")
    assert "usage" not in completion
