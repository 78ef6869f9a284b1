"""The official `openai` SDK (AsyncOpenAI) talking to the gateway: what real clients see."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from providerhub.testing import FakeUpstream, Reply
from test_server import config_text, gateway

KEY = "sk-gateway-key-for-sdk"
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello"}]


@pytest.fixture
async def ups(fake_upstream: Any) -> tuple[FakeUpstream, FakeUpstream]:
    return await fake_upstream(), await fake_upstream()


async def test_sdk_streams_through_a_failover(ups: tuple[FakeUpstream, FakeUpstream]) -> None:
    a, b = ups
    a.script(Reply.error(500, "model crashed"))
    b.script(Reply.text("Hel", "lo", " there", delay=0.01), Reply.text("whole"))
    async with (
        gateway(config_text(a, b), api_key=KEY) as url,
        openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0) as client,
    ):
        stream = await client.chat.completions.create(
            model="fast", messages=HELLO, stream=True, temperature=0.5
        )
        pieces, reasons = [], []
        async for chunk in stream:
            assert chunk.object == "chat.completion.chunk"
            choice = chunk.choices[0]
            if choice.delta.content:
                pieces.append(choice.delta.content)
            reasons.append(choice.finish_reason)
        raw = await client.chat.completions.with_raw_response.create(model="b", messages=HELLO)
        completion = raw.parse()
    assert "".join(pieces) == "Hello there"
    assert reasons[-1] == "stop"
    assert b.requests[0].json["model"] == "fast-model"
    assert b.requests[0].json["temperature"] == 0.5
    assert raw.headers["x-providerhub-provider"] == "b"
    assert completion.choices[0].message.content == "whole"
    assert completion.choices[0].finish_reason == "stop"


async def test_sdk_sees_statuses_and_the_mid_stream_error(
    ups: tuple[FakeUpstream, FakeUpstream],
) -> None:
    a, b = ups
    a.script(Reply.error(500, "model crashed"), Reply.close_after_chunks("one ", delay=0.01))
    async with (
        gateway(config_text(a, b, default=False)) as url,
        openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client,
    ):
        with pytest.raises(openai.NotFoundError) as missing:
            await client.chat.completions.create(model="nope/x/y", messages=HELLO)
        with pytest.raises(openai.BadRequestError) as bad:
            await client.chat.completions.create(
                model="a", messages=[{"role": "user", "content": "x"}], n=3
            )
        with pytest.raises(openai.InternalServerError) as failed:
            await client.chat.completions.create(model="a", messages=HELLO, stream=True)
        stream = await client.chat.completions.create(model="a", messages=HELLO, stream=True)
        pieces = []
        with pytest.raises(openai.APIError) as cut:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
    assert missing.value.status_code == 404
    assert bad.value.status_code == 400
    assert failed.value.status_code == 502
    assert "model crashed" in failed.value.message
    assert pieces == ["one "]
    assert "interrupted after 4 characters" in cut.value.message


async def test_the_sdk_retrieves_models_and_learns_what_exists(
    ups: tuple[FakeUpstream, FakeUpstream],
) -> None:
    """`models.retrieve` answers for listed models (any case) and for what a chat request would
    route; anything else, and an endpoint the gateway lacks, is an OpenAI-shaped 404."""
    a, b = ups
    async with (
        gateway(config_text(a, b)) as url,
        openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client,
    ):
        alias = await client.models.retrieve("FAST")
        routed = await client.models.retrieve("gpt-4o-mini")
        with pytest.raises(openai.NotFoundError) as unknown_endpoint:
            await client.embeddings.create(model="main", input="hi")
    async with (
        gateway(config_text(a, b, default=False)) as url,
        openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client,
    ):
        with pytest.raises(openai.NotFoundError) as unknown_model:
            await client.models.retrieve("nothing")
    assert (alias.id, alias.model_extra) == (
        "fast",
        {"kind": "alias", "chain": "main", "model": "fast-model"},
    )
    assert (routed.id, routed.owned_by) == ("gpt-4o-mini", "providerhub")
    assert routed.model_extra == {"kind": "routed", "chain": "main", "model": "gpt-4o-mini"}
    assert unknown_model.value.code == "model_not_found"
    assert unknown_model.value.body == {
        "message": "model 'nothing' not found; available aliases: fast; chains: main, quick; "
        "providers: CodeLinkAva, a, b (GET /v1/models lists them)",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    assert unknown_endpoint.value.code == "unknown_url"
    assert unknown_endpoint.value.body == {
        "message": "unknown endpoint POST /v1/embeddings; this gateway serves POST "
        "/v1/chat/completions, GET /v1/models, GET /v1/models/{id}, GET /v1/providers, "
        "GET /healthz",
        "type": "invalid_request_error",
        "param": None,
        "code": "unknown_url",
    }
    assert a.requests == [] and b.requests == []
