"""Shared fixtures: loopback fake upstreams, a leak check on every test, a fresh health store,
and a count of message validations."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from providerhub import default_health_store, pool
from redis_helpers import RedisServer, serve_redis

pytest_plugins = ["providerhub.testing"]


def _open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            continue
    return count


@pytest_asyncio.fixture(autouse=True)
async def no_leaks() -> AsyncIterator[None]:
    """Fail a test that leaves a task running, a request's answer open, or a socket open.

    Keep-alive connections are legitimately open between requests: once nothing runs and no
    answer is open, the test loop's pools are closed, and then every socket must be.
    """
    sockets = _open_sockets()
    yield
    current = asyncio.current_task()
    for _ in range(100):
        tasks = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        if not tasks and not pool.open_requests():
            break
        await asyncio.sleep(0.01)
    assert not tasks, f"tasks left running: {tasks}"
    assert not pool.open_requests(), f"answers left open: {pool.open_requests()}"
    await pool.close_all()
    for _ in range(100):
        if _open_sockets() <= sockets:
            break
        await asyncio.sleep(0.01)
    assert _open_sockets() <= sockets, f"sockets left open: {_open_sockets() - sockets}"


@pytest.fixture
def fresh_health() -> Iterator[None]:
    """The default health store, empty before and after the test."""
    default_health_store().reset()
    yield
    default_health_store().reset()


@pytest.fixture
def message_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Where `validate_messages` looked at a message's fields in detail (its path), in order:
    how tests see how often a request's messages were validated."""
    import providerhub.messages

    checks: list[str] = []
    check_fields = providerhub.messages._check_fields

    def counted(message: Any, role: str, content: Any, where: str) -> None:
        checks.append(where)
        check_fields(message, role, content, where)

    monkeypatch.setattr(providerhub.messages, "_check_fields", counted)
    return checks


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server on a free loopback port (skipped locally, failed in CI, without
    redis-server installed)."""
    yield from serve_redis()
