"""The OpenAI-compatible gateway: a client streaming through `providerhub serve` vs going direct.

Upstreams: FakeUpstreams in a child process on 127.0.0.1, one serving a pre-rendered OpenAI
chat.completion.chunk stream of N events, one a short answer ("Hello"). The gateway
(`create_app` + `start`, its config built by `parse_config`: providers "big" and "small" of the
openai plugin, no keys) runs in a second child process, as `providerhub serve` does: in the
measuring process it would share one GIL and one event loop with the client, and its time would
add to the client's instead of overlapping with it as it does in a real deployment. It is also
run in the measuring process, as an informational row showing that summed cost.

Streaming, one interleaved run, median of R rounds, every read checked for its 2N characters:

- raw: the raw reader (iter_chunked + split + json.loads) reading the upstream directly;
- OpenAICompatible: the provider reading the upstream directly;
- gateway: the raw reader reading `POST /v1/chat/completions` (stream, model "big") from the
  gateway, which reads the upstream with OpenAICompatible and re-encodes every chunk it gets.

Target: gateway (child process) <= 1.5x raw. The gateway writes one event per chunk its
provider yields, and the provider yields one chunk per network read, so the client parses far
fewer (larger) events than the upstream sent; both counts are printed. The gateway's worst case
is a provider yielding every token as its own chunk (a model generating slowly): the row
"1 event/chunk" streams N one-token chunks of an in-memory provider (`InMemory`, no upstream)
through the gateway, N events re-encoded and written one by one (informational). Time to first
chunk: median of C small requests, raw and OpenAICompatible direct vs raw through the gateway
(informational).

    .venv/bin/python bench/bench_gateway.py [--events 20000] [--rounds 9] [--calls 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import AsyncGenerator
from functools import partial
from typing import cast

import aiohttp
from _common import (
    RAW,
    Check,
    InMemory,
    child_upstreams,
    interleave,
    ratio_table,
    raw_read,
    serve,
    stream_reply,
    timed,
    verdicts,
    within,
)
from aiohttp import web
from providerhub import MemoryHealthStore, Registry
from providerhub.config import parse_config
from providerhub.server import create_app, start
from providerhub.testing import Reply
from providerhub_openai import OpenAICompatible

TARGET = 1.5
MODEL = "fake-model"
MESSAGES = [{"role": "user", "content": "Say hello"}]
DIRECT = "OpenAICompatible direct"
GATEWAY = "raw via gateway (child)"
IN_PROCESS = "raw via gateway (in process)"
PER_TOKEN = "raw via gateway, 1 event/chunk"
FIRST = "Hello"
"""The small answer (one chunk), checked on every time-to-first-chunk call."""


def build_app(big: str, small: str, events: int) -> web.Application:
    """The gateway in front of the two upstreams (from a config, as `providerhub serve` reads
    one) and of `InMemory` yielding `events` chunks."""
    config = parse_config(f"""
[providers.big]
use = "openai"
base_url = "{big}/v1"
default_model = "{MODEL}"

[providers.small]
use = "openai"
base_url = "{small}/v1"
default_model = "{MODEL}"
""")
    registry = config.build_registry(Registry.discover())
    InMemory.chunks = events
    registry.register(InMemory)
    return create_app(registry, config, health=MemoryHealthStore())


async def serve_gateway(big: str, small: str, events: int) -> None:
    """Child process: the gateway; print its URL as JSON; serve until stdin closes."""
    runner, url = await start(build_app(big, small, events), "127.0.0.1", 0, grace=0.5)
    try:
        print(json.dumps([url]), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await runner.cleanup()


def chat(model: str) -> dict[str, object]:
    return {"model": model, "messages": MESSAGES, "stream": True}


async def raw(base: str, model: str) -> int:
    """The raw reader on `base`'s chat completions; the content characters it read."""
    return await raw_read(f"{base}/v1/chat/completions", chat(model), {})


async def drain(provider: OpenAICompatible) -> int:
    total = 0
    async for chunk in provider.create_async_generator(MODEL, MESSAGES):
        total += len(chunk)
    return total


