"""The one resolver from a name to a target, shared by the CLI, the gateway and the config."""

from __future__ import annotations

import subprocess
import sys

import pytest
from config_helpers import plugins
from providerhub import FallbackChain, MemoryHealthStore, ProviderNotFoundError, Registry
from providerhub.config import Config, ConfigError, parse_config
from providerhub.errors import TargetNotFoundError
from providerhub.targets import Target, Targets

CONFIG = """
[providers.local]
use = "openai"
base_url = "http://127.0.0.1:1/v1"
models = ["small", "big", "vendor/some-model"]
default_model = "small"

[chains.main]
providers = ["local", "CodeLinkAva"]
retries = 1

[chains.outer]
providers = ["main", "local"]

[models]
fast = { chain = "main", model = "big" }
"""


@pytest.fixture
def setup() -> tuple[Config, Registry]:
    config = parse_config(CONFIG, "p.toml")
    return config, config.build_registry(plugins())


def test_a_member_is_a_configured_chain_first_then_a_provider(
    setup: tuple[Config, Registry],
) -> None:
    config, registry = setup
    targets = Targets(registry, config, health=MemoryHealthStore())
    main = targets.member("MAIN")
    assert isinstance(main, FallbackChain) and main.retries == 1
    assert targets.member("local") is registry.get("local")
    outer = targets.configured("outer")
    assert outer.members == (main, registry.get("local"))
    assert main.health is outer.health is targets.health
    with pytest.raises(TargetNotFoundError) as caught:
        targets.member("mian")
    assert str(caught.value) == "no provider or chain named 'mian'; did you mean main?"
    assert caught.value.suggestions == ("main",)
    assert isinstance(caught.value, ProviderNotFoundError)


@pytest.mark.parametrize(
    ("model", "chain", "asked", "single"),
    [
        ("fast", "main", "big", False),
        ("Main", "main", "", False),
        ("local", "local", "", True),
        ("local/big", "local", "big", True),
        ("outer/small", "outer", "small", False),
        ("vendor/some-model", "main", "vendor/some-model", False),
    ],
)
def test_resolve_follows_the_rules_in_order(
    setup: tuple[Config, Registry], model: str, chain: str, asked: str, single: bool
) -> None:
    config, registry = setup
    targets = Targets(registry, config, default_chain="main")
    target = targets.resolve(model)
    assert (target.chain.name, target.model, target.single) == (chain, asked, single)


def test_a_provider_alone_is_one_cached_one_provider_chain(
    setup: tuple[Config, Registry],
) -> None:
    config, registry = setup
    targets = Targets(registry, config)
    chain = targets.single("LOCAL")
    assert (chain.name, chain.members) == ("local", (registry.get("local"),))
    assert targets.single("local") is chain
    assert targets.resolve("local") == Target(chain, "", single=True)
    with pytest.raises(ProviderNotFoundError, match="no provider named 'main'"):
        targets.single("main")


def test_nothing_to_answer_is_a_target_not_found(setup: tuple[Config, Registry]) -> None:
    config, registry = setup
    targets = Targets(registry, config)
    with pytest.raises(TargetNotFoundError) as caught:
        targets.resolve("nope")
    assert str(caught.value) == (
        "model 'nope' not found; available aliases: fast; chains: main, outer; "
        "providers: CodeLinkAva, local (GET /v1/models lists them)"
    )
    with pytest.raises(TargetNotFoundError) as caught:
        targets.resolve("local/huge")
    assert str(caught.value) == ("model 'local/huge': no provider of 'local' serves model 'huge'")
    with pytest.raises(TargetNotFoundError, match="nothing is configured"):
        Targets(Registry(entry_points=False)).resolve("x")


def test_config_mistakes_are_config_errors(setup: tuple[Config, Registry]) -> None:
    config, registry = setup
    targets = Targets(registry, config)
    with pytest.raises(
        ConfigError, match=r"^p\.toml: no chain named 'outr'; did you mean outer\?$"
    ):
        targets.configured("outr")
    with pytest.raises(ConfigError, match=r"default chain 'nope' is not configured \(chains: "):
        Targets(registry, config, default_chain="nope")
    lacking = Registry(entry_points=False)
    with pytest.raises(ConfigError) as caught:
        config.chain("main", lacking)
    assert (caught.value.table, caught.value.key) == ("chains.main", "providers")
    assert caught.value.reason == "no provider or chain named 'local'"


def test_the_resolver_imports_no_aiohttp() -> None:
    script = "import sys, providerhub.targets; print('aiohttp' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, "False\n"), result.stderr
