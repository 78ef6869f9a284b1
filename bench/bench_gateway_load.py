"""The gateway under load: many concurrent streams through `providerhub serve` vs the upstream.

Upstreams: FakeUpstreams in a child process on 127.0.0.1, four of them: 200-event and 5-event
answers, each either batched (the whole body in one write) or one event per write (a model
generating, the loop yielding between events). The gateway is a real `providerhub serve`
subprocess (log level warning) whose config names one openai provider per upstream; each
`--base DIR` (repeatable) adds one running another checkout's code (PYTHONPATH=DIR/core:
DIR/plugins/openai, same interpreter), for an A/B in the same run; `--metrics` adds one of this
checkout with `[server] metrics = true` (metrics on vs off, same run). Beside them always run
two floors: an aiohttp pass-through proxy that parses nothing (`_passthrough.py`), what aiohttp's
server and client cost alone, and a byte relay on bare asyncio protocols (`_relay.py`), what any
Python asyncio gateway costs at least. `--litellm EXE` adds LiteLLM's proxy (`litellm --config`, one
model per upstream), each of its runs cut after `--litellm-deadline` seconds.

The client is the same everywhere: aiohttp, one keep-alive session per target, every stream
read whole (64 KiB reads, split, `json.loads`) and checked for its exact text and `[DONE]`; any
other outcome is an error. At each concurrency C (1, 50, 200, 500) the targets run in rotated
order, `--rounds` times per answer shape: C workers each run streams back to back until
`--streams` (at least C) have run. Reported per C and shape: events/s of each target and its
ratio to direct, time to first chunk p50/p99 (the gateway's added p50 at C=1), errors; per
gateway: CPU per request and per upstream event (its threads' on-CPU nanoseconds from
/proc/PID/task/*/schedstat, split by solving the 5- and 200-event answers' costs) and peak RSS
(VmHWM).

Targets (the issue's): gateway >= 0.75x direct events/s at C=200 with 200-event answers and
>= 0.5x with 5-event ones, zero errors at C=500, CPU <= 0.3 ms per request + 2.5 us per
upstream event, time to first chunk added at C=1 <= +0.7 ms p50, peak RSS <= 100 MiB. Exits 1
on a miss (the floors' and LiteLLM's figures are printed, not held; the floors' streams must be
exact too). `--quick` (C = 1 and 20, few streams) checks only that every stream was
exact: the smoke test the test suite runs.

    .venv/bin/python bench/bench_gateway_load.py [--base /tmp/base] [--metrics] [--rounds 3]
        [--litellm /tmp/litellm/bin/litellm] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from _common import Check, child_upstreams, rotated, serve, verdicts
from providerhub.testing import Reply

SHAPES = {"200 batched": (200, False), "200 per write": (200, True)}
SHAPES |= {"5 batched": (5, False), "5 per write": (5, True)}
MESSAGES = [{"role": "user", "content": "Say hello"}]
DIRECT = "direct"
FLOORS = {"aiohttp pass-through": "_passthrough.py", "asyncio byte relay": "_relay.py"}
"""Reference servers beside the gateway: what aiohttp alone costs, what asyncio alone costs."""
EXACT = "every stream exact"
LITELLM_HINT = (
    "LiteLLM proxy: not run; to add it, install it in a scratch venv (python3 -m venv "
    "/tmp/litellm && /tmp/litellm/bin/pip install 'litellm[proxy]') and pass "
    "--litellm /tmp/litellm/bin/litellm"
)


def token(index: int) -> str:
    return f"t{index % 10}"


def expected(events: int) -> str:
    return "".join(token(index) for index in range(events))


def reply(events: int, per_write: bool) -> Reply:
    """A stream of `events` deltas; per write: each its own write, the loop yielding between."""
    tokens = [token(index) for index in range(events)]
    if per_write:
        return Reply.text(*tokens, delay=1e-6)
    return Reply.raw_bytes(Reply.text(*tokens).wire())


@dataclass
class Target:
    """Where streams go: the upstreams directly, or a gateway (with its process)."""

    name: str
    urls: dict[str, str]
    """Shape -> chat-completions URL."""
    models: dict[str, str]
    process: subprocess.Popen[str] | None = None
    held: bool = True
    """Whether the issue's targets apply (not to the pass-through floor nor to peers)."""
    exact: bool = True
    """Whether its errors fail the run (a peer's are only reported)."""
    deadline: float | None = None
    """Seconds after which a run is cut, its unfinished streams errors (None: never)."""
    cpu: dict[str, float] = field(default_factory=dict)
    """Shape -> gateway CPU seconds spent on its runs."""
    requests: dict[str, int] = field(default_factory=dict)


