"""Provider health: circuit breaker, Retry-After cooldowns, half-open probes, latency estimates."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from providerhub import FallbackChain, HealthStore, MemoryHealthStore, default_health_store
from providerhub.testing import FakeUpstream, Reply
from providerhub_codelinkava import CodeLinkAva

MakeUpstream = Callable[..., Awaitable[FakeUpstream]]
MESSAGES = [{"role": "user", "content": "hi"}]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def provider(name: str, upstream: FakeUpstream, **attrs: Any) -> type[CodeLinkAva]:
    url = upstream.url + "/api/chat"
    return type(name, (CodeLinkAva,), {"name": name, "working": True, "api_url": url, **attrs})


def test_circuit_opens_after_consecutive_failures_then_lets_one_probe() -> None:
    clock = Clock()
    store = MemoryHealthStore(failure_threshold=3, cooldown=10, clock=clock)
    assert isinstance(store, HealthStore)
    store.failure("a")
    store.failure("a")
    assert store.admit("a") is None
    store.failure("a")
    assert (
        store.admit("a") == "cooling down, 10.0s left (circuit open after 3 consecutive failures)"
    )
    clock.now += 10
    assert store.admit("a") is None
    assert store.admit("a") == (
        "cooling down, probe in flight (circuit open after 3 consecutive failures)"
    )
    store.failure("a")
    assert (
        store.admit("a") == "cooling down, 20.0s left (circuit open after 4 consecutive failures)"
    )
    clock.now += 20
    assert store.admit("a") is None
    store.success("a", 0.2)
    assert store.admit("a") is None and store.admit("a") is None


def test_success_resets_the_failure_count() -> None:
    store = MemoryHealthStore(failure_threshold=2, clock=Clock())
    store.failure("a")
    store.success("a", None)
    store.failure("a")
    assert store.admit("a") is None


def test_released_probe_lets_the_next_caller_probe() -> None:
    clock = Clock()
    store = MemoryHealthStore(failure_threshold=1, cooldown=5, clock=clock)
    store.failure("a")
    clock.now += 5
    assert store.admit("a") is None
    store.release("a")
    assert store.admit("a") is None


def test_retry_after_sets_the_cooldown_capped() -> None:
    clock = Clock()
    store = MemoryHealthStore(max_retry_after=60, clock=clock)
    store.failure("a", retry_after=2.5)
    assert store.admit("a") == "cooling down, 2.5s left (rate limited, Retry-After 2.5s)"
    store.failure("b", retry_after=10**6)
    clock.now += 60
    assert store.admit("b") is None


def test_cooldown_doubles_up_to_the_maximum() -> None:
    clock = Clock()
    store = MemoryHealthStore(failure_threshold=1, cooldown=10, max_cooldown=25, clock=clock)
    waits = []
    for _ in range(4):
        store.failure("a")
        reason = store.admit("a")
        assert reason is not None
        waits.append(reason.split(", ")[1])
        clock.now += 100
        assert store.admit("a") is None
    assert waits == ["10.0s left (circuit open after 1 consecutive failures)"] + [
        f"{s}s left (circuit open after {n} consecutive failures)"
        for s, n in (("20.0", 2), ("25.0", 3), ("25.0", 4))
    ]


def test_latency_is_a_moving_average() -> None:
    store = MemoryHealthStore(latency_weight=0.5)
    assert store.latency("a") is None
    store.success("a", 1.0)
    store.success("a", 0.0)
    store.success("a", 0.5)
    assert store.latency("a") == pytest.approx(0.5)


def test_bad_settings_and_shared_default() -> None:
    with pytest.raises(ValueError):
        MemoryHealthStore(failure_threshold=0)
    with pytest.raises(ValueError):
        MemoryHealthStore(latency_weight=0)
    assert default_health_store() is default_health_store()


async def test_retry_after_skips_without_request_then_probes(fake_upstream: MakeUpstream) -> None:
    limited = await fake_upstream(
        Reply.error(429, "slow down", retry_after="30"), default=Reply.text("limited ok")
    )
    backup = await fake_upstream(default=Reply.text("backup"))
    clock = Clock()
    chain = FallbackChain(
        [provider("limited", limited), provider("backup", backup)],
        health=MemoryHealthStore(clock=clock),
    )
    assert await chain.create_async("", MESSAGES) == "backup"
    stream = chain.stream("", MESSAGES)
    assert await stream.text() == "backup"
    assert (stream.attempts[0].outcome, stream.attempts[0].reason) == (
        "skipped",
        "cooling down, 30.0s left (rate limited, Retry-After 30s)",
    )
    assert len(limited.requests) == 1
    clock.now += 30
    results = await asyncio.gather(*(chain.create_async("", MESSAGES) for _ in range(3)))
    assert sorted(results) == ["backup", "backup", "limited ok"]
    assert len(limited.requests) == 2
    assert await chain.create_async("", MESSAGES) == "limited ok"


async def test_circuit_breaker_in_a_chain(fake_upstream: MakeUpstream) -> None:
    broken = await fake_upstream(default=Reply.error(503))
    backup = await fake_upstream(default=Reply.text("backup"))
    clock = Clock()
    chain = FallbackChain(
        [provider("broken", broken), provider("backup", backup)],
        health=MemoryHealthStore(failure_threshold=2, cooldown=5, clock=clock),
    )
    for _ in range(4):
        assert await chain.create_async("", MESSAGES) == "backup"
    assert len(broken.requests) == 2
    clock.now += 5
    stream = chain.stream("", MESSAGES)
    assert await stream.text() == "backup"
    assert [a.outcome for a in stream.attempts] == ["failed", "served"]
    assert len(broken.requests) == 3
    stream = chain.stream("", MESSAGES)
    assert await stream.text() == "backup"
    assert stream.attempts[0].reason.startswith("cooling down, 10.0s left")


async def test_request_faults_do_not_open_the_circuit(fake_upstream: MakeUpstream) -> None:
    picky = await fake_upstream(default=Reply.error(400, "bad parameter"))
    backup = await fake_upstream(default=Reply.text("backup"))
    chain = FallbackChain(
        [provider("picky", picky), provider("backup", backup)],
        health=MemoryHealthStore(failure_threshold=1),
    )
    for _ in range(3):
        assert await chain.create_async("", MESSAGES) == "backup"
    assert len(picky.requests) == 3


async def test_retry_after_as_http_date(fake_upstream: MakeUpstream) -> None:
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    limited = await fake_upstream(Reply.error(429, retry_after=when), default=Reply.text("no"))
    backup = await fake_upstream(default=Reply.text("backup"))
    chain = FallbackChain(
        [provider("limited", limited), provider("backup", backup)], health=MemoryHealthStore()
    )
    assert await chain.create_async("", MESSAGES) == "backup"
    stream = chain.stream("", MESSAGES)
    assert await stream.text() == "backup"
    reason = stream.attempts[0].reason
    left = float(reason.removeprefix("cooling down, ").split("s left")[0])
    assert 100 < left <= 121 and "(rate limited, Retry-After 1" in reason
    assert len(limited.requests) == 1
