"""`providerhub serve` as a child process: the printed URL, a graceful stop, startup errors."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
from cli_helpers import SCRIPT, default_sigint, plugin_env, run
from providerhub.testing import FakeUpstream, Reply
from test_server import HELLO, config_text, contents, events

URL = re.compile(r"^providerhub: serving (http://127\.0\.0\.1:\d+)/v1 ")


async def _serve(config: Path, *args: str, **env: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        SCRIPT,
        "serve",
        "--config",
        str(config),
        "--port",
        "0",
        *args,
        env=plugin_env(None, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=default_sigint,
    )


async def listening(proc: asyncio.subprocess.Process) -> str:
    """The base URL (no /v1) a `_serve` process printed once it listens."""
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    match = URL.match(line)
    assert match, line
    return match.group(1)


async def test_serve_prints_url_answers_and_stops_gracefully_on_sigint(
    tmp_path: Path, fake_upstream: Any
) -> None:
    a: FakeUpstream = await fake_upstream(Reply.text("quick"))
    b: FakeUpstream = await fake_upstream()
    a.script(Reply.text("one ", "two ", "three", delay=0.3))
    config = tmp_path / "providerhub.toml"
    config.write_text(config_text(a, b))
    proc = await _serve(config)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        url = await listening(proc)
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{url}/v1/chat/completions", json={"model": "a", "messages": HELLO}
            ) as response:
                assert response.status == 200
                assert response.headers["x-providerhub-provider"] == "a"
                answer = await response.json()
            assert answer["choices"][0]["message"]["content"] == "quick"
            async with session.post(
                f"{url}/v1/chat/completions",
                json={"model": "main", "messages": HELLO, "stream": True},
            ) as response:
                first = await asyncio.wait_for(response.content.readline(), 10)
                assert first.startswith(b"data: {")
                proc.send_signal(signal.SIGINT)
                rest = (await asyncio.wait_for(response.read(), 10)).decode()
        code = await asyncio.wait_for(proc.wait(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    err = (await proc.stderr.read()).decode()
    assert code == 0, err
    found = events(first.decode() + rest)
    assert contents(found) == ["one ", "two ", "three"]
    assert found[-1] == "[DONE]"
    assert "POST /v1/chat/completions 200 provider=a " in err
    assert "Traceback" not in err


def test_serve_refuses_to_start_when_its_key_variable_is_unset(tmp_path: Path) -> None:
    config = tmp_path / "providerhub.toml"
    config.write_text('[server]\napi_key_env = "PH_GATEWAY_KEY"\n')
    result = run("serve", "--config", str(config), "--port", "0")
    assert result.returncode == 7
    assert result.stdout == ""
    assert result.stderr == (
        f"providerhub: error: {config} [server]: environment variable PH_GATEWAY_KEY "
        "(named by 'api_key_env') is not set; set it, or remove api_key_env to serve without "
        "auth\n"
    )


def test_serve_with_a_port_in_use_exits_8_naming_the_address(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--port", str(port))
    assert result.returncode == 8
    assert result.stderr.startswith(f"providerhub: error: cannot listen on 127.0.0.1:{port}: ")


def test_listing_providers_does_not_import_aiohttp() -> None:
    code = (
        "import sys; from providerhub.cli import main; main(['providers']); "
        "print('aiohttp' in sys.modules, 'providerhub.server' in sys.modules, file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=plugin_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "False False"


def test_config_check_shows_the_gateway_key_variable_by_name(tmp_path: Path) -> None:
    config = tmp_path / "providerhub.toml"
    config.write_text('[server]\napi_key_env = "PH_GATEWAY_KEY"\n')
    result = run(
        "config", "check", "--config", str(config), env=plugin_env(PH_GATEWAY_KEY="sk-hidden")
    )
    assert result.returncode == 0, result.stderr
    assert 'api_key_env = "PH_GATEWAY_KEY"  # set' in result.stdout
    assert "sk-hidden" not in result.stdout + result.stderr
    assert json.dumps("sk-hidden") not in result.stdout


def test_a_key_given_as_api_key_env_is_refused_without_showing_it() -> None:
    import pytest
    from providerhub.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as refused:
        parse_config('[server]\napi_key_env = "sk-live-abc123"\n', "p.toml")
    assert str(refused.value) == (
        "p.toml [server]: 'api_key_env' must be the NAME of an environment variable (like "
        "PROVIDERHUB_API_KEY), not the key itself; the value is not shown"
    )
    assert "sk-live" not in str(refused.value)
    assert parse_config('[server]\napi_key_env = "GW_KEY"\n').server.api_key_env == "GW_KEY"
