"""The template's tests: plain pytest, the kit's fixture and conformance suite."""

from __future__ import annotations

import pytest
from providerhub import default_registry
from providerhub.testing import Reply, UpstreamFactory, conformance
from providerhub_template import OllamaChat

# The whole plugin contract, on the provider type as providerhub.toml would build it.
test_conformance = conformance.suite(conformance.of_type("ollama", wire="ndjson"))

HELLO = [{"role": "user", "content": "Hello"}]


async def test_streams_the_answer(
    fake_upstream: UpstreamFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = await fake_upstream(Reply.text("Hel", "lo"), wire="ndjson")
    monkeypatch.setenv("OLLAMA_API_KEY", "k-1")
    chat = OllamaChat(name="local", base_url=upstream.url, api_key_env="OLLAMA_API_KEY")
    async with chat.stream("llama3.2", HELLO, temperature=0) as stream:
        assert [chunk async for chunk in stream] == ["Hel", "lo"]
    request = upstream.requests[0]
    assert (request.path, request.headers["Authorization"]) == ("/api/chat", "Bearer k-1")
    assert request.json == {
        "model": "llama3.2",
        "messages": HELLO,
        "temperature": 0,
        "stream": True,
    }


def test_registered_through_its_entry_point() -> None:
    assert default_registry().provider_types()["ollama"] is OllamaChat
