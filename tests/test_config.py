"""providerhub.toml: finding it, building providers and chains from it, model aliases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from config_helpers import hosted, load_written, plugins, write_config
from providerhub import (
    AllProvidersFailedError,
    FallbackChain,
    MemoryHealthStore,
    MissingCredentialsError,
    Timeouts,
)
from providerhub.config import (
    CONFIG_ENV,
    Config,
    ConfigError,
    ModelAlias,
    find_config,
    load_config,
    parse_config,
)
from providerhub.testing import FakeUpstream, Reply
from providerhub_openai import OpenAICompatible

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "providerhub.toml"
MESSAGES = [{"role": "user", "content": "hi"}]


def test_search_order(tmp_path: Path) -> None:
    explicit = write_config(tmp_path, "")
    by_env = tmp_path / "env.toml"
    by_env.write_text("")
    xdg = tmp_path / "xdg"
    (xdg / "providerhub").mkdir(parents=True)
    default = xdg / "providerhub" / "providerhub.toml"
    default.write_text("")
    environ = {CONFIG_ENV: str(by_env), "XDG_CONFIG_HOME": str(xdg), "HOME": str(tmp_path)}

    assert find_config(explicit, environ) == explicit
    assert find_config(None, environ) == by_env
    assert find_config(None, {"XDG_CONFIG_HOME": str(xdg)}) == default
    assert find_config(None, {"HOME": str(tmp_path)}) is None
    (tmp_path / ".config").symlink_to(xdg)
    assert find_config(None, {"HOME": str(tmp_path)}) == tmp_path / ".config" / default.relative_to(
        xdg
    )
    assert load_config(None, environ={"HOME": str(tmp_path / "nowhere")}) is None


def test_named_files_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"

    with pytest.raises(ConfigError, match=r"missing\.toml: config file not found$"):
        find_config(missing, {})
    with pytest.raises(ConfigError, match=r"not found \(named by \$PROVIDERHUB_CONFIG\)"):
        find_config(None, {CONFIG_ENV: str(missing)})


def test_example_config_builds() -> None:
    config = load_config(EXAMPLE)
    assert config is not None
    registry = config.build_registry(plugins())

    ollama = registry.get("ollama")
    assert isinstance(ollama, OpenAICompatible)
    assert ollama.endpoint == "http://127.0.0.1:11434/v1/chat/completions"
    assert registry.get("openai").needs_auth
    source = next(e.plugin for e in registry.entries() if e.provider is ollama)
    assert source.name == f"config:{EXAMPLE}"

    chain = config.chain("default", registry)
    assert isinstance(chain, FallbackChain)
    assert [member.name for member in chain.members] == ["ollama", "openai", "CodeLinkAva"]
    assert chain.timeouts == Timeouts(connect=3, first_chunk=30, idle=30, total=300)
    assert chain.retries == 1
    assert config.resolve_model("fast") == ModelAlias("fast", "default", "")
    assert config.resolve_model("smart") == ModelAlias("smart", "hosted", "gpt-4o")
    assert config.resolve_model("gpt-4o") is None
    assert config.server.chain == "default"


def chain_config(tmp_path: Path, down: str, up: str) -> Config:
    return load_written(
        tmp_path,
        f"""
        [providers.down]
        use = "openai"
        base_url = "{down}/v1"
        default_model = "small"

        [providers.up]
        use = "openai"
        base_url = "{up}/v1"
        default_model = "tiny"
        models = ["tiny", "big"]

        [chains.main]
        providers = ["CodeLinkAva", "down", "up"]
        timeouts = {{ connect = 2, first_chunk = 2, idle = 2, total = 5 }}

        [chains.outer]
        providers = ["main"]

        [models]
        fast = "main"
        big = {{ chain = "outer", model = "big" }}
        """,
    )


async def test_chain_from_file_fails_over_from_a_refused_port(
    tmp_path: Path, fake_upstream: Any
) -> None:
    gone = await FakeUpstream().start()
    await gone.close()
    up = await fake_upstream(Reply.text("served ", "by up"))
    config = chain_config(tmp_path, gone.url, up.url)
    registry = config.build_registry(plugins())
    chain = config.chain("main", registry, health=MemoryHealthStore())

    stream = chain.stream("", MESSAGES)
    text = "".join([chunk async for chunk in stream])

    assert text == "served by up"
    assert [(a.provider, a.outcome) for a in stream.attempts] == [
        ("CodeLinkAva", "skipped"),
        ("down", "failed"),
        ("up", "served"),
    ]
    assert "not working" in stream.attempts[0].reason
    assert "cannot connect" in str(stream.attempts[1].error)
    assert up.requests[0].json["model"] == "tiny", "the alias-less call uses each default model"


async def test_model_alias_routes_to_its_chain_and_model(
    tmp_path: Path, fake_upstream: Any
) -> None:
    down = await fake_upstream(Reply.text("from down"))
    up = await fake_upstream(Reply.text("big answer"))
    config = chain_config(tmp_path, down.url, up.url)
    registry = config.build_registry(plugins())

    alias = config.resolve_model("big")
    assert alias is not None
    chain = config.chain(alias.chain, registry, health=MemoryHealthStore())
    stream = chain.stream(alias.model, MESSAGES)

    assert "".join([chunk async for chunk in stream]) == "from down"
    assert down.requests[0].json["model"] == "big", "down lists no models, so it serves any"
    assert [(a.provider, a.outcome) for a in stream.attempts] == [("main", "served")]
    assert up.requests == []


async def test_unset_key_variable_is_skipped_in_chains_and_named_in_direct_calls(
    tmp_path: Path, fake_upstream: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVIDERHUB_TEST_UNSET_KEY", raising=False)
    upstream = await fake_upstream(Reply.text("never"))
    config = load_written(tmp_path, hosted(upstream.url, "PROVIDERHUB_TEST_UNSET_KEY", "only"))
    registry = config.build_registry(plugins())
    provider = registry.get("hosted")

    assert provider.needs_auth
    expected = "environment variable PROVIDERHUB_TEST_UNSET_KEY is not set"
    assert provider.missing_credentials() == expected
    with pytest.raises(AllProvidersFailedError) as caught:
        await config.chain("only", registry, health=MemoryHealthStore()).create_async("", MESSAGES)
    assert caught.value.attempts[0].outcome == "skipped"
    assert expected in str(caught.value)
    with pytest.raises(MissingCredentialsError) as direct:
        provider.create_async_generator("m", MESSAGES)
    assert str(direct.value) == f"provider 'hosted' needs credentials: {expected}"
    assert upstream.requests == []
    assert 'api_key_env = "PROVIDERHUB_TEST_UNSET_KEY"  # not set' in config.render(registry)


def test_building_twice_into_one_registry_keeps_the_first_instances() -> None:
    config = load_config(EXAMPLE)
    assert config is not None
    registry = config.build_registry(plugins())
    ollama = registry.get("ollama")

    assert config.build_registry(registry) is registry
    assert registry.get("ollama") is ollama
    assert registry.errors == []


def test_render_round_trips() -> None:
    config = load_config(EXAMPLE)
    assert config is not None

    again = parse_config(config.render(config.build_registry(plugins())), EXAMPLE)

    assert again.providers == config.providers
    assert again.chains == config.chains
    assert again.models == config.models
    assert again.server == config.server


def test_defaults_and_empty_file() -> None:
    config = parse_config("")

    assert config.providers == {} and config.chains == {} and config.models == {}
    assert (config.server.host, config.server.port, config.server.chain) == (
        "127.0.0.1",
        8080,
        None,
    )
    assert config.source == "config:<string>"


def test_every_chain_option_reaches_the_chain() -> None:
    config = parse_config(
        """
