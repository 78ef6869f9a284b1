"""What the gateway tells clients that retry: `Retry-After` when it knows when a provider may
be asked again, `x-should-retry: false` when asking again cannot help, the last real failure
kept once a circuit is open; checked through the official openai SDK's own retries."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import openai
import pytest
from helpers import MakeUpstream, until
from openai.types.chat import ChatCompletionMessageParam
from providerhub import MemoryHealthStore
from providerhub.testing import FakeUpstream, Reply
from routing_helpers import Clock
from test_server import post
from test_server_tools import KEY, gateway

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello"}]
UNSET = "PROVIDERHUB_TEST_NEVER_SET_KEY"
AUTH = {"Authorization": f"Bearer {KEY}"}


def config_text(a: FakeUpstream, b: FakeUpstream) -> str:
    """Provider a; provider locked, whose key variable is unset; provider capped at one request
    in flight; a chain of a and locked. No default chain."""
    return f"""
[providers.a]
use = "openai"
base_url = "{a.url}/v1"
default_model = "m"

[providers.locked]
use = "openai"
base_url = "{b.url}/v1"
api_key_env = "{UNSET}"
default_model = "m"

[providers.capped]
use = "openai"
max_concurrent = 1
base_url = "{b.url}/v1"
default_model = "m"

[chains.mixed]
providers = ["a", "locked"]
"""


@pytest.fixture
async def ups(fake_upstream: MakeUpstream, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv(UNSET, raising=False)
    return await fake_upstream(), await fake_upstream()


async def ask(url: str, model: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    status, headers, text = await post(url, {"model": model, "messages": HELLO}, headers=AUTH)
    return status, headers, json.loads(text)


def hits(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The status of each chat request the gateway answered, from its access log."""
    return [
        record.getMessage().split()[2]
        for record in caplog.records
        if record.name == "providerhub.server" and "/v1/chat/completions" in record.getMessage()
    ]


async def test_a_cooldown_says_how_long_and_why(ups: tuple[FakeUpstream, FakeUpstream]) -> None:
    a, b = ups
    a.script(Reply.error(500, "model crashed"))
    clock = Clock()
    health = MemoryHealthStore(failure_threshold=1, cooldown=30, clock=clock)
    async with gateway(config_text(a, b), health) as url:
        failed = await ask(url, "a")
        cooling = await ask(url, "a")
        clock.now += 29.95
        almost = await ask(url, "a")
        mixed = await ask(url, "mixed")
    status, headers, _ = failed
    assert status == 502
    assert "x-should-retry" not in headers and "Retry-After" not in headers
    status, headers, body = cooling
    assert status == 503
    assert headers["Retry-After"] == "30"
    assert "x-should-retry" not in headers
    line = body["error"]["message"].splitlines()[1]
    assert line == (
        "  a: skipped (cooling down, 30.0s left (circuit open after 1 consecutive failures; "
        "last failure: HTTP 500: model crashed))"
    )
    assert (almost[0], almost[1]["Retry-After"]) == (503, "1")
    status, headers, body = mixed
    assert (status, headers["Retry-After"]) == (503, "1")
    assert "x-should-retry" not in headers
    assert body["error"]["message"].splitlines()[2] == (
        f"  locked: skipped (missing credentials: environment variable {UNSET} is not set)"
    )
    assert len(a.requests) == 1


async def test_a_rate_limited_skip_keeps_its_retry_after(
    ups: tuple[FakeUpstream, FakeUpstream],
) -> None:
    a, b = ups
    a.script(Reply.error(429, "slow down", retry_after="7"))
    health = MemoryHealthStore(clock=Clock())
    async with gateway(config_text(a, b), health) as url:
        first = await ask(url, "a")
        again = await ask(url, "a")
    for status, headers, body in (first, again):
        assert (status, headers["Retry-After"]) == (429, "7")
        assert body["error"]["code"] == "rate_limit_exceeded"
    assert "slow down" in again[2]["error"]["message"]
    assert len(a.requests) == 1


async def test_the_sdk_waits_out_a_cooldown(
    ups: tuple[FakeUpstream, FakeUpstream], caplog: pytest.LogCaptureFixture
) -> None:
    """The SDK retries a cooling-down 503 after its Retry-After (2 s here). Its own backoff
    (under 1 s) would come back before the 1.2 s cooldown is over and get the 503 again, so with
    one retry allowed only honouring Retry-After can succeed."""
    a, b = ups
    a.script(Reply.error(500, "model crashed"), Reply.text("recovered"))
    health = MemoryHealthStore(failure_threshold=1, cooldown=1.2)
    caplog.set_level(logging.INFO, logger="providerhub.server")
    async with (
        gateway(config_text(a, b), health) as url,
        openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=1) as client,
    ):
        assert (await ask(url, "a"))[0] == 502
        completion = await client.chat.completions.create(model="a", messages=HELLO)
    assert completion.choices[0].message.content == "recovered"
    assert hits(caplog) == ["502", "503", "200"]
    assert len(a.requests) == 2


@pytest.mark.parametrize(
    ("model", "reply", "status"),
    [
        ("locked", None, 503),
        ("codelinkava", None, 503),
        ("a", Reply.error(401, "bad key"), 502),
        ("a", Reply.error(400, "bad parameter"), 400),
        ("nothing", None, 404),
    ],
    ids=["missing credentials", "not working", "upstream 401", "request fault", "unknown model"],
)
async def test_the_sdk_does_not_retry_what_cannot_heal(
    ups: tuple[FakeUpstream, FakeUpstream],
    caplog: pytest.LogCaptureFixture,
    model: str,
    reply: Reply | None,
    status: int,
) -> None:
    a, b = ups
    if reply is not None:
        a.script(reply, reply, reply, reply)
    caplog.set_level(logging.INFO, logger="providerhub.server")
    async with (
        gateway(config_text(a, b), MemoryHealthStore()) as url,
        openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=3) as client,
    ):
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model=model, messages=HELLO)
    assert caught.value.status_code == status
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert "retry-after" not in caught.value.response.headers
    assert hits(caplog) == [str(status)]
    assert len(a.requests) == (reply is not None)
    assert b.requests == []


async def test_a_full_provider_is_503_at_capacity(ups: tuple[FakeUpstream, FakeUpstream]) -> None:
    """Its place comes back when the request holding it goes away; the refusal may heal, so it
    does not say x-should-retry: false, and it names no wait (none is known)."""
    a, b = ups
    b.script(Reply.hang())
    health = MemoryHealthStore()
    async with gateway(config_text(a, b), health) as url:
        holding = asyncio.create_task(ask(url, "capped"))
        await until(lambda: b.requests)
        status, headers, body = await ask(url, "capped")
        holding.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holding
        await until(lambda: health.in_flight("capped") == 0)
        b.script(Reply.text("free again"))
        served = await ask(url, "capped")
    assert status == 503
    assert body["error"]["message"] == (
        "all providers failed:\n  capped: skipped (at capacity: 1 in flight, its max_concurrent)"
    )
    assert "x-should-retry" not in headers and "Retry-After" not in headers
    assert served[0] == 200
    assert served[2]["choices"][0]["message"]["content"] == "free again"
