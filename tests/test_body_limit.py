"""A non-streamed answer is read up to `providerhub.http.MAX_BODY` bytes: past it, a
MalformedStreamError as soon as the bound is passed (by Content-Length, before reading; else
while reading, without waiting for the rest), and the chain fails over."""

from __future__ import annotations

import json

import pytest
from helpers import MakeUpstream, until
from providerhub import FallbackChain, MalformedStreamError, MemoryHealthStore, Timeouts, http
from providerhub.testing import Reply
from providerhub_openai import OpenAICompatible

HELLO = [{"role": "user", "content": "hi"}]
LIMIT = 64 * 1024
COMPLETION = json.dumps(
    {
        "id": "c1",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
    }
).encode()


def endpoint(url: str, name: str = "local") -> OpenAICompatible:
    return OpenAICompatible(name=name, base_url=url + "/v1", default_model="m")


def json_bytes(body: bytes) -> Reply:
    """`body` as a JSON answer with its Content-Length."""
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    return Reply.raw_bytes(body, headers=headers)


@pytest.fixture(autouse=True)
def small_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "MAX_BODY", LIMIT)


async def test_an_oversize_answer_is_refused_without_waiting_for_its_end(
    fake_upstream: MakeUpstream,
) -> None:
    upstream = await fake_upstream(Reply.text("x" * (4 * LIMIT), split=16 * 1024, end="hang"))

    with pytest.raises(MalformedStreamError) as caught:
        await endpoint(upstream.url).create_async(
            "", HELLO, stream=False, timeout=Timeouts(first_chunk=30)
        )

    assert str(caught.value) == f"local: response body larger than {LIMIT} bytes"
    await until(lambda: upstream.disconnects == 1)


async def test_a_content_length_over_the_bound_is_refused(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(json_bytes(COMPLETION + b" " * LIMIT))

    with pytest.raises(
        MalformedStreamError, match=f"^local: response body larger than {LIMIT} bytes$"
    ):
        await endpoint(upstream.url).create_async("", HELLO, stream=False)


@pytest.mark.parametrize(
    ("limit", "served"), [(len(COMPLETION), True), (len(COMPLETION) - 1, False)]
)
async def test_an_answer_of_exactly_the_bound_is_read(
    fake_upstream: MakeUpstream, monkeypatch: pytest.MonkeyPatch, limit: int, served: bool
) -> None:
    monkeypatch.setattr(http, "MAX_BODY", limit)
    chunked = Reply.raw_bytes(COMPLETION, split=16, headers={"Content-Type": "application/json"})
    for reply in (json_bytes(COMPLETION), chunked):
        upstream = await fake_upstream(reply)
        if served:
            assert await endpoint(upstream.url).create_async("", HELLO, stream=False) == "hi"
        else:
            with pytest.raises(MalformedStreamError):
                await endpoint(upstream.url).create_async("", HELLO, stream=False)


async def test_a_chain_fails_over_from_an_oversize_answer(fake_upstream: MakeUpstream) -> None:
    big = await fake_upstream(json_bytes(COMPLETION + b" " * LIMIT))
    good = await fake_upstream(Reply.text("fine"))
    chain = FallbackChain(
        [endpoint(big.url, "big"), endpoint(good.url, "good")], health=MemoryHealthStore()
    )

    stream = chain.stream("", HELLO, stream=False)
    assert "".join([chunk async for chunk in stream]) == "fine"
    assert stream.attempts[0].reason == f"response body larger than {LIMIT} bytes"
