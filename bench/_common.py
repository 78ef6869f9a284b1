"""What the benchmarks share, so each bench file keeps only what it measures.

A loopback upstream in a child process (so it does not share the measuring process's GIL), the
raw `iter_chunked` + split + `json.loads` reader every streaming bench is compared against,
interleaved rounds with a warm-up and a check of each result, and the median/ratio and ok/FAIL
reports. Imported as `_common` by the bench scripts, which run as `python bench/bench_X.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import aiohttp
from providerhub import AsyncGeneratorProvider, Messages
from providerhub.testing import Reply, serve_in_thread

RAW = "raw iter_chunked"
"""The name of the raw reader's row: the baseline every streaming ratio is taken against."""

Run = Callable[[], Awaitable[float]]
"""One timed measurement: returns its wall time in seconds."""

Check = tuple[str, str, bool]
"""(what is checked, the numbers, whether the target was met)."""


class InMemory(AsyncGeneratorProvider):
    """No network: yields `chunks` chunks of one token each, like a model generating slowly.

    It isolates per-chunk costs (a chain's, the gateway's re-encoding of every chunk as its own
    event) that batching hides when a stream arrives at loopback speed.
    """

    working = True
    chunks = 20_000

    @classmethod
    async def create_async_generator(
        cls, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncIterator[str]:
        for index in range(cls.chunks):
            yield f"t{index % 10}"


def stream_reply(events: int, token: str = "t{}") -> Reply:
    """A pre-rendered stream of `events` content deltas (`token` formatted with index % 10)."""
    body = Reply.text(*(token.format(index % 10) for index in range(events))).wire()
    return Reply.raw_bytes(body)


def serve(*replies: Reply) -> None:
    """Child process: an upstream per reply; print their URLs as JSON; serve until stdin closes."""
    with ExitStack() as stack:
        urls = [stack.enter_context(serve_in_thread(default=reply)).url for reply in replies]
        print(json.dumps(urls), flush=True)
        sys.stdin.read()


@contextmanager
def child_upstreams(script: str, *args: str) -> Iterator[list[str]]:
    """Run `script --serve *args` (which calls `serve`) in a child process; yield its base URLs."""
    child = subprocess.Popen(
        [sys.executable, script, "--serve", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        urls: list[str] = json.loads(child.stdout.readline())
        yield urls
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)


async def raw_read(url: str, body: Mapping[str, Any], headers: Mapping[str, str]) -> int:
    """The floor: 64 KiB reads, split on newlines, `json.loads` of each data line.

    Returns the number of content characters streamed.
    """
    total = 0
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers) as response,
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
                    choices = json.loads(line[6:])["choices"]
                    content = choices[0]["delta"].get("content") if choices else None
                    if content:
                        total += len(content)
    return total


def timed(
    name: str,
    read: Callable[[], Awaitable[int]],
    expected: int,
    before: Callable[[], Awaitable[None]] | None = None,
) -> Run:
    """A run timing `read` (after an untimed `before`); exits if it read other than `expected`."""

    async def run() -> float:
        if before is not None:
            await before()
        start = time.perf_counter()
        total = await read()
        elapsed = time.perf_counter() - start
        if total != expected:
            raise SystemExit(f"{name} read {total} characters, expected {expected}")
        return elapsed

    return run


def rotated(names: Sequence[str], by: int) -> list[str]:
    """`names` starting `by` places later, so no run always goes first."""
    by %= len(names)
    return [*names[by:], *names[:by]]


async def interleave(
    runs: Mapping[str, Run],
    rounds: int,
    order: Callable[[list[str], int], Sequence[str]] = rotated,
) -> dict[str, list[float]]:
    """Seconds per run: one untimed warm-up each, then `rounds` rounds in `order(names, round)`.

    The default order runs each once a round, rotated by the round number: machine noise then
    falls on every run alike, and every ratio compares samples from the same stretch of time.
    """
    names = list(runs)
    for run in runs.values():  # warm-up: connections, imports, caches
        await run()
    times: dict[str, list[float]] = {name: [] for name in names}
    for number in range(rounds):
        for name in order(names, number):
            times[name].append(await runs[name]())
    return times


def ratio_table(header: str, times: Mapping[str, list[float]]) -> dict[str, float]:
    """Print each run's median, its ratio to the raw reader's median, and its minimum."""
    raw = statistics.median(times[RAW])
    width = max(map(len, times)) + 1
    ratios = {}
    print(header)
    for name, samples in times.items():
        median = statistics.median(samples)
        ratios[name] = median / raw
        print(
            f"  {name:<{width}} {median * 1000:8.1f} ms  {ratios[name]:6.2f}x raw"
            f"  (min {min(samples) * 1000:.1f} ms)"
        )
    return ratios


def within(ratios: Mapping[str, float], name: str, limit: float) -> Check:
    """The check that `name` took at most `limit` times the raw reader's median."""
    ratio = ratios[name]
    return f"{name} <= {limit:.2f}x raw", f"{ratio:.3f}x", ratio <= limit


def verdicts(checks: Sequence[Check]) -> int:
    """Print an ok/FAIL line per check; return the exit status (1 when a target was missed)."""
    for label, numbers, ok in checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {label}: {numbers}")
    return 0 if all(ok for _, _, ok in checks) else 1


def streaming_main(
    doc: str,
    script: str,
    runs: Callable[[str, int], Mapping[str, Run]],
    rounds: int,
    checked: str,
    limit: float,
    order: Callable[[list[str], int], Sequence[str]] = rotated,
    reply: Callable[[int], Reply] = stream_reply,
) -> int:
    """The command line of a streaming bench; returns its exit status.

    `script --serve` is the child serving `reply(events)`, by default a pre-rendered stream of
    `--events` two-character content deltas; otherwise
    `runs(base_url, expected_characters)` gives the timed runs (one named RAW), interleaved for
    `--rounds` rounds, reported against the raw reader, and `checked` is held to `limit`.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(reply(args.events))
        return 0
    with child_upstreams(script, "--events", str(args.events)) as (base,):
        times = asyncio.run(interleave(runs(base, 2 * args.events), args.rounds, order))
    header = f"{args.events} events, {args.rounds} rounds, median wall time per stream"
    return verdicts([within(ratio_table(header, times), checked, limit)])
