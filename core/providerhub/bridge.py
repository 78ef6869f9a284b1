"""The sync bridge: a provider's async stream of chunks as a plain iterator.

`create_completion` (and so every synchronous caller) goes through `iterate_sync`: without a
running event loop it drives the stream on a private one; inside one (a notebook, an async
framework calling sync code) it runs a private loop in a worker thread. Either way nothing runs
ahead of the consumer, and stopping early closes the upstream connection at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator

__all__ = ["iterate_sync"]


def iterate_sync(make: Callable[[], AsyncIterator[str]]) -> Iterator[str]:
    """Drive an async iterator from synchronous code, in a worker thread if a loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _iterate_here(make)
    return _iterate_in_thread(make)


def _iterate_here(make: Callable[[], AsyncIterator[str]]) -> Iterator[str]:
    with asyncio.Runner() as runner:
        chunks = make()
        try:
            while True:
                try:
                    yield runner.run(_next(chunks))
                except StopAsyncIteration:
                    return
        finally:
            runner.run(_aclose(chunks))


async def _next(chunks: AsyncIterator[str]) -> str:
    return await anext(chunks)


async def _aclose(chunks: AsyncIterator[str]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


async def _start(make: Callable[[], AsyncIterator[str]]) -> AsyncIterator[str]:
    return make()


async def _finish(chunks: AsyncIterator[str] | None) -> None:
    """Shut the private loop's work down: a read still pending, the iterator, async generators."""
    current = asyncio.current_task()
    running = [task for task in asyncio.all_tasks() if task is not current]
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    if chunks is not None:
        await _aclose(chunks)
    loop = asyncio.get_running_loop()
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


def _iterate_in_thread(make: Callable[[], AsyncIterator[str]]) -> Iterator[str]:
    """Run the iterator on a private event loop in a worker thread, one chunk per request.

    Nothing runs ahead of the consumer, so when it stops early (break, close, an exception)
    the pending read is cancelled and the upstream connection closed at once.
    """
    loop = asyncio.new_event_loop()
    worker = threading.Thread(target=loop.run_forever, name="providerhub-sync", daemon=True)
    worker.start()
    chunks: AsyncIterator[str] | None = None
    try:
        chunks = asyncio.run_coroutine_threadsafe(_start(make), loop).result()
        while True:
            try:
                chunk = asyncio.run_coroutine_threadsafe(_next(chunks), loop).result()
            except StopAsyncIteration:
                return
            yield chunk
    finally:
        asyncio.run_coroutine_threadsafe(_finish(chunks), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        worker.join()
        loop.close()
