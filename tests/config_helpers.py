"""Helpers for the providerhub.toml tests: the installed plugin types, written and broken configs,
and the CLI run in-process."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path

import providerhub_codelinkava
import providerhub_openai
import pytest
from providerhub import Registry
from providerhub.config import Config, ConfigError, load_config, parse_config

OK_PROVIDER = '[providers.local]\nuse = "openai"\nbase_url = "http://127.0.0.1:1/v1"\n'
"""A valid provider table to which a test appends the line under test."""


def plugins() -> Registry:
    """The installed plugins' provider types (openai, codelinkava), without entry points."""
    return Registry([providerhub_openai, providerhub_codelinkava], entry_points=False)


def write_config(directory: Path, text: str, name: str = "providerhub.toml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_written(directory: Path, text: str) -> Config:
    """Write `text` as providerhub.toml in `directory` and load it."""
    config = load_config(write_config(directory, text))
    assert config is not None
    return config


def hosted(url: str, key_env: str, chain: str = "main") -> str:
    """A config: the OpenAI-compatible provider `hosted` at `url`, its key named by `key_env`,
    and a chain of just it."""
    return f"""
        [providers.hosted]
        use = "openai"
        base_url = "{url}/v1"
        api_key_env = "{key_env}"
        default_model = "m"

        [chains.{chain}]
        providers = ["hosted"]
        """


def parse_error(text: str) -> ConfigError:
    """The error that parsing `text` must raise."""
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(text), "p.toml")
    return caught.value


def build_error(text: str) -> ConfigError:
    """The error that building `text`'s providers must raise (parsing it must not)."""
    config = parse_config(textwrap.dedent(text), "p.toml")
    with pytest.raises(ConfigError) as caught:
        config.build_registry(plugins())
    return caught.value


def run_main(
    runs: Iterable[Sequence[str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[int], list[str]]:
    """Run the CLI in-process once per argv: the exit codes, and stdout then stderr of each.

    The CLI adds configured providers to the default registry: it gets a fresh one for the test.
    """
    from providerhub.cli import main

    monkeypatch.setattr("providerhub.registry._default", None)
    codes, outputs = [], []
    for argv in runs:
        codes.append(main(argv))
        captured = capsys.readouterr()
        outputs += [captured.out, captured.err]
    return codes, outputs
