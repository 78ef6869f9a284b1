"""The Redis health store against a real redis-server: the memory store's rules shared by
several stores (processes), atomic counters and probe, expiring tickets, and serving on through
an outage (see tests/redis_helpers.py for running these locally)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from helpers import BOUND
from providerhub import AtCapacityError, CoolingDownError, Ticket
from providerhub.config import parse_config
from providerhub.config.build import build_health_store
from providerhub.errors import ConfigError
from providerhub.routing.health import MemoryHealthStore, ProviderHealth
from providerhub.routing.redis_health import BACKOFF, RedisHealthStore
from providerhub.server.app import TARGETS
from redis_helpers import RedisServer

Stores = Callable[..., RedisHealthStore]


@pytest_asyncio.fixture
async def stores(redis_server: RedisServer) -> AsyncIterator[Stores]:
    """Make stores on the test's Redis (each one stands for a gateway process); closed after."""
    made: list[RedisHealthStore] = []

    def make(**settings: Any) -> RedisHealthStore:
        # A generous bound on each operation: on a loaded machine the default (75 ms) can pass,
        # and the fallback to the process's own view is not what these tests are about.
        store = RedisHealthStore(redis_server.url, **{"timeout": 2.0, **settings})
        made.append(store)
        return store

    yield make
    for store in made:
        await store.aclose()


async def settled(*stores: RedisHealthStore) -> None:
    """Wait (bounded) until every report queued by `stores` has reached Redis."""
    for store in stores:
        await store.flush()


def stop_heartbeat(store: RedisHealthStore) -> None:
    """As when the store's process dies: nothing refreshes its tickets any more."""
    (beat,) = (line.beat for line in store._lines.values())
    assert beat is not None
    beat.cancel()


async def until_circuit(store: RedisHealthStore, provider: str, circuit: str) -> ProviderHealth:
    async with asyncio.timeout(BOUND):
        while (seen := await store.snapshot(provider)).circuit != circuit:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    return seen


async def test_a_circuit_opened_through_one_store_refuses_through_the_other(
    stores: Stores,
) -> None:
    """Failures reported by one process open the circuit for all, with the memory store's
    messages; after the cooldown exactly one of many concurrent callers, across both, probes;
    its success closes the circuit for both."""
    one, two = stores(failure_threshold=2, cooldown=0.3), stores(failure_threshold=2)
    for reason in ("boom 1", "boom 2"):
        ticket = await one.admit("p")
        assert isinstance(ticket, Ticket) and ticket.token and not ticket.probe
        one.failure(ticket, reason=reason)
    await settled(one)
    refusal = await two.admit("p")
    assert isinstance(refusal, CoolingDownError)
    assert refusal.last_failure == "boom 2" and not refusal.rate_limited
    assert str(refusal).startswith("cooling down, ")
    assert str(refusal).endswith(
        "left (circuit open after 2 consecutive failures; last failure: boom 2)"
    )
    shown = await two.snapshot("p")
    assert (shown.circuit, shown.failures, shown.last_failure) == ("open", 2, "boom 2")
    assert shown.reason == "circuit open after 2 consecutive failures"
    assert shown.seconds_left is not None and 0 < shown.seconds_left <= 0.3
    await until_circuit(two, "p", "half-open")
    answers = await asyncio.gather(*(store.admit("p") for _ in range(20) for store in (one, two)))
    probes = [answer for answer in answers if isinstance(answer, Ticket)]
    assert len(probes) == 1 and probes[0].probe
    assert {str(answer) for answer in answers if not isinstance(answer, Ticket)} == {
        "cooling down, probe in flight (circuit open after 2 consecutive failures; "
        "last failure: boom 2)"
    }
    (one if probes[0] in answers[::2] else two).success(probes[0])
    await settled(one, two)
    assert (await one.snapshot("p")).circuit == "closed"
    assert isinstance(await two.admit("p"), Ticket)


async def test_retry_after_cools_the_provider_for_every_store(stores: Stores) -> None:
    one, two = stores(max_retry_after=60), stores()
    ticket = await one.admit("p")
    assert isinstance(ticket, Ticket)
    one.failure(ticket, retry_after=30, reason="HTTP 429")
    await settled(one)
    refusal = await two.admit("p")
    assert isinstance(refusal, CoolingDownError) and refusal.rate_limited
    assert refusal.seconds_left is not None and 29 < refusal.seconds_left <= 30
    assert refusal.cause == "rate limited, Retry-After 30s"
    assert refusal.last_failure == "HTTP 429"


