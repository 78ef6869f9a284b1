"""The checks of what an answer must survive: faults, TCP splits, tool calls, echoed keys."""

from __future__ import annotations

import asyncio
import json

from ...errors import (
    EmptyStreamError,
    MalformedStreamError,
    ProviderHubError,
    UpstreamConnectionError,
    UpstreamError,
)
from .._reply import Reply, ToolCallScript
from .._server import FakeUpstream
from ._checks import TOOL, check
from ._target import SECRET, Target, answer, closed_port, describe, error_texts

FAULTS: list[tuple[str, Reply, type[UpstreamError], str]] = [
    ("HTTP 500", Reply.error(500, "model crashed"), UpstreamError, ""),
    ("HTTP 529", Reply.error(529, "Overloaded"), UpstreamError, ""),
    ("HTTP 400", Reply.error(400, "bad request"), UpstreamError, ""),
    ("HTTP 401", Reply.error(401, "invalid key"), UpstreamError, ""),
    ("HTTP 429", Reply.error(429, "slow down", retry_after="5"), UpstreamError, ""),
    ("a cut before any text", Reply.close_after_chunks(), UpstreamConnectionError, ""),
    ("a cut mid-answer", Reply.close_after_chunks("Hel"), UpstreamConnectionError, "Hel"),
    ("a malformed event", Reply.malformed_after_chunks("Hel"), MalformedStreamError, "Hel"),
    ("an error event", Reply.error_after_chunks("Hel"), UpstreamError, "Hel"),
    ("no terminator", Reply.text("Hel", done=False, finish_reason=None), UpstreamError, "Hel"),
    ("bytes that are no stream", Reply.raw_bytes(b"\x00\xffnot a stream\n\n"), UpstreamError, ""),
]
"""Each fault, the error it must raise and the text delivered before it."""


@check
async def faults(target: Target) -> str | None:
    """Every fault raises a classified error (never a transport or parser exception) after
    delivering exactly the text that came before it; HTTP errors keep status, the upstream's
    message, Retry-After and whether a retry may help; an empty answer yields nothing."""
    with closed_port() as port:
        got = await answer(target.make(f"http://127.0.0.1:{port}"), target)
        assert isinstance(got.error, UpstreamConnectionError), (
            f"a refused connection: UpstreamConnectionError expected, got {describe(got.error)}"
        )
    script = [reply for _, reply, _, _ in FAULTS]
    async with FakeUpstream(*script, Reply.empty(), wire=target.wire) as upstream:
        provider = target.make(upstream.url)
        for what, reply, expected, text in FAULTS:
            got = await answer(provider, target)
            assert isinstance(got.error, expected), (
                f"{what}: {expected.__name__} expected, got {describe(got.error)}"
            )
            assert got.text == text, f"{what}: text delivered {got.text!r}, sent {text!r}"
            if reply.status >= 400:
                _http_error(what, got.error, reply)
        empty = await answer(provider, target)
        assert isinstance(empty.error, EmptyStreamError | None) and not empty.events, (
            f"an empty answer: {empty.events!r}, {describe(empty.error)}"
        )
    return None


def _http_error(what: str, error: BaseException, reply: Reply) -> None:
    status = getattr(error, "status", None)
    assert status == reply.status, f"{what}: the error's status is {status!r}"
    assert reply.message in str(error), f"{what}: the upstream's message missing in {error}"
    retryable = reply.status >= 500 or reply.status == 429
    assert getattr(error, "retryable", None) is retryable, f"{what}: retryable is wrong"
    if reply.status == 429:
        assert getattr(error, "retry_after", None) == 5.0, f"{what}: Retry-After 5 not kept"
    if reply.status == 401:
        assert getattr(error, "auth_failed", None) is True, f"{what}: auth_failed is not True"


CHUNKS = ("Hé", "llo, wörld ", "🌍", "!\n  end")
SPLITS = ((1, "\n"), (2, "\r\n"), (3, "\r"), (5, "\n"), (7, "\r\n"), (13, "\r"))
"""(bytes per write, line ending): every byte boundary inside an event, across events and
inside multi-byte characters, with each line ending."""


