"""Streaming throughput: CodeLinkAva through providerhub vs the seed's loop vs a raw reader.

The upstream is a FakeUpstream in a separate process on 127.0.0.1 serving a pre-rendered body
of N CodeLinkAva/OpenAI-style events, so only the client side is measured. Each round runs the
three readers once, in rotating order; the report gives per-reader medians and ratios to the
raw reader, all from this one run.

    .venv/bin/python bench/bench_stream.py [--events 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
from providerhub.testing import Reply, serve_in_thread
from providerhub_codelinkava import CodeLinkAva

MESSAGES = [{"role": "user", "content": "Say hello"}]
HEADERS = {
    "User-Agent": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36"
    ),
    "Accept": "*/*",
    "Origin": CodeLinkAva.url,
    "Referer": f"{CodeLinkAva.url}/",
}
BODY = {"messages": MESSAGES, "temperature": 0.6, "stream": True}


def serve(events: int) -> None:
    """Child process: serve the pre-rendered stream until stdin closes."""
    body = Reply.text(*(f"t{index % 10}" for index in range(events))).wire()
    with serve_in_thread(default=Reply.raw_bytes(body)) as upstream:
        print(upstream.url, flush=True)
        sys.stdin.read()


async def providerhub_reader(url: str) -> int:
    """(a) The provider end to end: request, SSE decoding, JSON, the guard."""
    total = 0
    async for chunk in CodeLinkAva.create_async_generator("gpt-3.5-turbo", MESSAGES):
        total += len(chunk)
    return total


async def seed_reader(url: str) -> int:
    """(b) The seed's loop, as gpt4free's CodeLinkAva wrote it."""
    total = 0
    async with (
        aiohttp.ClientSession(headers=HEADERS) as session,
        session.post(url, json=BODY) as response,
    ):
        response.raise_for_status()
        async for raw in response.content:
            line = raw.decode()
            if line.startswith("data: "):
                if line.startswith("data: [DONE]"):
                    break
                chunk = json.loads(line[6:-1])
                content = chunk["choices"][0]["delta"].get("content")
                if content:
                    total += len(content)
    return total


async def raw_reader(url: str) -> int:
    """(c) The floor: 64 KiB reads, split on newlines, json.loads of each data line."""
    total = 0
    async with (
        aiohttp.ClientSession(headers=HEADERS) as session,
        session.post(url, json=BODY) as response,
    ):
        response.raise_for_status()
        buffer = b""
        async for piece in response.content.iter_chunked(65536):
            lines = (buffer + piece).split(b"\n")
            buffer = lines.pop()
            for line in lines:
                if line.startswith(b"data: "):
                    if line == b"data: [DONE]":
                        return total
                    content = json.loads(line[6:])["choices"][0]["delta"].get("content")
                    if content:
                        total += len(content)
    return total


READERS: dict[str, Callable[[str], Awaitable[int]]] = {
    "providerhub (CodeLinkAva)": providerhub_reader,
    "seed loop": seed_reader,
    "raw iter_chunked": raw_reader,
}


async def measure(url: str, rounds: int, expected: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in READERS}
    names = list(READERS)
    for name in names:  # warm-up: connections, imports, caches
        await READERS[name](url)
    for round_number in range(rounds):
        order = names[round_number % len(names) :] + names[: round_number % len(names)]
        for name in order:
            start = time.perf_counter()
            total = await READERS[name](url)
            times[name].append(time.perf_counter() - start)
            if total != expected:
                raise SystemExit(f"{name} read {total} characters, expected {expected}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.events)
        return
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--events", str(args.events)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        url = f"{base}/api/chat"
        CodeLinkAva.api_url = url
        times = asyncio.run(measure(url, args.rounds, expected=2 * args.events))
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)
    raw = statistics.median(times["raw iter_chunked"])
    print(f"{args.events} events, {args.rounds} rounds, median wall time per stream")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(
            f"  {name:<26} {median * 1000:8.1f} ms  {median / raw:5.2f}x raw"
            f"  (min {min(samples) * 1000:.1f} ms)"
        )


if __name__ == "__main__":
    main()
