"""The pytest plugin (entry point "pytest11"): the `fake_upstream` fixture, and a fresh event
loop for an `async def` test using it that no async plugin runs, so plain pytest suffices."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator

import pytest

from ._server import UpstreamFactory


@pytest.fixture
def fake_upstream() -> Iterator[UpstreamFactory]:
    """Factory: `await fake_upstream(Reply.text("hi"))` (`fake_upstream.serve(...)` in a sync
    test) starts one FakeUpstream; all close after the test."""
    with UpstreamFactory() as factory:
        yield factory


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run a coroutine test that requests `fake_upstream` on a fresh event loop, when no async
    plugin has taken it (pytest-asyncio turns the ones it runs into plain functions; anyio's
    have an `anyio_backend`)."""
    test = pyfuncitem.obj
    if (
        not inspect.iscoroutinefunction(test)
        or "fake_upstream" not in pyfuncitem.fixturenames
        or "anyio_backend" in pyfuncitem.fixturenames
    ):
        return None
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(test(**arguments))
    return True
