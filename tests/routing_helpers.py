"""Helpers shared by the routing and health tests: providers on fake upstreams, a hand clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from providerhub import ChatStream, HealthStore
from providerhub.health import Ticket
from providerhub.testing import FakeUpstream
from providerhub_codelinkava import CodeLinkAva

MakeUpstream = Callable[..., Awaitable[FakeUpstream]]
MESSAGES = [{"role": "user", "content": "hi"}]
BOUND = 5.0
"""Generous upper bound on any one call: only a hang exceeds it."""
REFUSED = "http://127.0.0.1:1/api/chat"


def provider(name: str, upstream: FakeUpstream | None = None, **attrs: Any) -> type[CodeLinkAva]:
    """A working CodeLinkAva-protocol provider called `name`, served by `upstream`."""
    url = upstream.url + "/api/chat" if upstream is not None else REFUSED
    return type(name, (CodeLinkAva,), {"name": name, "working": True, "api_url": url, **attrs})


def admitted(store: HealthStore, name: str) -> bool:
    """Whether the store lets a request to `name` through (taking the probe slot if half-open)."""
    return isinstance(store.admit(name), Ticket)


async def consume(stream: ChatStream) -> str:
    async with asyncio.timeout(BOUND):
        return "".join([chunk async for chunk in stream])


async def until(condition: Callable[[], bool]) -> None:
    """Wait (bounded) for something the server side observes asynchronously."""
    async with asyncio.timeout(BOUND):
        while not condition():  # noqa: ASYNC110 - polls counters the server updates
            await asyncio.sleep(0.01)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
