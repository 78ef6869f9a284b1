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
from helpers import MakeUpstream
from providerhub.testing import Reply
from test_server import HELLO, contents, events
from test_server_cli import URL, _serve

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
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        match = URL.match(line)
        assert match, line
        url = match.group(1)
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
