"""Errors a client sees name the provider, the status and the upstream's own message, never the
upstream's URL or address: the library's error texts, the gateway's 502 and 504 bodies and its
SSE error event, `providerhub chat` (with -v). The URL stays on the error (`url`) and in the
log line of the failed request."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import chat, plugin_env
from helpers import MakeUpstream
from providerhub import (
    AllProvidersFailedError,
    FallbackChain,
    MemoryHealthStore,
    StreamInterruptedError,
    UpstreamConnectionError,
    UpstreamHTTPError,
)
from providerhub.testing import Reply
from providerhub_openai import OpenAICompatible
from test_server import events, gateway, post

HELLO = [{"role": "user", "content": "hi"}]
ADDRESS = "127.0.0.1"
"""Every upstream's host: no client-facing text may hold it, with or without a port."""


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind((ADDRESS, 0))
        port: int = probe.getsockname()[1]
    return port


async def upstreams(fake_upstream: MakeUpstream) -> dict[str, str]:
    """Provider name -> its base URL: an HTTP error, a refused port, a cut before any text,
    a hang (for a timeout), a cut after text."""
    replies = {
        "failing": Reply.error(500, "model crashed"),
        "cut": Reply.close_after_chunks(),
        "slow": Reply.hang(),
        "unfinished": Reply.close_after_chunks("Hel"),
    }
    urls = {
        name: (await fake_upstream(default=reply)).url + "/v1" for name, reply in replies.items()
    }
    return {**urls, "refused": f"http://{ADDRESS}:{closed_port()}/v1"}


def config_text(urls: dict[str, str]) -> str:
    providers = "".join(
        f'[providers.{name}]\nuse = "openai"\nbase_url = "{url}"\ndefault_model = "m"\n\n'
        for name, url in urls.items()
    )
    return (
        f"{providers}"
        '[chains.all]\nproviders = ["failing", "refused", "cut"]\n\n'
        '[chains.waiting]\nproviders = ["slow"]\ntimeouts = { first_chunk = 0.3 }\n'
    )


async def test_library_errors_leave_the_url_out_and_the_log_line_keeps_it(
    fake_upstream: MakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="providerhub")
    urls = await upstreams(fake_upstream)
    providers = {
        name: OpenAICompatible(name=name, base_url=url, default_model="m")
        for name, url in urls.items()
    }
    chain = FallbackChain(
        [providers[name] for name in ("failing", "refused", "cut")], health=MemoryHealthStore()
    )

    with pytest.raises(AllProvidersFailedError) as failed:
        await chain.create_async("", HELLO)
    with pytest.raises(StreamInterruptedError) as interrupted:
        await FallbackChain([providers["unfinished"]]).create_async("", HELLO)

    assert str(failed.value).splitlines() == [
        "all providers failed:",
        "  failing: HTTP 500: model crashed",
        "  refused: cannot connect: Connection refused",
        "  cut: connection closed before the response was complete",
    ]
    assert str(interrupted.value) == (
        "stream from unfinished interrupted after 3 characters: "
        "unfinished: connection closed before the response was complete"
    )
    errors = [attempt.error for attempt in failed.value.attempts]
    assert isinstance(errors[0], UpstreamHTTPError)
    assert all(isinstance(error, UpstreamConnectionError) for error in errors[1:])
    endpoints = [urls[name] + "/chat/completions" for name in ("failing", "refused", "cut")]
    assert [getattr(error, "url", None) for error in errors] == endpoints
    assert ADDRESS not in str(failed.value) + str(interrupted.value)
    assert f"url={endpoints[0]!r}" in repr(errors[0])
    logged = [r.getMessage() for r in caplog.records if r.name == "providerhub.openai"]
    assert logged[0] == f"failing: POST {endpoints[0]} failed: failing: HTTP 500: model crashed"
    assert logged[1].startswith(
        f"refused: POST {endpoints[1]} failed: refused: cannot connect: Connection refused "
        "(ClientConnectorError: "  # the cause, as aiohttp words it, for whoever reads logs
    )
    assert logged[2].startswith(
        f"cut: POST {endpoints[2]} failed: cut: connection closed before the response was "
        "complete (ClientPayloadError: "
    )
    assert logged[3].startswith(
        f"unfinished: POST {urls['unfinished']}/chat/completions failed: "
        "unfinished: connection closed before the response was complete ("
    )


async def test_gateway_bodies_and_error_events_name_no_upstream_address(
    fake_upstream: MakeUpstream,
) -> None:
    urls = await upstreams(fake_upstream)
    async with gateway(config_text(urls)) as url:
        answers = await asyncio.gather(
            post(url, {"model": "all", "messages": HELLO}),
            post(url, {"model": "all", "messages": HELLO, "stream": True}),
            post(url, {"model": "waiting", "messages": HELLO}),
            post(url, {"model": "unfinished", "messages": HELLO}),
            post(url, {"model": "unfinished", "messages": HELLO, "stream": True}),
        )

    assert [status for status, _, _ in answers] == [502, 502, 504, 502, 200]
    for _, headers, text in answers:
        assert ADDRESS not in text and ADDRESS not in json.dumps(headers), text
    failed = json.loads(answers[0][2])["error"]["message"].splitlines()
    assert failed[1:] == [
        "  failing: HTTP 500: model crashed",
        "  refused: cannot connect: Connection refused",
        "  cut: connection closed before the response was complete",
    ]
    assert json.loads(answers[2][2])["error"]["message"].endswith(
        "slow: first chunk timeout after 0.3s"
    )
    event: Any = events(answers[4][2])[-1]
    assert event["error"]["message"] == (
        "stream from unfinished interrupted after 3 characters: "
        "unfinished: connection closed before the response was complete"
    )


async def test_chat_names_no_upstream_address(fake_upstream: MakeUpstream, tmp_path: Path) -> None:
    config = tmp_path / "providerhub.toml"
    config.write_text(config_text(await upstreams(fake_upstream)))
    env = plugin_env(None)
    args = ("--config", str(config), "-v")
    runs = await asyncio.gather(
        chat(*args, "--chain", "all", "hi", env=env),
        chat(*args, "-p", "failing", "hi", env=env),
        chat(*args, "-p", "refused", "hi", env=env),
        chat(*args, "-p", "unfinished", "hi", env=env),
    )

    assert [code for code, _, _ in runs] == [6, 4, 4, 4]
    for _, out, err in runs:
        assert ADDRESS not in out + err, err
    errors = [err.splitlines()[-1] for _, _, err in runs[1:]]
    assert errors == [
        "providerhub: error: failing: HTTP 500: model crashed",
        "providerhub: error: refused: cannot connect: Connection refused",
        "providerhub: error: unfinished: connection closed before the response was complete",
    ]
