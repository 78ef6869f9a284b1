"""Helpers shared by the routing and health tests: providers on fake upstreams, a hand clock."""

from __future__ import annotations

import asyncio
from typing import Any

from helpers import BOUND
from providerhub import ChatStream, MemoryHealthStore, Timeouts
from providerhub.routing.health import Ticket
from providerhub.testing import FakeUpstream
from providerhub_codelinkava import CodeLinkAva

MESSAGES = [{"role": "user", "content": "hi"}]
REFUSED = "http://127.0.0.1:1/api/chat"
FAST = Timeouts(connect=2, first_chunk=0.3, idle=0.3, total=5)


def provider(name: str, upstream: FakeUpstream | None = None, **attrs: Any) -> type[CodeLinkAva]:
    """A working CodeLinkAva-protocol provider called `name`, served by `upstream`.

    Without an upstream it points at a refused port, unless `attrs` give its `api_url`.
    """
    url = upstream.url + "/api/chat" if upstream is not None else REFUSED
    return type(name, (CodeLinkAva,), {"name": name, "working": True, "api_url": url, **attrs})


class ProviderObject:
    """The metadata of a provider that is a plain object, no AsyncGeneratorProvider: working,
    streaming, no credentials needed, every model. Subclasses add `create_async_generator`."""

    name = "object"
    working = True
    supports_stream = True
    needs_auth = False

    def supports_model(self, model: str) -> bool:
        return True

    def missing_credentials(self) -> str | None:
        return None


def admitted(store: MemoryHealthStore, name: str) -> bool:
    """Whether the store lets a request to `name` through (taking the probe slot if half-open)."""
    return isinstance(store.admit_now(name), Ticket)


async def consume(stream: ChatStream) -> str:
    async with asyncio.timeout(BOUND):
        return "".join([chunk async for chunk in stream])


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
