"""CORS for browser clients (`[server] cors_origins`), over real sockets: allowed origins are
named on every answer (JSON, SSE, errors), their preflight is a 204 without auth; any other
origin, and every origin without the setting, gets no CORS headers."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
import pytest
from helpers import MakeUpstream
from providerhub.config import ConfigError, parse_config
from providerhub.testing import FakeUpstream, Reply
from test_server import HELLO, events, gateway

APP = "https://app.example"
KEY = "gateway-test-key"
CHAT = "/v1/chat/completions"
PREFLIGHT = {
    "Origin": APP,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
}


def config(upstream: FakeUpstream, cors: str | None) -> str:
    server = "" if cors is None else f"[server]\ncors_origins = {cors}\n"
    return (
        f'[providers.a]\nuse = "openai"\nbase_url = "{upstream.url}/v1"\n'
        f'default_model = "m"\n{server}'
    )


def cors_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in dict(headers).items() if k.lower().startswith("access-")}


async def test_an_allowed_origin_gets_its_preflight_and_cors_headers_on_every_answer(
    fake_upstream: MakeUpstream,
) -> None:
    upstream = await fake_upstream(default=Reply.text("hi"))
    auth = {"Authorization": f"Bearer {KEY}", "Origin": APP}
    async with (
        gateway(config(upstream, f'["{APP}", "http://localhost:3000"]'), api_key=KEY) as url,
        aiohttp.ClientSession() as session,
    ):
        async with session.options(f"{url}{CHAT}", headers=PREFLIGHT) as preflight:
            assert preflight.status == 204
            assert cors_headers(preflight.headers) == {
                "access-control-allow-origin": APP,
                "access-control-allow-methods": "GET, POST, OPTIONS",
                "access-control-allow-headers": "Authorization, Content-Type, x-stainless-os",
                "access-control-max-age": "600",
                "access-control-expose-headers": (
                    "x-providerhub-provider, x-providerhub-route, x-should-retry, Retry-After"
                ),
            }
            assert preflight.headers["Vary"] == "Origin"
        body = {"model": "a", "messages": HELLO, "stream": True}
        async with session.post(f"{url}{CHAT}", json=body, headers=auth) as streamed:
            assert streamed.status == 200
            assert streamed.headers["Access-Control-Allow-Origin"] == APP
            assert events(await streamed.text())[-1] == "[DONE]"
        async with session.get(f"{url}/v1/models", headers={"Origin": APP}) as refused:
            assert refused.status == 401
            assert refused.headers["Access-Control-Allow-Origin"] == APP
        async with session.get(f"{url}/v1/models", headers=auth) as models:
            assert models.status == 200
            assert models.headers["Access-Control-Allow-Origin"] == APP
    assert len(upstream.requests) == 1


async def test_a_disallowed_origin_gets_no_cors_headers(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(default=Reply.text("hi"))
    evil = {**PREFLIGHT, "Origin": "https://evil.example"}
    async with (
        gateway(config(upstream, f'["{APP}"]'), api_key=KEY) as url,
        aiohttp.ClientSession() as session,
    ):
        async with session.options(f"{url}{CHAT}", headers=evil) as preflight:
            assert preflight.status == 401
            assert cors_headers(preflight.headers) == {}
        headers = {"Authorization": f"Bearer {KEY}", "Origin": "https://evil.example"}
        async with session.get(f"{url}/v1/models", headers=headers) as models:
            assert models.status == 200
            assert cors_headers(models.headers) == {}
            assert models.headers["Vary"] == "Origin"  # a cache keeps origins apart


async def test_without_cors_origins_there_are_no_cors_headers(
    fake_upstream: MakeUpstream,
) -> None:
    upstream = await fake_upstream()
    async with (
        gateway(config(upstream, None), api_key=KEY) as url,
        aiohttp.ClientSession() as session,
    ):
        async with session.options(f"{url}{CHAT}", headers=PREFLIGHT) as preflight:
            assert preflight.status == 401
            assert cors_headers(preflight.headers) == {}
        async with session.get(f"{url}/healthz", headers={"Origin": APP}) as health:
            assert health.status == 200
            assert cors_headers(health.headers) == {}


async def test_any_origin_with_a_star(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream()
    other = {**PREFLIGHT, "Origin": "https://anywhere.example"}
    async with (
        gateway(config(upstream, '"*"'), api_key=KEY) as url,
        aiohttp.ClientSession() as session,
        session.options(f"{url}/v1/models", headers=other) as preflight,
    ):
        assert preflight.status == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == "*"
        assert "Vary" not in preflight.headers


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "3",
            "p.toml [server]: 'cors_origins' must be \"*\" or a list of origins like "
            '"https://app.example", not 3',
        ),
        (
            '"https://app.example"',
            "p.toml [server]: 'cors_origins' must be \"*\" or a list of origins like "
            "\"https://app.example\", not 'https://app.example'",
        ),
        (
            '["https://app.example/path"]',
            "p.toml [server]: 'cors_origins' lists 'https://app.example/path', which is not an "
            'origin: scheme://host[:port] with no path, like "https://app.example"',
        ),
        (
            '["app.example"]',
            "p.toml [server]: 'cors_origins' lists 'app.example', which is not an origin: "
            'scheme://host[:port] with no path, like "https://app.example"',
        ),
    ],
)
def test_cors_origins_is_validated(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(f"[server]\ncors_origins = {value}\n", "p.toml")
    assert str(refused.value) == message


def test_cors_origins_parse() -> None:
    assert parse_config('[server]\ncors_origins = "*"\n').server.cors_origins == ("*",)
    listed = parse_config('[server]\ncors_origins = ["http://[::1]:8000", "https://a.b"]\n')
    assert listed.server.cors_origins == ("http://[::1]:8000", "https://a.b")
    assert parse_config("").server.cors_origins == ()
