"""Memory of parked library streams: many open at once, each after its first chunk.

The upstream (a FakeUpstream in a child process, so its memory is not ours) sends one content
delta and then stalls with the answer open. N streams are opened one after another through
`OpenAICompatible` directly and through a `FallbackChain` of it, each read to its first chunk
and left parked there; then the Python heap they hold (`tracemalloc`: what the streams and
their connections allocated, kernel socket buffers aside) is divided by N. Both rows run in one
process, alternating over the rounds; every stream is closed afterwards, and its connection
with it (a stalled answer cannot be reused), before the next round measures.

    .venv/bin/python bench/bench_parked.py [--streams 500] [--rounds 3]

Target (issue 11): at most 20 KiB of heap per parked stream; the exit status is 1 on a miss.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tracemalloc
from collections.abc import AsyncIterator, Callable
from typing import Any

from _common import child_upstreams, serve, verdicts
from providerhub import FallbackChain, MemoryHealthStore, pool
from providerhub.testing import Reply
from providerhub_openai import OpenAICompatible

TARGET = 20 * 1024
MODEL = "fake-model"
MESSAGES = [{"role": "user", "content": "Say hello"}]
FIRST = "hello"


Opener = Callable[[], AsyncIterator[Any]]


async def parked(open_stream: Opener, count: int) -> float:
    """Heap bytes per stream with `count` streams parked after their first chunk."""
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    streams = []
    try:
        for _ in range(count):
            stream = open_stream()
            streams.append(stream)
            chunk = await anext(stream)
            if str(chunk) != FIRST:
                raise SystemExit(f"expected the first chunk {FIRST!r}, got {chunk!r}")
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        for stream in streams:
            await stream.aclose()  # type: ignore[attr-defined]
        await asyncio.sleep(0.2)  # the closed connections' transports finish closing
    return held / count


async def measure(base_url: str, count: int, rounds: int) -> dict[str, list[float]]:
    provider = OpenAICompatible(name="bench", base_url=base_url, api_key="sk-bench")
    chain = FallbackChain([provider], health=MemoryHealthStore())
    openers: dict[str, Opener] = {
        "OpenAICompatible": lambda: provider.create_async_generator(MODEL, MESSAGES),
        "FallbackChain": lambda: chain.stream(MODEL, MESSAGES),
    }
    for open_stream in openers.values():  # warm-up: imports, the pool, caches
        await parked(open_stream, 5)
    results: dict[str, list[float]] = {name: [] for name in openers}
    tracemalloc.start()
    try:
        for turn in range(rounds):
            names = list(openers)[turn % 2 :] + list(openers)[: turn % 2]
            for name in names:
                results[name].append(await parked(openers[name], count))
    finally:
        tracemalloc.stop()
    await pool.close_all()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Reply.hang_after_chunks(FIRST))
        return 0
    with child_upstreams(__file__) as (base,):
        results = asyncio.run(measure(f"{base}/v1", args.streams, args.rounds))
    print(f"{args.streams} streams parked after their first chunk, {args.rounds} rounds:")
    checks = []
    for name, samples in results.items():
        heap = statistics.median(samples)
        each = ", ".join(f"{sample / 1024:.1f}" for sample in samples)
        print(f"  {name:<18} heap {heap / 1024:5.1f} KiB per stream (median; rounds: {each})")
        check = f"{name} <= 20 KiB heap per parked stream"
        checks.append((check, f"{heap / 1024:.1f} KiB", heap <= TARGET))
    return verdicts(checks)


if __name__ == "__main__":
    sys.exit(main())
