"""FallbackChain on more transport faults, continuation edge cases, options, the message."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from helpers import MakeUpstream
from providerhub import (
    AllProvidersFailedError,
    CoolingDownError,
    FallbackChain,
    InvalidRequestError,
    MemoryHealthStore,
    SpuriousCancellation,
    StreamInterruptedError,
    Timeouts,
)
from providerhub.routing import CONTINUE_PROMPT
from providerhub.routing.policy import retryable
from providerhub.testing import Reply
from routing_helpers import FAST, MESSAGES, ProviderObject, consume, provider

pytestmark = pytest.mark.usefixtures("fresh_health")


@pytest.fixture
async def resetting() -> AsyncIterator[str]:
    """A loopback server that reads the request and resets the connection (RST)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    loop = asyncio.get_running_loop()

    async def serve() -> None:
        while True:
            client, _ = await loop.sock_accept(server)
            await loop.sock_recv(client, 65536)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()

    task = asyncio.create_task(serve())
    yield f"http://127.0.0.1:{server.getsockname()[1]}/api/chat"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    server.close()


async def test_dns_reset_and_tls_failures_fail_over(
    fake_upstream: MakeUpstream, resetting: str
) -> None:
    good = await fake_upstream(default=Reply.text("ok"))
    tls_url = good.url.replace("http:", "https:") + "/api/chat"
    chain = FallbackChain(
        [
            provider("tls", api_url=tls_url),
            provider("dns", api_url="http://no-such-host.invalid/api/chat"),
            provider("reset", api_url=resetting),
            provider("good", good),
        ],
        retries=1,
        backoff=0.01,
        timeouts=Timeouts(connect=3, first_chunk=3),
        health=MemoryHealthStore(),
    )
    stream = chain.stream("", MESSAGES)
    assert await consume(stream) == "ok"
    assert [(a.provider, a.outcome, a.try_number, a.reason) for a in stream.attempts] == [
        ("tls", "failed", 1, "TLS handshake failed"),
        ("dns", "failed", 1, "DNS lookup failed"),
        ("dns", "failed", 2, "DNS lookup failed"),
        ("reset", "failed", 1, "connection error: Connection reset by peer"),
        ("reset", "failed", 2, "connection error: Connection reset by peer"),
        ("good", "served", 1, ""),
    ]
    assert not retryable(stream.attempts[0].error or Exception())
    assert len(good.requests) == 1


@pytest.mark.parametrize(
    "fault",
    [Reply.hang_after_chunks("one ", "two "), Reply.malformed_after_chunks("one ", "two ")],
    ids=["stall", "malformed"],
)
async def test_continue_after_a_stall_or_a_malformed_event(
    fake_upstream: MakeUpstream, fault: Reply
) -> None:
    bad = await fake_upstream(fault)
    good = await fake_upstream(Reply.text("three."))
    chain = FallbackChain(
        [provider("acme", bad), provider("good", good)], timeouts=FAST, on_interrupt="continue"
    )
    stream = chain.stream("", MESSAGES)
    assert await consume(stream) == "one two three."
    assert [(a.provider, a.outcome, a.continuation) for a in stream.attempts] == [
        ("acme", "interrupted", False),
        ("good", "served", True),
    ]
    assert good.requests[0].json["messages"][-2:] == [
        {"role": "assistant", "content": "one two "},
        {"role": "user", "content": CONTINUE_PROMPT},
    ]


async def test_continuation_skips_providers_without_message_history(
    fake_upstream: MakeUpstream,
) -> None:
    bad = await fake_upstream(Reply.close_after_chunks("one "))
    never = await fake_upstream(default=Reply.text("never"))
    chain = FallbackChain(
        [provider("acme", bad), provider("nohist", never, supports_message_history=False)],
        timeouts=FAST,
        on_interrupt="continue",
    )
    with pytest.raises(StreamInterruptedError) as caught:
        await consume(chain.stream("", MESSAGES))
    assert caught.value.text == "one "
    assert [(a.provider, a.outcome, a.reason) for a in caught.value.attempts][1:] == [
        ("nohist", "skipped", "cannot continue an answer (no message history)")
    ]
    assert never.requests == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backoff": "x"}, "backoff must be seconds >= 0, not 'x'"),
        ({"backoff": -1}, "backoff must be seconds >= 0, not -1"),
        ({"shuffle": True, "order": "latency"}, "shuffle=True contradicts order='latency'"),
        ({"deadline": 0}, "deadline must be positive seconds, not 0"),
    ],
)
def test_more_bad_chain_options(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        FallbackChain([provider("a")], **kwargs)
    assert str(caught.value) == message


async def test_all_failed_lines_show_the_try(fake_upstream: MakeUpstream) -> None:
    bad = await fake_upstream(default=Reply.error(500))
    chain = FallbackChain(
        [provider("acme", bad)], retries=1, backoff=0.01, health=MemoryHealthStore()
    )
    with pytest.raises(AllProvidersFailedError) as caught:
        await chain.create_async("", MESSAGES)
    bad.url + "/api/chat"
    assert str(caught.value) == (
        "all providers failed:\n"
        "  acme: HTTP 500: upstream error\n"
        "  acme: HTTP 500: upstream error (try 2)"
    )


class Quitter(ProviderObject):
    """Sends one chunk, then raises CancelledError although nobody cancelled it."""

    name = "quitter"

    async def create_async_generator(
        self, model: str, messages: Any, **kwargs: Any
    ) -> AsyncIterator[str]:
        yield "partial "
        raise asyncio.CancelledError


async def test_a_stray_cancelled_error_is_a_provider_failure() -> None:
    health = MemoryHealthStore(failure_threshold=1)
    chain = FallbackChain([Quitter()], health=health)
    with pytest.raises(StreamInterruptedError) as caught:
        await consume(chain.stream("", MESSAGES))
    assert caught.value.text == "partial "
    assert isinstance(caught.value.__cause__, SpuriousCancellation)
    assert [(a.outcome, a.reason) for a in caught.value.attempts] == [
        (
            "interrupted",
            "quitter raised CancelledError without being cancelled",
        )
    ]
    assert isinstance(health.admit_now("quitter"), CoolingDownError)