@check
async def tcp_splits(target: Target) -> str | None:
    """The text arrives exactly, in order, however the stream is cut into TCP reads, with any
    line ending and keep-alives, and as one event larger than any read buffer."""
    endings = {"\n", "\r\n"} if target.wire == "ndjson" else {"\n", "\r\n", "\r"}
    cases = {
        f"split {size}, {end!r}": Reply.text(
            *CHUNKS, split=size, line_ending=end, keepalive=size % 2 == 1
        )
        for size, end in SPLITS
        if end in endings
    }
    cases["one event larger than any read buffer"] = Reply.huge_line()

    async def exact(what: str, reply: Reply) -> None:
        async with FakeUpstream(reply, wire=target.wire) as upstream:
            got = await answer(target.make(upstream.url), target)
        expected = "".join(reply.chunks)
        assert got.error is None, f"{what}: {describe(got.error)}"
        assert got.text == expected, f"{what}: {got.text[:100]!r}, sent {expected[:100]!r}"

    await asyncio.gather(*(exact(what, reply) for what, reply in cases.items()))
    return None


CALLS = (
    ToolCallScript("get_weather", '{"city": "Paris", "unit": "°C"}', id="call_1"),
    ToolCallScript("get_time", '{"zone": "CET"}', id="call_2"),
)


@check
async def tool_calls(target: Target) -> str | None:
    """Streamed tool calls come out assembled: ids, names, whole arguments, after the text."""
    probe = target.make("http://127.0.0.1:9")
    if not getattr(probe, "supports_tools", False):
        return "the provider does not declare supports_tools"
    reply = Reply.tool_call(*CALLS, text="Checking.", fragment=3)
    async with FakeUpstream(reply, wire=target.wire) as upstream:
        got = await answer(target.make(upstream.url), target, tools=[TOOL])
    assert got.error is None, f"tool calls: {describe(got.error)}"
    assert got.text == "Checking.", f"the text before the calls: {got.text!r}"
    assert got.stream is not None
    calls = got.stream.tool_calls
    shape = [(c["id"], c["type"], c["function"]["name"]) for c in calls]
    assert shape == [(c.id, "function", c.name) for c in CALLS], f"the calls: {calls!r}"
    for call, script in zip(calls, CALLS, strict=True):
        arguments = json.loads(call["function"]["arguments"])
        assert arguments == json.loads(script.arguments), f"{script.name}: {arguments!r}"
    reason = got.stream.finish_reason
    assert reason in (None, "tool_calls"), f"finish_reason after tool calls: {reason!r}"
    return None


@check
async def secrets(target: Target) -> str | None:
    """The key reaches the upstream and no error shows or keeps it, even when the upstream
    echoes it back."""
    if target.key_env is None:
        return "the target names no key_env"
    echoes = [
        Reply.error(401, f"Incorrect API key provided: {SECRET}"),
        Reply.error(500, body=f"internal error for key {SECRET}"),
        Reply.error(429, f"rate limited: {SECRET}", retry_after="1"),
        Reply.close_after_chunks("Hel"),
        Reply.malformed_after_chunks("Hel"),
    ]
    async with FakeUpstream(Reply.text("ok"), *echoes, wire=target.wire) as upstream:
        provider = target.make(upstream.url)
        got = await answer(provider, target)
        assert got.error is None, f"with the key set: {describe(got.error)}"
        sent = upstream.requests[0].headers.values()
        assert any(SECRET in value for value in sent), "the key was not sent in any header"
        for reply in echoes:
            error = (await answer(provider, target)).error
            assert isinstance(error, ProviderHubError), f"{reply}: {describe(error)}"
            leaks = [text for text in error_texts(error) if SECRET in text]
            assert not leaks, f"the key is in {type(error).__name__}: {leaks[0]}"
    return None
