"""Secrets recognised by the shape of their values, whatever key or header holds them: refused
by the config and the endpoint option check, never printed, redacted wherever shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from config_helpers import OK_PROVIDER, build_error, parse_error, run_main, write_config
from providerhub import UpstreamHTTPError
from providerhub.config import ConfigSpec, ProviderSpec
from providerhub.config.render import render
from providerhub.redaction import REDACTED, looks_secret, redact_headers
from providerhub.testing import Reply
from providerhub_openai import OpenAICompatible

KEY = "sk-proj-" + "Zq3" * 8
WHY = (
    "literal secrets are refused: config files get committed, shared and printed "
    "(`providerhub config check`), and a key in one leaks with it. Put the key in an "
    "environment variable and give its name instead, e.g. "
)


@pytest.mark.parametrize(
    "value",
    [
        KEY,
        "sk-ant-api03-" + "a1B2" * 5,
        "xai-" + "q" * 20,
        "gsk_" + "Q1" * 10,
        "AIzaSy" + "D4" * 10,
        "ghp_" + "x9" * 10,
        "Bearer abc123def456",
        "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA",
    ],
)
def test_key_shapes_look_secret(value: str) -> None:
    assert looks_secret(value)


@pytest.mark.parametrize(
    "value",
    [
        "https://api.openai.com/v1",
        "gpt-4o-2024-08-06",
        "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo",
        "Qwen2-VL-72B-Instruct-AWQ-GPTQ-Int4-abcdef",
        "550e8400-e29b-41d4-a716-446655440000",
        "d41d8cd98f00b204e9800998ecf8427e",
        "application/json",
        "sk-short",
        "OPENAI_API_KEY",
        42,
    ],
)
def test_ordinary_values_do_not_look_secret(value: object) -> None:
    assert not looks_secret(value)


def test_a_key_under_an_innocent_header_is_refused_unshown() -> None:
    error = parse_error(OK_PROVIDER + f'headers = {{ x-custom = "{KEY}" }}\n')

    assert str(error) == (
        f"p.toml [providers.local]: header 'x-custom': {WHY}"
        'headers_env = { "x-custom" = "X_CUSTOM" }'
    )
    assert error.key == "headers"


def test_a_key_under_an_innocent_option_is_refused_unshown() -> None:
    error = parse_error(OK_PROVIDER + f'default_model = "{KEY}"\n')

    assert str(error) == (
        f"p.toml [providers.local]: 'default_model' looks like a key: {WHY}"
        'api_key_env = "OPENAI_API_KEY"'
    )


def test_config_check_exits_7_without_printing_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, OK_PROVIDER + f'headers = {{ x-custom = "{KEY}" }}\n')

    codes, (out, err) = run_main([["config", "check", "--config", str(path)]], capsys, monkeypatch)

    assert codes == [7]
    assert out == ""
    assert KEY not in err
    assert err.startswith(f"providerhub: error: {path} [providers.local]: header 'x-custom': ")


def test_render_redacts_secret_looking_values() -> None:
    spec = ProviderSpec(
        "local", "openai", {"organization": KEY, "headers": {"x-custom": KEY, "x-team": "blue"}}
    )

    text = render(ConfigSpec(providers={"local": spec}))

    assert KEY not in text
    assert f'organization = "{REDACTED}"' in text
    assert f'headers = {{ x-custom = "{REDACTED}", x-team = "blue" }}' in text
    assert redact_headers({"x-custom": KEY}) == {"x-custom": REDACTED}


def test_a_provider_built_in_code_hides_a_secret_looking_header() -> None:
    """Code may pass literal keys (the config may not): the repr redacts them by shape too."""
    provider = OpenAICompatible(
        name="inline", base_url="https://api.example.invalid/v1", headers={"x-custom": KEY}
    )

    assert repr(provider) == (
        "OpenAICompatible(name='inline', base_url='https://api.example.invalid/v1', "
        "headers={'x-custom': '<redacted>'})"
    )


async def test_a_secret_looking_header_built_in_code_is_sent_as_given(
    fake_upstream: Any,
) -> None:
    """Hidden from reprs and errors, never from the upstream: the header goes out intact, and
    an upstream echoing it in an error does not show it."""
    upstream = await fake_upstream(Reply.error(401, f"bad key {KEY}"), Reply.text("ok"))
    provider = OpenAICompatible(
        name="inline", base_url=upstream.url + "/v1", headers={"x-custom": KEY}
    )
    with pytest.raises(UpstreamHTTPError) as caught:
        await provider.create_async("m", [{"role": "user", "content": "hi"}])
    assert KEY not in str(caught.value) and KEY not in repr(caught.value)
    assert await provider.create_async("m", [{"role": "user", "content": "hi"}]) == "ok"
    assert [request.headers["x-custom"] for request in upstream.requests] == [KEY, KEY]


PASTED = ["gsk_" + "8Xq2" * 6, "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA"]
"""Keys that are valid variable names too: pasted where a variable's name goes."""
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize("pasted", PASTED)
def test_a_key_pasted_as_a_variable_name_is_refused_unshown(
    pasted: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key shaped like a variable name is still a key: refused under api_key_env,
    headers_env and [server] api_key_env, by the config (exit 7) and in code, never shown."""
    errors = [
        build_error(OK_PROVIDER + f'api_key_env = "{pasted}"\n'),
        build_error(OK_PROVIDER + f'headers_env = {{ x-org = "{pasted}" }}\n'),
        parse_error(f'[server]\napi_key_env = "{pasted}"\n'),
    ]
    assert [error.key for error in errors] == ["api_key_env", "headers_env", "api_key_env"]
    assert all(pasted not in str(error) for error in errors)
    assert "must be the NAME of an environment variable" in str(errors[0])
    with pytest.raises(ValueError, match="must be the NAME of an environment variable") as caught:
        OpenAICompatible(name="o", base_url="http://127.0.0.1:1/v1", api_key_env=pasted)
    assert pasted not in str(caught.value)
    path = write_config(tmp_path, OK_PROVIDER + f'api_key_env = "{pasted}"\n')
    codes, (out, err) = run_main([["config", "check", "--config", str(path)]], capsys, monkeypatch)
    assert (codes, out) == ([7], "")
    assert pasted not in err


def test_a_web_token_looks_secret_under_any_header() -> None:
    assert looks_secret(JWT)
    error = parse_error(OK_PROVIDER + f'headers = {{ X-Client-Info = "{JWT}" }}\n')
    assert JWT not in str(error)
    assert error.key == "headers"
    assert not looks_secret("eyJ-not-a-token.but.dotted")
