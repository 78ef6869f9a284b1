"""The checks of the plugin contract, one function each: `check(target)` returns None when the
provider passes, a reason when the check does not apply, and raises AssertionError otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Coroutine
from typing import Any

from ...capabilities import CAPABILITIES
from ...errors import (
    InvalidRequestError,
    MissingCredentialsError,
    UnsupportedCapabilityError,
    UpstreamTimeoutError,
)
from ...provider import Provider, open_stream
from ...timeouts import Timeouts
from .._reply import Reply
from .._server import FakeUpstream
from ._target import (
    BOUND,
    HELLO,
    Target,
    answer,
    credentials,
    describe,
    run,
    unaccepting_port,
)

Check = Callable[[Target], str | None]


def check(impl: Callable[[Target], Coroutine[Any, Any, str | None]]) -> Check:
    """The async check `impl` as a plain function, run on a loop of its own."""

    @functools.wraps(impl)
    def sync(target: Target) -> str | None:
        return run(lambda: impl(target), target)

    return sync


FLAGS = (
    "working",
    "supports_stream",
    "needs_auth",
    "supports_message_history",
    "supports_system_message",
    *CAPABILITIES.values(),
)
"""The metadata flags: each must be a bool."""
UNKNOWN = "no-such-model-anywhere"


@check
async def metadata(target: Target) -> str | None:
    """The provider has the contract's attributes, of the contract's types."""
    provider = target.make("http://127.0.0.1:9")
    assert isinstance(provider, Provider), f"{provider!r} lacks the Provider attributes"
    assert isinstance(provider.name, str) and provider.name, "name must be a non-empty str"
    for flag in FLAGS:
        value = getattr(provider, flag, False)
        assert isinstance(value, bool), f"{flag} must be a bool, not {value!r}"
    url = getattr(provider, "url", None)
    assert url is None or isinstance(url, str), f"url must be a str or None, not {url!r}"
    for model in ("", target.model, UNKNOWN):
        served = provider.supports_model(model)
        assert isinstance(served, bool), f"supports_model({model!r}) must be a bool"
    assert provider.supports_model(target.model), f"the model {target.model!r} is not served"
    assert provider.missing_credentials() is None, "credentials missing with the key set"
    if target.key_env is not None:
        with credentials(target, None):
            reason = provider.missing_credentials()
        assert isinstance(reason, str) and target.key_env in reason, (
            f"missing_credentials() with {target.key_env} unset: {reason!r}"
        )
    return None


TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def _part(kind: str, body: dict[str, str]) -> dict[str, Any]:
    """A request whose one message is one content part of `kind`."""
    return {"messages": [{"role": "user", "content": [{"type": kind, kind: body}]}]}


NEEDS: dict[str, dict[str, Any]] = {
    "tools": {"tools": [TOOL]},
    "vision": _part("image_url", {"url": "data:image/png;base64,iVBORw0KGgo="}),
    "audio": _part("input_audio", {"data": "UklGRg==", "format": "wav"}),
    "files": _part("file", {"file_id": "file-1"}),
    "response_format": {"response_format": {"type": "json_object"}},
}
"""A request needing each capability."""


@check
async def validation_before_io(target: Target) -> str | None:
    """Bad requests, capabilities the provider lacks and a missing key are refused at the call,
    before anything is sent."""
    async with FakeUpstream(default=Reply.text("unexpected"), wire=target.wire) as upstream:
        provider = target.make(upstream.url)
        cases: list[tuple[str, dict[str, Any], type[Exception]]] = [
            ("messages that are not a list", {"messages": "Hello"}, InvalidRequestError),
            ("a message without content", {"messages": [{"role": "user"}]}, InvalidRequestError),
            (
                "an unknown role",
                {"messages": [{"role": "wizard", "content": "x"}]},
                InvalidRequestError,
            ),
            ("a model that is not a string", {"model": 42}, InvalidRequestError),
            ("a negative timeout", {"timeout": -1}, InvalidRequestError),
            ("a proxy that is not a URL", {"proxy": 3}, InvalidRequestError),
        ]
        cases += [
            (f"a request needing {need}", request, UnsupportedCapabilityError)
            for need, request in NEEDS.items()
            if not getattr(provider, CAPABILITIES[need], False)
        ]
        for what, options, expected in cases:
            _refused_at_call(provider, target, what, options, expected)
        if target.key_env is not None:
            with credentials(target, None):
                _refused_at_call(provider, target, "no key", {}, MissingCredentialsError)
        assert not upstream.requests, f"requests were sent: {upstream.requests}"
    return None


def _refused_at_call(
    provider: Provider,
    target: Target,
    what: str,
    options: dict[str, Any],
    expected: type[Exception],
) -> None:
    request = {"model": target.model, "messages": HELLO, **options}
    try:
        stream = open_stream(provider, request.pop("model"), request.pop("messages"), **request)
    except expected:
        return
    except Exception as exc:
        raise AssertionError(f"{what}: {expected.__name__} expected, got {describe(exc)}") from exc
    raise AssertionError(f"{what}: not refused at the call ({type(stream).__name__} returned)")


def _limits(**phases: float) -> Timeouts:
    return Timeouts(
        **{"connect": BOUND, "first_chunk": BOUND, "idle": BOUND, "total": BOUND, **phases}
    )


@check
async def timeouts(target: Target) -> str | None:
    """Each of the four timeouts is enforced, on time: connect (a listener that never
    accepts), first chunk (no headers; keep-alives only), idle (stalls mid-answer), total."""
    slow = Reply.text(*"abcdefghij" * 4, delay=0.05)
    cases = [
        ("first_chunk", Reply.hang(), ""),
        ("first_chunk", Reply.keepalive_trickle(0.02), ""),
        ("idle", Reply.hang_after_chunks("Hel"), "Hel"),
        ("total", slow, None),
    ]
    with unaccepting_port() as port:
        async with contextlib.AsyncExitStack() as stack:
            urls = [f"http://127.0.0.1:{port}"]
            for _, reply, _ in cases:
                upstream = FakeUpstream(reply, wire=target.wire)
                urls.append((await stack.enter_async_context(upstream)).url)
            phases = [("connect", ""), *((phase, text) for phase, _, text in cases)]
            await asyncio.gather(
                *(
                    _times_out(target, target.make(url), phase, text)
                    for url, (phase, text) in zip(urls, phases, strict=True)
                )
            )
    return None


async def _times_out(target: Target, provider: Provider, phase: str, text: str | None) -> None:
    limit = 0.3
    started = time.monotonic()
    got = await answer(provider, target, timeout=_limits(**{phase: limit}))
    elapsed = time.monotonic() - started
    error = got.error
    assert isinstance(error, UpstreamTimeoutError) and error.phase == phase, (
        f"a {phase} timeout of {limit}s: UpstreamTimeoutError({phase!r}) expected, "
        f"got {describe(error)}"
    )
    assert limit * 0.9 <= elapsed < limit + 2, f"the {phase} timeout fired after {elapsed:.2f}s"
    assert text is None or got.text == text, f"text before the {phase} timeout: {got.text!r}"


@check
async def cancellation(target: Target) -> str | None:
    """Closing the stream or cancelling its reader closes the connection at once, before the
    headers and mid-answer, and the cancellation stays a cancellation."""
    script = (Reply.hang_after_chunks("Hel"), Reply.hang(), Reply.hang_after_chunks("Hel"))
    async with FakeUpstream(*script, wire=target.wire) as upstream:
        provider = target.make(upstream.url)
        stream = open_stream(provider, target.model, HELLO)
        async with asyncio.timeout(BOUND):
            first = await anext(stream.events())
        assert first == "Hel", f"the first event: {first!r}"
        await stream.aclose()
        await _until(lambda: _closed(upstream, 1), "aclose() left the connection open")
        for expected, what in ((2, "a reader waiting for headers"), (3, "a reader mid-answer")):
            reader = asyncio.create_task(answer(provider, target))
            await _until(lambda: upstream.active == 1, "the request did not arrive")
            await asyncio.sleep(0.05)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            assert reader.cancelled(), f"cancelling {what} ended it with {reader.result()!r}"
            closed = functools.partial(_closed, upstream, expected)
            await _until(closed, f"cancelling {what} left the connection open")
    return None


def _closed(upstream: FakeUpstream, count: int) -> bool:
    return upstream.disconnects == count and upstream.active == 0


async def _until(condition: Callable[[], bool], failure: str) -> None:
    """Wait up to 1 s for what the upstream observes: at once, give or take the loop."""
    deadline = time.monotonic() + 1.0
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{failure} (1 s)")
        await asyncio.sleep(0.01)