def cpu_seconds(pid: int) -> float:
    """On-CPU time of every thread of `pid` (nanosecond counters)."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            total += int(Path(path).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


SERVER_LIMIT = "[server]\nmax_concurrent_requests = 2000\n\n"
"""Lifts a checkout's gateway limit on concurrent requests above C (one with no such key
refuses the table: it runs without it)."""


@contextmanager
def running(
    command: list[str], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """A server process (stdout piped, stderr dropped), stopped with SIGTERM afterwards."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=15)


def served_at(process: subprocess.Popen[str]) -> str | None:
    """The base URL a server prints as "serving URL" once it listens (None: it did not)."""
    assert process.stdout is not None
    line = process.stdout.readline()
    if "serving " not in line:
        process.wait(timeout=15)
        return None
    return line.split("serving ")[1].split()[0]


def model_names(upstreams: dict[str, str]) -> dict[str, str]:
    """Shape -> the model name a gateway routes to that shape's upstream."""
    return {shape: "u" + shape.replace(" ", "") for shape in upstreams}


@contextmanager
def floor(name: str, script: str, upstreams: dict[str, str]) -> Iterator[Target]:
    """A floor server (`_passthrough.py`, `_relay.py`) serving upstream number i at
    `/<i>/v1/chat/completions`: figures to read the gateway's against, not held to targets."""
    path = str(Path(__file__).with_name(script))
    with running([sys.executable, path, *upstreams.values()]) as process:
        base = served_at(process)
        if base is None:
            raise SystemExit(f"{script} did not start")
        urls = {
            shape: f"{base}/{index}/v1/chat/completions" for index, shape in enumerate(upstreams)
        }
        yield Target(name, urls, {shape: "fake-model" for shape in upstreams}, process, held=False)


LITELLM_ENV = {
    "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",  # loopback, no key
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # offline: no fetch of the price list
    "LITELLM_LOG": "ERROR",
}


