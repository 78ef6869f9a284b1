"""`GET /metrics` over real sockets, parsed with prometheus-client's own parser: after a known
sequence of requests through real providers at FakeUpstreams, every count is exactly what was
sent (requests by route and status, attempts by provider and outcome, skips by reason,
histogram counts), circuits are the store's, and streams in flight are counted while one is.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from helpers import BOUND
from prometheus_client.parser import text_string_to_metric_families
from providerhub import FallbackChain, MemoryHealthStore, Registry
from providerhub.config import ConfigError, parse_config
from providerhub.errors import AllProvidersFailedError, AtCapacityError
from providerhub.routing import policy
from providerhub.routing.health import Ticket
from providerhub.server import create_app, start
from providerhub.testing import FakeUpstream, Reply
from routing_helpers import MESSAGES, ProviderObject, consume
from test_server import HELLO, post

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def config_text(a: FakeUpstream, b: FakeUpstream, c: FakeUpstream, server: str) -> str:
    providers = "".join(
        f'[providers.{name}]\nuse = "openai"\nbase_url = "{up.url}/v1"\n'
        f'default_model = "model-{name}"\n\n'
        for name, up in (("a", a), ("b", b), ("c", c))
    )
    return (
        f'{providers}[chains.main]\nproviders = ["CodeLinkAva", "b", "a"]\n\n'
        f'[chains.outer]\nproviders = ["main"]\n\n'
        f"[server]\n{server}\n[health]\nfailure_threshold = 2\ncooldown = 60\n"
    )


@asynccontextmanager
async def gateway(text: str, *, api_key: str | None = None) -> AsyncIterator[str]:
    """The config's gateway (its health store built from `[health]`) on a free port."""
    config = parse_config(text)
    app = create_app(config.build_registry(Registry.discover()), config, api_key=api_key)
    runner, url = await start(app, "127.0.0.1", 0, grace=0.5)
    try:
        yield url
    finally:
        await runner.cleanup()


