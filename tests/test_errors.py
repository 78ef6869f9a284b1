"""Every error survives a pickle round trip (process pools): same type, message and attributes."""

from __future__ import annotations

import pickle
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from providerhub import (
    AllProvidersFailedError,
    EmptyStreamError,
    InvalidRequestError,
    MalformedStreamError,
    MissingCredentialsError,
    ModelNotSupportedError,
    PluginError,
    ProviderHubError,
    ProviderNotFoundError,
    ProviderNotWorkingError,
    StreamInterruptedError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamTimeoutError,
    http,
)
from providerhub.attempt import Attempt
from providerhub.errors import TargetNotFoundError
from providerhub.testing import FakeUpstream, Reply

MakeUpstream = Callable[..., Awaitable[FakeUpstream]]
SECRET = "sk-secret-0123456789abcdef"


def round_trip(error: BaseException) -> Any:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.args == error.args
    return copy


@pytest.mark.parametrize(
    ("error", "attributes"),
    [
        (
            UpstreamTimeoutError("P", "first_chunk", 2.5),
            {"provider": "P", "phase": "first_chunk", "seconds": 2.5, "retryable": True},
        ),
        (
            UpstreamConnectionError("P", "connection closed", url="http://127.0.0.1:1/x"),
            {"provider": "P", "url": "http://127.0.0.1:1/x", "retryable": True},
        ),
        (
            MalformedStreamError("P", "malformed event", excerpt="{not json"),
            {"provider": "P", "excerpt": "{not json"},
        ),
        (EmptyStreamError("P"), {"provider": "P"}),
        (UpstreamError("P", "error in stream: overloaded"), {"provider": "P"}),
        (
            ProviderNotFoundError("CodeLinkAv", ["CodeLinkAva"]),
            {"name": "CodeLinkAv", "suggestions": ("CodeLinkAva",)},
        ),
        (
            TargetNotFoundError("LoclA", "no provider or chain named 'LoclA'", ["LocalA"]),
            {"name": "LoclA", "suggestions": ("LocalA",)},
        ),
        (
            MissingCredentialsError("OpenAI", "OPENAI_API_KEY"),
            {"provider": "OpenAI", "env_var": "OPENAI_API_KEY"},
        ),
        (
            PluginError("broken", "providerhub-broken", "ImportError: no module x"),
            {
                "plugin": "broken",
                "distribution": "providerhub-broken",
                "reason": "ImportError: no module x",
            },
        ),
        (ProviderNotWorkingError("CodeLinkAva"), {"provider": "CodeLinkAva"}),
        (ModelNotSupportedError("P", "gpt-9"), {"provider": "P", "model": "gpt-9"}),
        (InvalidRequestError("messages must not be empty"), {}),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else "",
)
def test_round_trip(error: ProviderHubError, attributes: dict[str, Any]) -> None:
    copy = round_trip(error)
    for name, value in attributes.items():
        assert getattr(copy, name) == value
    assert vars(copy) == vars(error)


def test_round_trip_keeps_the_standard_bases() -> None:
    assert isinstance(round_trip(UpstreamTimeoutError("P", "idle", 1)), TimeoutError)
    assert isinstance(round_trip(UpstreamConnectionError("P", "cut")), ConnectionError)
    assert isinstance(round_trip(MalformedStreamError("P", "bad")), ValueError)
    assert isinstance(round_trip(ProviderNotFoundError("x")), LookupError)


async def http_error(upstream: FakeUpstream) -> UpstreamHTTPError:
    headers = {"Authorization": f"Bearer {SECRET}", "X-Api-Key": SECRET, "Accept": "*/*"}
    with pytest.raises(UpstreamHTTPError) as info:
        async with http.request("P", upstream.url + "/v1/chat/completions", headers=headers):
            pass
    return info.value


async def test_http_error_round_trip_without_secrets(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(
        Reply.error(429, "slow down", retry_after="7", headers={"Set-Cookie": f"s={SECRET}"})
    )
    error = await http_error(upstream)
    data = pickle.dumps(error)
    assert SECRET.encode() not in data
    copy: UpstreamHTTPError = round_trip(error)
    assert isinstance(copy, aiohttp.ClientResponseError)
    assert isinstance(copy, UpstreamError)
    fields = ("provider", "status", "url", "message", "body", "retry_after", "retryable")
    assert [getattr(copy, name) for name in fields] == [getattr(error, name) for name in fields]
    assert (copy.status, copy.message, copy.retry_after) == (429, "slow down", 7.0)
    assert repr(copy) == repr(error)
    assert copy.request_info.method == "POST"
    assert copy.request_info.url == error.request_info.url
    assert copy.request_info.real_url == error.request_info.real_url
    assert copy.request_info.headers["Authorization"] == "<redacted>"
    assert copy.request_info.headers["X-Api-Key"] == "<redacted>"
    assert copy.request_info.headers["Accept"] == "*/*"
    assert copy.headers is not None and copy.headers["Set-Cookie"] == "<redacted>"
    assert copy.headers["Retry-After"] == "7"
    assert copy.history == ()


async def test_http_error_round_trip_keeps_changed_fields(fake_upstream: MakeUpstream) -> None:
    error = await http_error(await fake_upstream(Reply.error(500, "boom")))
    error.message = "boom <redacted>"
    error.retryable = False
    copy = round_trip(error)
    assert (copy.message, copy.retryable, copy.status) == ("boom <redacted>", False, 500)


def test_http_error_built_directly_round_trips() -> None:
    error = UpstreamHTTPError(
        "P", status=503, url="http://127.0.0.1:9/x", message="overloaded", retry_after=1.5
    )
    copy = round_trip(error)
    assert (copy.status, copy.url, copy.retry_after, copy.headers) == (
        503,
        "http://127.0.0.1:9/x",
        1.5,
        None,
    )


def test_stream_interrupted_round_trip_keeps_text_attempts_and_cause() -> None:
    cause = UpstreamConnectionError("A", "connection closed before the response was complete")
    attempts = [Attempt("A", "interrupted", error=cause, time_to_first_chunk=0.1, duration=0.2)]
    error = StreamInterruptedError("A", "Hel", attempts, cause)
    copy = round_trip(error)
    assert (copy.provider, copy.text) == ("A", "Hel")
    assert type(copy.__cause__) is UpstreamConnectionError
    assert str(copy.__cause__) == str(cause)
    (attempt,) = copy.attempts
    assert (attempt.provider, attempt.outcome, attempt.duration) == ("A", "interrupted", 0.2)
    assert type(attempt.error) is UpstreamConnectionError
    assert str(attempt.error) == str(cause)


async def test_all_providers_failed_round_trip(fake_upstream: MakeUpstream) -> None:
    failure = await http_error(await fake_upstream(Reply.error(401, "invalid key")))
    attempts = [
        Attempt("A", "failed", error=failure, duration=0.01),
        Attempt("B", "skipped", reason="marked not working"),
        Attempt("C", "failed", error=UpstreamTimeoutError("C", "first_chunk", 3)),
    ]
    error = AllProvidersFailedError(attempts)
    data = pickle.dumps(error)
    assert SECRET.encode() not in data
    copy = round_trip(error)
    assert [(a.provider, a.outcome, a.reason) for a in copy.attempts] == [
        (a.provider, a.outcome, a.reason) for a in attempts
    ]
    assert [type(a.error) for a in copy.attempts] == [
        UpstreamHTTPError,
        type(None),
        UpstreamTimeoutError,
    ]
    assert copy.attempts[0].error.auth_failed
    assert copy.attempts[2].error.phase == "first_chunk"