@contextmanager
def litellm(executable: str, upstreams: dict[str, str], deadline: float) -> Iterator[Target]:
    """LiteLLM's proxy (`litellm --config`) in front of the upstreams, one model per shape;
    each of its runs is cut after `deadline` seconds (what did not finish is an error)."""
    names = model_names(upstreams)
    config = "model_list:\n" + "".join(
        f"  - model_name: {names[shape]}\n    litellm_params:\n      model: openai/fake-model\n"
        f"      api_base: {url}/v1\n      api_key: sk-bench\n"
        for shape, url in upstreams.items()
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "litellm.yaml"
        path.write_text(config)
        command = [executable, "--config", str(path), "--host", "127.0.0.1", "--port", str(port)]
        with running([*command, "--telemetry", "False"], os.environ | LITELLM_ENV) as process:
            ready = time.monotonic() + 180
            while not alive(f"{base}/health/liveliness"):
                if process.poll() is not None or time.monotonic() > ready:
                    raise SystemExit(f"LiteLLM's proxy did not start: {' '.join(command)}")
                time.sleep(0.5)
            urls = {shape: f"{base}/v1/chat/completions" for shape in upstreams}
            yield Target(
                "LiteLLM proxy", urls, names, process, held=False, exact=False, deadline=deadline
            )


def alive(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@contextmanager
def gateway(
    upstreams: dict[str, str], source: str | None, metrics: bool = False
) -> Iterator[Target]:
    """`providerhub serve` in front of the upstreams, from this checkout or `source`'s code;
    `metrics`: with `[server] metrics = true`."""
    names = model_names(upstreams)
    providers = "".join(
        f'[providers.{names[shape]}]\nuse = "openai"\nbase_url = "{url}/v1"\n'
        f'default_model = "fake-model"\n\n'
        for shape, url in upstreams.items()
    )
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = f"{source}/core:{source}/plugins/openai"
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        limit = SERVER_LIMIT.replace("\n\n", "\nmetrics = true\n\n") if metrics else SERVER_LIMIT
        for config in (limit + providers, providers):
            path = Path(scratch) / "providerhub.toml"
            path.write_text(config)
            command = [sys.executable, "-m", "providerhub", "serve", "--config", str(path)]
            command += ["--port", "0", "--log-level", "warning"]
            process = stack.enter_context(running(command, env))
            base = served_at(process)
            if base is not None:
                break
        else:
            raise SystemExit("the gateway did not start")
        urls = {shape: f"{base}/chat/completions" for shape in upstreams}
        name = "gateway" if source is None else f"gateway ({Path(source).name})"
        name += " (metrics)" if metrics else ""
        yield Target(name, urls, names, process)


async def one_stream(
    session: aiohttp.ClientSession, url: str, model: str, text: str
) -> float | None:
    """Seconds to the first content delta, or None when the stream was not exactly `text`."""
    body = {"model": model, "messages": MESSAGES, "stream": True}
    start = time.perf_counter()
    first: float | None = None
    got: list[str] = []
    done = False
    try:
        async with session.post(url, json=body) as response:
            if response.status != 200:
                return None
            buffer = b""
            async for piece in response.content.iter_chunked(65536):
                lines = (buffer + piece).split(b"\n")
                buffer = lines.pop()
                for line in lines:
                    if not line.startswith(b"data: "):
                        continue
                    if line == b"data: [DONE]":
                        done = True
                        break
                    choices = json.loads(line[6:])["choices"]
                    content = choices[0]["delta"].get("content") if choices else None
                    if content:
                        if first is None:
                            first = time.perf_counter() - start
                        got.append(content)
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
        return None
    return first if done and "".join(got) == text else None


@dataclass
class Run:
    seconds: float
    streams: int
    errors: int
    firsts: list[float]


async def run_level(
    session: aiohttp.ClientSession, target: Target, shape: str, level: int, streams: int
) -> Run:
    """`level` workers running streams back to back until `streams` have run."""
    events, _ = SHAPES[shape]
    text, url, model = expected(events), target.urls[shape], target.models[shape]
    left = total = max(streams, level)
    firsts: list[float] = []

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            first = await one_stream(session, url, model, text)
            if first is not None:
                firsts.append(first)

    before = cpu_seconds(target.process.pid) if target.process else 0.0
    start = time.perf_counter()
    with suppress(TimeoutError):
        async with asyncio.timeout(target.deadline):
            await asyncio.gather(*(worker() for _ in range(level)))
    seconds = time.perf_counter() - start
    if target.process is not None:
        target.cpu[shape] = target.cpu.get(shape, 0.0) + cpu_seconds(target.process.pid) - before
        target.requests[shape] = target.requests.get(shape, 0) + total - left
    return Run(seconds, total, total - len(firsts), firsts)


def percentile(samples: Sequence[float], share: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(
    targets: list[Target], levels: Sequence[int], rounds: int, streams: int
) -> dict[tuple[int, str, str], list[Run]]:
    """Every (level, shape, target)'s runs, the targets rotated each round."""
    results: dict[tuple[int, str, str], list[Run]] = {}
    names = [target.name for target in targets]
    by_name = {target.name: target for target in targets}
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for target in targets:  # warm-up: connections, imports, caches
            for shape in SHAPES:
                await run_level(session, target, shape, 1, 3)
            target.cpu.clear()
            target.requests.clear()
        turn = 0
        for level in levels:
            for shape in SHAPES:
                for _ in range(rounds):
                    for name in rotated(names, turn):
                        run = await run_level(session, by_name[name], shape, level, streams)
                        results.setdefault((level, shape, name), []).append(run)
                    turn += 1
    return results


def report(
    results: dict[tuple[int, str, str], list[Run]],
    targets: list[Target],
    levels: Sequence[int],
) -> list[Check]:
    checks: list[Check] = []
    gateways = [target for target in targets if target.process is not None]
    errors_total = 0
    print(
        f"{'C':>4} {'answer':<14} {'target':<22} {'events/s':>10} {'ratio':>6} "
        f"{'ttfc p50':>9} {'p99':>8} {'errors':>6}"
    )
    ratios: dict[tuple[int, str, str], float] = {}
    ttfc: dict[tuple[int, str, str], float] = {}
    for level in levels:
        for shape, (events, _) in SHAPES.items():
            rates = {}
            for target in targets:
                runs = results[(level, shape, target.name)]
                rate = statistics.median(
                    (run.streams - run.errors) * events / run.seconds for run in runs
                )
                rates[target.name] = rate
                firsts = [first for run in runs for first in run.firsts]
                errors = sum(run.errors for run in runs)
                errors_total += errors if target.exact else 0
                ratio = rate / rates[DIRECT]
                ratios[(level, shape, target.name)] = ratio
                ttfc[(level, shape, target.name)] = percentile(firsts, 0.5)
                p50, p99 = percentile(firsts, 0.5) * 1000, percentile(firsts, 0.99) * 1000
                print(
                    f"{level:>4} {shape:<14} {target.name:<22} {rate:>10.0f} {ratio:>5.2f}x "
                    f"{p50:>7.2f}ms {p99:>6.2f}ms {errors:>6}"
                )
                if level == max(levels) and errors and target.held:
                    checks.append(
                        (f"zero errors at C={level}: {target.name} {shape}", f"{errors}", False)
                    )
    checks.append((EXACT, f"{errors_total} errors", errors_total == 0))
    for target in gateways:
        assert target.process is not None
        rss = peak_rss_mib(target.process.pid)
        costs = {}
        for shape, (events, per_write) in SHAPES.items():
            costs[(events, per_write)] = target.cpu[shape] / target.requests[shape]
        print(
            f"{target.name}: CPU per request "
            + ", ".join(f"{shape} {costs[SHAPES[shape]] * 1000:.3f} ms" for shape in SHAPES)
            + f"; peak RSS {rss:.1f} MiB"
        )
        split = []
        for per_write, label in ((False, "batched"), (True, "per write")):
            per_event = (costs[(200, per_write)] - costs[(5, per_write)]) / 195
            per_request = costs[(5, per_write)] - 5 * per_event
            numbers = f"{per_request * 1000:.3f} ms + {per_event * 1e6:.2f} us/event"
            split.append((label, numbers, per_request <= 0.0003 and per_event <= 2.5e-6))
        print(
            f"{target.name}: CPU " + "; ".join(f"{label} {numbers}" for label, numbers, _ in split)
        )
        if not target.held:
            continue
        for label, numbers, ok in split:
            name = f"{target.name} CPU, {label} upstream <= 0.3 ms + 2.5 us/event"
            checks.append((name, numbers, ok))
        checks.append((f"{target.name} peak RSS <= 100 MiB", f"{rss:.1f} MiB", rss <= 100))
        for shape, limit in (
            ("200 batched", 0.75),
            ("200 per write", 0.75),
            ("5 batched", 0.5),
            ("5 per write", 0.5),
        ):
            level = 200 if 200 in levels else max(levels)
            ratio = ratios[(level, shape, target.name)]
            checks.append(
                (
                    f"{target.name} C={level} {shape} >= {limit}x direct",
                    f"{ratio:.3f}x",
                    ratio >= limit,
                )
            )
        for shape in ("5 batched", "5 per write") if 1 in levels else ():
            added = (ttfc[(1, shape, target.name)] - ttfc[(1, shape, DIRECT)]) * 1000
            checks.append(
                (
                    f"{target.name} time to first chunk added at C=1, {shape} <= +0.7 ms",
                    f"{added:+.2f} ms",
                    added <= 0.7,
                )
            )
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--levels", default="1,50,200,500")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--streams", type=int, default=60, help="streams per run (at least C)")
    parser.add_argument(
        "--base",
        action="append",
        default=[],
        help="a checkout whose gateway runs beside this one (A/B); may be repeated",
    )
    parser.add_argument(
        "--metrics", action="store_true", help="also this checkout's gateway with metrics on"
    )
    parser.add_argument(
        "--litellm",
        metavar="EXE",
        help="also LiteLLM's proxy, run by this `litellm` executable (a scratch venv's)",
    )
    parser.add_argument(
        "--litellm-deadline",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds after which a LiteLLM run is cut, its unfinished streams errors (10)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: C=1,20, few streams")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*(reply(*shape) for shape in SHAPES.values()))
        return 0
    levels = [1, 20] if args.quick else [int(level) for level in args.levels.split(",")]
    rounds, streams = (1, 6) if args.quick else (args.rounds, args.streams)
    with ExitStack() as stack:
        urls = stack.enter_context(child_upstreams(__file__))
        upstreams = dict(zip(SHAPES, urls, strict=True))
        direct = Target(
            DIRECT,
            {shape: f"{url}/v1/chat/completions" for shape, url in upstreams.items()},
            {shape: "fake-model" for shape in upstreams},
        )
        targets = [direct, stack.enter_context(gateway(upstreams, None))]
        for name, script in FLOORS.items():
            targets.append(stack.enter_context(floor(name, script, upstreams)))
        if args.metrics:
            targets.append(stack.enter_context(gateway(upstreams, None, metrics=True)))
        for base in args.base:
            targets.append(stack.enter_context(gateway(upstreams, base)))
        if args.litellm:
            targets.append(
                stack.enter_context(litellm(args.litellm, upstreams, args.litellm_deadline))
            )
        started = time.perf_counter()
        results = asyncio.run(measure(targets, levels, rounds, streams))
        elapsed = time.perf_counter() - started
        print(
            f"bench_gateway_load: C={levels}, {rounds} rounds, {streams} streams per run "
            f"(at least C), {elapsed:.0f} s"
        )
        checks = report(results, targets, levels)
    if not args.litellm:
        print(LITELLM_HINT)
    if args.quick:  # only exactness is held; the rest is printed for a look
        checks = [
            check if check[0] == EXACT else (f"{check[0]} (not held)", check[1], True)
            for check in checks
        ]
    return verdicts(checks)


if __name__ == "__main__":
    sys.exit(main())