async def test_limits_trials_and_latency_are_shared(stores: Stores) -> None:
    """A max_concurrent counts the tickets of every store; an unproven provider gets
    failure_threshold trials across all; a first chunk proves it for all and feeds one
    latency estimate."""
    one, two = stores(failure_threshold=2), stores(failure_threshold=2)
    first, second = await one.admit("p", 3), await two.admit("p", 3)
    assert isinstance(first, Ticket) and isinstance(second, Ticket)
    unproven = await two.admit("p", 3)
    assert isinstance(unproven, AtCapacityError) and unproven.unproven and unproven.limit == 2
    assert isinstance(await one.admit("p", 3, last_resort=True), Ticket)
    full = await two.admit("p", 3, last_resort=True)
    assert isinstance(full, AtCapacityError) and not full.unproven and full.limit == 3
    one.first_chunk("p", 0.2)
    await settled(one)
    two.first_chunk("p", 0.4)
    await settled(two)
    assert (await one.snapshot("p")).latency == pytest.approx(0.2 + 0.3 * (0.4 - 0.2))
    assert two.latency("p") == pytest.approx(0.26)
    one.release(first)
    await settled(one)
    assert isinstance(await two.admit("p", 3), Ticket)
    assert (await one.snapshot("p")).in_flight == 3


async def test_a_ticket_never_reported_frees_its_place_when_it_expires(stores: Stores) -> None:
    """A process that dies holding tickets (here: never reports nor refreshes them) does not
    hold the places, nor the probe, beyond `ticket_ttl`."""
    dead, alive = stores(ticket_ttl=0.2), stores()
    assert isinstance(await dead.admit("p", 1), Ticket)
    stop_heartbeat(dead)  # the process dies: nothing refreshes its ticket any more
    assert isinstance(await alive.admit("p", 1), AtCapacityError)
    async with asyncio.timeout(BOUND):
        while not isinstance(answer := await alive.admit("p", 1), Ticket):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    alive.release(answer)
    await settled(alive)
    assert (await alive.snapshot("p")).in_flight == 0


COUNTER = """
import asyncio, sys
from providerhub.routing.redis_health import RedisHealthStore

async def main(url: str, tasks: int) -> None:
    store = RedisHealthStore(url, failure_threshold=10**9, ticket_ttl=300, timeout=10)
    async def one() -> None:
        ticket = await store.admit("p")
        assert ticket.token, ticket
        if ticket.token.endswith(("0", "2", "4", "6", "8")):
            store.failure(ticket, reason="counted")
        else:
            store.first_chunk("p", 0.1)
    await asyncio.gather(*(one() for _ in range(tasks)))
    await store.aclose()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def test_many_tasks_in_several_processes_lose_no_update(
    stores: Stores, redis_server: RedisServer, tmp_path: Path
) -> None:
    """4 processes x 100 concurrent tasks, half reporting a failure (which frees its place),
    half holding their place: every failure counted, every place held counted, none lost (a
    generous timeout: this is about atomicity, not speed)."""
    script = tmp_path / "counter.py"
    script.write_text(COUNTER)
    processes = [
        await asyncio.create_subprocess_exec(sys.executable, str(script), redis_server.url, "100")
        for _ in range(4)
    ]
    try:
        async with asyncio.timeout(60):
            codes = [await process.wait() for process in processes]
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert codes == [0, 0, 0, 0]
    shown = await stores().snapshot("p")
    assert shown.in_flight == 4 * 50
    assert shown.failures == 4 * 50
    assert shown.circuit == "closed"


async def test_serves_through_an_outage_and_resumes_when_redis_returns(
    stores: Stores, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis gone: admits come from the process's own view (its breaker still works), with one
    warning for the whole outage; back: one info line, and the shared state is used again."""
    caplog.set_level(logging.INFO, "providerhub.routing")
    store = stores(failure_threshold=1, cooldown=60)
    assert isinstance(await store.admit("warm"), Ticket)
    redis_server.stop()
    answers = [await store.admit("p", last_resort=True) for _ in range(20)]
    assert all(isinstance(answer, Ticket) and not answer.token for answer in answers)
    store.failure(answers[0], reason="boom")
    assert isinstance(await store.admit("p"), CoolingDownError)
    assert (await store.snapshot("p")).circuit == "open"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"health store: Redis 127.0.0.1:{redis_server.port}/0 did not")
    redis_server.start()
    other = stores()
    async with asyncio.timeout(BOUND):
        while True:
            answer = await store.admit("q", last_resort=True)
            assert isinstance(answer, Ticket)
            if answer.token:
                break
            store.release(answer)
            await asyncio.sleep(0.05)
    store.failure(answer, reason="shared again")
    await settled(store)
    assert isinstance(await other.admit("q"), CoolingDownError)
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == [
        f"health store: Redis 127.0.0.1:{redis_server.port}/0 answers again; shared state resumed"
    ]


