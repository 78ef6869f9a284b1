"""The Redis health store's line to Redis: reports sent in order before a later admit, many
at once without false refusals, a loop's reports sent and its connection closed when the loop
ends (the sync bridge, `asyncio.run`), one warning per restart (see tests/redis_helpers.py for
running these locally)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque

import pytest
from helpers import BOUND
from providerhub import AllProvidersFailedError, FallbackChain, Ticket
from providerhub.routing.health import ProviderHealth
from providerhub.routing.redis_health import BACKOFF, RedisHealthStore
from providerhub.routing.redis_line import FLUSH
from providerhub.testing import Reply, UpstreamFactory
from providerhub_openai import OpenAICompatible
from redis.asyncio import Redis
from redis_helpers import RedisServer
from test_health_redis import frozen

MESSAGES = [{"role": "user", "content": "hi"}]


def store_on(server: RedisServer, **settings: float) -> RedisHealthStore:
    # A generous bound: these tests are about order and closing, not the fallback.
    return RedisHealthStore(server.url, **{"timeout": 2.0, **settings})  # type: ignore[arg-type]


async def look(server: RedisServer, provider: str) -> tuple[ProviderHealth, int]:
    """What another process sees of `provider`, and how many clients Redis has besides it."""
    other = store_on(server)
    try:
        shown = await other.snapshot(provider)
        async with Redis.from_url(server.url) as client:
            clients = len(await client.client_list()) - 2  # itself and `other`
    finally:
        await other.aclose()
    return shown, clients


async def test_a_request_that_ended_never_holds_its_place_against_the_next(
    redis_server: RedisServer,
) -> None:
    """A report goes to Redis before the same loop's later admit, so with `max_concurrent` 1
    back-to-back requests are never refused, and 100 tasks under a limit of 100 never are."""
    store = store_on(redis_server)
    try:
        for _ in range(300):
            ticket = await store.admit("p", 1)
            assert isinstance(ticket, Ticket) and ticket.token
            store.success(ticket)
        store.first_chunk("q", 0.01)  # proven: the burst is bounded by the limit alone
        refused: list[object] = []

        async def worker() -> None:
            for _ in range(20):
                ticket = await store.admit("q", 100)
                if not isinstance(ticket, Ticket):
                    refused.append(ticket)
                    continue
                await asyncio.sleep(0)
                store.success(ticket)

        await asyncio.gather(*(worker() for _ in range(100)))
        await store.flush()
        assert refused == []
        assert [(await store.snapshot(name)).in_flight for name in ("p", "q")] == [0, 0]
        assert store.shared
    finally:
        await store.aclose()


def test_a_loop_that_ends_sends_its_reports_and_closes_its_connection(
    redis_server: RedisServer,
) -> None:
    """`asyncio.run` ending right after a failure is reported: the failure reaches Redis (the
    loop's shutdown sends what is queued) and the loop's connection is closed, every time."""
    store = store_on(redis_server, failure_threshold=1)

    async def fail(provider: str) -> None:
        ticket = await store.admit(provider)
        assert isinstance(ticket, Ticket) and ticket.token
        store.failure(ticket, reason=f"boom {provider}")

    for provider in ("a", "b", "c"):
        asyncio.run(fail(provider))
        assert store._lines == {}
        shown, clients = asyncio.run(look(redis_server, provider))
        assert (shown.circuit, shown.failures, shown.in_flight) == ("open", 1, 0)
        assert shown.last_failure == f"boom {provider}"
        assert clients == 0


def test_the_sync_bridge_sends_its_reports_and_closes_its_connection(
    redis_server: RedisServer, fake_upstream: UpstreamFactory
) -> None:
    """A chain called from sync code (a private loop, or a worker thread's when a loop runs):
    its failures are shared once the call returns, and no connection to Redis stays open."""
    upstream = fake_upstream.serve(default=Reply.error(500, "model crashed"))
    store = store_on(redis_server, failure_threshold=2)
    provider = OpenAICompatible(name="up", base_url=upstream.url + "/v1", default_model="m")
    chain = FallbackChain([provider], health=store)
    with pytest.raises(AllProvidersFailedError):
        "".join(chain.create_completion("m", MESSAGES))

    async def inside_a_loop() -> None:
        with pytest.raises(AllProvidersFailedError):
            "".join(chain.create_completion("m", MESSAGES))

    asyncio.run(inside_a_loop())
    shown, clients = asyncio.run(look(redis_server, "up"))
    assert (shown.circuit, shown.failures, shown.in_flight) == ("open", 2, 0)
    assert shown.last_failure == "HTTP 500: model crashed"
    assert clients == 0
    assert len(upstream.requests) == 2


async def test_a_restart_between_requests_is_no_outage(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis restarted while the line's connection was idle (its scripts gone too): the next
    request reconnects, loads the scripts again and is shared, with no warning at all."""
    caplog.set_level(logging.INFO, "providerhub.routing")
    store = store_on(redis_server)
    try:
        warm = await store.admit("p")
        assert isinstance(warm, Ticket) and warm.token
        store.release(warm)
        await store.flush()
        redis_server.stop()
        redis_server.start()
        for _ in range(20):
            ticket = await store.admit("p", 1)
            assert isinstance(ticket, Ticket) and ticket.token
            store.release(ticket)
        await store.flush()
        assert [r.getMessage() for r in caplog.records] == []
        assert store.shared
        assert (await store.snapshot("p")).in_flight == 0
    finally:
        await store.aclose()


async def test_a_success_sent_again_after_a_slow_round_trip_counts_once(
    redis_server: RedisServer,
) -> None:
    """A success whose round trip timed out (Redis slow, then running it all the same) is sent
    again later: that second copy must not close a circuit other processes opened meanwhile."""
    store, other = store_on(redis_server, timeout=0.1), store_on(redis_server, failure_threshold=2)
    try:
        ticket = await store.admit("p")
        assert isinstance(ticket, Ticket) and ticket.token
        with frozen(redis_server):
            store.success(ticket)
            await asyncio.sleep(0.3)  # sent, timed out, kept to be sent again
        for _ in range(2):
            failing = await other.admit("p")
            assert isinstance(failing, Ticket)
            other.failure(failing, reason="boom")
        await other.flush()
        assert (await other.snapshot("p")).circuit == "open"
        await asyncio.sleep(BACKOFF)
        await store.flush()
        assert store._lines[asyncio.get_running_loop()].queue == deque()  # sent again, and done
        shown = await other.snapshot("p")
        assert (shown.circuit, shown.failures, shown.last_failure) == ("open", 2, "boom")
    finally:
        await store.aclose()
        await other.aclose()


async def test_a_key_redis_refuses_is_dropped_and_the_rest_stays_shared(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A report Redis will never take (a key of another type under the prefix) is dropped with
    one warning; it is no outage: every other provider stays shared."""
    store = store_on(redis_server)
    try:
        ticket = await store.admit("bad")
        assert isinstance(ticket, Ticket)
        async with Redis.from_url(redis_server.url) as client:
            await client.delete("providerhub:health:state:bad")
            await client.set("providerhub:health:state:bad", "not a hash")
        store.release(ticket)
        await store.flush()
        good = await store.admit("good")
        assert isinstance(good, Ticket) and good.token and store.shared
        store.release(good)
        await store.flush()
        (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert "refused release (ResponseError: WRONGTYPE" in warning
        assert warning.endswith("dropped, not sent again")
    finally:
        await store.aclose()


async def test_what_is_reported_while_a_line_closes_keeps_its_order(
    redis_server: RedisServer,
) -> None:
    """`aclose` (a gateway reload) while requests go on: a release queued before it still
    reaches Redis before the next admit, so the limit is not refused a place already freed."""
    store = store_on(redis_server, timeout=0.5)
    try:
        ticket = await store.admit("p", 1)
        assert isinstance(ticket, Ticket)
        async with Redis.from_url(redis_server.url) as client:
            await client.execute_command("CLIENT", "PAUSE", "100", "WRITE")
        looking = asyncio.ensure_future(store.snapshot("p"))  # a round trip in flight
        await asyncio.sleep(0.005)
        store.release(ticket)
        closing = asyncio.ensure_future(store.aclose())
        await asyncio.sleep(0)
        again = await store.admit("p", 1)
        assert isinstance(again, Ticket) and again.token
        store.release(again)
        await closing
        await looking
    finally:
        await store.aclose()
    shown, clients = await look(redis_server, "p")
    assert (shown.in_flight, clients) == (0, 0)


def test_a_loop_ending_while_redis_is_down_does_not_wait_for_it(
    redis_server: RedisServer,
) -> None:
    """Redis gone: each `asyncio.run` (each sync call) ends at once, dropping what it could not
    send with one warning, instead of waiting out `FLUSH` for Redis."""
    store = store_on(redis_server, timeout=0.1)

    async def call() -> None:
        ticket = await store.admit("p", last_resort=True)
        assert isinstance(ticket, Ticket)
        store.first_chunk("p", 0.01)
        store.success(ticket)

    asyncio.run(call())
    redis_server.stop()
    for _ in range(3):
        started = time.monotonic()
        asyncio.run(call())
        assert time.monotonic() - started < FLUSH / 2
    assert store._lines == {}


def test_loops_in_many_threads_share_one_store(redis_server: RedisServer) -> None:
    """Eight threads, each a new loop per call (the sync bridge's way), one store: no error,
    every place freed, every line closed with its loop."""
    store = store_on(redis_server)
    errors: list[BaseException] = []

    def calls() -> None:
        async def one() -> None:
            ticket = await store.admit("p", last_resort=True)
            assert isinstance(ticket, Ticket) and ticket.token
            store.first_chunk("p", 0.01)
            store.success(ticket)

        try:
            for _ in range(15):
                asyncio.run(one())
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=calls) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BOUND)
    assert errors == []
    assert store._lines == {}
    shown, clients = asyncio.run(look(redis_server, "p"))
    assert (shown.in_flight, shown.failures, clients) == (0, 0, 0)
