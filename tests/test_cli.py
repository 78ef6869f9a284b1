"""The `providerhub` command, run for real in subprocesses (console script and `python -m`).

Plugins are real distributions on a temporary PYTHONPATH entry; chat streams from a loopback
FakeUpstream running in the test's event loop while the CLI runs in a child process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import providerhub
import pytest
from cli_helpers import chat, chat_until, interrupt, plugin_env, run, table
from helpers import until
from plugin_dists import (
    GOOD_URL_ENV,
    RAISING_REASON,
    ZOO_ERRORS,
    write_dist,
    write_good_plugin,
    write_plugin_zoo,
    write_raising_plugin,
)
from providerhub.registry import STRICT_ENV
from providerhub.testing import FakeUpstream, Reply

HEADER = ["NAME", "SOURCE", "WORKING", "GPT-3.5", "GPT-4", "STREAM", "URL"]
CODELINKAVA_URL = "https://ava-ai-ef611.web.app"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A directory of plugin distributions: the good plugin and one broken of every kind."""
    path = tmp_path / "site"
    path.mkdir()
    write_plugin_zoo(path)
    return path


@pytest.fixture
def zoo(site: Path) -> dict[str, str]:
    return plugin_env(site)


def zoo_warnings() -> set[str]:
    versions = {"ph-clash-b": "2.0"}
    return {
        f"providerhub: warning: plugin {name} ({dist} {versions.get(dist, '1.0')}): {reason}"
        for (name, dist), reason in ZOO_ERRORS.items()
    }


def test_providers_table_lists_good_plugins_and_warns_about_broken_ones(
    zoo: dict[str, str],
) -> None:
    result = run("providers", env=zoo)
    assert result.returncode == 0
    rows = table(result.stdout)
    assert rows[0] == HEADER
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["CodeLinkAva"] == [
        "CodeLinkAva",
        "providerhub-codelinkava 0.1.0",
        "no",
        "yes",
        "no",
        "yes",
        CODELINKAVA_URL,
    ]
    assert by_name["GoodProvider"] == [
        "GoodProvider",
        "ph-good 1.0",
        "yes",
        "yes",
        "yes",
        "yes",
        CODELINKAVA_URL,
    ]
    assert by_name["Dormant"][2] == "no"
    for missing in ("HalfRegistered", "Misspelled", "WrongArgs", "ClashA", "NotAProvider"):
        assert missing not in by_name
    warnings = {line for line in result.stderr.splitlines() if "(ph-" in line}
    assert warnings == zoo_warnings()


def test_providers_json_and_filters(zoo: dict[str, str]) -> None:
    result = run("providers", "--json", env=zoo, module=True)
    assert result.returncode == 0
    records = {record["name"]: record for record in json.loads(result.stdout)}
    assert records["GoodProvider"] == {
        "name": "GoodProvider",
        "plugin": "good",
        "distribution": "ph-good",
        "version": "1.0",
        "source": "ph-good 1.0",
        "working": True,
        "supports_gpt_35_turbo": True,
        "supports_gpt_4": True,
        "supports_stream": True,
        "needs_auth": False,
        "url": CODELINKAVA_URL,
    }
    assert records["CodeLinkAva"]["working"] is False
    assert records["CodeLinkAva"]["distribution"] == "providerhub-codelinkava"

    working = json.loads(run("providers", "--json", "--working", env=zoo).stdout)
    assert "GoodProvider" in {r["name"] for r in working}
    assert {"CodeLinkAva", "Dormant"}.isdisjoint(r["name"] for r in working)
    assert all(record["working"] for record in working)

    gpt4 = {
        r["name"] for r in json.loads(run("providers", "--json", "--model=gpt-4", env=zoo).stdout)
    }
    assert {"GoodProvider", "Dormant"} <= gpt4
    assert "CodeLinkAva" not in gpt4

    both = run("providers", "--working", "--model", "gpt-3.5-turbo", env=zoo)
    names = [row[0] for row in table(both.stdout)[1:]]
    assert "GoodProvider" in names
    assert "CodeLinkAva" not in names


