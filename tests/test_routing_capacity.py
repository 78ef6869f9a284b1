"""How many requests a provider gets at once: `max_concurrent` (the registry's cap, from code or
`[providers.NAME]`), the bounded trials of a provider whose health is unproven, every place
freed however an attempt ends, and the last real failure kept in a cooldown's message."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from config_helpers import OK_PROVIDER, parse_error, plugins
from helpers import MakeUpstream, until
from providerhub import (
    AllProvidersFailedError,
    AtCapacityError,
    CoolingDownError,
    FallbackChain,
    MemoryHealthStore,
    ProviderNotFoundError,
    Registry,
    StreamInterruptedError,
    Ticket,
)
from providerhub.config import parse_config
from providerhub.testing import FakeUpstream, Reply
from routing_helpers import MESSAGES, consume, provider

BURST = 100


def registered(*providers: Any, **limits: int) -> Registry:
    """A registry of just `providers`, with a `max_concurrent` for each name in `limits`."""
    registry = Registry(entry_points=False)
    for item in providers:
        registry.register(item)
    for name, limit in limits.items():
        registry.set_max_concurrent(name, limit)
    return registry


async def test_a_burst_at_a_failing_provider_sends_it_only_its_trials(
    fake_upstream: MakeUpstream,
) -> None:
    """100 concurrent requests at an always-failing provider: it gets as many as it takes to
    open its circuit (failure_threshold), the rest go straight to the next member."""
    failing = await fake_upstream(default=Reply.error(500, "model crashed"))
    backup = await fake_upstream(default=Reply.text("backup"))
    health = MemoryHealthStore(failure_threshold=3)
    chain = FallbackChain([provider("failing", failing), provider("backup", backup)], health=health)
    streams = [chain.stream("", MESSAGES) for _ in range(BURST)]
    texts = await asyncio.gather(*(consume(stream) for stream in streams))
    assert texts == ["backup"] * BURST
    assert len(failing.requests) == 3
    assert len(backup.requests) == BURST
    outcomes = [stream.attempts[0] for stream in streams]
    assert sum(attempt.outcome == "failed" for attempt in outcomes) == 3
    skips = [attempt for attempt in outcomes if attempt.outcome == "skipped"]
    assert len(skips) == BURST - 3
    assert {skip.reason for skip in skips} == {
        "at capacity: 3 in flight while its health is unproven"
    }
    assert all(
        isinstance(skip.error, AtCapacityError) and skip.error.unproven and skip.error.limit == 3
        for skip in skips
    )
    refusal = health.admit_now("failing")
    assert isinstance(refusal, CoolingDownError)
    assert health.in_flight("failing") == health.in_flight("backup") == 0


async def test_a_provider_that_answered_takes_the_whole_burst(fake_upstream: MakeUpstream) -> None:
    """Trials bound only an unproven provider that is not the last resort: at a cold start the
    burst beyond its trials goes to the next member, and the last member takes all of its share;
    once the first has answered it takes a whole burst; after a failure it is on trial again."""
    first = await fake_upstream(default=Reply.text("first"))
    last = await fake_upstream(default=Reply.text("last"))
    health = MemoryHealthStore(failure_threshold=2)
    chain = FallbackChain([provider("p", first), provider("q", last)], health=health)
    texts = await asyncio.gather(*(consume(chain.stream("", MESSAGES)) for _ in range(20)))
    assert sorted(texts) == ["first"] * 2 + ["last"] * 18
    assert (len(first.requests), len(last.requests)) == (2, 18)
    texts = await asyncio.gather(*(consume(chain.stream("", MESSAGES)) for _ in range(20)))
    assert texts == ["first"] * 20
    assert len(first.requests) == 22
    health.failure(Ticket("p"), reason="HTTP 500: model crashed")
    tickets = [health.admit_now("p") for _ in range(2)]  # one more failure would open it
    assert [type(ticket) for ticket in tickets] == [Ticket, AtCapacityError]
    assert isinstance(health.admit_now("p", last_resort=True), Ticket)
    health.first_chunk("p", 0.01)
    assert isinstance(health.admit_now("p"), Ticket)


async def test_max_concurrent_skips_a_full_provider_at_capacity(
    fake_upstream: MakeUpstream,
) -> None:
    slow = await fake_upstream(default=Reply.text("slow", delay=0.05))
    backup = await fake_upstream(default=Reply.text("backup"))
    health = MemoryHealthStore()
    registry = registered(provider("slow", slow), provider("backup", backup), slow=2)
    chain = FallbackChain(["slow", "backup"], registry=registry, health=health)
    streams = [chain.stream("", MESSAGES) for _ in range(5)]
    texts = await asyncio.gather(*(consume(stream) for stream in streams))
    assert sorted(texts) == ["backup"] * 3 + ["slow"] * 2
    assert (len(slow.requests), len(backup.requests)) == (2, 3)
    skips = [s.attempts[0] for s in streams if s.attempts[0].outcome == "skipped"]
    assert [skip.reason for skip in skips] == ["at capacity: 2 in flight, its max_concurrent"] * 3
    error = skips[0].error
    assert isinstance(error, AtCapacityError)
    assert (error.provider, error.limit, error.unproven) == ("slow", 2, False)
    assert health.in_flight("slow") == 0
    texts = await asyncio.gather(*(consume(chain.stream("", MESSAGES)) for _ in range(2)))
    assert texts == ["slow", "slow"]


async def test_a_single_full_provider_is_a_clear_error(fake_upstream: MakeUpstream) -> None:
    """A call to one provider at its cap fails at once, naming the cap; its place comes back
    when the request holding it is cancelled."""
    upstream = await fake_upstream(Reply.hang(), default=Reply.text("ok"))
    health = MemoryHealthStore()
    registry = registered(provider("solo", upstream), solo=1)
    chain = FallbackChain(["solo"], registry=registry, health=health)
    holding = asyncio.create_task(consume(chain.stream("", MESSAGES)))
    await until(lambda: upstream.requests)
    with pytest.raises(AllProvidersFailedError) as caught:
        await chain.create_async("", MESSAGES)
    assert str(caught.value) == (
        "all providers failed:\n  solo: skipped (at capacity: 1 in flight, its max_concurrent)"
    )
    assert isinstance(caught.value.attempts[0].error, AtCapacityError)
    holding.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holding
    assert health.in_flight("solo") == 0
    assert await chain.create_async("", MESSAGES) == "ok"
    assert len(upstream.requests) == 2


async def _served(chain: FallbackChain, upstream: FakeUpstream) -> None:
    assert await consume(chain.stream("", MESSAGES)) == "ok"


async def _failed(chain: FallbackChain, upstream: FakeUpstream) -> None:
    with pytest.raises(AllProvidersFailedError):
        await consume(chain.stream("", MESSAGES))


async def _interrupted(chain: FallbackChain, upstream: FakeUpstream) -> None:
    with pytest.raises(StreamInterruptedError):
        await consume(chain.stream("", MESSAGES))


async def _stopped_after_a_chunk(chain: FallbackChain, upstream: FakeUpstream) -> None:
    async with chain.stream("", MESSAGES) as stream:
        assert await anext(stream) == "one "


async def _cancelled_before_a_chunk(chain: FallbackChain, upstream: FakeUpstream) -> None:
    sent = len(upstream.requests)
    task = asyncio.create_task(consume(chain.stream("", MESSAGES)))
    await until(lambda: len(upstream.requests) > sent)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _past_the_deadline(chain: FallbackChain, upstream: FakeUpstream) -> None:
    with pytest.raises(AllProvidersFailedError, match="deadline passed"):
        await consume(chain.stream("", MESSAGES, deadline=0.2))


async def _lost_a_hedge(chain: FallbackChain, upstream: FakeUpstream) -> None:
    hedged = chain.replace(providers=[*chain.members, "fast"], hedge_after=0.05)
    stream = hedged.stream("", MESSAGES)
    assert await consume(stream) == "fast"
    assert [(a.provider, a.outcome) for a in stream.attempts] == [
        ("p", "cancelled"),
        ("fast", "served"),
    ]


async def _retried(chain: FallbackChain, upstream: FakeUpstream) -> None:
    stream = chain.replace(retries=1, backoff=0.01).stream("", MESSAGES)
    assert await consume(stream) == "ok"
    assert [a.try_number for a in stream.attempts] == [1, 2]


Ending = Callable[[FallbackChain, FakeUpstream], Awaitable[None]]
ENDINGS: dict[str, tuple[tuple[Reply, ...], Ending]] = {
    "served": ((Reply.text("ok"),), _served),
    "failed": ((Reply.error(500, "model crashed"),), _failed),
    "request fault": ((Reply.error(400, "bad parameter"),), _failed),
    "interrupted": ((Reply.close_after_chunks("one "),), _interrupted),
    "stopped by the consumer": ((Reply.text("one ", "two ", delay=0.02),), _stopped_after_a_chunk),
    "cancelled": ((Reply.hang(),), _cancelled_before_a_chunk),
    "deadline": ((Reply.hang(),), _past_the_deadline),
    "lost a hedge": ((Reply.hang(),), _lost_a_hedge),
    "retried": ((Reply.error(500), Reply.text("ok")), _retried),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
async def test_every_ending_frees_the_place(fake_upstream: MakeUpstream, ending: str) -> None:
    """With max_concurrent 1, each way an attempt can end gives its place back (no leak): the
    store counts nothing in flight after, and the next request is admitted."""
    replies, run = ENDINGS[ending]
    upstream = await fake_upstream(*replies, default=Reply.text("ok"))
    fast = await fake_upstream(default=Reply.text("fast"))
    health = MemoryHealthStore()
    registry = registered(provider("p", upstream), provider("fast", fast), p=1)
    chain = FallbackChain(["p"], registry=registry, health=health)
    for _ in range(2):
        await run(chain, upstream)
        assert health.in_flight("p") == 0
        upstream.script(*replies)
    assert health.in_flight("fast") == 0
    assert isinstance(health.admit_now("p", 1), Ticket)


def test_set_max_concurrent_checks_its_arguments() -> None:
    registry = registered(provider("p"))
    for wrong in (0, -1, True, 1.5, "4"):
        with pytest.raises(ValueError) as caught:
            registry.set_max_concurrent("p", wrong)  # type: ignore[arg-type]
        assert str(caught.value) == f"max_concurrent must be a positive whole number, not {wrong!r}"
    with pytest.raises(ProviderNotFoundError):
        registry.set_max_concurrent("nope", 2)
    registry.set_max_concurrent("P", 2)
    assert registry.max_concurrent("p") == 2
    registry.set_max_concurrent("p", None)
    assert registry.max_concurrent("p") is None


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("max_concurrent = 0", "0"),
        ("max_concurrent = -3", "-3"),
        ("max_concurrent = 2.5", "2.5"),
        ("max_concurrent = true", "a boolean"),
        ('max_concurrent = "4"', "'4'"),
    ],
)
def test_config_refuses_a_bad_max_concurrent(line: str, shown: str) -> None:
    error = parse_error(OK_PROVIDER + line + "\n")
    assert (error.table, error.key) == ("providers.local", "max_concurrent")
    assert str(error) == (
        f"p.toml [providers.local]: 'max_concurrent' must be a positive whole number, not {shown}"
    )


async def test_config_max_concurrent_caps_the_provider(fake_upstream: MakeUpstream) -> None:
    """`max_concurrent` is a routing setting: never passed to the provider type (which would
    refuse an unknown key), shown by `config check`, honoured by every chain of the config."""
    slow = await fake_upstream(default=Reply.text("slow", delay=0.05))
    backup = await fake_upstream(default=Reply.text("backup"))
    config = parse_config(_capped(slow, backup), "p.toml")
    registry = config.build_registry(plugins())
    assert (registry.max_concurrent("slow"), registry.max_concurrent("backup")) == (1, None)
    assert 'use = "openai"\nmax_concurrent = 1\n' in config.render()
    health = MemoryHealthStore()
    chain = config.chain("main", registry, health=health)
    streams = [chain.stream("", MESSAGES) for _ in range(3)]
    texts = await asyncio.gather(*(consume(stream) for stream in streams))
    assert sorted(texts) == ["backup", "backup", "slow"]
    assert len(slow.requests) == 1
    assert slow.requests[0].json["model"] == "m"
    reasons = [stream.attempts[0].reason for stream in streams]
    assert reasons.count("at capacity: 1 in flight, its max_concurrent") == 2
    assert health.in_flight("slow") == 0


def _capped(slow: FakeUpstream, backup: FakeUpstream) -> str:
    return f"""
