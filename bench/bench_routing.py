"""Routing overhead: a FallbackChain against calling its provider directly, in one run.

The upstreams are FakeUpstreams in a child process on 127.0.0.1 (so the server does not share
this process's CPU): a pre-rendered stream of N CodeLinkAva/OpenAI-style events, a short
answer, and one that hangs before sending headers. Five measurements, each with its baseline
measured in the same run, interleaved:

1. overhead: a chain whose first provider serves vs that provider directly, full stream of N
   events (median of R rounds); target ratio <= 1.05.
2. failover: a chain whose first provider refuses connections vs the second provider
   directly, time to first chunk (median of 50 warm calls); target <= +5 ms.
3. hedging: a chain whose first provider hangs, hedge_after=H, vs the second provider
   directly, time to first chunk (median); target <= H + direct + 10 ms.
4. per-chunk cost: an in-memory provider yielding N chunks (no network), through a chain vs
   directly (median of R rounds); the chain's extra time per chunk (informational).
5. cold failover: the first call of a fresh process (new event loop, nothing warm), a chain
   whose first provider refuses connections vs the second provider directly, time to first
   chunk (median of 5 processes each; informational; import time excluded).

    .venv/bin/python bench/bench_routing.py [--events 20000] [--rounds 9] [--calls 50]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from _common import (
    Check,
    InMemory,
    child_upstreams,
    interleave,
    serve,
    stream_reply,
    verdicts,
)
from providerhub import AsyncGeneratorProvider, FallbackChain, MemoryHealthStore, Timeouts
from providerhub.testing import Reply
from providerhub_codelinkava import CodeLinkAva

MESSAGES = [{"role": "user", "content": "Say hello"}]
HEDGE_AFTER = 0.05
NO_BREAKER = MemoryHealthStore(failure_threshold=10**9)
"""Failures must not open the circuit here: every call should really fail over."""


def cold(kind: str, small_url: str) -> None:
    """Child process: one first call from a fresh loop; print its time to first chunk."""
    small, refusing = provider("small", small_url), provider("refusing", refused_url())
    target: Any = small
    if kind == "chain":
        target = FallbackChain([refusing, small], health=MemoryHealthStore())
    print(asyncio.run(first_chunk(lambda: target.create_async_generator("", MESSAGES))))


def cold_times(kind: str, small_url: str, processes: int = 5) -> float:
    times = []
    for _ in range(processes):
        out = subprocess.run(
            [sys.executable, __file__, "--cold", kind, small_url],
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(out.stdout))
    return statistics.median(times)


def provider(name: str, url: str) -> type[CodeLinkAva]:
    return type(name, (CodeLinkAva,), {"name": name, "working": True, "api_url": url})


def refused_url() -> str:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/chat"


Open = Callable[[], AsyncIterator[str]]


async def full(open_stream: Open) -> float:
    start = time.perf_counter()
    async for _chunk in open_stream():
        pass
    return time.perf_counter() - start


async def first_chunk(open_stream: Open) -> float:
    start = time.perf_counter()
    chunks = open_stream()
    try:
        await anext(chunks)
        return time.perf_counter() - start
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


async def compare(
    measure: Callable[[Open], Awaitable[float]], base: Open, chained: Open, rounds: int
) -> tuple[float, float]:
    """Medians of (base, chained), measured alternately after one warm-up each."""
    times = await interleave(
        {"base": lambda: measure(base), "chained": lambda: measure(chained)}, rounds
    )
    return statistics.median(times["base"]), statistics.median(times["chained"])


async def run(urls: list[str], rounds: int, calls: int, events: int) -> list[Check]:
    big_url, small_url, hanging_url = (url + "/api/chat" for url in urls)
    big, small = provider("big", big_url), provider("small", small_url)
    hanging, refusing = provider("hanging", hanging_url), provider("refusing", refused_url())
    timeouts = Timeouts(first_chunk=30, idle=30, total=120)
    rows = []

    def direct(chosen: type[CodeLinkAva]) -> Open:
        return lambda: chosen.create_async_generator("", MESSAGES, timeout=timeouts)

    def through(*providers: type[AsyncGeneratorProvider], **options: Any) -> Open:
        chain = FallbackChain(list(providers), timeouts=timeouts, health=NO_BREAKER, **options)
        return lambda: chain.stream("", MESSAGES)

    base, chained = await compare(full, direct(big), through(big, small), rounds)
    ratio = chained / base
    rows.append(
        (
            "overhead, first provider serves",
            f"direct {base * 1000:.1f} ms, chain {chained * 1000:.1f} ms, ratio {ratio:.3f}",
            ratio <= 1.05,
        )
    )

    base, chained = await compare(first_chunk, direct(small), through(refusing, small), calls)
    extra = (chained - base) * 1000
    rows.append(
        (
            "failover from refused connection, TTFC",
            f"direct {base * 1000:.2f} ms, chain {chained * 1000:.2f} ms, +{extra:.2f} ms",
            extra <= 5.0,
        )
    )

    hedged = through(hanging, small, hedge_after=HEDGE_AFTER)
    base, chained = await compare(first_chunk, direct(small), hedged, max(calls // 2, 5))
    bound = HEDGE_AFTER + base + 0.010
    rows.append(
        (
            f"hedging a hanging provider, hedge_after={HEDGE_AFTER * 1000:.0f} ms, TTFC",
            f"direct {base * 1000:.2f} ms, chain {chained * 1000:.2f} ms, "
            f"bound {bound * 1000:.2f} ms",
            chained <= bound,
        )
    )

    InMemory.chunks = events
    memory = FallbackChain([InMemory], health=NO_BREAKER)
    base, chained = await compare(
        full,
        lambda: InMemory.create_async_generator("", MESSAGES),
        lambda: memory.stream("", MESSAGES),
        rounds,
    )
    per_chunk = (chained - base) / events * 1e6
    rows.append(
        (
            f"in-memory provider, {events} chunks",
            f"direct {base * 1000:.1f} ms, chain {chained * 1000:.1f} ms, "
            f"ratio {chained / base:.3f}, +{per_chunk:.2f} us/chunk",
            True,
        )
    )

    base = cold_times("direct", small_url)
    chained = cold_times("chain", small_url)
    rows.append(
        (
            "cold first call, failover from refused connection, TTFC",
            f"direct {base * 1000:.1f} ms, chain {chained * 1000:.1f} ms, "
            f"+{(chained - base) * 1000:.1f} ms",
            True,
        )
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cold", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold:
        cold(*args.cold)
        return 0
    if args.serve:
        serve(stream_reply(args.events, "t{} "), Reply.text("Hello", " world"), Reply.hang())
        return 0
    with child_upstreams(__file__, "--events", str(args.events)) as urls:
        rows = asyncio.run(run(urls, args.rounds, args.calls, args.events))
    print(f"bench_routing: {args.events} events, {args.rounds} rounds, {args.calls} calls")
    return verdicts(rows)


if __name__ == "__main__":
    sys.exit(main())
