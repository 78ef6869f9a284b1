"""Secret echo over every output path: upstreams that send back the key header they received
(and a `headers_env` value) in an HTTP error body, a response header, an in-stream error event,
a malformed event, and excerpts that cut a key in two; for both HTTP plugins, through the
library's errors and log records, `providerhub chat -v` (stdout and stderr) and `providerhub
serve` (its bodies, headers and log lines). No secret, nor any 8 characters of one, appears
anywhere; the redaction marker does."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cli_helpers import chat, plugin_env
from helpers import BOUND, MakeUpstream
from providerhub import (
    AllProvidersFailedError,
    FallbackChain,
    MemoryHealthStore,
    StreamInterruptedError,
    UpstreamError,
    UpstreamHTTPError,
)
from providerhub.chat_completions import EXCERPT_CHARS
from providerhub.redaction import REDACTED, LogRedactor, redact, remember
from providerhub.testing import FakeUpstream, Reply
from providerhub_anthropic import AnthropicProvider
from providerhub_openai import OpenAICompatible
from test_server import gateway
from test_server_cli import _serve, listening

OPENAI_KEY = "sk-echo-openai-Qw7Er9Ty2Ui4Op6A"
ANTHROPIC_KEY = "sk-ant-echo-Zx8Cv6Bn4Mm2Lk0J"
TENANT = "tenant-echo-5ecret-77"
GATEWAY_KEY = "sk-gateway-echo-Pp1Oo2Ii3Uu4Yy5T"
SECRETS = (OPENAI_KEY, ANTHROPIC_KEY, TENANT, GATEWAY_KEY)
ENV = {
    "PH_ECHO_OPENAI_KEY": OPENAI_KEY,
    "PH_ECHO_ANTHROPIC_KEY": ANTHROPIC_KEY,
    "PH_ECHO_TENANT": TENANT,
    "PH_ECHO_GATEWAY_KEY": GATEWAY_KEY,
}
HELLO = [{"role": "user", "content": "hi"}]


@dataclass(frozen=True)
class Plugin:
    """One HTTP plugin: its config name, key variable, and the key header as sent."""

    use: str
    wire: Any
    key_env: str
    header: str
    sent: str
    """The key header's value the upstream receives, which it echoes."""
    path: str

    @property
    def key_offset(self) -> int:
        """Where the bare key starts in the echoed value."""
        return self.sent.index("sk-")


PLUGINS = (
    Plugin(
        "openai", "openai", "PH_ECHO_OPENAI_KEY", "Authorization", f"Bearer {OPENAI_KEY}", "/v1"
    ),
    Plugin("anthropic", "anthropic", "PH_ECHO_ANTHROPIC_KEY", "x-api-key", ANTHROPIC_KEY, ""),
)


def echo(plugin: Plugin) -> str:
    """What an echoing upstream sends back: the key header's value and the tenant header's."""
    return f"{plugin.sent} tenant={TENANT}"


def halved(plugin: Plugin) -> str:
    """Text whose excerpt (the first EXCERPT_CHARS characters) ends 12 characters into the key."""
    return "x" * (EXCERPT_CHARS - 12 - plugin.key_offset) + echo(plugin)


def faults(plugin: Plugin) -> dict[str, Reply]:
    """Each way an upstream can hand a secret back before any text, by name."""
    said = echo(plugin)
    return {
        "body": Reply.error(401, f"Incorrect API key provided: {said}", headers={"X-Echo": said}),
        "event": Reply.error_after_chunks(message=f"bad key {said}", error_type="api_error"),
        "malformed": Reply.events('{"choices": [{"delta": {"content": "' + said),
        "cut-event": Reply.events(halved(plugin)),
        "cut-body": Reply.error(502, body=halved(plugin)),
        "cut-message": Reply.error(500, halved(plugin)),
    }


