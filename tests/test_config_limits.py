"""Configs built to exhaust the parser: values and chains nested thousands deep, and a chain
of thousands of members, whose check must stay linear in its size."""

from __future__ import annotations

from pathlib import Path

import pytest
from config_helpers import parse_error, run_main, write_config
from providerhub import Registry

PROVIDER = '[providers.p0]\nuse = "openai"\nbase_url = "http://127.0.0.1:1/v1"\n'


def nested_chains(depth: int) -> str:
    chains = [f'[chains.c{i}]\nproviders = ["c{i - 1}"]\n' for i in range(1, depth)]
    return PROVIDER + '[chains.c0]\nproviders = ["p0"]\n' + "".join(chains)


def wide_chain(size: int) -> str:
    providers = [
        f'[providers.p{i}]\nuse = "openai"\nbase_url = "http://127.0.0.1:1/v1"\n'
        for i in range(size)
    ]
    members = ", ".join(f'"p{i}"' for i in range(size))
    return "".join(providers) + f"[chains.big]\nproviders = [{members}]\n"


@pytest.mark.parametrize("value", ["[" * 3000 + "]" * 3000, "{ a = " * 3000 + "1" + " }" * 3000])
def test_values_nested_too_deeply_are_a_config_error(value: str) -> None:
    error = parse_error(f"[server]\nhost = {value}\n")

    assert str(error) == "p.toml: invalid TOML: arrays or tables nested too deeply"


def test_chains_nested_too_deeply_are_a_config_error() -> None:
    error = parse_error(nested_chains(3000))

    assert str(error) == "p.toml [chains.c100]: chains nest 101 deep here, more than 100"
    assert error.key == "providers"


def test_chains_nested_to_the_limit_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, nested_chains(100))

    codes, (_, err) = run_main([["config", "check", "--config", str(path)]], capsys, monkeypatch)

    assert codes == [0]
    assert err == f"providerhub: {path}: ok (1 provider, 100 chains, 0 model aliases)\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[server]\nhost = " + "[" * 3000 + "]" * 3000 + "\n",
            "invalid TOML: arrays or tables nested too deeply",
        ),
        (nested_chains(3000), "[chains.c100]: chains nest 101 deep here, more than 100"),
    ],
)
def test_config_check_exits_7_for_deep_configs(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    message: str,
) -> None:
    path = write_config(tmp_path, text)

    codes, (out, err) = run_main([["config", "check", "--config", str(path)]], capsys, monkeypatch)

    assert codes == [7]
    assert out == ""
    assert err == f"providerhub: error: {path}{' ' if message[0] == '[' else ': '}{message}\n"


def test_config_check_scans_the_registry_a_fixed_number_of_times(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rendering a chain looks each member up by name, never by scanning every provider."""
    scans: list[int] = []
    entries = Registry.entries
    monkeypatch.setattr(
        Registry, "entries", lambda self, **kw: scans.append(1) or entries(self, **kw)
    )
    counts = []
    for size in (10, 300):
        scans.clear()
        path = write_config(tmp_path / str(size), wide_chain(size))
        codes, _ = run_main([["config", "check", "--config", str(path)]], capsys, monkeypatch)
        assert codes == [0]
        counts.append(len(scans))

    assert counts[0] == counts[1]