def test_a_provider_raising_in_supports_model_does_not_break_the_listing(tmp_path: Path) -> None:
    write_good_plugin(tmp_path)
    write_raising_plugin(tmp_path)
    result = run("providers", "--model", "gpt-4", env=plugin_env(tmp_path))
    assert (result.returncode, result.stderr) == (
        0,
        f"providerhub: warning: plugin raising (ph-raising 1.0): {RAISING_REASON}\n",
    )
    names = [row[0] for row in table(result.stdout)[1:]]
    assert "GoodProvider" in names
    assert "CodeX" not in names


def test_plugins_json_reports_every_failure(zoo: dict[str, str]) -> None:
    result = run("plugins", "--json", env=zoo)
    assert result.returncode == 0
    records = json.loads(result.stdout)
    ours = {
        (r["name"], r["distribution"]): r
        for r in records
        if r["distribution"] and r["distribution"].startswith("ph-")
    }
    assert {key: r["error"] for key, r in ours.items() if r["error"]} == ZOO_ERRORS
    assert ours[("good", "ph-good")] == {
        "name": "good",
        "distribution": "ph-good",
        "version": "1.0",
        "entry_point": "good = ph_good",
        "providers": ["GoodProvider", "Dormant"],
        "provider_types": [],
        "error": None,
        "errors": [],
    }
    assert ours[("clash", "ph-clash-b")]["version"] == "2.0"
    codelinkava = next(r for r in records if r["name"] == "codelinkava")
    assert (codelinkava["providers"], codelinkava["error"]) == (["CodeLinkAva"], None)


def test_plugins_table_has_status_and_errors(zoo: dict[str, str]) -> None:
    result = run("plugins", env=zoo, module=True)
    assert result.returncode == 0
    listing, _, errors = result.stdout.partition("\nerrors:\n")
    rows = table(listing)
    assert rows[0] == ["PLUGIN", "DISTRIBUTION", "VERSION", "ENTRY POINT", "PROVIDERS", "STATUS"]
    by_dist = {row[1]: row for row in rows[1:]}
    assert by_dist["ph-good"] == [
        "good",
        "ph-good",
        "1.0",
        "good = ph_good",
        "GoodProvider, Dormant",
        "ok",
    ]
    assert by_dist["ph-raises"][-2:] == ["-", "error"]
    assert by_dist["providerhub-openai"][-2:] == ["openai (type)", "ok"]
    lines = {line.strip() for line in errors.splitlines() if "(ph-" in line}
    assert lines == {line.removeprefix("providerhub: warning: plugin ") for line in zoo_warnings()}


def test_listing_never_imports_aiohttp(zoo: dict[str, str]) -> None:
    code = (
        "import sys\n"
        "from providerhub.cli import main\n"
        "main(['providers'])\n"
        "main(['plugins', '--json'])\n"
        "sys.stderr.write(f'aiohttp imported: {\"aiohttp\" in sys.modules}\\n')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=zoo, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "GoodProvider" in result.stdout
    assert result.stderr.splitlines()[-1] == "aiohttp imported: False"


def test_strict_mode_exits_5_with_the_plugin_traceback(tmp_path: Path) -> None:
    write_good_plugin(tmp_path)
    write_dist(
        tmp_path,
        "ph-importerror",
        entry_points={"importerror": "ph_importerror"},
        files={"ph_importerror.py": "import ph_missing_dependency\n"},
    )
    result = run("providers", env=plugin_env(tmp_path, **{STRICT_ENV: "1"}))
    assert result.returncode == 5
    assert "Traceback (most recent call last)" in result.stderr
    assert "ph_importerror.py" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "providerhub: error: a plugin failed to load (PROVIDERHUB_STRICT_PLUGINS is set): "
        "No module named 'ph_missing_dependency'"
    )
    assert result.stdout == ""