async def get(url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with (
        asyncio.timeout(BOUND),
        aiohttp.ClientSession() as session,
        session.get(f"{url}{path}", headers=headers) as response,
    ):
        return response.status, await response.text()


async def scrape(url: str) -> tuple[Samples, dict[str, str]]:
    """Every sample of `/metrics` by (name, sorted labels), and each family's type."""
    async with (
        asyncio.timeout(BOUND),
        aiohttp.ClientSession() as session,
        session.get(f"{url}/metrics") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = await response.text()
    samples: Samples = {}
    types = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, types


def values(samples: Samples, name: str, *labels: str) -> dict[tuple[str, ...], float]:
    """The samples called `name`, by the values of `labels`."""
    found = {}
    for (sample, pairs), value in samples.items():
        if sample == name:
            by_name = dict(pairs)
            found[tuple(by_name[label] for label in labels)] = value
    return found


@pytest.fixture
async def ups(fake_upstream: Any) -> tuple[FakeUpstream, FakeUpstream, FakeUpstream]:
    return (
        await fake_upstream(default=Reply.text("from ", "a")),
        await fake_upstream(),
        await fake_upstream(),
    )


async def test_metrics_count_exactly_what_was_sent(
    ups: tuple[FakeUpstream, FakeUpstream, FakeUpstream],
) -> None:
    a, b, c = ups
    b.script(Reply.error(500, "model crashed"), Reply.error(500, "model crashed"))
    c.script(Reply.error(429, "slow down", retry_after="30"))
    async with gateway(config_text(a, b, c, "metrics = true\n")) as url:
        # main: CodeLinkAva skipped (not working), b fails, a serves; the second failure
        # opens b's circuit, so the third request skips b (cooling down).
        assert (await post(url, {"model": "main", "messages": HELLO}))[0] == 200
        assert (await post(url, {"model": "main", "messages": HELLO, "stream": True}))[0] == 200
        assert (await post(url, {"model": "outer", "messages": HELLO}))[0] == 200
        assert (await post(url, {"model": "b", "messages": HELLO}))[0] == 503
        assert (await post(url, {"model": "c", "messages": HELLO}))[0] == 429
        assert (await post(url, {"model": "c", "messages": HELLO}))[0] == 429
        assert (await post(url, {"model": "nope", "messages": HELLO}))[0] == 404
        assert (await get(url, "/v1/models"))[0] == 200
        assert (await get(url, "/v1/models/a"))[0] == 200
        assert (await get(url, "/no/such/path"))[0] == 404
        samples, types = await scrape(url)
        again, _ = await scrape(url)

    assert values(samples, "providerhub_requests_total", "route", "status") == {
        ("/v1/chat/completions", "200"): 3,
        ("/v1/chat/completions", "503"): 1,
        ("/v1/chat/completions", "429"): 2,
        ("/v1/chat/completions", "404"): 1,
        ("/v1/models", "200"): 1,
        ("/v1/models/{id}", "200"): 1,
        ("unmatched", "404"): 1,
    }
    assert values(again, "providerhub_requests_total", "route", "status")[("/metrics", "200")] == 1
    # The nested chain's attempts count as its members' (CodeLinkAva, b, a), never as "main".
    assert values(samples, "providerhub_attempts_total", "provider", "outcome") == {
        ("a", "served"): 3,
        ("b", "failed"): 2,
        ("c", "failed"): 1,
    }
    assert values(samples, "providerhub_skips_total", "provider", "reason") == {
        ("CodeLinkAva", "not_working"): 3,
        ("b", "cooling_down"): 2,
        ("c", "rate_limited"): 1,
    }
    first_chunk = "providerhub_time_to_first_chunk_seconds"
    duration = "providerhub_attempt_duration_seconds"
    assert values(samples, f"{first_chunk}_count", "provider") == {("a",): 3}
    assert values(samples, f"{duration}_count", "provider") == {("a",): 3, ("b",): 2, ("c",): 1}
    for name, provider, count in ((first_chunk, "a", 3), (duration, "b", 2)):
        buckets = values(samples, f"{name}_bucket", "provider", "le")
        own = [value for (who, _), value in buckets.items() if who == provider]
        assert own == sorted(own) and buckets[(provider, "+Inf")] == count
        assert 0 < samples[(f"{name}_sum", (("provider", provider),))] < BOUND * count
    assert values(samples, "providerhub_circuit_open", "provider") == {
        ("CodeLinkAva",): 0,
        ("a",): 0,
        ("b",): 1,
        ("c",): 1,
    }
    assert samples[("providerhub_streams_in_flight", ())] == 0
    assert {name: kind for name, kind in types.items() if not name.endswith("_created")} == {
        "providerhub_requests": "counter",
        "providerhub_attempts": "counter",
        "providerhub_skips": "counter",
        first_chunk: "histogram",
        duration: "histogram",
        "providerhub_circuit_open": "gauge",
        "providerhub_streams_in_flight": "gauge",
    }
    assert len(a.requests) == 3 and len(b.requests) == 2 and len(c.requests) == 1


async def test_a_stream_in_flight_is_counted_until_its_client_goes_away(
    ups: tuple[FakeUpstream, FakeUpstream, FakeUpstream],
) -> None:
    """An upstream that sends one chunk and then nothing: the stream is in flight (and its
    attempt not counted yet) until the client leaves; then it is a 499 and a served attempt."""
    a, b, c = ups
    a.script(Reply.hang_after_chunks("first"))
    body = {"model": "a", "messages": HELLO, "stream": True}
    async with gateway(config_text(a, b, c, "metrics = true\n")) as url:
        async with (
            asyncio.timeout(BOUND),
            aiohttp.ClientSession() as session,
            session.post(f"{url}/v1/chat/completions", json=body) as response,
        ):
            while b"first" not in await response.content.readuntil(b"\n\n"):
                pass
            during, _ = await scrape(url)
        gone = (
            "providerhub_requests_total",
            (("route", "/v1/chat/completions"), ("status", "499")),
        )
        async with asyncio.timeout(BOUND):  # the access log counts the request last
            while gone not in (after := (await scrape(url))[0]):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    assert after[gone] == 1 and after[("providerhub_streams_in_flight", ())] == 0
    assert during[("providerhub_streams_in_flight", ())] == 1
    assert values(during, "providerhub_attempts_total", "provider", "outcome") == {}
    assert values(after, "providerhub_attempts_total", "provider", "outcome") == {
        ("a", "served"): 1
    }
    assert values(after, "providerhub_time_to_first_chunk_seconds_count", "provider") == {("a",): 1}


async def test_metrics_are_off_by_default(
    ups: tuple[FakeUpstream, FakeUpstream, FakeUpstream],
) -> None:
    async with gateway(config_text(*ups, "")) as url:
        status, body = await get(url, "/metrics")
    assert status == 404
    assert "unknown endpoint GET /metrics" in body and "GET /metrics" not in body.split(";")[1]


async def test_metrics_need_no_api_key_and_the_404_names_the_route(
    ups: tuple[FakeUpstream, FakeUpstream, FakeUpstream],
) -> None:
    """Scrapers send no app key: /metrics is outside /v1/, like /healthz; /v1/ still needs it."""
    async with gateway(config_text(*ups, "metrics = true\n"), api_key="sk-gateway-12345") as url:
        samples, _ = await scrape(url)
        assert (await get(url, "/v1/models"))[0] == 401
        status, body = await get(url, "/nothing")
        again, _ = await scrape(url)
    assert samples[("providerhub_streams_in_flight", ())] == 0
    assert status == 404 and body.count("GET /metrics") == 1
    requests = values(again, "providerhub_requests_total", "route", "status")
    assert requests == {("/metrics", "200"): 1, ("/v1/models", "401"): 1, ("unmatched", "404"): 1}


def test_metrics_setting_is_validated_and_shown() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('[server]\nmetrics = "yes"\n', "p.toml")
    assert str(caught.value) == "p.toml [server]: 'metrics' must be true or false, not 'yes'"
    config = parse_config("[server]\nmetrics = true\n", "p.toml")
    assert config.server.metrics is True
    assert "\nmetrics = true\n" in config.render()
    assert parse_config(config.render()).server == config.server
    assert "metrics" not in parse_config("").render()


def test_metrics_without_prometheus_client_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "providerhub.server.metrics", raising=False)
    config = parse_config("[server]\nmetrics = true\n", "p.toml")
    with pytest.raises(ConfigError) as caught:
        create_app(Registry(), config)
    assert str(caught.value) == (
        "p.toml [server]: 'metrics' = true needs prometheus-client: "
        "pip install 'providerhub[metrics]'"
    )
    assert caught.value.key == "metrics"


class Named(ProviderObject):
    """A provider object answering "ok", with the metadata each skip below needs."""

    def __init__(self, name: str, **attrs: Any) -> None:
        self.name = name
        vars(self).update(attrs)

    async def create_async_generator(
        self, model: str, messages: Any, **kwargs: Any
    ) -> AsyncIterator[str]:
        yield "ok"


async def test_each_skip_says_its_kind() -> None:
    """`Attempt.skipped_for`, which the skip counter's `reason` is: the policy's kinds, the
    health store's refusals, the deadline."""
    store = MemoryHealthStore(failure_threshold=1)
    for name, retry_after in (("cool", None), ("limited", 30.0)):
        ticket = store.admit_now(name)
        assert isinstance(ticket, Ticket)
        store.failure(ticket, retry_after, "HTTP 500")
    assert isinstance(store.admit_now("fresh"), Ticket)  # its one trial, held
    members = [
        Named("off", working=False),
        Named("picky", supports_model=lambda model: False),
        Named("keyless", needs_auth=True, missing_credentials=lambda: "KEY is not set"),
        Named("cool"),
        Named("limited"),
        Named("fresh"),
        Named("good"),
    ]
    stream = FallbackChain(members, health=store).stream("m", MESSAGES)
    assert await consume(stream) == "ok"
    kinds = [(attempt.provider, attempt.skipped_for) for attempt in stream.attempts]
    assert kinds == [
        ("off", "not working"),
        ("picky", "model"),
        ("keyless", "credentials"),
        ("cool", "cooling down"),
        ("limited", "rate limited"),
        ("fresh", "unproven"),
        ("good", ""),
    ]
    assert policy.refused(AtCapacityError("full", 4)) == "at capacity"
    members = [Named("slow", create_async_generator=_never), Named("next")]
    late = FallbackChain(members, health=MemoryHealthStore())
    with pytest.raises(AllProvidersFailedError) as caught:
        await consume(late.stream("m", MESSAGES, deadline=0.05))
    skipped = [(a.provider, a.outcome, a.skipped_for) for a in caught.value.attempts]
    assert skipped == [("slow", "failed", ""), ("next", "skipped", "deadline")]


async def _never(model: str, messages: Any, **kwargs: Any) -> AsyncIterator[str]:
    await asyncio.Event().wait()
    yield ""
