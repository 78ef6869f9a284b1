"""The gateway over real sockets: OpenAI-shaped SSE and JSON, model resolution, catalogue routes.

Every gateway here listens on 127.0.0.1 port 0 in the test's loop, in front of providers of the
real providerhub-openai plugin built from a config, each pointed at its own FakeUpstream.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from providerhub import MemoryHealthStore, Registry
from providerhub.config import parse_config
from providerhub.server import create_app, start
from providerhub.testing import FakeUpstream, Reply

HELLO = [{"role": "user", "content": "Hello"}]
USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def config_text(a: FakeUpstream, b: FakeUpstream, *, default: bool = True) -> str:
    """Providers a and b at the two upstreams; chains, an alias and the default chain."""
    server = '[server]\nchain = "main"\n' if default else ""
    return f"""
[providers.a]
use = "openai"
base_url = "{a.url}/v1"
default_model = "model-a"

[providers.b]
use = "openai"
base_url = "{b.url}/v1"
default_model = "model-b"

[chains.main]
providers = ["CodeLinkAva", "a", "b"]

[chains.quick]
providers = ["a", "b"]
timeouts = {{ first_chunk = 0.3 }}

[models]
fast = {{ chain = "main", model = "fast-model" }}

{server}
"""


@asynccontextmanager
async def gateway(
    text: str, *, api_key: str | None = None, extra: Iterable[object] = ()
) -> AsyncIterator[str]:
    """Serve `text`'s config, plus `extra` providers registered directly, on a free port; yield
    the base URL (no trailing /v1)."""
    config = parse_config(text)
    registry = config.build_registry(Registry.discover())
    for item in extra:
        registry.register(item)
    app = create_app(registry, config, api_key=api_key, health=MemoryHealthStore())
    runner, url = await start(app, "127.0.0.1", 0, grace=0.5)
    try:
        yield url
    finally:
        await runner.cleanup()


async def post(
    url: str, body: Any, *, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """POST to /v1/chat/completions; the status, headers and whole body text."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/v1/chat/completions", data=data, headers=headers) as response,
    ):
        return response.status, dict(response.headers), await response.text()


def events(body: str) -> list[Any]:
    """The data of each SSE event: parsed JSON, or the string "[DONE]"."""
    found: list[Any] = []
    for block in body.split("\n\n"):
        if block.startswith("data: "):
            data = block[len("data: ") :]
            found.append(data if data == "[DONE]" else json.loads(data))
    return found


def contents(found: list[Any]) -> list[str]:
    return [
        event["choices"][0]["delta"]["content"]
        for event in found
        if isinstance(event, dict)
        and event.get("choices")
        and event["choices"][0]["delta"].get("content")
    ]


@pytest.fixture
async def ups(fake_upstream: Any) -> tuple[FakeUpstream, FakeUpstream]:
    return await fake_upstream(), await fake_upstream()


async def test_streams_chunks_like_openai(ups: tuple[FakeUpstream, FakeUpstream]) -> None:
    a, b = ups
    a.script(Reply.text("Hel", "lo", usage=USAGE, delay=0.01))
    async with gateway(config_text(a, b)) as url:
        body = {"model": "main", "messages": HELLO, "stream": True, "temperature": 0.2}
        status, headers, text = await post(url, body)
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["x-providerhub-provider"] == "a"
    assert headers["x-providerhub-route"] == "main > a"
    found = events(text)
    assert found[-1] == "[DONE]"
    chunks = found[:-1]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert all(chunk["model"] == "main" for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert contents(found) == ["Hel", "lo"]
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in chunks[:-1])
    (request,) = a.requests
    assert request.json["model"] == "model-a"
    assert request.json["messages"] == HELLO
    assert request.json["temperature"] == 0.2
    assert b.requests == []


async def test_json_completion(ups: tuple[FakeUpstream, FakeUpstream]) -> None:
    a, b = ups
    a.script(Reply.error(500, "model crashed"))
    b.script(Reply.text("Hel", "lo"))
    async with gateway(config_text(a, b)) as url:
        status, headers, text = await post(url, {"model": "main", "messages": HELLO})
    assert status == 200
    assert headers["x-providerhub-provider"] == "b"
    assert headers["x-providerhub-route"] == "main > b"
    completion = json.loads(text)
    assert completion["object"] == "chat.completion"
    assert completion["id"].startswith("chatcmpl-")
    assert completion["model"] == "main"
    assert completion["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}
    ]
    assert len(a.requests) == len(b.requests) == 1


