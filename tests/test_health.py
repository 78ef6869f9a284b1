"""Provider health: circuit breaker, Retry-After cooldowns, half-open probes, latency estimates."""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any

import pytest
from helpers import MakeUpstream
from providerhub import (
    CoolingDownError,
    FallbackChain,
    HealthStore,
    InvalidRequestError,
    MemoryHealthStore,
    MissingCredentialsError,
    StreamInterruptedError,
    default_health_store,
)
from providerhub.routing.health import ProviderHealth, Ticket
from providerhub.routing.policy import unhealthy
from providerhub.testing import Reply
from routing_helpers import MESSAGES, Clock, ProviderObject, admitted, provider


def test_circuit_opens_after_consecutive_failures_then_lets_one_probe() -> None:
    clock = Clock()
    store = MemoryHealthStore(failure_threshold=3, cooldown=10, clock=clock)
    assert isinstance(store, HealthStore)
    store.failure(Ticket("a"))
    store.failure(Ticket("a"))
    assert admitted(store, "a")
    store.failure(Ticket("a"))
    assert (
        str(store.admit_now("a"))
        == "cooling down, 10.0s left (circuit open after 3 consecutive failures)"
    )
    clock.now += 10
    probe = store.admit_now("a")
    assert isinstance(probe, Ticket) and probe.probe
    assert str(store.admit_now("a")) == (
        "cooling down, probe in flight (circuit open after 3 consecutive failures)"
    )
    store.failure(probe)
    assert (
        str(store.admit_now("a"))
        == "cooling down, 20.0s left (circuit open after 4 consecutive failures)"
    )
    clock.now += 20
    probe = store.admit_now("a")
    assert isinstance(probe, Ticket) and probe.probe
    store.success(probe)
    first, second = store.admit_now("a"), store.admit_now("a")
    assert isinstance(first, Ticket) and isinstance(second, Ticket)
    assert not first.probe and not second.probe


def test_success_resets_the_failure_count() -> None:
    store = MemoryHealthStore(failure_threshold=2, clock=Clock())
    store.failure(Ticket("a"))
    store.success(Ticket("a"))
    store.failure(Ticket("a"))
    assert admitted(store, "a")


def test_released_probe_lets_the_next_caller_probe() -> None:
    clock = Clock()
    store = MemoryHealthStore(failure_threshold=1, cooldown=5, clock=clock)
    store.failure(Ticket("a"))
    clock.now += 5
    probe = store.admit_now("a")
    assert isinstance(probe, Ticket) and probe.probe
    store.release(probe)
    assert admitted(store, "a")


def test_only_the_probe_frees_the_probe_slot() -> None:
    clock = Clock()
    store = MemoryHealthStore(failure_threshold=1, cooldown=5, clock=clock)
    early = store.admit_now("a")
    assert isinstance(early, Ticket) and not early.probe
    store.failure(Ticket("a"))
    clock.now += 5
    probe = store.admit_now("a")
    assert isinstance(probe, Ticket) and probe.probe
    store.release(early)
    store.failure(early)
    refusal = store.admit_now("a")
    assert isinstance(refusal, CoolingDownError) and refusal.seconds_left is None
    assert (
        str(refusal) == "cooling down, probe in flight (circuit open after 1 consecutive failures)"
    )
    store.success(probe)
    assert admitted(store, "a")


def test_failures_while_open_do_not_extend_the_cooldown() -> None:
    clock = Clock()
    store = MemoryHealthStore(failure_threshold=1, cooldown=10, clock=clock)
    store.first_chunk("a", 0.1)  # it answers, so it takes any number of requests
    tickets = [store.admit_now("a") for _ in range(4)]
    for ticket in tickets:
        assert isinstance(ticket, Ticket)
        store.failure(ticket)
    assert (
        str(store.admit_now("a"))
        == "cooling down, 10.0s left (circuit open after 1 consecutive failures)"
    )
    clock.now += 5
    assert (
        str(store.admit_now("a"))
        == "cooling down, 5.0s left (circuit open after 1 consecutive failures)"
    )


