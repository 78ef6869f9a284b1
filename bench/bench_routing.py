"""Routing overhead: a FallbackChain against calling its provider directly, in one run.

The upstreams are FakeUpstreams in a child process on 127.0.0.1 (so the server does not share
this process's CPU): a pre-rendered stream of N CodeLinkAva/OpenAI-style events, a short
answer, and one that hangs before sending headers. Three measurements, each with its baseline
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
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from providerhub import AsyncGeneratorProvider, FallbackChain, MemoryHealthStore, Timeouts
from providerhub.testing import Reply, serve_in_thread
from providerhub_codelinkava import CodeLinkAva

MESSAGES = [{"role": "user", "content": "Say hello"}]
HEDGE_AFTER = 0.05
NO_BREAKER = MemoryHealthStore(failure_threshold=10**9)
"""Failures must not open the circuit here: every call should really fail over."""


def serve(events: int) -> None:
    """Child process: serve the three upstreams until stdin closes."""
    body = Reply.text(*(f"t{index % 10} " for index in range(events))).wire()
    with (
        serve_in_thread(default=Reply.raw_bytes(body)) as big,
        serve_in_thread(default=Reply.text("Hello", " world")) as small,
        serve_in_thread(default=Reply.hang()) as hanging,
    ):
        print(json.dumps([big.url, small.url, hanging.url]), flush=True)
        sys.stdin.read()


class InMemory(AsyncGeneratorProvider):
    """A provider with no network: yields `chunks` short chunks."""

    working = True
    chunks = 20000

    @classmethod
    async def create_async_generator(
        cls, model: str, messages: Any, **kwargs: Any
    ) -> AsyncIterator[str]:
        for index in range(cls.chunks):
            yield f"t{index % 10} "


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
    measure: Callable[[Open], Any], base: Open, chained: Open, rounds: int
) -> tuple[float, float]:
    """Medians of (base, chained), measured alternately after one warm-up each."""
    await measure(base)
    await measure(chained)
    times: dict[str, list[float]] = {"base": [], "chained": []}
    for index in range(rounds):
        order = [("base", base), ("chained", chained)]
        for label, open_stream in order if index % 2 == 0 else reversed(order):
            times[label].append(await measure(open_stream))
    return statistics.median(times["base"]), statistics.median(times["chained"])


async def run(urls: list[str], rounds: int, calls: int, events: int) -> list[tuple[str, str, bool]]:
    big_url, small_url, hanging_url = (url + "/api/chat" for url in urls)
    big, small = provider("big", big_url), provider("small", small_url)
    hanging, refusing = provider("hanging", hanging_url), provider("refusing", refused_url())
    timeouts = Timeouts(first_chunk=30, idle=30, total=120)
    rows = []

    serving = FallbackChain([big, small], timeouts=timeouts, health=NO_BREAKER)
    direct, chained = await compare(
        full,
        lambda: big.create_async_generator("", MESSAGES, timeout=timeouts),
        lambda: serving.stream("", MESSAGES),
        rounds,
    )
    ratio = chained / direct
    rows.append(
        (
            "overhead, first provider serves",
            f"direct {direct * 1000:.1f} ms, chain {chained * 1000:.1f} ms, ratio {ratio:.3f}",
            ratio <= 1.05,
        )
    )

    failover = FallbackChain([refusing, small], timeouts=timeouts, health=NO_BREAKER)
    direct, chained = await compare(
        first_chunk,
        lambda: small.create_async_generator("", MESSAGES, timeout=timeouts),
        lambda: failover.stream("", MESSAGES),
        calls,
    )
    extra = (chained - direct) * 1000
    rows.append(
        (
            "failover from refused connection, TTFC",
            f"direct {direct * 1000:.2f} ms, chain {chained * 1000:.2f} ms, +{extra:.2f} ms",
            extra <= 5.0,
        )
    )

    hedged = FallbackChain(
        [hanging, small], timeouts=timeouts, hedge_after=HEDGE_AFTER, health=NO_BREAKER
    )
    direct, chained = await compare(
        first_chunk,
        lambda: small.create_async_generator("", MESSAGES, timeout=timeouts),
        lambda: hedged.stream("", MESSAGES),
        max(calls // 2, 5),
    )
    bound = HEDGE_AFTER + direct + 0.010
    rows.append(
        (
            f"hedging a hanging provider, hedge_after={HEDGE_AFTER * 1000:.0f} ms, TTFC",
            f"direct {direct * 1000:.2f} ms, chain {chained * 1000:.2f} ms, "
            f"bound {bound * 1000:.2f} ms",
            chained <= bound,
        )
    )

    InMemory.chunks = events
    memory = FallbackChain([InMemory], health=NO_BREAKER)
    direct, chained = await compare(
        full,
        lambda: InMemory.create_async_generator("", MESSAGES),
        lambda: memory.stream("", MESSAGES),
        rounds,
    )
    per_chunk = (chained - direct) / events * 1e6
    rows.append(
        (
            f"in-memory provider, {events} chunks",
            f"direct {direct * 1000:.1f} ms, chain {chained * 1000:.1f} ms, "
            f"ratio {chained / direct:.3f}, +{per_chunk:.2f} us/chunk",
            True,
        )
    )

    direct = cold_times("direct", small_url)
    chained = cold_times("chain", small_url)
    rows.append(
        (
            "cold first call, failover from refused connection, TTFC",
            f"direct {direct * 1000:.1f} ms, chain {chained * 1000:.1f} ms, "
            f"+{(chained - direct) * 1000:.1f} ms",
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
        serve(args.events)
        return 0
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--events", str(args.events)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        urls = json.loads(child.stdout.readline())
        rows = asyncio.run(run(urls, args.rounds, args.calls, args.events))
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)
    print(f"bench_routing: {args.events} events, {args.rounds} rounds, {args.calls} calls")
    for label, numbers, ok in rows:
        print(f"  {'ok  ' if ok else 'FAIL'} {label}: {numbers}")
    return 0 if all(ok for _, _, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