def cut(plugin: Plugin) -> Reply:
    """An answer interrupted after its first text by an error event echoing the secrets."""
    return Reply.error_after_chunks("Hel", message=f"bad key {echo(plugin)}", error_type="x")


def leaked(text: str) -> list[str]:
    """Every 8 characters of a secret found in `text` (a whole one, or a cut one)."""
    return sorted(
        {
            secret[start : start + 8]
            for secret in SECRETS
            for start in range(len(secret) - 7)
            if secret[start : start + 8] in text
        }
    )


def error_texts(error: BaseException) -> list[str]:
    """Everything an error shows: str, repr, args, string attributes, a pickled copy, an HTTP
    error's response headers, and the same for the errors of its attempts and its cause."""
    texts = [str(error), repr(error), repr(error.args), repr(pickle.loads(pickle.dumps(error)))]
    texts += [value for value in vars(error).values() if isinstance(value, str)]
    if isinstance(error, UpstreamHTTPError) and error.headers is not None:
        texts += list(error.headers.values())
    for attempt in getattr(error, "attempts", ()):
        texts.append(attempt.reason)
        if attempt.error is not None:
            texts += error_texts(attempt.error)
    if error.__cause__ is not None:
        texts += error_texts(error.__cause__)
    return texts


def provider(plugin: Plugin, name: str, upstream: FakeUpstream) -> Any:
    headers_env = {"X-Tenant": "PH_ECHO_TENANT"}
    if plugin.use == "openai":
        return OpenAICompatible(
            name=name,
            base_url=upstream.url + "/v1",
            api_key_env=plugin.key_env,
            headers_env=headers_env,
            default_model="m",
        )
    return AnthropicProvider(
        name=name,
        base_url=upstream.url,
        api_key_env=plugin.key_env,
        headers_env=headers_env,
        default_model="m",
    )


@pytest.fixture
def secrets_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in ENV.items():
        monkeypatch.setenv(variable, value)


@pytest.mark.usefixtures("secrets_set")
@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda plugin: plugin.use)
async def test_library_errors_and_log_records_never_show_an_echoed_secret(
    fake_upstream: MakeUpstream, caplog: pytest.LogCaptureFixture, plugin: Plugin
) -> None:
    caplog.set_level(logging.DEBUG, logger="providerhub")
    script = faults(plugin)
    upstreams = {
        name: await fake_upstream(reply, wire=plugin.wire) for name, reply in script.items()
    }
    chain = FallbackChain(
        [provider(plugin, name, upstream) for name, upstream in upstreams.items()],
        health=MemoryHealthStore(),
    )

    with pytest.raises(AllProvidersFailedError) as failed:
        await chain.create_async("", HELLO)
    interrupted = provider(plugin, "cut", await fake_upstream(cut(plugin), wire=plugin.wire))
    with pytest.raises(StreamInterruptedError) as cut_short:
        await FallbackChain([interrupted], health=MemoryHealthStore()).create_async("", HELLO)

    for upstream in upstreams.values():
        headers = upstream.requests[0].headers
        assert (headers[plugin.header], headers["X-Tenant"]) == (plugin.sent, TENANT)
    attempts = failed.value.attempts
    assert [(a.provider, a.outcome) for a in attempts] == [(name, "failed") for name in script]
    assert all(isinstance(attempt.error, UpstreamError) for attempt in attempts)
    shown = [*error_texts(failed.value), *error_texts(cut_short.value), caplog.text]
    assert leaked("\n".join(shown)) == []
    for attempt in attempts:
        assert REDACTED[:6] in attempt.reason, attempt.reason
    assert f"bad key {REDACTED} tenant={REDACTED}" in str(cut_short.value)
    body_error = attempts[0].error
    assert isinstance(body_error, UpstreamHTTPError) and body_error.headers is not None
    assert body_error.headers["X-Echo"] == f"{REDACTED} tenant={REDACTED}"
    routing = [r.getMessage() for r in caplog.records if r.name == "providerhub.routing"]
    assert len(routing) == len(script) + 1 and all(REDACTED[:6] in line for line in routing)


