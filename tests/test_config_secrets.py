"""With a key set, it never shows up: not in logs, errors, reprs or `config check` output."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path
from typing import Any

import providerhub_codelinkava
import providerhub_openai
import pytest
from providerhub import AllProvidersFailedError, MemoryHealthStore, Registry, UpstreamHTTPError
from providerhub.config import load_config
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
    path = tmp_path / "providerhub.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [providers.hosted]
            use = "openai"
            base_url = "{upstream.url}/v1"
            api_key_env = "{VAR}"
            default_model = "m"

            [chains.main]
            providers = ["hosted"]
            """
        )
    )
    config = load_config(path)
    assert config is not None
    registry = config.build_registry(
        Registry([providerhub_openai, providerhub_codelinkava], entry_points=False)
    )
    hosted = registry.get("hosted")
    assert isinstance(hosted, OpenAICompatible)
    chain = config.chain("main", registry, health=MemoryHealthStore())

    assert await chain.create_async("", MESSAGES) == "fine"
    assert upstream.requests[0].headers["Authorization"] == f"Bearer {SECRET}"
    with pytest.raises(AllProvidersFailedError) as failed:
        await chain.create_async("", MESSAGES)
    with pytest.raises(UpstreamHTTPError) as direct:
        await hosted.create_async("m", MESSAGES)

    http_error = failed.value.attempts[0].error
    assert isinstance(http_error, UpstreamHTTPError)
    assert http_error.message == "Incorrect API key provided: <redacted>"
    assert http_error.request_info.headers["Authorization"] == "<redacted>"
    rendered = config.render(registry)
    assert f'api_key_env = "{VAR}"  # set' in rendered
    assert_hidden(
        rendered,
        repr(hosted),
        repr(vars(hosted)),
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
    from providerhub.cli import main

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(VAR, SECRET)
    monkeypatch.setattr("providerhub.registry._default", None)  # the CLI augments the default
    script = (Reply.text("fine"), Reply.error(401, f"Incorrect API key provided: {SECRET}"))
    with serve_in_thread(*script) as upstream:
        path = tmp_path / "providerhub.toml"
        path.write_text(
            f'[providers.hosted]\nuse = "openai"\nbase_url = "{upstream.url}/v1"\n'
            f'api_key_env = "{VAR}"\ndefault_model = "m"\n'
            '[chains.main]\nproviders = ["hosted"]\n'
        )
        config = ["--config", str(path)]
        runs = [
            ["config", "check", *config],
            ["providers", *config],
            ["providers", "--json", *config],
            ["chat", *config, "--chain", "main", "-v", "hi"],
            ["chat", *config, "-p", "hosted", "-v", "hi"],
        ]
        codes, outputs = [], []
        for argv in runs:
            codes.append(main(argv))
            captured = capsys.readouterr()
            outputs += [captured.out, captured.err]
        requests = upstream.requests

    assert codes[:4] == [0, 0, 0, 0] and codes[4] != 0, outputs
    assert [r.headers["Authorization"] for r in requests] == [f"Bearer {SECRET}"] * 2
    assert "hosted" in outputs[2] and "fine" in outputs[6]
    assert "Incorrect API key provided: <redacted>" in outputs[9]
    assert_hidden(*outputs, caplog.text)