@pytest.mark.parametrize(
    ("model", "serves", "upstream_model", "route"),
    [
        ("fast", "a", "fast-model", "main > a"),  # alias: its chain and model
        ("MAIN", "a", "model-a", "main > a"),  # chain by name, any case: defaults
        ("b", "b", "model-b", "b"),  # provider alone, its default
        ("b/other-model", "b", "other-model", "b"),  # provider/model
        ("quick/other-model", "a", "other-model", "quick > a"),  # chain/model
        ("vendor/some-model", "a", "vendor/some-model", "main > a"),  # default chain
    ],
)
async def test_model_resolution(
    ups: tuple[FakeUpstream, FakeUpstream], model: str, serves: str, upstream_model: str, route: str
) -> None:
    a, b = ups
    a.script(Reply.text("from a"))
    b.script(Reply.text("from b"))
    async with gateway(config_text(a, b)) as url:
        status, headers, text = await post(url, {"model": model, "messages": HELLO})
    assert status == 200, text
    assert headers["x-providerhub-provider"] == serves
    assert headers["x-providerhub-route"] == route
    assert json.loads(text)["choices"][0]["message"]["content"] == f"from {serves}"
    (request,) = (a if serves == "a" else b).requests
    assert request.json["model"] == upstream_model


async def test_unknown_model_is_404_listing_what_exists(
    ups: tuple[FakeUpstream, FakeUpstream],
) -> None:
    a, b = ups
    async with gateway(config_text(a, b, default=False)) as url:
        status, _, text = await post(url, {"model": "nope", "messages": HELLO, "stream": True})
    assert status == 404
    error = json.loads(text)["error"]
    assert error["code"] == "model_not_found"
    assert error["param"] == "model"
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("model 'nope' not found; available aliases: fast; ")
    assert "chains: main, quick;" in error["message"]
    assert "providers: CodeLinkAva, a, b" in error["message"]
    assert a.requests == b.requests == []


async def test_models_route_lists_aliases_chains_providers(
    ups: tuple[FakeUpstream, FakeUpstream],
) -> None:
    a, b = ups
    async with (
        gateway(config_text(a, b)) as url,
        aiohttp.ClientSession() as session,
        session.get(f"{url}/v1/models") as response,
    ):
        listing = await response.json()
    assert listing["object"] == "list"
    by_id = {model["id"]: model for model in listing["data"]}
    assert [model["id"] for model in listing["data"]] == [
        "fast",
        "main",
        "quick",
        "CodeLinkAva",
        "a",
        "b",
    ]
    assert by_id["fast"]["kind"] == "alias"
    assert by_id["fast"]["chain"] == "main"
    assert by_id["main"]["owned_by"] == "config:<string>"
    assert by_id["a"]["owned_by"] == "config:<string>"
    assert by_id["CodeLinkAva"]["owned_by"].startswith("providerhub-codelinkava")
    assert {model["object"] for model in listing["data"]} == {"model"}


async def test_providers_and_healthz(ups: tuple[FakeUpstream, FakeUpstream]) -> None:
    a, b = ups
    a.script(Reply.text("hi"))
    async with gateway(config_text(a, b)) as url, aiohttp.ClientSession() as session:
        assert (await post(url, {"model": "a", "messages": HELLO}))[0] == 200
        async with session.get(f"{url}/v1/providers") as response:
            listed = {item["name"]: item for item in (await response.json())["data"]}
        async with session.get(f"{url}/healthz") as response:
            health = await response.json()
        async with session.head(f"{url}/healthz") as response:
            head = (response.status, await response.read())
    assert listed["CodeLinkAva"]["working"] is False
    assert listed["CodeLinkAva"]["supports_gpt_35_turbo"] is True
    assert listed["a"]["working"] is True
    assert "url" not in listed["a"] and str(a.port) not in json.dumps(listed)
    assert head == (200, b"")
    assert listed["a"]["credentials"] == "ok"
    assert isinstance(listed["a"]["latency_ms"], float)
    assert listed["b"]["latency_ms"] is None
    assert health == {
        "status": "ok",
        "providers": 3,
        "working": 2,
        "chains": 2,
        "aliases": 1,
        "default_chain": "main",
    }


async def test_unknown_route_is_openai_shaped(ups: tuple[FakeUpstream, FakeUpstream]) -> None:
    a, b = ups
    async with (
        gateway(config_text(a, b)) as url,
        aiohttp.ClientSession() as session,
        session.get(f"{url}/v1/nothing") as response,
    ):
        assert response.status == 404
        error = (await response.json())["error"]
    assert error["code"] == "unknown_url"
    assert error["message"].startswith(
        "unknown endpoint GET /v1/nothing; this gateway serves POST /v1/chat/completions, "
    )


async def test_a_request_validates_its_messages_once(
    ups: tuple[FakeUpstream, FakeUpstream], message_checks: list[str]
) -> None:
    """The gateway checks the messages; the chain, the failed member and the serving one do
    not check them again."""
    a, b = ups
    a.script(Reply.error(500))
    b.script(Reply.text("ok"))
    history = [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": "hello", "name": "bot"},
    ]
    async with gateway(config_text(a, b)) as url:
        status, _, text = await post(url, {"model": "quick", "messages": history})
    assert status == 200, text
    assert json.loads(text)["choices"][0]["message"]["content"] == "ok"
    assert message_checks == ["messages[0]", "messages[1]"]
    assert a.requests[0].json["messages"] == b.requests[0].json["messages"] == history
