"""The register_provider_types hook: plugins contribute types that config tables `use`."""

from __future__ import annotations

import types
from typing import Any

import providerhub
import providerhub_openai
import pytest
from providerhub import MemoryHealthStore, Registry
from providerhub.config import parse_config
from providerhub.testing import Reply
from providerhub_openai import OpenAICompatible


def plugin(name: str, **hooks: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook, function in hooks.items():
        setattr(module, hook, providerhub.hookimpl(function))
    return module


def test_a_plugin_type_builds_config_tables() -> None:
    built: list[dict[str, Any]] = []

    def factory(*, name: str, base_url: str, extra: int = 0) -> OpenAICompatible:
        built.append({"name": name, "base_url": base_url, "extra": extra})
        return OpenAICompatible(name=name, base_url=base_url)

    custom = plugin("custom", register_provider_types=lambda register: register("Custom", factory))
    registry = Registry([custom], entry_points=False)
    config = parse_config(
        '[providers.mine]\nuse = "custom"\nbase_url = "http://127.0.0.1:1/v1"\nextra = 2\n',
        "p.toml",
    )

    config.build_registry(registry)

    assert built == [{"name": "mine", "base_url": "http://127.0.0.1:1/v1", "extra": 2}]
    assert registry.provider_types() == {"custom": factory}
    assert registry.provider_type_source("CUSTOM").provider_types == ["Custom"]
    assert [entry.plugin.name for entry in registry.entries()] == ["config:p.toml"]


def test_a_raising_hook_is_isolated() -> None:
    def register_provider_types(register: Any) -> None:
        register("half", OpenAICompatible)
        raise RuntimeError("boom")

    broken = plugin("broken", register_provider_types=register_provider_types)
    registry = Registry([broken, providerhub_openai], entry_points=False)

    assert list(registry.provider_types()) == ["openai"]
    assert [str(error) for error in registry.errors] == [
        "broken: register_provider_types raised RuntimeError: boom"
    ]


def test_duplicate_and_invalid_types_are_recorded() -> None:
    again = plugin("again", register_provider_types=lambda register: register("OpenAI", dict))
    junk = plugin("junk", register_provider_types=lambda register: register("x", "not callable"))
    registry = Registry([providerhub_openai, again, junk], entry_points=False)

    assert registry.provider_types() == {"openai": OpenAICompatible}
    reasons = [error.reason for error in registry.errors]
    assert reasons == [
        "provider type 'OpenAI' is already registered by providerhub_openai",
        "provider type 'x' needs a name and a callable factory",
    ]


async def test_429_retry_after_cools_the_instance_down(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.error(429, "Rate limit reached", retry_after="30"))
    config = parse_config(
        f'[providers.hosted]\nuse = "openai"\nbase_url = "{upstream.url}/v1"\n'
        'default_model = "m"\n[chains.main]\nproviders = ["hosted"]\n'
    )
    chain = config.chain(
        "main",
        config.build_registry(Registry([providerhub_openai], entry_points=False)),
        health=MemoryHealthStore(),
    )
    messages = [{"role": "user", "content": "hi"}]

    with pytest.raises(providerhub.AllProvidersFailedError):
        await chain.create_async("", messages)
    stream = chain.stream("", messages)
    with pytest.raises(providerhub.AllProvidersFailedError) as caught:
        await stream.text()

    assert len(upstream.requests) == 1, "the second call skipped the provider: no request"
    [skipped] = caught.value.attempts
    assert skipped.outcome == "skipped"
    assert skipped.reason.startswith("cooling down, ")
    assert float(skipped.reason.split()[2].rstrip("s")) > 25
