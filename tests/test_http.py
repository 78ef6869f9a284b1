"""providerhub.http: rate-limit headers, header redaction, request encoding, event payloads."""

from __future__ import annotations

import email.utils
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from providerhub import (
    InvalidRequestError,
    MalformedStreamError,
    UpstreamHTTPError,
    chat_completions,
    http,
)
from providerhub.redaction import is_secret_header, redacted_items
from providerhub.sse import ServerSentEvent
from providerhub.testing import FakeUpstream, Reply
from yarl import URL

MakeUpstream = Callable[..., Awaitable[FakeUpstream]]


# retry_after: what the upstream asked us to wait, or None when the header makes no sense.


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": " 1.5 "}, 1.5),
        ({"x-ratelimit-reset-requests": "20ms"}, 0.02),
        ({"x-ratelimit-reset-requests": "1.5s"}, 1.5),
        ({"x-ratelimit-reset-requests": ".5s"}, 0.5),
        ({"x-ratelimit-reset-requests": "6m0s"}, 360.0),
        ({"x-ratelimit-reset-requests": "1h2m3s"}, 3723.0),
        ({"x-ratelimit-reset-requests": "2"}, 2.0),
        ({"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "1m"}, 60.0),
        ({"x-ratelimit-reset-requests": "1.2.3s", "x-ratelimit-reset-tokens": "4s"}, 4.0),
        ({}, None),
    ],
)
def test_retry_after_values(headers: dict[str, str], expected: float | None) -> None:
    assert http.retry_after(headers) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "²"},
        {"Retry-After": "١٢"},
        {"Retry-After": "1.2.3"},
        {"Retry-After": "-3"},
        {"Retry-After": "9" * 400},
        {"Retry-After": ""},
        {"Retry-After": "soon"},
        {"x-ratelimit-reset-requests": "1.2.3s"},
        {"x-ratelimit-reset-requests": "..s"},
        {"x-ratelimit-reset-requests": "."},
        {"x-ratelimit-reset-requests": "²s"},
        {"x-ratelimit-reset-tokens": "1x"},
        {"x-ratelimit-reset-tokens": "s"},
        {"x-ratelimit-reset-tokens": "1s2"},
        {"x-ratelimit-reset-tokens": "9" * 400 + "s"},
        {"x-ratelimit-reset-tokens": " "},
    ],
)
def test_retry_after_malformed_is_none(headers: dict[str, str]) -> None:
    assert http.retry_after(headers) is None


def test_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert http.retry_after({"Retry-After": date}, now=now) == 30.0
    assert http.retry_after({"Retry-After": email.utils.formatdate(now - 30)}, now=now) == 0.0


@pytest.mark.parametrize(
    "headers",
    [
        {"x-ratelimit-reset-requests": "1.2.3s"},
        {"x-ratelimit-reset-requests": "..s"},
        {"x-ratelimit-reset-tokens": "1h..s"},
        {"Retry-After": "1.2.3"},
    ],
)
async def test_http_error_with_malformed_rate_limit_headers(
    fake_upstream: MakeUpstream, headers: dict[str, str]
) -> None:
    upstream = await fake_upstream(Reply.error(429, "slow down", headers=headers))
    with pytest.raises(UpstreamHTTPError) as info:
        async with http.request("P", upstream.url + "/api/chat", json_body={"a": 1}):
            pass
    error = info.value
    assert (error.status, error.message, error.retry_after) == (429, "slow down", None)
    assert error.retryable


# Redaction follows the one shared rule.


def test_http_errors_redact_headers_by_the_shared_rule() -> None:
    headers = CIMultiDict(
        [
            ("Authorization", "Bearer a"),
            ("x-goog-api-key", "b"),
            ("X-Auth-Token", "c"),
            ("Ocp-Apim-Subscription-Key", "d"),
            ("Set-Cookie", "e=1"),
            ("Set-Cookie", "f=2"),
            ("Accept", "*/*"),
            ("Content-Type", "application/json"),
        ]
    )
    expected = [
        (key, "<redacted>" if is_secret_header(key) else value) for key, value in headers.items()
    ]
    assert redacted_items(headers) == expected
    url = URL("http://127.0.0.1/v1/chat/completions")
    info = aiohttp.RequestInfo(url, "POST", CIMultiDictProxy(headers), url)
    error = UpstreamHTTPError("P", status=401, url=str(url), message="m", request_info=info)
    redacted = error.request_info.headers
    assert list(redacted.items()) == expected
    assert [value for value in redacted.values() if value != "<redacted>"] == [
        "*/*",
        "application/json",
    ]
    assert redacted.getall("set-cookie") == ["<redacted>", "<redacted>"]
    assert not hasattr(http, "SECRET_HEADERS")
    assert not hasattr(http, "redact_headers")


async def test_http_error_redacts_every_secret_looking_header(fake_upstream: MakeUpstream) -> None:
    secret = "AIza-secret-0123456789"
    upstream = await fake_upstream(Reply.error(403, "denied"))
    headers = {"x-goog-api-key": secret, "X-Auth-Token": secret, "Accept": "*/*"}
    with pytest.raises(UpstreamHTTPError) as info:
        async with http.request("P", upstream.url + "/v1/chat/completions", headers=headers):
            pass
    error = info.value
    assert upstream.requests[0].headers["x-goog-api-key"] == secret
    assert error.request_info.headers["x-goog-api-key"] == "<redacted>"
    assert error.request_info.headers["X-Auth-Token"] == "<redacted>"
    assert error.request_info.headers["Accept"] == "*/*"
    assert secret not in repr(error.request_info) and secret not in repr(error.args)


