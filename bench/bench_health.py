"""What the shared health store costs a request: time to first chunk of a warm request through a
two-provider chain with a `RedisHealthStore` (a real redis-server on loopback, started here)
vs a `MemoryHealthStore`, same run, interleaved.

Two upstreams: a loopback FakeUpstream in a child process (the whole HTTP path) and an
in-memory provider (no network, so the store's round trip is all that differs). Medians of
`--calls` warm calls each; target: Redis adds at most 1 ms.

    .venv/bin/python bench/bench_health.py [--calls 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _common import Check, InMemory, child_upstreams, interleave, serve, verdicts
from providerhub import FallbackChain, MemoryHealthStore, Ticket, Timeouts
from providerhub.routing.redis_health import RedisHealthStore
from providerhub.testing import Reply

# The tests' real redis-server on a free loopback port.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from bench_routing import MESSAGES, first_chunk, provider
from redis_helpers import RedisServer, redis_binary

TARGET_MS = 1.0
TASKS, EACH = 200, 25
TARGET_RATE = 3000


async def run(url: str, redis_url: str, calls: int) -> list[Check]:
    served = provider("served", url + "/api/chat")
    spare = provider("spare", url + "/api/chat")
    timeouts = Timeouts(first_chunk=30, idle=30, total=120)
    shared = RedisHealthStore(redis_url, prefix="bench:")
    rows: list[Check] = []
    InMemory.chunks = 1
    try:
        for label, members in (("loopback upstream", [served, spare]), ("in-memory", [InMemory])):
            chains: dict[str, Any] = {
                store: FallbackChain(list(members), timeouts=timeouts, health=health)
                for store, health in (("memory", MemoryHealthStore()), ("redis", shared))
            }
            times = await interleave(
                {
                    name: lambda c=chain: first_chunk(lambda: c.stream("", MESSAGES))
                    for name, chain in chains.items()
                },
                calls,
            )
            memory, redis = (statistics.median(times[name]) * 1000 for name in ("memory", "redis"))
            added = redis - memory
            rows.append(
                (
                    f"{label}: TTFC, Redis vs memory store",
                    f"memory {memory:.3f} ms, redis {redis:.3f} ms, +{added:.3f} ms, "
                    f"ratio {redis / memory:.2f}",
                    added <= TARGET_MS,
                )
            )
        rows.append(await burst(shared))
    finally:
        await shared.aclose()
    return rows


async def burst(store: RedisHealthStore) -> Check:
    """The store alone under load: `TASKS` tasks each running `EACH` requests back to back
    (admit under a limit of `TASKS`, first chunk, success), as a busy gateway's chains would.
    Every request must be admitted (a report reaches Redis before the same process's later
    admit), at `TARGET_RATE` requests/s or more (above a gateway's short-request rate here)."""
    refused = 0
    store.first_chunk("burst", 0.01)

    async def worker() -> None:
        nonlocal refused
        for _ in range(EACH):
            ticket = await store.admit("burst", TASKS)
            if not isinstance(ticket, Ticket):
                refused += 1
                continue
            await asyncio.sleep(0)
            store.first_chunk("burst", 0.01)
            store.success(ticket)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(TASKS)))
    await store.flush()
    rate = TASKS * EACH / (time.perf_counter() - started)
    shown = await store.snapshot("burst")
    return (
        f"store alone, {TASKS} tasks x {EACH} requests: admitted, rate",
        f"{rate:.0f} requests/s, refused {refused}, in flight after {shown.in_flight}",
        refused == 0 and shown.in_flight == 0 and rate >= TARGET_RATE,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--serve", nargs="*")
    args = parser.parse_args()
    if args.serve is not None:
        serve(Reply.text("hello"))
        return 0
    server = RedisServer(redis_binary())
    server.start()
    try:
        with child_upstreams(__file__) as urls:
            return verdicts(asyncio.run(run(urls[0], server.url, args.calls)))
    finally:
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