def test_version_and_usage_errors() -> None:
    assert run("--version").stdout == f"providerhub {providerhub.__version__}\n"
    missing = run()
    assert missing.returncode == 2
    assert "required: COMMAND" in missing.stderr
    unknown = run("frobnicate", module=True)
    assert unknown.returncode == 2
    assert "invalid choice: 'frobnicate'" in unknown.stderr
    no_target = run("chat", "hello")
    assert no_target.returncode == 2
    assert no_target.stderr == (
        "providerhub: error: say what to call: -p NAME, --chain A,B,C or a configured "
        "chain's name, or -m with a model alias from the config's [models]\n"
    )
    both = run("chat", "-p", "CodeLinkAva", "--chain", "CodeLinkAva", "hi")
    assert both.returncode == 2
    assert both.stderr.splitlines()[-1] == (
        "providerhub chat: error: argument --chain: not allowed with argument -p/--provider"
    )
    bad_timeout = run("chat", "-p", "CodeLinkAva", "--timeout", "-1", "hi")
    assert bad_timeout.returncode == 2
    assert bad_timeout.stderr.splitlines()[-1] == (
        "providerhub chat: error: argument --timeout: must be positive: '-1'"
    )


def test_a_name_only_a_config_defines_says_no_config_was_found(tmp_path: Path) -> None:
    home = plugin_env()
    del home["XDG_CONFIG_HOME"]
    home["HOME"] = str(tmp_path)
    looked = f"looked for {tmp_path}/.config/providerhub/providerhub.toml"
    how = "($PROVIDERHUB_CONFIG is not set); name one with --config PATH or $PROVIDERHUB_CONFIG"
    alias = run("chat", "-m", "fast", "hi", env=home)
    assert (alias.returncode, alias.stdout) == (2, "")
    assert alias.stderr == (
        "providerhub: error: no config file found, so -m 'fast' cannot be a model alias: "
        f"{looked} {how}, or say what to call: -p NAME or --chain A,B,C\n"
    )
    chain = run("chat", "--chain", "default", "hi", env=plugin_env(XDG_CONFIG_HOME=str(tmp_path)))
    assert (chain.returncode, chain.stdout) == (3, "")
    assert chain.stderr == (
        "providerhub: error: no provider or chain named 'default'; no config file found, so no "
        f"chain is configured: looked for {tmp_path}/providerhub/providerhub.toml {how}\n"
    )
    typo = run("chat", "--chain", "codelinkav", "hi")
    assert typo.stderr == (
        "providerhub: error: no provider or chain named 'codelinkav'; did you mean CodeLinkAva?\n"
    )


def test_chat_refusals_are_one_line_with_exit_code_3(zoo: dict[str, str]) -> None:
    cases = {
        ("-p", "codelinkava", "hi"): (
            "provider 'CodeLinkAva' is marked not working; pass --ignore-working to use it anyway"
        ),
        ("-p", "dormant", "hi"): (
            "provider 'Dormant' is marked not working; pass --ignore-working to use it anyway"
        ),
        ("-p", "GoodProvidr", "hi"): "no provider named 'GoodProvidr'; did you mean GoodProvider?",
        ("-p", "HalfRegistered", "hi"): "no provider named 'HalfRegistered'",
        ("-p", "GoodProvider", "-m", "claude-3", "hi"): (
            "provider 'GoodProvider' does not support model 'claude-3'"
        ),
        ("-p", "CodeLinkAva", "--ignore-working", "-m", "gpt-4", "hi"): (
            "provider 'CodeLinkAva' does not support model 'gpt-4'"
        ),
    }
    for args, message in cases.items():
        result = run("chat", *args, env=zoo)
        assert (result.returncode, result.stdout) == (3, ""), args
        assert result.stderr == f"providerhub: error: {message}\n", args


def test_chat_without_a_prompt_is_a_usage_error(zoo: dict[str, str]) -> None:
    result = run("chat", "-p", "GoodProvider", stdin="  \n", env=zoo)
    assert result.returncode == 2
    assert result.stderr == "providerhub: error: no prompt: give it as arguments or on stdin\n"