[providers.slow]
use = "openai"
max_concurrent = 1
base_url = "{slow.url}/v1"
default_model = "m"

[providers.backup]
use = "openai"
base_url = "{backup.url}/v1"
default_model = "m"

[chains.main]
providers = ["slow", "backup"]
"""


async def test_a_cooldown_keeps_the_last_real_failure(fake_upstream: MakeUpstream) -> None:
    """Once the circuit is open the skip still says what went wrong, in the attempt's reason and
    the AllProvidersFailedError text."""
    broken = await fake_upstream(default=Reply.error(500, "model crashed"))
    health = MemoryHealthStore(failure_threshold=2, cooldown=30)
    chain = FallbackChain([provider("broken", broken)], health=health)
    for _ in range(2):
        with pytest.raises(AllProvidersFailedError):
            await chain.create_async("", MESSAGES)
    with pytest.raises(AllProvidersFailedError) as caught:
        await chain.create_async("", MESSAGES)
    line = str(caught.value).splitlines()[1]
    assert line.startswith("  broken: skipped (cooling down, ")
    assert line.endswith(
        "s left (circuit open after 2 consecutive failures; last failure: HTTP 500: model crashed))"
    )
    refusal = caught.value.attempts[0].error
    assert isinstance(refusal, CoolingDownError)
    assert refusal.last_failure == "HTTP 500: model crashed"
    assert len(broken.requests) == 2


async def test_a_burst_at_a_lone_failing_provider_sends_it_only_its_trials(
    fake_upstream: MakeUpstream,
) -> None:
    """With no member left to ask, the burst beyond the trials waits for them instead of being
    sent: the trials' failures open the circuit, and the rest are refused unsent."""
    failing = await fake_upstream(default=Reply.error(500, "model crashed"))
    health = MemoryHealthStore(failure_threshold=3)
    chain = FallbackChain([provider("failing", failing)], health=health)
    streams = [chain.stream("", MESSAGES) for _ in range(BURST)]
    results = await asyncio.gather(*(consume(stream) for stream in streams), return_exceptions=True)
    assert all(isinstance(result, AllProvidersFailedError) for result in results)
    assert len(failing.requests) == 3
    outcomes = [stream.attempts[0] for stream in streams]
    assert sum(attempt.outcome == "failed" for attempt in outcomes) == 3
    refused = [attempt.error for attempt in outcomes if attempt.outcome == "skipped"]
    assert len(refused) == BURST - 3
    assert all(isinstance(error, CoolingDownError) for error in refused)
    assert {error.last_failure for error in refused} == {"HTTP 500: model crashed"}
    assert health.in_flight("failing") == 0


async def test_a_burst_at_a_lone_unmeasured_provider_is_served_once_it_answers(
    fake_upstream: MakeUpstream,
) -> None:
    """A cold start: the lone provider's trials answer, and the requests that waited for them
    are all sent and served."""
    healthy = await fake_upstream(default=Reply.text("served", delay=0.05))
    health = MemoryHealthStore(failure_threshold=2)
    chain = FallbackChain([provider("lone", healthy)], health=health)
    texts = await asyncio.gather(*(consume(chain.stream("", MESSAGES)) for _ in range(BURST)))
    assert texts == ["served"] * BURST
    assert len(healthy.requests) == BURST
    assert health.in_flight("lone") == 0
