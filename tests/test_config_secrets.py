"""With a key set, it never shows up: not in logs, errors, reprs or `config check` output."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from config_helpers import hosted, load_written, plugins, run_main, write_config
from providerhub import AllProvidersFailedError, MemoryHealthStore, UpstreamHTTPError
from providerhub.testing import Reply, serve_in_thread
from providerhub_openai import OpenAICompatible

SECRET = "sk-live-5ecret0123456789abcdef"
VAR = "PROVIDERHUB_TEST_SECRET_KEY"
MESSAGES = [{"role": "user", "content": "hi"}]


def assert_hidden(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text
        assert SECRET[8:20] not in text


async def test_key_never_leaks(
    tmp_path: Path,
    fake_upstream: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(VAR, SECRET)
    upstream = await fake_upstream(
        Reply.text("fine"),
        Reply.error(401, f"Incorrect API key provided: {SECRET}"),
        Reply.error(429, "slow down", retry_after="1"),
    )
    config = load_written(tmp_path, hosted(upstream.url, VAR))
    registry = config.build_registry(plugins())
    provider = registry.get("hosted")
    assert isinstance(provider, OpenAICompatible)
    chain = config.chain("main", registry, health=MemoryHealthStore())

    assert await chain.create_async("", MESSAGES) == "fine"
    assert upstream.requests[0].headers["Authorization"] == f"Bearer {SECRET}"
    with pytest.raises(AllProvidersFailedError) as failed:
        await chain.create_async("", MESSAGES)
    with pytest.raises(UpstreamHTTPError) as direct:
        await provider.create_async("m", MESSAGES)

    http_error = failed.value.attempts[0].error
    assert isinstance(http_error, UpstreamHTTPError)
    assert http_error.message == "Incorrect API key provided: <redacted>"
    assert http_error.request_info.headers["Authorization"] == "<redacted>"
    rendered = config.render(registry)
    assert f'api_key_env = "{VAR}"  # set' in rendered
    assert_hidden(
        rendered,
        repr(provider),
        repr(vars(provider)),
        repr(chain),
        str(failed.value),
        repr(failed.value.attempts),
        str(http_error),
        repr(http_error),
        http_error.body,
        str(http_error.request_info),
        str(direct.value),
        repr(direct.value),
        *(record.getMessage() for record in caplog.records),
        caplog.text,
    )
    assert any("hosted" in record.getMessage() for record in caplog.records), "logs were captured"


def test_literal_key_in_code_stays_hidden() -> None:
    provider = OpenAICompatible(
        name="inline",
        base_url="https://api.example.invalid/v1",
        api_key=SECRET,
        headers={"X-Api-Key": SECRET, "X-Title": "demo"},
    )

    assert repr(provider) == (
        "OpenAICompatible(name='inline', base_url='https://api.example.invalid/v1', "
        "api_key=<redacted>, headers={'X-Api-Key': '<redacted>', 'X-Title': 'demo'})"
    )
    assert SECRET not in repr(vars(provider))
    assert provider.needs_auth and provider.missing_credentials() is None


def test_cli_output_never_shows_the_key(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(VAR, SECRET)
    script = (Reply.text("fine"), Reply.error(401, f"Incorrect API key provided: {SECRET}"))
    with serve_in_thread(*script) as upstream:
        path = write_config(tmp_path, hosted(upstream.url, VAR))
        config = ["--config", str(path)]
        runs = [
            ["config", "check", *config],
            ["providers", *config],
            ["providers", "--json", *config],
            ["chat", *config, "--chain", "main", "-v", "hi"],
            ["chat", *config, "-p", "hosted", "-v", "hi"],
        ]
        codes, outputs = run_main(runs, capsys, monkeypatch)
        requests = upstream.requests

    assert codes[:4] == [0, 0, 0, 0] and codes[4] != 0, outputs
    assert [r.headers["Authorization"] for r in requests] == [f"Bearer {SECRET}"] * 2
    assert "hosted" in outputs[2] and "fine" in outputs[6]
    assert "Incorrect API key provided: <redacted>" in outputs[9]
    assert_hidden(*outputs, caplog.text)