def test_config_builds_the_store_it_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """`[health]` chooses the store and its settings; a url with a password comes only from the
    variable url_env names, and a missing variable is a ConfigError naming it."""
    memory = build_health_store(parse_config("[health]\nfailure_threshold = 5\ncooldown = 2\n"))
    assert isinstance(memory, MemoryHealthStore)
    assert (memory.failure_threshold, memory.cooldown, memory.max_cooldown) == (5, 2.0, 300.0)
    text = '[health]\nstore = "redis"\nurl_env = "HEALTH_URL"\nprefix = "team:"\ntimeout = 0.2\n'
    monkeypatch.setenv("HEALTH_URL", "redis://:hunter2@127.0.0.1:1/2")
    shared = build_health_store(parse_config(text))
    assert isinstance(shared, RedisHealthStore)
    assert (shared.prefix, shared.timeout, shared.local.failure_threshold) == ("team:", 0.2, 3)
    assert "hunter2" not in repr(shared)
    monkeypatch.setenv("HEALTH_URL", "redis://:hunter2@127.0.0.1:notaport/2")
    with pytest.raises(ConfigError) as caught:
        build_health_store(parse_config(text))
    assert "the url in HEALTH_URL (named by 'url_env') must be a redis://" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    monkeypatch.delenv("HEALTH_URL")
    with pytest.raises(ConfigError) as caught:
        build_health_store(parse_config(text))
    assert "'url_env' names HEALTH_URL, which is not set" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('store = "disk"', "'store' must be \"memory\" or \"redis\", not 'disk'"),
        ('store = "redis"', "store = \"redis\" needs 'url' or 'url_env'"),
        ('url = "redis://:hunter2@h:1/0"', "'url' must not carry a password (the value is not"),
        ('url = "http://h:1"', "'url' must be a redis://host:port/db url, not 'http://h:1'"),
        ('url = "redis://h:notaport/0"', "'url' must be a redis://host:port/db url, not 'redis:"),
        (
            'url = "redis://[::1/0"',
            "'url' must be a redis://host:port/db url, not 'redis://[::1/0'",
        ),
        ('url = "redis:///"', "'url' must be a redis://host:port/db url, not 'redis:///'"),
        ('url = "redis://h:6379/abc"', "'url' must be a redis://host:port/db url, not 'redis://h"),
        (
            'url = "redis://h/0?password=hunter2"',
            "'url' must not carry a password (the value is not",
        ),
        ('url = "unix:///s.sock?username=u&password=p"', "'url' must not carry a password"),
        ("cooldown = inf", "'cooldown' must be seconds (>= 0), not inf"),
        ('url_env = "redis://h:1/0"', "'url_env' must be the NAME of an environment variable"),
        ('url = "redis://h/0"\nurl_env = "U"', "give 'url' or 'url_env', not both"),
        ("failure_threshold = 0", "'failure_threshold' must be a whole number of at least 1"),
        ("cooldown = -1", "'cooldown' must be seconds (>= 0), not -1"),
        ("cooldown = 10\nmax_cooldown = 5", "'max_cooldown' (5) must be at least 'cooldown' (10)"),
        ("cooldwn = 1", "unknown key 'cooldwn'; did you mean 'cooldown'?"),
        ("timeout = 0", "'timeout' must be seconds (more than 0, at most 10), not 0"),
    ],
)
def test_health_table_errors(body: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"[health]\n{body}\n")
    assert message in str(caught.value)
    assert "[health]" in str(caught.value)
    assert "hunter2" not in str(caught.value)