def config_text(upstreams: dict[str, FakeUpstream]) -> str:
    """Providers NAME = PLUGIN_FAULT, chain "all" of the failing ones, the gateway's key."""
    lines = ['[server]\napi_key_env = "PH_ECHO_GATEWAY_KEY"\n']
    for name, upstream in upstreams.items():
        plugin = next(plugin for plugin in PLUGINS if name.startswith(plugin.use))
        lines.append(
            f'[providers.{name}]\nuse = "{plugin.use}"\nbase_url = "{upstream.url}{plugin.path}"\n'
            f'api_key_env = "{plugin.key_env}"\ndefault_model = "m"\n'
            'headers_env = { X-Tenant = "PH_ECHO_TENANT" }\n'
        )
    failing = [name for name in upstreams if not name.endswith(("_cut", "_ok"))]
    lines.append(f"[chains.all]\nproviders = {failing!r}\n".replace("'", '"'))
    return "\n".join(lines)


@pytest.fixture
async def config(fake_upstream: MakeUpstream, tmp_path: Path) -> Path:
    """Every fault of both plugins, each at its own upstream answering it every time, plus an
    interrupted answer and a good one sending an echoing response header, per plugin."""
    upstreams: dict[str, FakeUpstream] = {}
    for plugin in PLUGINS:
        replies = {name.replace("-", "_"): reply for name, reply in faults(plugin).items()}
        replies |= {"cut": cut(plugin), "ok": Reply.text("ok", headers={"X-Echo": echo(plugin)})}
        for name, reply in replies.items():
            upstreams[f"{plugin.use}_{name}"] = await fake_upstream(default=reply, wire=plugin.wire)
    path = tmp_path / "providerhub.toml"
    path.write_text(config_text(upstreams))
    return path


async def test_chat_stdout_and_stderr_never_show_an_echoed_secret(config: Path) -> None:
    env = plugin_env(None, **ENV)
    runs = await asyncio.gather(
        chat("--config", str(config), "--chain", "all", "-v", "hi", env=env),
        *(
            chat("--config", str(config), "-p", f"{plugin.use}_cut", "-v", "hi", env=env)
            for plugin in PLUGINS
        ),
    )

    assert [code for code, _, _ in runs] == [6, 4, 4], runs
    assert [out for _, out, _ in runs] == ["", "Hel\n", "Hel\n"]
    assert leaked("".join(out + err for _, out, err in runs)) == []
    failed = runs[0][2].splitlines()
    assert failed[12] == "providerhub: error: all providers failed:"
    assert len(failed) == 12 + 1 + 12  # the -v trace, then the error with a line per provider
    assert all(REDACTED[:6] in line for line in failed[:12] + failed[13:])
    for _, _, err in runs[1:]:
        assert f"bad key {REDACTED} tenant={REDACTED}" in err


