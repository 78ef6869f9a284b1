"""Helpers for any async test: the fake-upstream factory's type, a hang bound, bounded polling,
a provider class pointed at an upstream, a JSON POST read whole or until it is cut."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import pytest
from providerhub.testing import FakeUpstream

MakeUpstream = Callable[..., Awaitable[FakeUpstream]]
P = TypeVar("P", bound=type)
BOUND = 5.0
"""Generous upper bound on any one call or wait: only a hang exceeds it."""


async def until(condition: Callable[[], object]) -> None:
    """Wait (bounded) for something a server observes asynchronously, maybe on another thread."""
    async with asyncio.timeout(BOUND):
        while not condition():  # noqa: ASYNC110 - polls counters the server updates
            await asyncio.sleep(0.01)


def pointing(monkeypatch: pytest.MonkeyPatch, cls: P) -> Callable[[FakeUpstream], P]:
    """A function that points `cls` at an upstream (until the test ends) and returns it."""

    def point(upstream: FakeUpstream) -> P:
        monkeypatch.setattr(cls, "api_url", upstream.url + "/api/chat")
        return cls

    return point


async def post_json(url: str, body: Any) -> tuple[int, bytes, dict[str, str]]:
    """POST `body` as JSON: the status, the whole body and the headers."""
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        return response.status, await response.read(), dict(response.headers)


async def read_until_cut(url: str, body: Any) -> bytes:
    """POST `body` as JSON and read until the upstream drops the connection, as it must."""
    seen = b""
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        with pytest.raises(aiohttp.ClientPayloadError):
            while chunk := await response.content.readany():
                seen += chunk
    return seen