def test_retry_after_sets_the_cooldown_capped() -> None:
    clock = Clock()
    store = MemoryHealthStore(max_retry_after=60, clock=clock)
    store.failure(Ticket("a"), retry_after=2.5)
    refusal = store.admit_now("a")
    assert isinstance(refusal, CoolingDownError) and refusal.rate_limited
    assert (refusal.provider, refusal.seconds_left) == ("a", 2.5)
    assert str(refusal) == "cooling down, 2.5s left (rate limited, Retry-After 2.5s)"
    store.failure(Ticket("b"), retry_after=10**6)
    clock.now += 60
    assert admitted(store, "b")


def test_cooldown_doubles_up_to_the_maximum() -> None:
    clock = Clock()
    store = MemoryHealthStore(failure_threshold=1, cooldown=10, max_cooldown=25, clock=clock)
    waits = []
    ticket = store.admit_now("a")
    for _ in range(4):
        assert isinstance(ticket, Ticket)
        store.failure(ticket)
        refusal = store.admit_now("a")
        assert isinstance(refusal, CoolingDownError) and not refusal.rate_limited
        waits.append(str(refusal).split(", ")[1])
        clock.now += 100
        ticket = store.admit_now("a")
        assert isinstance(ticket, Ticket) and ticket.probe
    assert waits == ["10.0s left (circuit open after 1 consecutive failures)"] + [
        f"{s}s left (circuit open after {n} consecutive failures)"
        for s, n in (("20.0", 2), ("25.0", 3), ("25.0", 4))
    ]


