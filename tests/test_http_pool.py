"""providerhub.pool and http.request's connections: kept alive per provider and loop, bounded,
closed with their loop, retried once only when a reused one was closed before it answered."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import _open_sockets
from helpers import BOUND, post_json, until
from providerhub import Registry, UpstreamConnectionError, pool
from providerhub.config import ConfigError, parse_config
from providerhub.server import create_app, start
from providerhub.testing import Reply
from providerhub_openai import OpenAICompatible

MESSAGES = [{"role": "user", "content": "hi"}]
ANSWER = Reply.text("Hel", "lo").wire()


@dataclass
class Server:
    """A raw HTTP/1.1 keep-alive server on 127.0.0.1 answering every request with `ANSWER`
    (chunked, the terminator in a write of its own), on its own loop in a thread.

    `second` says what the second request on a connection gets: "answer", "close" (the
    connection closed unanswered, as when the upstream closed it while idle), "status line"
    or "one event" (that much of an answer, then closed). `first` likewise for the first.
    """

    first: str = "answer"
    second: str = "answer"
    connections: int = 0
    requests: int = 0
    open: int = 0
    most_open: int = 0
    port: int = 0
    pause: float = 0.0
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.add(writer)
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            served = 0
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                self.requests += 1
                served += 1
                how = self.first if served == 1 else self.second
                if how == "close":
                    return
                writer.write(b"HTTP/1.1 200 OK\r\n")
                if how == "status line":
                    return
                writer.write(
                    b"Content-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                )
                events = ANSWER.split(b"\n\n")
                for index, event in enumerate(events[:-1]):
                    piece = event + b"\n\n"
                    writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    await writer.drain()
                    if how == "one event":
                        return
                    if index == 0 and self.pause:
                        await asyncio.sleep(self.pause)
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        finally:
            self.open -= 1
            writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@pytest.fixture
def server() -> Iterator[Server]:
    made = Server()
    thread = threading.Thread(target=made.loop.run_forever, daemon=True)
    thread.start()

    async def listen() -> asyncio.Server:
        return await asyncio.start_server(made.handle, "127.0.0.1", 0)

    listening = asyncio.run_coroutine_threadsafe(listen(), made.loop).result()
    made.port = listening.sockets[0].getsockname()[1]
    try:
        yield made
    finally:

        async def stop() -> None:
            listening.close()
            for writer in made.writers:
                writer.close()
            await listening.wait_closed()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(stop(), made.loop).result()
        made.loop.call_soon_threadsafe(made.loop.stop)
        thread.join()
        made.loop.close()


async def ask(provider: OpenAICompatible) -> str:
    return "".join([chunk async for chunk in provider.create_async_generator("m", MESSAGES)])


def provider_for(server: Server, **options: int) -> OpenAICompatible:
    return OpenAICompatible(name="up", base_url=server.url, default_model="m", **options)


async def test_calls_reuse_one_connection(server: Server) -> None:
    provider = provider_for(server)
    assert [await ask(provider) for _ in range(3)] == ["Hello"] * 3
    assert (server.connections, server.requests) == (1, 3)


async def test_closing_a_pool_closes_its_connections(server: Server) -> None:
    provider = provider_for(server)
    assert await ask(provider) == "Hello"
    await provider.pool.close()
    await until(lambda: server.open == 0)  # the server saw the kept connection close
    assert await ask(provider) == "Hello"
    assert (server.connections, server.requests) == (2, 2)


async def test_each_provider_instance_has_its_own_pool(server: Server) -> None:
    one, two = provider_for(server), provider_for(server)
    assert [await ask(one), await ask(two), await ask(one), await ask(two)] == ["Hello"] * 4
    assert (server.connections, server.requests) == (2, 4)


async def test_a_connection_closed_while_idle_is_retried_once(server: Server) -> None:
    server.second = "close"
    provider = provider_for(server)
    assert [await ask(provider), await ask(provider)] == ["Hello", "Hello"]
    # the second call went out on the kept connection, found it closed, and went again
    assert (server.connections, server.requests) == (2, 3)


@pytest.mark.parametrize("how", ["status line", "one event"])
async def test_never_retried_after_bytes_of_an_answer(server: Server, how: str) -> None:
    server.second = how
    provider = provider_for(server)
    assert await ask(provider) == "Hello"
    with pytest.raises(UpstreamConnectionError, match=r"connection closed|stream ended"):
        await ask(provider)
    assert (server.connections, server.requests) == (1, 2)


async def test_a_new_connection_closed_unanswered_is_not_retried(server: Server) -> None:
    server.first = "close"
    with pytest.raises(UpstreamConnectionError, match="connection closed before"):
        await ask(provider_for(server))
    assert (server.connections, server.requests) == (1, 1)


async def test_max_connections_bounds_the_connections_per_host(server: Server) -> None:
    server.pause = 0.05
    provider = provider_for(server, max_connections=2)
    answers = await asyncio.gather(*(ask(provider) for _ in range(6)))
    assert answers == ["Hello"] * 6
    assert server.most_open == 2
    assert server.requests == 6


@pytest.mark.parametrize(("toml", "value"), [("0", 0), ("-1", -1), ("true", True), ('"9"', "9")])
def test_max_connections_option_is_checked(toml: str, value: object) -> None:
    text = '[providers.up]\nuse = "openai"\nbase_url = "http://127.0.0.1:1/v1"\n'
    with pytest.raises(ConfigError, match="'max_connections' must be a positive integer"):
        parse_config(text + f"max_connections = {toml}\n").build_registry(Registry())
    with pytest.raises(ValueError, match="'max_connections' must be a positive integer"):
        OpenAICompatible(name="up", base_url="http://127.0.0.1:1", max_connections=value)  # type: ignore[arg-type]


async def test_leaving_a_stream_early_closes_its_connection(fake_upstream: Any) -> None:
    upstream = await fake_upstream(Reply.text("a", "b", hang_after=1), default=Reply.text("again"))
    provider = OpenAICompatible(name="up", base_url=upstream.url + "/v1", default_model="m")
    async with aclosing(provider.create_async_generator("m", MESSAGES)) as chunks:
        assert await anext(chunks) == "a"
    await until(lambda: upstream.disconnects)
    assert upstream.disconnects == 1
    assert await ask(provider) == "again"  # on a new connection, not the half-read one


async def test_cookies_do_not_carry_over(fake_upstream: Any) -> None:
    upstream = await fake_upstream(default=Reply.text("ok", headers={"Set-Cookie": "id=secret"}))
    base_url = f"http://localhost:{upstream.port}/v1"  # a jar would keep a name's cookies
    provider = OpenAICompatible(name="up", base_url=base_url, default_model="m")
    assert [await ask(provider), await ask(provider)] == ["ok", "ok"]
    assert [request.headers.get("Cookie") for request in upstream.requests] == [None, None]


async def test_proxy_per_request_through_the_pool(fake_upstream: Any) -> None:
    direct = await fake_upstream(default=Reply.text("direct"))
    proxy = await fake_upstream(default=Reply.text("proxied"))
    provider = OpenAICompatible(name="up", base_url=direct.url + "/v1", default_model="m")

    async def via(proxy_url: str | None) -> str:
        chunks = provider.create_async_generator("m", MESSAGES, proxy=proxy_url)
        return "".join([chunk async for chunk in chunks])

    assert [await via(None), await via(proxy.url), await via(None)] == [
        "direct",
        "proxied",
        "direct",
    ]
    assert [request.path for request in proxy.requests] == ["/v1/chat/completions"]
    assert len(direct.requests) == 2


async def test_gateway_cleanup_closes_its_pools(fake_upstream: Any) -> None:
    upstream = await fake_upstream(default=Reply.text("hi"))
    config = parse_config(
        f'[providers.up]\nuse = "openai"\nbase_url = "{upstream.url}/v1"\ndefault_model = "m"\n'
    )
    before = _open_sockets()
    runner, url = await start(create_app(config.build_registry(Registry()), config))
    status, body, _ = await post_json(
        url + "/v1/chat/completions", {"model": "up", "messages": MESSAGES}
    )
    assert status == 200 and b'"hi"' in body
    await runner.cleanup()
    for _ in range(100):
        if _open_sockets() <= before:
            break
        await asyncio.sleep(0.01)
    assert _open_sockets() <= before


def sockets_back_to(count: int) -> bool:
    """Whether the process is back to `count` sockets (the server's side closes on its own
    thread, a moment after the client's)."""
    deadline = time.monotonic() + BOUND
    while _open_sockets() > count and time.monotonic() < deadline:
        time.sleep(0.01)
    return _open_sockets() <= count


def test_a_loop_ending_closes_its_pool(server: Server) -> None:
    provider = provider_for(server)
    before = _open_sockets()

    async def twice() -> list[str]:
        return [await ask(provider), await ask(provider)]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert asyncio.run(twice()) == ["Hello", "Hello"]
        assert sockets_back_to(before)  # closed by the loop's shutdown (no GC: else a warning)
        assert asyncio.run(twice()) == ["Hello", "Hello"]
        assert sockets_back_to(before)
        gc.collect()
    assert [str(warning.message) for warning in caught] == []
    assert (server.connections, server.requests) == (2, 4)


def test_the_sync_bridge_closes_its_loops_pool(server: Server) -> None:
    provider = provider_for(server)
    before = _open_sockets()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert "".join(provider.create_completion("m", MESSAGES)) == "Hello"
        assert sockets_back_to(before)

        async def inside_a_loop() -> str:
            return "".join(provider.create_completion("m", MESSAGES))  # a worker thread's loop

        assert asyncio.run(inside_a_loop()) == "Hello"
        assert sockets_back_to(before)
        gc.collect()
    assert [str(warning.message) for warning in caught] == []


def test_many_loops_at_once_each_keep_their_own(server: Server) -> None:
    provider = provider_for(server)
    answers: list[list[str]] = []
    barrier = threading.Barrier(3)

    async def calls() -> list[str]:
        first = await ask(provider)
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait, 5)
        return [first, await ask(provider)]

    threads = [threading.Thread(target=lambda: answers.append(asyncio.run(calls()))) for _ in "abc"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert answers == [["Hello", "Hello"]] * 3
    assert (server.connections, server.requests) == (3, 6)
    assert pool.open_requests() == 0
