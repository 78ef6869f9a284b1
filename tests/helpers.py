"""Helpers for any async test: the fake-upstream factory's type, a hang bound, bounded polling,
a provider class pointed at an upstream."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

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