async def test_the_gateway_sends_queued_reports_and_closes_its_store_on_shutdown(
    redis_server: RedisServer, stores: Stores
) -> None:
    """A gateway's `[health]` Redis store is the gateway's: its cleanup sends the reports still
    queued (a failure answered just before the stop is not lost) and closes the client."""
    from providerhub.registry import Registry
    from providerhub.server import create_app, start
    from providerhub.testing import FakeUpstream, Reply

    async with FakeUpstream(default=Reply.error(500, "model crashed")) as upstream:
        config = parse_config(
            f'[providers.p]\nuse = "openai"\nbase_url = "{upstream.url}/v1"\n'
            'default_model = "m"\n[chains.main]\nproviders = ["p"]\n'
            f'[health]\nstore = "redis"\nurl = "{redis_server.url}"\ntimeout = 2\n'
            "failure_threshold = 1\n"
        )
        app = create_app(config.build_registry(Registry.discover()), config)
        store = app[TARGETS].health
        assert isinstance(store, RedisHealthStore)
        runner, url = await start(app, "127.0.0.1", 0, grace=0.5)
        try:
            async with aiohttp.ClientSession() as session:
                body = {"model": "main", "messages": [{"role": "user", "content": "hi"}]}
                async with session.post(f"{url}/v1/chat/completions", json=body) as response:
                    assert response.status == 502
        finally:
            await runner.cleanup()
    assert not store._lines  # its connection closed by the cleanup
    shown = await stores().snapshot("p")
    assert (shown.circuit, shown.failures) == ("open", 1)
    assert shown.last_failure == "HTTP 500: model crashed"


@contextlib.contextmanager
def frozen(redis_server: RedisServer) -> Iterator[None]:
    """Redis stopped (SIGSTOP) inside the block: requests reach its socket but get no answer
    until it resumes, as with a slow Redis."""
    assert redis_server.process is not None
    redis_server.process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        redis_server.process.send_signal(signal.SIGCONT)


async def test_a_report_redis_was_too_slow_for_is_sent_once_it_answers(
    redis_server: RedisServer, stores: Stores
) -> None:
    """A failure reported while Redis does not answer in time is kept and sent when it
    answers again: counted once, its place freed (not held until the ticket expires)."""
    store = stores(timeout=0.1, failure_threshold=5)
    ticket = await store.admit("p")
    assert isinstance(ticket, Ticket) and ticket.token
    with frozen(redis_server):
        store.failure(ticket, reason="boom")
        await asyncio.sleep(0.3)  # the first send times out, the report is kept
    await settled(store)
    shown = await stores().snapshot("p")
    assert (shown.failures, shown.in_flight, shown.last_failure) == (1, 0, "boom")


async def test_an_admit_given_up_on_frees_what_redis_granted(
    redis_server: RedisServer, stores: Stores
) -> None:
    """An admit that timed out, or was cancelled, after it was sent may still be granted when
    Redis gets to it: its token is released, so no place (or probe) is held for the TTL."""
    store = stores(timeout=0.1)
    warm = await store.admit("warm")  # connected, script loaded: what follows reaches Redis,
    assert isinstance(warm, Ticket)  # which runs it once it resumes
    store.release(warm)
    await settled(store)
    with frozen(redis_server):
        late = await store.admit("p")  # served from this process's own view meanwhile
        assert isinstance(late, Ticket) and not late.token
        store.local.release(late)
    await asyncio.sleep(BACKOFF)
    with frozen(redis_server):
        cancelled = asyncio.ensure_future(store.admit("q"))
        await asyncio.sleep(0.05)
        cancelled.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await cancelled
    await settled(store)
    other = stores()
    assert [(await other.snapshot(name)).in_flight for name in ("warm", "p", "q")] == [0, 0, 0]


async def test_a_live_process_keeps_its_long_tickets_and_a_dead_one_frees_them(
    stores: Stores,
) -> None:
    """Tickets expire after `ticket_ttl` only if their process stops refreshing them: a long
    stream of a live process keeps its place past it; once the holder stops (its heartbeat
    gone, as when it is killed), the place is free within about `ticket_ttl`."""
    holder, other = stores(ticket_ttl=0.6), stores()
    ticket = await holder.admit("p", 1)
    assert isinstance(ticket, Ticket)
    await asyncio.sleep(1.5)  # past two TTLs: refreshed, still held
    assert isinstance(await other.admit("p", 1), AtCapacityError)
    assert (await other.snapshot("p")).in_flight == 1
    stop_heartbeat(holder)  # the holder dies without reporting
    async with asyncio.timeout(BOUND):
        while (await other.snapshot("p")).in_flight:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    freed = await other.admit("p", 1)
    assert isinstance(freed, Ticket)
    other.release(freed)
    await settled(other)