# The request body is encoded before any network I/O.


async def test_body_is_compact_json_with_content_type(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(Reply.text("a"))
    body = {"messages": [{"role": "user", "content": "hé"}], "temperature": 0.5}
    async with http.request("P", upstream.url + "/api/chat", json_body=body) as response:
        assert response.status == 200
        await response.read()
    (request,) = upstream.requests
    assert request.body == b'{"messages":[{"role":"user","content":"h\\u00e9"}],"temperature":0.5}'
    assert request.json == body
    assert request.headers["Content-Type"] == "application/json"


async def test_caller_content_type_is_kept(fake_upstream: MakeUpstream) -> None:
    upstream = await fake_upstream(Reply.text("a"))
    headers = {"content-type": "application/json; charset=utf-8"}
    async with http.request("P", upstream.url + "/api/chat", json_body={}, headers=headers):
        pass
    sent = [
        value
        for key, value in upstream.requests[0].headers.items()
        if key.lower() == "content-type"
    ]
    assert sent == ["application/json; charset=utf-8"]


def _nested(depth: int) -> list[Any]:
    """A list nested `depth` levels deep (built without recursion)."""
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"model": "m", "temperature": object()},
            "request parameter 'temperature' cannot be sent as JSON: "
            "Object of type object is not JSON serializable",
        ),
        (
            {"model": "m", "temperature": float("nan")},
            "request parameter 'temperature' cannot be sent as JSON: "
            "NaN and infinity are not valid JSON",
        ),
        (
            {"stop": ["a", float("-inf")]},
            "request parameter 'stop' cannot be sent as JSON: NaN and infinity are not valid JSON",
        ),
        (
            {"logit_bias": {(1, 2): 3}},
            "request parameter 'logit_bias' cannot be sent as JSON: "
            "keys must be str, int, float, bool or None, not tuple",
        ),
        (
            [float("inf")],
            "the request body cannot be sent as JSON: NaN and infinity are not valid JSON",
        ),
        (
            {"model": "m", "tools": _nested(100_000)},
            "request parameter 'tools' cannot be sent as JSON: it is nested too deeply",
        ),
    ],
)
async def test_unencodable_body_fails_before_any_request(
    fake_upstream: MakeUpstream, body: Any, message: str
) -> None:
    upstream = await fake_upstream(Reply.text("a"))
    with pytest.raises(InvalidRequestError) as info:
        async with http.request("P", upstream.url + "/api/chat", json_body=body):
            pass
    assert type(info.value) is InvalidRequestError
    assert str(info.value) == message
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert upstream.requests == []


def test_unencodable_value_is_never_in_the_message() -> None:
    class Secret:
        def __repr__(self) -> str:
            return "sk-secret-value"

        __str__ = __repr__

    with pytest.raises(InvalidRequestError) as info:
        http.encode_json({"api_key": Secret()})
    assert "sk-secret-value" not in str(info.value)
    assert str(info.value) == (
        "request parameter 'api_key' cannot be sent as JSON: "
        "Object of type Secret is not JSON serializable"
    )


# event_payloads: one document per event, or one per line for line-oriented upstreams.


def payloads(data: str) -> tuple[Any, ...]:
    return tuple(chat_completions.event_payloads(ServerSentEvent(data), "P"))


def test_event_payloads_one_document() -> None:
    assert payloads('{"a": 1}') == ({"a": 1},)
    assert payloads("[DONE]") == (chat_completions.DONE,)
    assert payloads('{\n "a": [1,\n 2]\n}') == ({"a": [1, 2]},)
    assert repr(chat_completions.DONE) == "DONE"


def test_event_payloads_line_oriented() -> None:
    assert payloads('{"a": 1}\n{"b": 2}\n[DONE]') == ({"a": 1}, {"b": 2}, chat_completions.DONE)
    assert payloads('{"a": 1}\n\n{"b": 2}\n') == ({"a": 1}, {"b": 2})
    assert payloads('{"a": 1}\n[DONE]\n{not json') == ({"a": 1}, chat_completions.DONE)
    assert payloads("[DONE]\n[DONE]") == (chat_completions.DONE,)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "P: malformed event: '{not json'"),
        ("", "P: malformed event"),
        ('{"a": 1}\n{bad\n[DONE]', "P: malformed event: '{bad'"),
    ],
)
def test_event_payloads_malformed(data: str, message: str) -> None:
    with pytest.raises(MalformedStreamError) as info:
        payloads(data)
    assert type(info.value) is MalformedStreamError
    assert str(info.value) == message
    assert info.value.provider == "P"
    assert info.value.__suppress_context__


def test_line_payloads_before_a_bad_line_come_first() -> None:
    lines = iter(chat_completions.event_payloads(ServerSentEvent('{"a": 1}\n{bad\n[DONE]'), "P"))
    assert next(lines) == {"a": 1}
    with pytest.raises(MalformedStreamError, match=r"^P: malformed event: '\{bad'$"):
        next(lines)