async def events(base: str, model: str) -> int:
    """The number of SSE events in one whole answer (untimed)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/v1/chat/completions", json=chat(model)) as response,
    ):
        return (await response.read()).count(b"data: ")


def checked(name: str, seconds: float, first: str) -> float:
    if first != FIRST:
        raise SystemExit(f"{name} got first chunk {first!r}, expected {FIRST!r}")
    return seconds


async def raw_first(base: str, model: str) -> float:
    """Seconds until the raw reader has the first content delta (session setup included)."""
    start = time.perf_counter()
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/v1/chat/completions", json=chat(model)) as response,
    ):
        response.raise_for_status()
        buffer = b""
        async for piece in response.content.iter_chunked(65536):
            lines = (buffer + piece).split(b"\n")
            buffer = lines.pop()
            for line in lines:
                if line.startswith(b"data: ") and line != b"data: [DONE]":
                    choices = json.loads(line[6:])["choices"]
                    content = choices[0]["delta"].get("content") if choices else None
                    if content:
                        return checked(base, time.perf_counter() - start, content)
    raise SystemExit(f"{base} sent no content")


async def provider_first(provider: OpenAICompatible) -> float:
    """Seconds until the provider yields its first chunk; closing it is not timed."""
    start = time.perf_counter()
    chunks = provider.create_async_generator(MODEL, MESSAGES)
    try:
        first = await anext(chunks)
        return checked(provider.name, time.perf_counter() - start, first)
    finally:
        await cast(AsyncGenerator[str, None], chunks).aclose()


async def run(upstreams: list[str], gateway: str, args: argparse.Namespace) -> list[Check]:
    big, small = upstreams
    runner, local = await start(build_app(big, small, args.events), "127.0.0.1", 0, grace=0.5)
    try:
        provider = OpenAICompatible(name="big", base_url=f"{big}/v1")
        expected = 2 * args.events
        reads = {
            RAW: partial(raw, big, MODEL),
            DIRECT: partial(drain, provider),
            GATEWAY: partial(raw, gateway, "big"),
            IN_PROCESS: partial(raw, local, "big"),
            PER_TOKEN: partial(raw, gateway, "InMemory"),
        }
        runs = {name: timed(name, read, expected) for name, read in reads.items()}
        times = await interleave(runs, args.rounds)
        sent, received = await events(big, MODEL), await events(gateway, "big")
        per_token = await events(gateway, "InMemory")
        small_provider = OpenAICompatible(name="small", base_url=f"{small}/v1")
        firsts = await interleave(
            {
                "raw direct": partial(raw_first, small, MODEL),
                DIRECT: partial(provider_first, small_provider),
                "raw via gateway": partial(raw_first, gateway, "small"),
            },
            args.calls,
        )
    finally:
        await runner.cleanup()
    header = f"bench_gateway: {args.events} events, {args.rounds} rounds, median per stream"
    ratios = ratio_table(header, times)
    raw_ms, direct_ms, gateway_ms = (statistics.median(t) * 1000 for t in firsts.values())
    print(f"time to first chunk, median of {args.calls} calls")
    width = max(map(len, firsts)) + 1
    for name, samples in firsts.items():
        print(f"  {name:<{width}} {statistics.median(samples) * 1000:6.2f} ms")
    return [
        within(ratios, GATEWAY, TARGET),
        (f"{GATEWAY} vs {DIRECT}", f"{ratios[GATEWAY] / ratios[DIRECT]:.3f}x", True),
        (f"{IN_PROCESS} vs {DIRECT}", f"{ratios[IN_PROCESS] / ratios[DIRECT]:.3f}x", True),
        ("SSE events, upstream -> client via gateway", f"{sent} -> {received}", True),
        (f"{PER_TOKEN} ({per_token} events)", f"{ratios[PER_TOKEN]:.3f}x raw", True),
        (
            "time to first chunk via gateway",
            f"{gateway_ms:.2f} ms vs OpenAICompatible {direct_ms:.2f} ms "
            f"(+{gateway_ms - direct_ms:.2f} ms), raw {raw_ms:.2f} ms",
            True,
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--gateway", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve and args.gateway:
        big, small = args.gateway
        asyncio.run(serve_gateway(big, small, args.events))
        return 0
    if args.serve:
        serve(stream_reply(args.events), Reply.text(FIRST))
        return 0
    with (
        child_upstreams(__file__, "--events", str(args.events)) as upstreams,
        child_upstreams(__file__, "--events", str(args.events), "--gateway", *upstreams) as (
            gateway,
        ),
    ):
        checks = asyncio.run(run(upstreams, gateway, args))
    return verdicts(checks)


if __name__ == "__main__":
    sys.exit(main())