[chains.main]
providers = ["CodeLinkAva"]
order = "latency"
ignore_working = true
retries = 2
backoff = 0.5
timeouts = { connect = 2, idle = 7 }
hedge_after = 1.5
on_interrupt = "continue"
deadline = 12
""",
        "p.toml",
    )
    chain = config.chain("main", config.build_registry(plugins()))
    assert (chain.order, chain.ignore_working, chain.retries, chain.backoff) == (
        "latency",
        True,
        2,
        0.5,
    )
    assert chain.timeouts == Timeouts(connect=2, idle=7)
    assert (chain.hedge_after, chain.on_interrupt, chain.deadline) == (1.5, "continue", 12)
    assert parse_config(config.render(), "p.toml").chains == config.chains


def test_server_limits_parse_and_config_check_shows_them() -> None:
    config = parse_config(
        "[server]\nrequest_timeout = 2.5\nmax_concurrent_requests = 8\nshutdown_grace = 1\n"
        'cors_origins = ["https://app.example"]\n',
        "p.toml",
    )
    server = config.server
    assert (server.request_timeout, server.max_concurrent_requests) == (2.5, 8)
    assert (server.shutdown_grace, server.cors_origins) == (1.0, ("https://app.example",))
    shown = config.render()
    assert (
        '\n[server]\nhost = "127.0.0.1"\nport = 8080\nrequest_timeout = 2.5\n'
        "max_concurrent_requests = 8\nshutdown_grace = 1.0\n"
        'cors_origins = ["https://app.example"]\n\n[health]\n'
    ) in shown
    assert parse_config(shown).server == server
    defaults = parse_config("").server
    assert (defaults.request_timeout, defaults.max_concurrent_requests) == (30.0, 256)
    assert (defaults.shutdown_grace, defaults.cors_origins) == (5.0, ())
