"""Stopping the gateway: `providerhub serve` as a child process, SIGTERM with streams in flight
against a slow upstream. Streams that finish within `[server] shutdown_grace` end with
`[DONE]`; the rest end with an SSE error event (code `server_shutdown`) and no `[DONE]`, so no
client takes a cut answer for a complete one; the exit code is 0."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
from helpers import MakeUpstream, until
from providerhub import Registry
from providerhub.config import parse_config
from providerhub.server import create_app, start
from providerhub.testing import Reply
from test_server import HELLO, contents, events
from test_server_cli import _serve, listening

GRACE = 1.5


async def test_sigterm_gives_streams_the_grace_then_ends_the_rest_with_an_error_event(
    tmp_path: Path, fake_upstream: MakeUpstream
) -> None:
    quick = await fake_upstream(default=Reply.text("quick ", "answer", delay=0.3))
    slow = await fake_upstream(default=Reply.text(*(f"w{i} " for i in range(100)), delay=0.2))
    config = tmp_path / "providerhub.toml"
    config.write_text(
        f"""
[providers.quick]
use = "openai"
base_url = "{quick.url}/v1"
default_model = "m"

[providers.slow]
use = "openai"
base_url = "{slow.url}/v1"
default_model = "m"

[server]
shutdown_grace = {GRACE}
"""
    )
    proc = await _serve(config)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        url = await listening(proc)
        async with aiohttp.ClientSession() as session:

            async def stream(model: str) -> tuple[bytes, Any]:
                response = await session.post(
                    f"{url}/v1/chat/completions",
                    json={"model": model, "messages": HELLO, "stream": True},
                )
                assert response.status == 200
                return await response.content.readline(), response

            opened = [await stream(model) for model in ("quick", "slow", "quick", "slow")]
            proc.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            bodies = []
            for first, response in opened:
                rest = await asyncio.wait_for(response.read(), 10)
                bodies.append(events((first + rest).decode()))
                response.release()
            code = await asyncio.wait_for(proc.wait(), 10)
            took = time.monotonic() - stopped
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    err = (await proc.stderr.read()).decode()
    assert code == 0, err
    for found in (bodies[0], bodies[2]):
        assert contents(found) == ["quick ", "answer"]
        assert found[-1] == "[DONE]"
    for found in (bodies[1], bodies[3]):
        assert "[DONE]" not in found
        assert found[-1] == {
            "error": {
                "message": "the gateway shut down before the answer was complete; retry",
                "type": "server_error",
                "param": None,
                "code": "server_shutdown",
            }
        }
        words = contents(found[:-1])
        assert 0 < len(words) < 100
        assert words == [f"w{i} " for i in range(len(words))]
    assert GRACE <= took < GRACE + 4, took  # a hang guard: the grace, then at most the cut
    assert "Traceback" not in err
    assert slow.disconnects == 2


async def test_answers_not_begun_when_the_grace_ends_are_a_503(fake_upstream: MakeUpstream) -> None:
    """A JSON answer, and a stream still waiting for its first chunk, have sent nothing when
    the grace runs out: each gets a 503 `server_shutdown` (which SDKs retry), and the stop
    takes the grace, not aiohttp's doubled timeout."""
    upstream = await fake_upstream(default=Reply.text("never", hang_before_headers=True))
    config = parse_config(
        f'[providers.a]\nuse = "openai"\nbase_url = "{upstream.url}/v1"\ndefault_model = "m"\n'
    )
    app = create_app(config.build_registry(Registry.discover()), config)
    runner, url = await start(app, "127.0.0.1", 0, grace=0.5)
    async with aiohttp.ClientSession() as session:

        async def ask(stream: bool) -> tuple[int, Any]:
            body = {"model": "a", "messages": HELLO, "stream": stream}
            async with session.post(f"{url}/v1/chat/completions", json=body) as response:
                return response.status, await response.json()

        asked = [asyncio.create_task(ask(stream)) for stream in (False, True)]
        await until(lambda: upstream.active == 2)
        stopped = time.monotonic()
        await runner.cleanup()
        took = time.monotonic() - stopped
        answers = await asyncio.gather(*asked)
    error = {
        "message": "the gateway shut down before the answer was complete; retry",
        "type": "server_error",
        "param": None,
        "code": "server_shutdown",
    }
    assert answers == [(503, {"error": error})] * 2
    assert 0.5 <= took < 3, took  # a hang guard
    await until(lambda: upstream.disconnects == 2)
