"""`providerhub chat --chain`: fallback chains from the command line, run for real.

The chain's members are CodeLinkAva (installed, marked not working) and three providers of a
real plugin distribution, LocalA/B/C, each pointed at its own loopback FakeUpstream that runs in
the test's event loop while the CLI runs in a child process.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import chat, chat_until, interrupt, outcomes, plugin_env, run, trace
from helpers import until
from plugin_dists import write_dist
from providerhub.testing import FakeUpstream, Reply

LOCAL_PLUGIN = '''
"""Three working providers speaking CodeLinkAva's wire format at URLs from the environment."""

import os

import providerhub
from providerhub_codelinkava import CodeLinkAva


def _url(letter):
    return os.environ.get(f"PH_LOCAL_{letter}_URL", "http://127.0.0.1:9/api/chat")


class LocalA(CodeLinkAva):
    working = True
    api_url = _url("A")


class LocalB(CodeLinkAva):
    working = True
    api_url = _url("B")


class LocalC(CodeLinkAva):
    working = True
    api_url = _url("C")


@providerhub.hookimpl
def register_providers(register):
    for provider in (LocalA, LocalB, LocalC):
        register(provider)
'''


def write_local_plugin(site: Path) -> None:
    write_dist(
        site, "ph-local", entry_points={"local": "ph_local"}, files={"ph_local.py": LOCAL_PLUGIN}
    )


@dataclass
class Locals:
    env: dict[str, str]
    a: FakeUpstream
    b: FakeUpstream
    c: FakeUpstream


@pytest.fixture
async def local(tmp_path: Path, fake_upstream: Any) -> Locals:
    write_local_plugin(tmp_path)
    upstreams = [await fake_upstream() for _ in "ABC"]
    urls = {
        f"PH_LOCAL_{letter}_URL": f"{up.url}/api/chat"
        for letter, up in zip("ABC", upstreams, strict=True)
    }
    return Locals(plugin_env(tmp_path, **urls), *upstreams)


async def test_chain_skips_not_working_fails_over_and_traces(local: Locals) -> None:
    local.a.script(Reply.error(500, "boom"))
    local.b.script(Reply.text("Hello", ", ", "chain"))
    code, out, err = await chat("--chain", "CodeLinkAva, LocalA,LocalB", "-v", "hi", env=local.env)
    assert (code, out) == (0, "Hello, chain\n")
    assert outcomes(err) == [
        ("CodeLinkAva", "skipped", "not working"),
        ("LocalA", "failed", "HTTP 500: boom"),
        ("LocalB", "served", None),
    ]
    skipped, failed, served = trace(err)
    assert (skipped["first"], skipped["total"]) == (None, None)
    assert failed["first"] == "-"
    assert str(served["first"]).endswith(" ms")
    assert err.count("\n") == 3
    assert (len(local.a.requests), len(local.b.requests), len(local.c.requests)) == (1, 1, 0)
    assert local.b.requests[0].json["messages"] == [{"role": "user", "content": "hi"}]


async def test_without_verbose_only_the_answer(local: Locals) -> None:
    local.a.script(Reply.error(502, "bad gateway"))
    local.b.script(Reply.text("quiet"))
    code, out, err = await chat("--chain", "LocalA,LocalB", "hi", env=local.env)
    assert (code, out, err) == (0, "quiet\n", "")


async def test_every_provider_failing_exits_6_with_a_line_per_provider(local: Locals) -> None:
    local.a.script(Reply.error(500, "boom"))
    local.b.script(Reply.empty())
    local.c.script(Reply.error(401, "bad key"))
    code, out, err = await chat(
        "--chain", "CodeLinkAva,LocalA,LocalB,LocalC", "-v", "hi", env=local.env
    )
    assert (code, out) == (6, "")
    lines = err.splitlines()
    assert outcomes("\n".join(lines[:4])) == [
        ("CodeLinkAva", "skipped", "not working"),
        ("LocalA", "failed", outcomes(err)[1][2]),
        ("LocalB", "failed", "stream ended without any text"),
        ("LocalC", "failed", outcomes(err)[3][2]),
    ]
    assert lines[4:] == [
        "providerhub: error: all providers failed:",
        "  CodeLinkAva: skipped (not working)",
        f"  LocalA: {outcomes(err)[1][2]}",
        "  LocalB: stream ended without any text",
        f"  LocalC: {outcomes(err)[3][2]}",
    ]
    assert str(outcomes(err)[1][2]).startswith("HTTP 500: ")
    assert str(outcomes(err)[3][2]).startswith("HTTP 401: ")

    code, out, err = await chat("--chain", "CodeLinkAva", "hi", env=local.env)
    assert (code, out) == (6, "")
    assert (
        err == "providerhub: error: all providers failed:\n  CodeLinkAva: skipped (not working)\n"
    )


async def test_hedge_after_races_a_hanging_first_provider(local: Locals) -> None:
    local.a.script(Reply.hang())
    local.b.script(Reply.text("hedged ", "answer"))
    started = time.monotonic()
    code, out, err = await chat(
        "--chain", "LocalA,LocalB", "--hedge-after", "0.2", "-v", "hi", env=local.env
    )
    assert time.monotonic() - started < 20
    assert (code, out) == (0, "hedged answer\n")
    assert outcomes(err) == [
        ("LocalA", "cancelled", "lost the race to LocalB"),
        ("LocalB", "served", None),
    ]
    assert [item["flags"] for item in trace(err)] == [", hedged", ", hedged"]
    assert (len(local.a.requests), len(local.b.requests)) == (1, 1)
    await until(lambda: local.a.disconnects == 1)
    assert local.a.active == 0


async def test_timeout_fails_over_and_retries_retry(local: Locals) -> None:
    local.a.script(Reply.hang(), Reply.hang())
    local.b.script(Reply.error(503, "busy"), Reply.text("second try"))
    code, out, err = await chat(
        "--chain", "LocalA,LocalB", "--timeout", "0.5", "--retries", "1", "-v", "hi", env=local.env
    )
    assert (code, out) == (0, "second try\n")
    parsed = trace(err)
    assert [(item["provider"], item["outcome"]) for item in parsed] == [
        ("LocalA", "failed"),
        ("LocalA", "failed"),
        ("LocalB", "failed"),
        ("LocalB", "served"),
    ]
    assert {item["reason"] for item in parsed[:2]} == {"total timeout after 0.5s"}
    assert [item["flags"] for item in parsed] == ["", ", try 2", "", ", try 2"]
    assert (len(local.a.requests), len(local.b.requests)) == (2, 2)


async def test_interrupted_stream_keeps_the_partial_text_and_never_restarts(
    local: Locals,
) -> None:
    local.a.script(Reply.close_after_chunks("partial ", "text"))
    local.b.script(Reply.text("never asked"))
    code, out, err = await chat("--chain", "LocalA,LocalB", "-v", "hi", env=local.env)
    assert (code, out) == (4, "partial text\n")
    *attempt_lines, error = err.splitlines()
    [(provider, outcome, reason)] = outcomes("\n".join(attempt_lines))
    assert (provider, outcome) == ("LocalA", "interrupted")
    assert error == (
        f"providerhub: error: stream from LocalA interrupted after 12 characters: LocalA: {reason}"
    )
    assert local.b.requests == []


async def test_single_provider_verbose_trace(local: Locals) -> None:
    local.a.script(Reply.text("direct"), Reply.error(503, "overloaded"))
    code, out, err = await chat("-p", "LocalA", "-v", "hi", env=local.env)
    assert (code, out) == (0, "direct\n")
    assert outcomes(err) == [("LocalA", "served", None)]

    code, out, err = await chat("-p", "LocalA", "-v", "hi", env=local.env)
    assert (code, out) == (4, "")
    [attempt, error] = err.splitlines()
    reason = "HTTP 503: overloaded"
    assert outcomes(attempt) == [("LocalA", "failed", reason)]
    assert error == f"providerhub: error: LocalA: {reason}"


async def test_ctrl_c_through_a_chain_closes_the_upstream_and_exits_130(local: Locals) -> None:
    local.a.script(Reply.hang_after_chunks("first words"))
    proc = await chat_until(
        b"first words", "--chain", "CodeLinkAva,LocalA,LocalB", "-v", "hi", env=local.env
    )
    rest, err = await interrupt(proc)
    assert (proc.returncode, rest) == (130, b"\n")
    assert outcomes(err.decode()) == [
        ("CodeLinkAva", "skipped", "not working"),
        ("LocalA", "served", "stopped by the consumer"),
    ]
    await until(lambda: local.a.disconnects == 1)
    assert (local.a.active, local.b.requests) == (0, [])


def test_chain_usage_errors(tmp_path: Path) -> None:
    write_local_plugin(tmp_path)
    env = plugin_env(tmp_path)
    cases = {
        ("--chain", "LocalA,,LocalB", "hi"): (
            2,
            "--chain 'LocalA,,LocalB' has an empty name; give names separated by commas",
        ),
        ("-p", "LocalA", "--retries", "2", "hi"): (
            2,
            "--retries is a chain option: use it with --chain",
        ),
        ("-p", "LocalA", "--hedge-after", "1", "hi"): (
            2,
            "--hedge-after is a chain option: use it with --chain",
        ),
        ("--chain", "LocalA,LoclB", "hi"): (
            3,
            "no provider or chain named 'LoclB'; did you mean LocalB, LocalC, LocalA?",
        ),
        ("--chain", "nothing", "hi"): (
            3,
            "no provider or chain named 'nothing'; no config file found, so no chain is "
            f"configured: looked for {env['XDG_CONFIG_HOME']}/providerhub/providerhub.toml "
            "($PROVIDERHUB_CONFIG is not set); name one with --config PATH or $PROVIDERHUB_CONFIG",
        ),
    }
    for args, (code, message) in cases.items():
        result = run("chat", *args, env=env)
        assert (result.returncode, result.stdout) == (code, ""), args
        assert result.stderr == f"providerhub: error: {message}\n", args
    bad = run("chat", "--chain", "LocalA", "--retries", "-1", "hi", env=env)
    assert bad.returncode == 2
    assert bad.stderr.splitlines()[-1] == (
        "providerhub chat: error: argument --retries: must be 0 or more: '-1'"
    )


@pytest.mark.parametrize("inner_fails", [False, True], ids=["inner serves", "inner fails"])
async def test_verbose_trace_expands_nested_chains(fake_upstream: Any, inner_fails: bool) -> None:
    from providerhub import FallbackChain, MemoryHealthStore
    from providerhub.cli.chat import stream
    from routing_helpers import provider

    bad = await fake_upstream(default=Reply.error(500, "boom"))
    good = await fake_upstream(default=Reply.error(503) if inner_fails else Reply.text("ok"))
    backup = await fake_upstream(default=Reply.text("backup"))
    health = MemoryHealthStore()
    inner = FallbackChain(
        [provider("acme", bad), provider("good", good)], name="inner", health=health
    )
    outer = FallbackChain([inner, provider("backup", backup)], name="outer", health=health)
    out, err = io.StringIO(), io.StringIO()
    await stream(outer, "", [{"role": "user", "content": "hi"}], {}, out, err)
    assert out.getvalue() == ("backup\n" if inner_fails else "ok\n")
    parsed = trace(err.getvalue())
    rows = [(item["number"], item["provider"], item["outcome"]) for item in parsed]
    if inner_fails:
        assert rows == [
            ("1", "inner", "failed"),
            ("1.1", "acme", "failed"),
            ("1.2", "good", "failed"),
            ("2", "backup", "served"),
        ]
    else:
        assert rows == [
            ("1", "inner", "served"),
            ("1.1", "acme", "failed"),
            ("1.2", "good", "served"),
        ]
        assert parsed[0]["reason"] == "via good"
    assert parsed[1]["reason"] == "HTTP 500: boom"
