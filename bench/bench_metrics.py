"""What `[server] metrics = true` costs a gateway request, in one process: two gateways on the
same registry, metrics on and off, interleaved.

The upstream is a loopback FakeUpstream in a child process answering 5-event streams (the
case where a request's fixed costs show most); the chain skips CodeLinkAva (not working) and is
served by the upstream's provider, so each request counts one request, one skip and one served
attempt with its two histogram observations. Each run sends `--requests` streamed requests one
after another through one keep-alive aiohttp session and reads each whole; medians of
`--rounds` rounds. Also the counting alone (`Metrics.request` + `Metrics.answered` for that
trace), timed without the network. Targets: on/off <= 1.05, counting <= 20 us per request.

    .venv/bin/python bench/bench_metrics.py [--rounds 15] [--requests 100]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import timeit

import aiohttp
from _common import Check, child_upstreams, interleave, serve, stream_reply, verdicts
from providerhub import Registry
from providerhub.attempt import Attempt
from providerhub.config import parse_config
from providerhub.server import create_app, start
from providerhub.server.metrics import Metrics

BODY = {"model": "main", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def counting_us() -> float:
    """Microseconds `Metrics` spends on one request of this bench's shape."""
    metrics = Metrics()
    trace = [
        Attempt("CodeLinkAva", "skipped", "not working", skipped_for="not working"),
        Attempt("u", "served", time_to_first_chunk=0.001, duration=0.002),
    ]

    def one() -> None:
        metrics.request("/v1/chat/completions", 200)
        metrics.answered(trace)

    number = 100_000
    return min(timeit.repeat(one, number=number, repeat=5)) / number * 1e6


async def measure(url: str, rounds: int, requests: int) -> dict[str, list[float]]:
    text = (
        f'[providers.u]\nuse = "openai"\nbase_url = "{url}/v1"\ndefault_model = "m"\n\n'
        '[chains.main]\nproviders = ["CodeLinkAva", "u"]\n\n[server]\n'
    )
    registry = Registry.discover()
    runners, sessions, runs = [], [], {}
    try:
        for name, server in (("metrics off", ""), ("metrics on", "metrics = true\n")):
            config = parse_config(text + server)
            runner, base = await start(create_app(config.build_registry(registry), config))
            runners.append(runner)
            session = aiohttp.ClientSession()
            sessions.append(session)

            async def run(session: aiohttp.ClientSession = session, base: str = base) -> float:
                started = time.perf_counter()
                for _ in range(requests):
                    async with session.post(f"{base}/v1/chat/completions", json=BODY) as answer:
                        assert answer.status == 200
                        assert (await answer.read()).endswith(b"data: [DONE]\n\n")
                return (time.perf_counter() - started) / requests

            runs[name] = run
        return await interleave(runs, rounds)
    finally:
        for session in sessions:
            await session.close()
        for runner in runners:
            await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(stream_reply(5))
        return 0
    with child_upstreams(__file__) as urls:
        times = asyncio.run(measure(urls[0], args.rounds, args.requests))
    off, on = (statistics.median(times[name]) * 1000 for name in ("metrics off", "metrics on"))
    counting = counting_us()
    print(f"per request: metrics off {off:.3f} ms, on {on:.3f} ms ({on / off:.3f}x)")
    print(f"counting alone: {counting:.2f} us per request")
    checks: list[Check] = [
        ("metrics on/off per request <= 1.05", f"{on / off:.3f}x", on / off <= 1.05),
        ("counting <= 20 us per request", f"{counting:.2f} us", counting <= 20),
    ]
    return verdicts(checks)


if __name__ == "__main__":
    sys.exit(main())
