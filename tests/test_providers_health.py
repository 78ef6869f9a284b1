"""Visible circuits: `GET /v1/providers` and `providerhub providers --health` show each
provider's circuit, cooldown left, why it is open, last failure, latency and requests in
flight, from the health store: in-process with the memory store (closed, open, half-open,
closed again), and across real `providerhub serve` processes sharing a real redis-server
(what one gateway opened shows in the other's listing, its metrics and the CLI's).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from cli_helpers import plugin_env, run, table
from helpers import BOUND
from providerhub import MemoryHealthStore, Registry
from providerhub.config import parse_config
from providerhub.server import create_app, start
from providerhub.testing import FakeUpstream, Reply
from redis_helpers import RedisServer
from test_health_redis_gateways import Gateways, circuit, config, serving
from test_metrics import get, scrape, values
from test_server import HELLO, post

FAILED = "HTTP 500: model crashed"
"""The reason line of a's failures (the trace's words)."""
FRESH = {
    "circuit": "closed",
    "seconds_left": None,
    "reason": "",
    "last_failure": "",
    "latency_ms": None,
    "in_flight": 0,
    "failures": 0,
}
"""The health of a provider nothing was sent to."""
HEALTH_KEYS = set(FRESH)


async def listing(url: str) -> dict[str, dict[str, Any]]:
    """`GET /v1/providers` by provider name."""
    status, text = await get(url, "/v1/providers")
    assert status == 200
    return {item["name"]: item for item in json.loads(text)["data"]}


def health(item: dict[str, Any]) -> dict[str, Any]:
    return {key: item[key] for key in HEALTH_KEYS}


async def test_the_memory_store_circuit_through_its_states(fake_upstream: Any) -> None:
    """Two failures open a's circuit (60 s on a clock the test moves), the cooldown over it is
    half-open, a success closes it; a stream in flight counts; the other fields stay."""
    a: FakeUpstream = await fake_upstream()
    b: FakeUpstream = await fake_upstream()
    now = [1000.0]
    store = MemoryHealthStore(failure_threshold=2, cooldown=60, clock=lambda: now[0])
    config = parse_config(
        "".join(
            f'[providers.{name}]\nuse = "openai"\nbase_url = "{up.url}/v1"\ndefault_model = "m"\n\n'
            for name, up in (("a", a), ("b", b))
        )
    )
    app = create_app(config.build_registry(Registry.discover()), config, health=store)
    runner, url = await start(app, "127.0.0.1", 0, grace=0.5)
    try:
        before = await listing(url)
        a.script(Reply.error(500, "model crashed"), Reply.error(500, "model crashed"))
        for _ in range(2):
            assert (await post(url, {"model": "a", "messages": HELLO}))[0] == 502
        opened = await listing(url)
        now[0] += 61
        half_open = await listing(url)
        b.script(Reply.hang_after_chunks("first"))
        body = {"model": "b", "messages": HELLO, "stream": True}
        async with (
            asyncio.timeout(BOUND),
            aiohttp.ClientSession() as session,
            session.post(f"{url}/v1/chat/completions", json=body) as response,
        ):
            while b"first" not in await response.content.readuntil(b"\n\n"):
                pass
            streaming = await listing(url)
        a.script(Reply.text("back"))
        assert (await post(url, {"model": "a", "messages": HELLO}))[0] == 200
        closed = await listing(url)
    finally:
        await runner.cleanup()
    assert health(before["a"]) == FRESH
    assert health(opened["a"]) == {
        **FRESH,
        "circuit": "open",
        "seconds_left": 60.0,
        "reason": "circuit open after 2 consecutive failures",
        "last_failure": FAILED,
        "failures": 2,
    }
    assert health(half_open["a"]) == {
        **health(opened["a"]),
        "circuit": "half-open",
        "seconds_left": None,
    }
    assert streaming["b"]["in_flight"] == 1 and streaming["b"]["circuit"] == "closed"
    assert isinstance(streaming["b"]["latency_ms"], float)
    assert health(closed["a"]) == {**FRESH, "latency_ms": closed["a"]["latency_ms"]}
    assert isinstance(closed["a"]["latency_ms"], float)
    assert closed["b"]["in_flight"] == 0
    assert closed["a"]["working"] is True and closed["a"]["credentials"] == "ok"
    assert closed["a"]["source"] == "config:<string>"
    assert "url" not in closed["a"] and str(a.port) not in json.dumps(closed)
    assert len(a.requests) == 3


@pytest_asyncio.fixture
async def gateways(
    tmp_path: Path, fake_upstream: Any, redis_server: RedisServer
) -> AsyncIterator[Gateways]:
    """Two `providerhub serve` processes (metrics on) sharing a redis-server; the config is
    at tmp_path/providerhub.toml for the CLI too."""
    upstreams = {name: await fake_upstream(default=Reply.text(f"from {name}")) for name in "ab"}
    path = tmp_path / "providerhub.toml"
    path.write_text(config(upstreams, redis_server.url) + "\n[server]\nmetrics = true\n")
    async with serving(path, upstreams, redis_server.url) as started:
        yield started


async def test_a_circuit_opened_through_one_gateway_shows_in_the_other_and_the_cli(
    gateways: Gateways, tmp_path: Path
) -> None:
    a = gateways.upstreams["a"]
    a.script(Reply.error(500, "model crashed"), Reply.error(500, "model crashed"))
    for _ in range(2):
        status, _ = await gateways.ask(0, "a")
        assert status == 502
    await circuit(gateways.shared, "a", "open")
    other = await listing(gateways.urls[1])
    samples, _ = await scrape(gateways.urls[1])
    path = str(tmp_path / "providerhub.toml")
    as_json = await asyncio.to_thread(run, "providers", "--health", "--json", "--config", path)
    as_table = await asyncio.to_thread(run, "providers", "--health", "--config", path)

    shown = other["a"]
    assert shown["circuit"] == "open" and shown["last_failure"] == FAILED
    assert shown["reason"] == "circuit open after 2 consecutive failures"
    assert 0 < shown["seconds_left"] <= 1 and shown["failures"] == 2
    assert health(other["b"])["circuit"] == "closed"
    # Gateway 1 sent nothing to a: its own counters are empty, the shared circuit is open.
    assert values(samples, "providerhub_circuit_open", "provider") == {
        ("CodeLinkAva",): 0,
        ("a",): 1,
        ("b",): 0,
    }
    assert values(samples, "providerhub_attempts_total", "provider", "outcome") == {}

    assert as_json.returncode == 0, as_json.stderr
    records = {record["name"]: record for record in json.loads(as_json.stdout)}
    assert records["a"]["circuit"] in ("open", "half-open")
    assert records["a"]["last_failure"] == FAILED and records["a"]["failures"] == 2
    assert records["a"]["source"].startswith("config:") and set(records["a"]) >= HEALTH_KEYS
    assert records["b"]["circuit"] == "closed"
    assert "note" not in as_json.stderr
    assert as_table.returncode == 0, as_table.stderr
    rows = table(as_table.stdout)
    header = "NAME  WORKING  CIRCUIT  LEFT  IN FLIGHT  LATENCY  WHY OPEN  LAST FAILURE"
    assert "  ".join(rows[0]) == header
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["a"][2] in ("open", "half-open") and by_name["a"][-1] == FAILED
    assert by_name["b"][1:3] == ["yes", "closed"] and by_name["b"][-2:] == ["-", "-"]
    assert len(a.requests) == 2


def test_providers_health_with_the_memory_store_says_it_is_this_processes_view(
    tmp_path: Path,
) -> None:
    path = tmp_path / "providerhub.toml"
    path.write_text('[providers.a]\nuse = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n')
    done = run("providers", "--health", "--json", "--config", str(path))
    assert done.returncode == 0, done.stderr
    records = {record["name"]: record for record in json.loads(done.stdout)}
    assert health(records["a"]) == FRESH
    assert done.stderr.startswith('providerhub: note: [health] store is "memory"')


def test_providers_without_health_imports_neither_aiohttp_nor_redis(tmp_path: Path) -> None:
    """Plain listing stays cheap even with a Redis store configured; --health reads the store
    without aiohttp (Redis unreachable here: it falls back after the store's timeout)."""
    path = tmp_path / "providerhub.toml"
    path.write_text('[health]\nstore = "redis"\nurl = "redis://127.0.0.1:9/0"\ntimeout = 0.5\n')
    code = (
        "import sys\n"
        "from providerhub.cli import main\n"
        f"main(['providers', '--config', {str(path)!r}])\n"
        'sys.stderr.write(f\'{"aiohttp" in sys.modules} {"redis" in sys.modules}\\n\')\n'
        f"main(['providers', '--health', '--config', {str(path)!r}])\n"
        'sys.stderr.write(f\'{"aiohttp" in sys.modules} {"redis" in sys.modules}\\n\')\n'
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=plugin_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    flags = [line for line in result.stderr.splitlines() if line in ("False False", "False True")]
    assert flags == ["False False", "False True"]
    assert "Redis 127.0.0.1:9/0 did not answer" in result.stderr


def test_providers_health_with_redis_unreachable_says_the_circuits_are_unknown(
    tmp_path: Path,
) -> None:
    """The fallback view would show every circuit closed: the command refuses to show it
    (exit 4) rather than mislead, naming Redis but not its url's secrets."""
    path = tmp_path / "providerhub.toml"
    path.write_text(
        '[providers.a]\nuse = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[health]\nstore = "redis"\nurl = "redis://127.0.0.1:9/0"\ntimeout = 0.5\n'
    )
    done = run("providers", "--health", "--config", str(path))
    assert (done.returncode, done.stdout) == (4, "")
    assert done.stderr.rstrip().endswith(
        "providerhub: error: health store: Redis did not answer, so the circuits are unknown"
    ), done.stderr
