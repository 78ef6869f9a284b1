"""`headers_env` in providerhub.toml: keys for non-Authorization headers (Azure's `api-key`,
Google's `x-goog-api-key`) named by environment variable, sent at call time, never shown."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path
from typing import Any

import pytest
from config_helpers import build_error, plugins, run_main, write_config
from providerhub import AllProvidersFailedError, MemoryHealthStore, UpstreamHTTPError
from providerhub.config import parse_config
from providerhub.testing import Reply, serve_in_thread

SECRET = "az-5ecret-0123456789abcdef"
VAR = "PROVIDERHUB_TEST_AZURE_KEY"
MESSAGES = [{"role": "user", "content": "hi"}]
OK_PROVIDER = '[providers.azure]\nuse = "openai"\nbase_url = "http://127.0.0.1:1/v1"\n'


def config_text(url: str) -> str:
    return textwrap.dedent(
        f"""
        [providers.azure]
        use = "openai"
        base_url = "{url}/v1"
        headers_env = {{ api-key = "{VAR}", X-Title = "PROVIDERHUB_TEST_TITLE" }}
        default_model = "m"

        [chains.main]
        providers = ["azure"]
        """
    )


async def test_configured_header_carries_the_variable_and_never_shows(
    fake_upstream: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(VAR, SECRET)
    monkeypatch.setenv("PROVIDERHUB_TEST_TITLE", "demo")
    upstream = await fake_upstream(
        Reply.text("fine"), Reply.error(401, f"Access denied: key {SECRET} is invalid")
    )
    config = parse_config(config_text(upstream.url), "p.toml")
    built = config.build_registry(plugins())
    chain = config.chain("main", built, health=MemoryHealthStore())

    assert await chain.create_async("", MESSAGES) == "fine"
    with pytest.raises(AllProvidersFailedError) as failed:
        await chain.create_async("", MESSAGES)

    assert [(r.headers["api-key"], r.headers["X-Title"]) for r in upstream.requests] == [
        (SECRET, "demo")
    ] * 2
    http_error = failed.value.attempts[0].error
    assert isinstance(http_error, UpstreamHTTPError)
    assert http_error.message == "Access denied: key <redacted> is invalid"
    assert dict(http_error.request_info.headers)["api-key"] == "<redacted>"
    assert dict(http_error.request_info.headers)["X-Title"] == "<redacted>"
    rendered = config.render(built)
    assert f'headers_env.api-key = "{VAR}"  # set' in rendered
    assert 'headers_env.X-Title = "PROVIDERHUB_TEST_TITLE"  # set' in rendered
    assert caplog.records
    for text in (
        rendered,
        repr(built.get("azure")),
        repr(vars(built.get("azure"))),
        str(failed.value),
        repr(failed.value.attempts),
        str(http_error.request_info),
        caplog.text,
    ):
        assert SECRET not in text and "demo" not in text


async def test_unset_variable_skips_the_provider_with_the_reason(
    fake_upstream: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(VAR, raising=False)
    monkeypatch.setenv("PROVIDERHUB_TEST_TITLE", "demo")
    upstream = await fake_upstream(Reply.text("never"))
    config = parse_config(config_text(upstream.url), "p.toml")
    built = config.build_registry(plugins())
    chain = config.chain("main", built, health=MemoryHealthStore())

    with pytest.raises(AllProvidersFailedError) as failed:
        await chain.create_async("", MESSAGES)

    assert [str(a) for a in failed.value.attempts] == [
        f"azure: skipped (missing credentials: environment variable {VAR} is not set)"
    ]
    assert upstream.requests == []
    rendered = config.render(built)
    assert f'headers_env.api-key = "{VAR}"  # not set' in rendered
    assert (
        "# azure: from config:p.toml; missing credentials "
        f"(environment variable {VAR} is not set): chains skip it"
    ) in rendered


def test_rendered_config_is_equivalent_toml() -> None:

    config = parse_config(config_text("http://127.0.0.1:1"), "p.toml")

    again = parse_config(config.render(), "p.toml")

    assert again.providers["azure"].options == config.providers["azure"].options


def test_pasted_key_in_place_of_a_name_is_redacted_in_render() -> None:
    config = parse_config(OK_PROVIDER + f'headers_env = {{ api-key = "{SECRET}" }}\n', "p.toml")

    rendered = config.render()

    assert 'headers_env.api-key = "<redacted>"' in rendered and SECRET not in rendered


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            f'headers_env = {{ api-key = "{SECRET}" }}',
            "option 'headers_env': the value for 'api-key' must be the NAME of an environment "
            "variable (like AZURE_OPENAI_API_KEY), not the key itself",
        ),
        (
            'headers_env = { "api key" = "V" }',
            "option 'headers_env': 'api key' is not a valid header name",
        ),
        (
            "headers_env = { api-key = 1 }",
            "option 'headers_env' must map names to strings; 'api-key' does not",
        ),
        (
            'headers_env = "V"',
            "option 'headers_env' must be a table of strings, not str",
        ),
        (
            'headers = { X-Title = "a" }\nheaders_env = { x-title = "V" }',
            "option 'headers_env': header 'x-title' is also given in headers; keep one",
        ),
    ],
)
def test_bad_headers_env_is_a_config_error_naming_the_key(line: str, message: str) -> None:
    caught = build_error(OK_PROVIDER + line + "\n")

    assert str(caught) == f"p.toml [providers.azure]: {message}"
    assert (caught.table, caught.key) == ("providers.azure", "headers_env")
    assert SECRET not in repr(caught)


def test_cli_config_check_shows_names_not_values(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(VAR, SECRET)
    monkeypatch.delenv("PROVIDERHUB_TEST_TITLE", raising=False)
    with serve_in_thread(Reply.error(401, f"bad key {SECRET}")) as upstream:
        text = config_text(upstream.url).replace(', X-Title = "PROVIDERHUB_TEST_TITLE"', "")
        path = write_config(tmp_path, text)
        runs = (
            ["--config", str(path), "config", "check"],
            ["--config", str(path), "chat", "--chain", "main", "-v", "hi"],
        )
        codes, outputs = run_main(runs, capsys, monkeypatch)
        requests = upstream.requests

    assert codes[0] == 0 and codes[1] != 0, outputs
    assert [r.headers["api-key"] for r in requests] == [SECRET]
    assert f'headers_env.api-key = "{VAR}"  # set' in outputs[0]
    assert "bad key <redacted>" in outputs[3]
    for text in (*outputs, caplog.text):
        assert SECRET not in text