@pytest.fixture
async def serve(config: Path) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    proc = await _serve(config, "--log-level", "debug", **ENV)
    try:
        yield await listening(proc), proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_serve_answers_headers_and_logs_never_show_an_echoed_secret(
    serve: tuple[str, asyncio.subprocess.Process],
) -> None:
    url, proc = serve
    auth = {"Authorization": f"Bearer {GATEWAY_KEY}"}
    asked = [
        ({"model": "all"}, auth, 502),
        ({"model": "all", "stream": True}, auth, 502),
        ({"model": "openai_cut"}, auth, 502),
        ({"model": "anthropic_cut"}, auth, 502),
        ({"model": "openai_cut", "stream": True}, auth, 200),
        ({"model": "anthropic_cut", "stream": True}, auth, 200),
        ({"model": "openai_ok", "stream": True}, auth, 200),
        ({"model": "anthropic_ok"}, auth, 200),
        ({"model": GATEWAY_KEY}, auth, 404),
        ({"model": "all"}, {"Authorization": f"Bearer {GATEWAY_KEY}x"}, 401),
    ]
    answers: list[tuple[int, str, str]] = []
    async with aiohttp.ClientSession() as session, asyncio.timeout(4 * BOUND):
        for body, headers, _ in asked:
            async with session.post(
                f"{url}/v1/chat/completions", json={**body, "messages": HELLO}, headers=headers
            ) as response:
                shown = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
                answers.append((response.status, shown, await response.text()))
        async with session.get(f"{url}/v1/providers", headers=auth) as response:
            answers.append((response.status, "", await response.text()))
    proc.send_signal(2)
    assert proc.stderr is not None
    err = (await asyncio.wait_for(proc.stderr.read(), 30)).decode()
    await asyncio.wait_for(proc.wait(), 30)

    assert [status for status, _, _ in answers] == [status for _, _, status in asked] + [200]
    assert leaked("\n".join(f"{headers}\n{text}" for _, headers, text in answers)) == []
    assert leaked(err) == []
    for _, _, text in answers[:6]:
        assert f"{REDACTED} tenant={REDACTED}" in text, text
    assert REDACTED in answers[8][2] and "x-echo" not in answers[6][1].lower()
    assert "providerhub.routing INFO all: openai_body: failed (HTTP 401: " in err
    assert "POST /v1/chat/completions 502 provider=-" in err and REDACTED in err


def test_short_values_are_not_remembered() -> None:
    remember("demo-42", "sk-echo-remembered-0123")

    assert redact("demo-42 sk-echo-remembered-0123") == f"demo-42 {REDACTED}"


def test_a_record_no_handler_takes_still_reaches_the_last_resort_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    remember(TENANT)
    seen: list[str] = []
    last = logging.Handler(logging.WARNING)
    last.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    monkeypatch.setattr(logging, "lastResort", last)
    monkeypatch.setattr(logging.getLogger("providerhub"), "propagate", False)
    log = logging.getLogger("providerhub.echo")

    log.warning("tenant %s refused", TENANT)
    log.info("below the last resort's level")

    assert seen == [f"tenant {REDACTED} refused"]
    assert sum(isinstance(h, LogRedactor) for h in logging.getLogger("providerhub").handlers) == 1


def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


@pytest.mark.parametrize("streamed", [True, False])
async def test_an_answer_metadata_never_carries_an_echoed_key(
    secrets_set: None, fake_upstream: MakeUpstream, streamed: bool
) -> None:
    """An upstream echoing the key as a tool call's id and name, the finish_reason and a usage
    field: the gateway's answer (SSE or JSON) carries the marker, never the key."""
    call = {"index": 0, "id": OPENAI_KEY, "type": "function"}
    call["function"] = {"name": f"f_{OPENAI_KEY}", "arguments": "{}"}
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, "echo": OPENAI_KEY}
    events = (
        chunk({"role": "assistant", "tool_calls": [call]}),
        chunk({}, finish=OPENAI_KEY),
        json.dumps({"choices": [], "usage": usage}),
        "[DONE]",
    )
    upstream = await fake_upstream(default=Reply(verbatim_events=events))
    echoing = OpenAICompatible(
        name="o", base_url=f"{upstream.url}/v1", api_key_env="PH_ECHO_OPENAI_KEY", default_model="m"
    )
    body = {"model": "o", "messages": HELLO, "stream": streamed}
    if streamed:
        body["stream_options"] = {"include_usage": True}
    async with (
        gateway("", extra=[echoing]) as url,
        aiohttp.ClientSession() as session,
        session.post(f"{url}/v1/chat/completions", json=body) as response,
    ):
        text = await response.text()
        assert response.status == 200, text
    assert leaked(text) == []
    assert text.count(REDACTED) >= 4, text
    assert len(upstream.requests) == 1