def test_latency_is_a_moving_average() -> None:
    store = MemoryHealthStore(latency_weight=0.5)
    assert store.latency("a") is None
    store.first_chunk("a", 1.0)
    store.first_chunk("a", 0.0)
    store.first_chunk("a", 0.5)
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
    skip = stream.attempts[0]
    assert skip.outcome == "skipped"
    assert skip.reason == (
        "cooling down, 30.0s left (rate limited, Retry-After 30s; "
        "last failure: HTTP 429: slow down)"
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


async def test_bad_transport_option_is_rejected_before_any_request(
    fake_upstream: MakeUpstream,
) -> None:
    upstream = await fake_upstream(default=Reply.text("ok"))
    health = MemoryHealthStore(failure_threshold=1)
    chain = FallbackChain([provider("a", upstream), provider("b", upstream)], health=health)
    for _ in range(3):
        with pytest.raises(InvalidRequestError, match="proxy must be a URL string, not int"):
            chain.stream("", MESSAGES, proxy=123)
        with pytest.raises(InvalidRequestError, match="timeout must be a positive number"):
            chain.stream("", MESSAGES, timeout=-1)
    assert upstream.requests == []
    assert await chain.create_async("", MESSAGES) == "ok"
    assert admitted(health, "a") and admitted(health, "b")


class Misconfigured(ProviderObject):
    """A provider that rejects every request as the caller's fault."""

    name = "misconfigured"

    def create_async_generator(self, model: str, messages: Any, **kwargs: Any) -> Any:
        raise InvalidRequestError("bad argument")


async def test_caller_faults_do_not_open_the_circuit(fake_upstream: MakeUpstream) -> None:
    assert not unhealthy(InvalidRequestError("x"))
    assert not unhealthy(MissingCredentialsError("p", "KEY"))
    assert unhealthy(RuntimeError("plugin bug"))
    backup = await fake_upstream(default=Reply.text("backup"))
    health = MemoryHealthStore(failure_threshold=1)
    chain = FallbackChain([Misconfigured(), provider("backup", backup)], health=health)
    for _ in range(3):
        stream = chain.stream("", MESSAGES)
        assert await stream.text() == "backup"
        assert [(a.outcome, a.reason) for a in stream.attempts] == [
            ("failed", "bad argument"),
            ("served", ""),
        ]
    assert admitted(health, "misconfigured")


async def test_a_provider_that_always_cuts_opens_its_circuit(fake_upstream: MakeUpstream) -> None:
    cutter = await fake_upstream(default=Reply.close_after_chunks("one "))
    health = MemoryHealthStore(failure_threshold=3)
    chain = FallbackChain([provider("cutter", cutter)], health=health)
    for _ in range(3):
        with pytest.raises(StreamInterruptedError):
            await chain.create_async("", MESSAGES)
    assert health.latency("cutter") is not None
    refusal = health.admit_now("cutter")
    assert isinstance(refusal, CoolingDownError)
    assert "(circuit open after 3 consecutive failures; last failure: connection closed" in str(
        refusal
    )
    assert len(cutter.requests) == 3


async def test_retries_stop_at_an_open_circuit(fake_upstream: MakeUpstream) -> None:
    bad = await fake_upstream(default=Reply.error(503))
    good = await fake_upstream(default=Reply.text("ok"))
    clock = Clock()
    health = MemoryHealthStore(failure_threshold=1, cooldown=5, clock=clock)
    chain = FallbackChain(
        [provider("p", bad), provider("g", good)], health=health, retries=3, backoff=0.01
    )
    stream = chain.stream("", MESSAGES)
    assert await stream.text() == "ok"
    assert [(a.provider, a.outcome, a.try_number) for a in stream.attempts] == [
        ("p", "failed", 1),
        ("g", "served", 1),
    ]
    assert len(bad.requests) == 1
    assert str(health.admit_now("p")).startswith(
        "cooling down, 5.0s left (circuit open after 1 consecutive failures; last failure: HTTP 503"
    )
    clock.now += 5
    stream = chain.stream("", MESSAGES)
    assert await stream.text() == "ok"
    assert [(a.provider, a.outcome, a.try_number) for a in stream.attempts] == [
        ("p", "failed", 1),
        ("g", "served", 1),
    ]
    assert len(bad.requests) == 2
    assert str(health.admit_now("p")).startswith(
        "cooling down, 10.0s left (circuit open after 2 consecutive failures; last failure: HTTP"
    )


async def test_nested_members_are_counted_once(fake_upstream: MakeUpstream) -> None:
    bad = await fake_upstream(default=Reply.error(500))
    good = await fake_upstream(default=Reply.text("ok"))
    health = MemoryHealthStore(failure_threshold=2)
    inner = FallbackChain([provider("bad", bad), provider("good", good)], health=health)
    outer = FallbackChain([inner], health=health, name="outer")
    assert await outer.create_async("", MESSAGES) == "ok"
    assert admitted(health, "bad")
    assert health.latency(inner.name) is None
    assert outer.latency() == health.latency("good")


def test_snapshot_shows_the_circuit_its_cooldown_last_failure_latency_and_in_flight() -> None:
    """The read-only view a listing shows: closed, open (seconds left, why, last failure),
    half-open once the cooldown is over, closed again after the probe's success."""
    clock = Clock()
    store = MemoryHealthStore(failure_threshold=1, cooldown=10, clock=clock)
    held = store.admit_now("a")
    assert isinstance(held, Ticket)
    store.first_chunk("a", 0.25)
    assert store.snapshot_now("a") == ProviderHealth("a", "closed", None, "", "", 0.25, 1, 0)
    failed = store.admit_now("a")
    assert isinstance(failed, Ticket)
    store.failure(failed, reason="HTTP 500: model crashed")
    opened = ProviderHealth(
        "a",
        "open",
        10.0,
        "circuit open after 1 consecutive failures",
        "HTTP 500: model crashed",
        0.25,
        1,
        1,
    )
    assert store.snapshot_now("a") == opened
    clock.now += 10
    assert store.snapshot_now("a").circuit == "half-open"
    probe = store.admit_now("a")
    assert isinstance(probe, Ticket) and probe.probe
    store.success(probe)
    assert store.snapshot_now("a") == ProviderHealth("a", "closed", None, "", "", 0.25, 1, 0)
    assert asyncio.run(store.snapshot("b")) == ProviderHealth(
        "b", "closed", None, "", "", None, 0, 0
    )
