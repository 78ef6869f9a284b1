"""What the checks share: the provider under test (`Target`), one answer read whole
(`answer`), the upstream's environment (its key, ports that refuse or never accept)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from ...events import Event
from ...provider import Provider, open_stream
from ...stream import ChunkStream
from .._reply import WireFormat

SECRET = "sk-conformance-5f0c9e2d41b8a7763e1f"
"""The key the suite puts in the target's `key_env`: it must reach the upstream, never an error."""
HELLO = [{"role": "user", "content": "Hello"}]
BOUND = 10.0
"""Seconds any one answer may take before the check calls it a hang."""


@dataclass(frozen=True, slots=True)
class Target:
    """A provider under test: `make(url)` builds one whose requests go to the FakeUpstream at
    `url` (any path under it); `wire` is the format it speaks, `model` one it serves.
    `key_env` names the environment variable it reads its key from (the suite sets it)."""

    make: Callable[[str], Provider]
    wire: WireFormat = "openai"
    model: str = "fake-model"
    key_env: str | None = None
    name: str = field(default="provider")


@dataclass(slots=True)
class Answer:
    """What one call produced: its events in order, the stream, and how it ended."""

    events: list[Event]
    stream: ChunkStream | None
    error: BaseException | None

    @property
    def text(self) -> str:
        return "".join(event for event in self.events if isinstance(event, str))


async def answer(provider: Provider, target: Target, **options: Any) -> Answer:
    """Open and read one answer to HELLO (or `messages=`), keeping the error it ended with."""
    messages = options.pop("messages", HELLO)
    model = options.pop("model", target.model)
    events: list[Event] = []
    stream: ChunkStream | None = None
    bound = asyncio.timeout(BOUND)
    try:
        async with bound:
            stream = open_stream(provider, model, messages, **options)
            async with stream:
                async for event in stream.events():
                    events.append(event)
    except Exception as exc:
        if bound.expired():
            raise AssertionError(f"{target.name}: no answer within {BOUND:g}s (a hang)") from exc
        return Answer(events, stream, exc)
    return Answer(events, stream, None)


def run(check: Callable[[], Coroutine[Any, Any, str | None]], target: Target) -> str | None:
    """Run one async check on a fresh event loop, with the target's key set."""
    with credentials(target):
        return asyncio.run(check())


@contextmanager
def credentials(target: Target, value: str | None = SECRET) -> Iterator[None]:
    """The target's key variable set to `value` (None: unset) while the block runs."""
    if target.key_env is None:
        yield
        return
    before = os.environ.get(target.key_env)
    if value is None:
        os.environ.pop(target.key_env, None)
    else:
        os.environ[target.key_env] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(target.key_env, None)
        else:
            os.environ[target.key_env] = before


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port nobody listens on: connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    yield port


@contextmanager
def unaccepting_port() -> Iterator[int]:
    """A loopback port whose listener never accepts and whose queue is full, so a connection
    attempt hangs until the client's connect timeout."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port: int = server.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                with suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
            yield port
        finally:
            for filler in fillers:
                filler.close()


def error_texts(error: BaseException) -> Iterator[str]:
    """Everything an error shows or keeps: its text, repr, arguments and attributes, and the
    same of every error it was raised from."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield repr(current.args)
        yield from (repr(value) for value in vars(current).values())
        current = current.__cause__ or current.__context__


def describe(error: BaseException | None) -> str:
    return "no error" if error is None else f"{type(error).__name__}: {error}"
