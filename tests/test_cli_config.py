"""The CLI with a providerhub.toml: configured chains and aliases, `providers`, `config check`.

The config's provider instances use the installed providerhub-openai plugin and point at
loopback FakeUpstreams (base_url = upstream.url + "/v1"); the CLI runs in a child process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import chat, outcomes, plugin_env, run, table
from config_helpers import write_config
from providerhub.config import CONFIG_ENV
from providerhub.testing import FakeUpstream, Reply

KEY_ENV = "PH_TEST_LOCAL_KEY"
KEY = "sk-test-9f8e7d6c5b4a39281706SECRET"

CONFIG = """
[providers.down]
use = "openai"
base_url = "{down}/v1"
models = ["small"]
default_model = "small"

[providers.local]
use = "openai"
base_url = "{local}/v1"
api_key_env = "{key_env}"
models = ["local-model", "big"]
default_model = "local-model"
supports_gpt_4 = true

[chains.main]
providers = ["CodeLinkAva", "down", "local"]

[providers.dormant]
use = "openai"
base_url = "{down}/v1"
default_model = "small"
working = false

[chains.sleepy]
providers = ["dormant"]

[chains.outer]
providers = ["sleepy"]
retries = 1

[models]
fast = "main"
smart = {{ chain = "main", model = "big" }}
"""


@dataclass
class Setup:
    path: Path
    env: dict[str, str]
    down: FakeUpstream
    local: FakeUpstream


@pytest.fixture
async def setup(tmp_path: Path, fake_upstream: Any) -> Setup:
    down, local = await fake_upstream(), await fake_upstream()
    text = CONFIG.format(down=down.url, local=local.url, key_env=KEY_ENV)
    path = write_config(tmp_path, text)
    return Setup(path, plugin_env(None, **{KEY_ENV: KEY}), down, local)


def assert_no_key(*outputs: str) -> None:
    for output in outputs:
        assert KEY not in output
        assert KEY[8:20] not in output


async def test_configured_chain_via_config_option(setup: Setup) -> None:
    setup.down.script(Reply.error(500, "down for maintenance"))
    setup.local.script(Reply.text("configured ", "answer"))
    code, out, err = await chat(
        "--config", str(setup.path), "--chain", "main", "-v", "hi", env=setup.env
    )
    assert (code, out) == (0, "configured answer\n")
    assert outcomes(err) == [
        ("CodeLinkAva", "skipped", "not working"),
        (
            "down",
            "failed",
            "HTTP 500: down for maintenance",
        ),
        ("local", "served", None),
    ]
    assert_no_key(out, err)
    [down_request] = setup.down.requests
    assert (down_request.path, down_request.json["model"]) == ("/v1/chat/completions", "small")
    [request] = setup.local.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.json["model"] == "local-model"
    assert request.json["messages"] == [{"role": "user", "content": "hi"}]


async def test_config_from_the_environment_and_alias_resolution(setup: Setup) -> None:
    env = {**setup.env, CONFIG_ENV: str(setup.path)}
    setup.local.script(Reply.text("big answer"), Reply.text("fast answer"))

    code, out, err = await chat("-m", "smart", "-v", "hi", env=env)
    assert (code, out) == (0, "big answer\n")
    assert outcomes(err) == [
        ("CodeLinkAva", "skipped", "not working"),
        ("down", "skipped", "model 'big' not supported"),
        ("local", "served", None),
    ]
    assert setup.local.requests[0].json["model"] == "big"

    setup.down.script(Reply.error(503, "busy"))
    code, out, err = await chat("-m", "fast", "hi", env=env)
    assert (code, out, err) == (0, "fast answer\n", "")
    assert [r.json["model"] for r in setup.down.requests] == ["small"]
    assert setup.local.requests[1].json["model"] == "local-model"


async def test_provider_option_takes_configured_instances_not_chains(setup: Setup) -> None:
    setup.local.script(Reply.text("direct"))
    config = ("--config", str(setup.path))
    code, out, err = await chat(*config, "-p", "LOCAL", "-m", "big", "hi", env=setup.env)
    assert (code, out, err) == (0, "direct\n", "")
    assert setup.local.requests[0].json["model"] == "big"

    code, out, err = await chat(*config, "-p", "main", "hi", env=setup.env)
    assert (code, out) == (2, "")
    assert err == f"providerhub: error: 'main' is a chain in {setup.path}: use --chain main\n"

    code, out, err = await chat(*config, "-m", "no-such-alias", "hi", env=setup.env)
    assert (code, out) == (2, "")
    assert err.startswith("providerhub: error: say what to call: ")


async def test_chain_list_mixes_configured_instances_and_chains(setup: Setup) -> None:
    setup.down.script(Reply.error(500, "no"))
    setup.local.script(Reply.text("nested"))
    code, out, err = await chat(
        "--config", str(setup.path), "--chain", "down,main", "-v", "hi", env=setup.env
    )
    assert (code, out) == (0, "nested\n")
    assert outcomes(err) == [
        ("down", "failed", "HTTP 500: no"),
        ("main", "served", "via local"),
    ]


async def test_a_failed_nested_chain_shows_its_own_attempts(setup: Setup) -> None:
    setup.down.script(Reply.error(500, "first"), Reply.text("second time lucky"))
    setup.local.script(Reply.error(500, "also down"))
    code, out, err = await chat(
        "--config", str(setup.path), "--chain", "main,down", "-v", "hi", env=setup.env
    )
    assert (code, out) == (0, "second time lucky\n")
    lines = [line.partition(" [")[0] for line in err.splitlines()]
    assert lines[0].startswith("providerhub: attempt 1: main: failed (all providers failed: ")
    assert lines[1:] == [
        "providerhub: attempt 1.1: CodeLinkAva: skipped (not working)",
        "providerhub: attempt 1.2: down: failed (HTTP 500: first)",
        "providerhub: attempt 1.3: local: failed (HTTP 500: also down)",
        "providerhub: attempt 2: down: served",
    ]


async def test_ignore_working_reaches_into_nested_configured_chains(setup: Setup) -> None:
    code, out, err = await chat(
        "--config", str(setup.path), "--chain", "outer", "hi", env=setup.env
    )
    assert (code, out) == (6, "")
    assert err == "providerhub: error: all providers failed:\n  sleepy: skipped (not working)\n"
    assert setup.down.requests == []

    setup.down.script(Reply.text("awake"))
    code, out, err = await chat(
        "--config",
        str(setup.path),
        "--chain",
        "outer",
        "--ignore-working",
        "-v",
        "hi",
        env=setup.env,
    )
    assert (code, out) == (0, "awake\n")
    assert outcomes(err) == [("sleepy", "served", "via dormant")]


def test_providers_lists_configured_instances_with_their_source(setup: Setup) -> None:
    result = run("--config", str(setup.path), "providers", env=setup.env)
    assert (result.returncode, result.stderr) == (0, "")
    rows = {row[0]: row for row in table(result.stdout)[1:]}
    source = f"config:{setup.path}"
    assert rows["down"] == ["down", source, "yes", "no", "no", "yes", f"{setup.down.url}/v1"]
    assert rows["local"] == ["local", source, "yes", "no", "yes", "yes", f"{setup.local.url}/v1"]
    assert rows["CodeLinkAva"][1] == "providerhub-codelinkava 0.1.0"

    records = json.loads(
        run("providers", "--json", "--config", str(setup.path), env=setup.env).stdout
    )
    local = next(record for record in records if record["name"] == "local")
    assert local == {
        "name": "local",
        "plugin": source,
        "distribution": None,
        "version": None,
        "source": source,
        "working": True,
        "supports_gpt_35_turbo": False,
        "supports_gpt_4": True,
        "supports_stream": True,
        "needs_auth": True,
        "url": f"{setup.local.url}/v1",
    }
    assert_no_key(result.stdout, result.stderr, json.dumps(records))


def test_default_config_location(tmp_path: Path, setup: Setup) -> None:
    xdg = tmp_path / "xdg"
    write_config(xdg / "providerhub", setup.path.read_text())
    result = run("providers", "--json", env={**setup.env, "XDG_CONFIG_HOME": str(xdg)})
    names = {record["name"]: record["source"] for record in json.loads(result.stdout)}
    assert names["local"] == f"config:{xdg / 'providerhub' / 'providerhub.toml'}"
    assert "local" not in {r["name"] for r in json.loads(run("providers", "--json").stdout)}


def test_listing_with_openai_instances_never_imports_aiohttp(setup: Setup) -> None:
    code = (
        "import sys\n"
        "from providerhub.cli import main\n"
        f"main(['--config', {str(setup.path)!r}, 'providers'])\n"
        f"main(['providers', '--json', '--config', {str(setup.path)!r}])\n"
        "sys.stderr.write(f'aiohttp imported: {\"aiohttp\" in sys.modules}\\n')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=setup.env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert f"config:{setup.path}" in result.stdout
    assert result.stderr.splitlines()[-1] == "aiohttp imported: False"


def test_config_check_prints_the_resolved_config_without_secrets(setup: Setup) -> None:
    result = run("config", "check", "--config", str(setup.path), env=setup.env)
    assert result.returncode == 0, result.stderr
    assert_no_key(result.stdout, result.stderr)
    assert f'api_key_env = "{KEY_ENV}"  # set' in result.stdout
    assert "[providers.local]" in result.stdout
    assert "# CodeLinkAva: from providerhub-codelinkava 0.1.0; not working" in result.stdout
    assert result.stderr == (
        f"providerhub: {setup.path}: ok (3 providers, 3 chains, 2 model aliases)\n"
    )
    unset = {key: value for key, value in setup.env.items() if key != KEY_ENV}
    result = run("--config", str(setup.path), "config", "check", env=unset)
    assert result.returncode == 0
    assert f'api_key_env = "{KEY_ENV}"  # not set' in result.stdout


def test_no_config_file(tmp_path: Path) -> None:
    result = run("config", "check")
    assert (result.returncode, result.stdout) == (7, "")
    assert result.stderr == (
        f"providerhub: error: no config file: give --config PATH, set ${CONFIG_ENV}, or create "
        "$XDG_CONFIG_HOME/providerhub/providerhub.toml (XDG_CONFIG_HOME defaults to ~/.config)\n"
    )
    missing = tmp_path / "missing.toml"
    for args, env in (
        (("--config", str(missing), "providers"), plugin_env()),
        (("chat", "--config", str(missing), "--chain", "x", "hi"), plugin_env()),
        (("providers",), plugin_env(None, **{CONFIG_ENV: str(missing)})),
    ):
        result = run(*args, env=env)
        assert (result.returncode, result.stdout) == (7, ""), args
        named = " (named by $PROVIDERHUB_CONFIG)" if CONFIG_ENV in env else ""
        assert result.stderr == f"providerhub: error: {missing}: config file not found{named}\n"


MISTAKES = {
    "invalid TOML": ("[providers.x\n", ": invalid TOML: "),
    "unknown key": (
        '[chains.c]\nproviders = ["CodeLinkAva"]\nretires = 1\n',
        " [chains.c]: unknown key 'retires'; did you mean 'retries'?",
    ),
    "wrong type": (
        '[chains.c]\nproviders = ["CodeLinkAva"]\nretries = "two"\n',
        " [chains.c]: 'retries' must be a whole number >= 0, not 'two'",
    ),
    "unknown provider type": (
        '[providers.x]\nuse = "opnai"\nbase_url = "http://127.0.0.1:9/v1"\n',
        " [providers.x]: unknown provider type 'opnai'; did you mean 'openai'?",
    ),
    "unknown option": (
        '[providers.x]\nuse = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n',
        " [providers.x]: unknown key 'model'; did you mean 'models'?",
    ),
    "unknown member": (
        '[chains.c]\nproviders = ["CodeLinkAv"]\n',
        " [chains.c]: 'providers': no provider or chain named 'CodeLinkAv'; "
        "did you mean CodeLinkAva?",
    ),
    "chain refers to itself": (
        '[chains.a]\nproviders = ["b"]\n[chains.b]\nproviders = ["a"]\n',
        " [chains.a]: chain refers to itself: a -> b -> a",
    ),
    "literal secret": (
        f'[providers.x]\nuse = "openai"\nbase_url = "http://127.0.0.1:9/v1"\napi_key = "{KEY}"\n',
        " [providers.x]: 'api_key': literal secrets are refused",
    ),
    "unknown alias target": (
        '[models]\nfast = "nowhere"\n',
        " [models]: 'fast' names chain 'nowhere', which is not defined",
    ),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_each_config_mistake_is_one_line_with_exit_7(tmp_path: Path, mistake: str) -> None:
    text, message = MISTAKES[mistake]
    path = tmp_path / "providerhub.toml"
    path.write_text(text, encoding="utf-8")
    result = run("--config", str(path), "config", "check")
    assert (result.returncode, result.stdout) == (7, "")
    assert result.stderr.startswith(f"providerhub: error: {path}{message}")
    assert result.stderr.count("\n") == 1
    assert_no_key(result.stderr)