@pytest.fixture
async def upstream(fake_upstream: Any) -> FakeUpstream:
    started: FakeUpstream = await fake_upstream()
    return started


@pytest.fixture
def good_env(site: Path, upstream: FakeUpstream) -> dict[str, str]:
    return plugin_env(site, **{GOOD_URL_ENV: f"{upstream.url}/api/chat"})


async def test_chat_streams_the_answer(good_env: dict[str, str], upstream: FakeUpstream) -> None:
    upstream.script(Reply.text("Hello", ", ", "world", split=7))
    code, out, err = await chat(
        "-p", "goodprovider", "--system", "Be brief.", "Say", "hello", env=good_env
    )
    assert (code, out, err) == (0, "Hello, world\n", "")
    [request] = upstream.requests
    assert (request.method, request.path) == ("POST", "/api/chat")
    assert request.headers["Origin"] == CODELINKAVA_URL
    assert request.json == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ],
        "temperature": 0.6,
        "stream": True,
    }


async def test_chat_reads_the_prompt_from_stdin_and_ignore_working(
    good_env: dict[str, str], upstream: FakeUpstream
) -> None:
    upstream.script(Reply.text("line one\n", "line two\n"))
    code, out, err = await chat(
        "-p", "Dormant", "--ignore-working", env=good_env, stdin="from stdin\n\n"
    )
    assert (code, out, err) == (0, "line one\nline two\n", "")
    assert upstream.requests[0].json["messages"] == [{"role": "user", "content": "from stdin"}]


async def test_chat_upstream_failures_exit_4(
    good_env: dict[str, str], upstream: FakeUpstream
) -> None:
    upstream.script(
        Reply.error(503, "overloaded"),
        Reply.close_after_chunks("partial "),
        Reply.hang(),
    )
    code, out, err = await chat("-p", "GoodProvider", "hi", env=good_env)
    assert (code, out) == (4, "")
    assert err == ("providerhub: error: GoodProvider: HTTP 503: overloaded\n")

    code, out, err = await chat("-p", "GoodProvider", "hi", env=good_env)
    assert (code, out) == (4, "partial \n")
    assert err.startswith("providerhub: error: GoodProvider: ")
    assert err.count("\n") == 1

    code, out, err = await chat("-p", "GoodProvider", "--timeout", "0.5", "hi", env=good_env)
    assert (code, out) == (4, "")
    assert err == "providerhub: error: GoodProvider: total timeout after 0.5s\n"


async def test_chat_prints_chunks_as_they_arrive_and_ctrl_c_exits_130(
    good_env: dict[str, str], upstream: FakeUpstream
) -> None:
    upstream.script(Reply.hang_after_chunks("first words"))
    proc = await chat_until(b"first words", "-p", "GoodProvider", "hi", env=good_env)
    assert upstream.active == 1
    rest, err = await interrupt(proc)
    assert proc.returncode == 130
    assert (rest, err) == (b"\n", b"")
    await until(lambda: upstream.disconnects)
    assert (upstream.disconnects, upstream.active) == (1, 0)


def test_a_provider_bug_is_one_line_with_exit_code_1(tmp_path: Path) -> None:
    buggy = """
    import providerhub


    class Buggy(providerhub.AsyncGeneratorProvider):
        working = True

        async def create_async_generator(self, model, messages, **kwargs):
            yield "half "
            raise KeyError("choices")


    @providerhub.hookimpl
    def register_providers(register):
        register(Buggy())
    """
    write_dist(
        tmp_path, "ph-buggy", entry_points={"buggy": "ph_buggy"}, files={"ph_buggy.py": buggy}
    )
    result = run("chat", "-p", "buggy", "hi", env=plugin_env(tmp_path))
    assert (result.returncode, result.stdout) == (1, "half \n")
    assert result.stderr == "providerhub: error: unexpected KeyError: 'choices'\n"
