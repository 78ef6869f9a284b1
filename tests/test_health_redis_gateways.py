"""Two real `providerhub serve` processes with one config and one real redis-server: what one
learns of a provider's health the other respects, exactly one probe goes after a cooldown, and
both keep serving while Redis is gone and share again once it is back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from helpers import BOUND
from providerhub.routing.redis_health import RedisHealthStore
from providerhub.testing import FakeUpstream, Reply
from redis_helpers import RedisServer
from test_server import HELLO
from test_server_cli import _serve, listening

NAMES = ("a", "b", "c", "d", "e")


def config(upstreams: dict[str, FakeUpstream], redis_url: str) -> str:
    providers = "".join(
        f'[providers.{name}]\nuse = "openai"\nbase_url = "{up.url}/v1"\n'
        f'default_model = "model-{name}"\n\n'
        for name, up in upstreams.items()
    )
    return (
        f'{providers}[health]\nstore = "redis"\nurl = "{redis_url}"\nfailure_threshold = 2\n'
        # Generous: these tests are about sharing; a loaded machine must not make them fall back.
        "cooldown = 1\ntimeout = 2\n"
    )


class Gateways:
    """The two gateways' URLs, a store on the same Redis to read the shared state, upstreams."""

    def __init__(
        self, urls: list[str], upstreams: dict[str, FakeUpstream], shared: RedisHealthStore
    ) -> None:
        self.urls = urls
        self.upstreams = upstreams
        self.shared = shared

    async def ask(self, gateway: int, model: str) -> tuple[int, str]:
        """POST a chat completion for `model` to gateway 0 or 1: status and body."""
        async with (
            asyncio.timeout(BOUND),
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.urls[gateway]}/v1/chat/completions",
                json={"model": model, "messages": HELLO},
            ) as response,
        ):
            return response.status, await response.text()


@pytest_asyncio.fixture
async def gateways(
    tmp_path: Path, fake_upstream: Any, redis_server: RedisServer
) -> AsyncIterator[Gateways]:
    upstreams = {name: await fake_upstream(default=Reply.text(f"from {name}")) for name in NAMES}
    path = tmp_path / "providerhub.toml"
    path.write_text(config(upstreams, redis_server.url))
    async with serving(path, upstreams, redis_server.url) as started:
        yield started


@asynccontextmanager
async def serving(
    path: Path, upstreams: dict[str, FakeUpstream], redis_url: str
) -> AsyncIterator[Gateways]:
    """Two `providerhub serve` processes with the config at `path`, killed at the end."""
    processes = [await _serve(path), await _serve(path)]
    shared = RedisHealthStore(redis_url)
    try:
        urls = [await listening(proc) for proc in processes]
        yield Gateways(urls, upstreams, shared)
    finally:
        await shared.aclose()
        for proc in processes:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()


def answer(body: str) -> str:
    """The text of a chat completion's body."""
    text: str = json.loads(body)["choices"][0]["message"]["content"]
    return text


async def circuit(shared: RedisHealthStore, provider: str, wanted: str) -> None:
    async with asyncio.timeout(BOUND):
        while (await shared.snapshot(provider)).circuit != wanted:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_a_circuit_opened_through_one_gateway_is_respected_by_the_other(
    gateways: Gateways,
) -> None:
    """Two failures through gateway 0 open a's circuit; gateway 1 then refuses a without a
    request; after the cooldown exactly one probe goes, across both gateways, and its success
    closes the circuit for both."""
    a = gateways.upstreams["a"]
    a.script(Reply.error(500, "model crashed"), Reply.error(500, "model crashed"))
    for _ in range(2):
        status, _ = await gateways.ask(0, "a")
        assert status == 502
    await circuit(gateways.shared, "a", "open")
    status, body = await gateways.ask(1, "a")
    assert status == 503
    assert "cooling down" in body and "HTTP 500" in body
    assert len(a.requests) == 2
    await circuit(gateways.shared, "a", "half-open")
    a.script(Reply.text("probe ", "ok", delay=0.3))
    answers = await asyncio.gather(*(gateways.ask(n % 2, "a") for n in range(6)))
    assert sorted(status for status, _ in answers) == [200, 503, 503, 503, 503, 503]
    assert len(a.requests) == 3
    await circuit(gateways.shared, "a", "closed")
    for gateway in (0, 1):
        status, body = await gateways.ask(gateway, "a")
        assert (status, answer(body)) == (200, "from a")


async def test_a_retry_after_seen_through_one_gateway_cools_the_provider_for_both(
    gateways: Gateways,
) -> None:
    b = gateways.upstreams["b"]
    b.script(Reply.error(429, "slow down", retry_after="30"))
    status, _ = await gateways.ask(0, "b")
    assert status == 429
    await circuit(gateways.shared, "b", "open")
    status, body = await gateways.ask(1, "b")
    assert status == 429
    assert "rate limited, Retry-After 30s" in body
    assert len(b.requests) == 1


async def test_both_serve_while_redis_is_down_and_share_again_when_it_returns(
    gateways: Gateways, redis_server: RedisServer
) -> None:
    """Redis killed: both gateways keep answering (each request within the hang guard); Redis
    restarted (empty): once each gateway talks to it again, a circuit opened through one is
    respected by the other."""
    redis_server.stop()
    for _ in range(3):
        for gateway in (0, 1):
            status, body = await gateways.ask(gateway, "c")
            assert (status, answer(body)) == (200, "from c")
    redis_server.start()
    for gateway, probe in ((0, "c"), (1, "e")):
        async with asyncio.timeout(BOUND * 2):
            while (await gateways.shared.snapshot(probe)).latency is None:
                assert (await gateways.ask(gateway, probe))[0] == 200
                await asyncio.sleep(0.1)
    d = gateways.upstreams["d"]
    d.script(Reply.error(500, "down"), Reply.error(500, "down"))
    for _ in range(2):
        assert (await gateways.ask(0, "d"))[0] == 502
    await circuit(gateways.shared, "d", "open")
    assert (await gateways.ask(1, "d"))[0] == 503
    assert len(d.requests) == 2
