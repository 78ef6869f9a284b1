"""The gateway's bounds on slow and many clients, over real sockets: the request deadline
(slowloris), idle keep-alive connections, the concurrency and body-bytes admission, and
clients that go away mid-answer (a 499 access line, never an error traceback)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import aiohttp
import pytest
from helpers import BOUND, MakeUpstream, until
from providerhub import MemoryHealthStore, Registry
from providerhub.config import parse_config
from providerhub.server import app as gateway_app
from providerhub.server import create_app, limits, run, start
from providerhub.testing import FakeUpstream, Reply
from test_server import HELLO, events

CHAT = "/v1/chat/completions"


def one_provider(upstream: FakeUpstream, server: str = "") -> str:
    return f"""
[providers.a]
use = "openai"
base_url = "{upstream.url}/v1"
default_model = "model-a"

[server]
{server}
"""


@asynccontextmanager
async def serving(text: str, *, request_timeout: float = 30.0) -> AsyncIterator[tuple[str, Any]]:
    """The gateway for config `text` on a free port: its URL and runner."""
    config = parse_config(text)
    app = create_app(config.build_registry(Registry.discover()), config, health=MemoryHealthStore())
    runner, url = await start(app, "127.0.0.1", 0, grace=0.5, request_timeout=request_timeout)
    try:
        yield url, runner
    finally:
        await runner.cleanup()


async def read_to_close(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (bounded: a hang fails)."""
    async with asyncio.timeout(BOUND):
        return await reader.read()


def status_and_error(raw: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]


async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, piece: bytes) -> None:
    """Send `piece` every 50 ms until the server closes the connection."""
    with suppress(ConnectionError):
        while not reader.at_eof():
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.05)


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with suppress(ConnectionError):
        await writer.wait_closed()


async def test_slowloris_connections_are_answered_408_and_closed_while_others_are_served(
    fake_upstream: MakeUpstream,
) -> None:
    upstream = await fake_upstream(default=Reply.text("still ", "serving"))
    head = f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    async with serving(one_provider(upstream), request_timeout=0.5) as (url, runner):
        port = int(url.rsplit(":", 1)[1])
        opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(60)]
        trickles = []
        try:
            for index, (reader, writer) in enumerate(opened):
                if index % 3 == 0:  # a head that never ends
                    writer.write(head.encode())
                    trickles.append(asyncio.create_task(trickle(reader, writer, b"X-Slow: 1\r\n")))
                elif index % 3 == 1:  # a whole head, then a body that never ends
                    writer.write(f"{head}Content-Length: 100000\r\n\r\n".encode())
                    trickles.append(asyncio.create_task(trickle(reader, writer, b" ")))
                # else: silent, not a byte
            answered = await asyncio.gather(*(read_to_close(reader) for reader, _ in opened))
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    f"{url}{CHAT}", json={"model": "a", "messages": HELLO, "stream": True}
                ) as response,
            ):
                assert response.status == 200
                found = events(await response.text())
            await asyncio.gather(*trickles)
        finally:
            for task in trickles:
                task.cancel()
            for _, writer in opened:
                await close(writer)
        await until(lambda: not runner.server.connections)
    assert found[-1] == "[DONE]"
    for raw in answered:
        status, error = status_and_error(raw)
        assert status == 408
        assert error == {
            "message": "the request was not received within 0.5 s ([server] request_timeout)",
            "type": "invalid_request_error",
            "param": None,
            "code": "request_timeout",
        }
    assert len(upstream.requests) == 1


async def flood(writer: asyncio.StreamWriter) -> int:
    """Send header lines as fast as the server takes them, until it closes: the bytes sent."""
    sent = 0
    with suppress(ConnectionError):
        while sent < 2**26:
            writer.write(b"X-Flood: " + b"f" * 54 + b"\r\n")
            sent += 65
            await writer.drain()
    return sent


async def test_a_request_refused_while_still_arriving_gets_its_whole_answer(
    fake_upstream: MakeUpstream,
) -> None:
    """The parser refuses a head that grows past its limit while the client still sends it:
    the server reads and drops the rest (a lingering close), so the client reads the 400 and a
    clean end rather than a reset that destroys the answer."""
    upstream = await fake_upstream()
    async with serving(one_provider(upstream)) as (url, runner):
        port = int(url.rsplit(":", 1)[1])
        for _ in range(5):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"POST {CHAT} HTTP/1.1\r\nHost: x\r\n".encode())
            sending = asyncio.create_task(flood(writer))
            try:
                status, error = status_and_error(await read_to_close(reader))
            finally:
                sending.cancel()
                await close(writer)
            assert status == 400
            assert error["type"] == "invalid_request_error"
            assert "header" in error["message"].lower(), error
        await until(lambda: not runner.server.connections)
    assert upstream.requests == []


async def test_a_lingering_connection_closes_as_soon_as_its_client_does(
    fake_upstream: MakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a 408 the server waits for the client's end, not out the whole linger."""
    monkeypatch.setattr(run, "LINGER", 60.0)  # far past `until`'s bound: only the client's end
    upstream = await fake_upstream()
    async with serving(one_provider(upstream), request_timeout=0.2) as (url, runner):
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"POST {CHAT} HTTP/1.1\r\nHost: x\r\n".encode())
        status, _ = status_and_error(await read_to_close(reader))
        assert runner.server.connections  # lingering: the client has not closed yet
        await close(writer)
        await until(lambda: not runner.server.connections)
    assert status == 408


@pytest.mark.parametrize("during", ["after its 408", "while its body arrives"])
async def test_a_stop_ends_a_linger_at_once(
    during: str, fake_upstream: MakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection lingering (or about to) never holds a shutdown: with a linger and a cut
    limit both far past the bound, the stop still ends within it, the 408 read whole."""
    monkeypatch.setattr(run, "LINGER", 60.0)
    monkeypatch.setattr(run, "CUT_LIMIT", 60.0)
    upstream = await fake_upstream()
    config = parse_config(one_provider(upstream))
    app = create_app(config.build_registry(Registry.discover()), config, health=MemoryHealthStore())
    runner, url = await start(app, "127.0.0.1", 0, grace=0.5, request_timeout=0.3)
    port = int(url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if during == "after its 408":
            writer.write(f"POST {CHAT} HTTP/1.1\r\nHost: x\r\n".encode())
            answer = await read_to_close(reader)  # the 408, then the half-close
            async with asyncio.timeout(BOUND):
                await runner.cleanup()
        else:  # the stop begins first; the 408 comes inside the grace
            writer.write(
                f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Length: 9999\r\n\r\n".encode()
            )
            sending = asyncio.create_task(trickle(reader, writer, b" "))
            async with asyncio.timeout(BOUND):
                answer, *_ = await asyncio.gather(read_to_close(reader), runner.cleanup(), sending)
    finally:
        await close(writer)
    status, error = status_and_error(answer)
    assert (status, error["code"]) == (408, "request_timeout")


async def test_a_client_sending_on_after_its_answer_is_cut_after_the_linger(
    fake_upstream: MakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "LINGER", 0.3)
    upstream = await fake_upstream()
    async with serving(one_provider(upstream), request_timeout=0.2) as (url, runner):
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"POST {CHAT} HTTP/1.1\r\nHost: x\r\n".encode())
        answer = await read_to_close(reader)
        try:
            async with asyncio.timeout(BOUND):
                with pytest.raises(ConnectionError):
                    while True:  # deaf to the end: the server must cut it
                        writer.write(b"X-Deaf: 1\r\n")
                        await writer.drain()
                        await asyncio.sleep(0.02)
            await until(lambda: not runner.server.connections)
        finally:
            await close(writer)
    assert status_and_error(answer)[0] == 408


async def test_an_idle_keep_alive_connection_is_closed(
    fake_upstream: MakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "KEEPALIVE", 0.3)
    upstream = await fake_upstream()
    async with serving(one_provider(upstream)) as (url, runner):
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await read_to_close(reader)
        await close(writer)
        await until(lambda: not runner.server.connections)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.count(b"HTTP/1.1") == 1


async def test_requests_over_max_concurrent_requests_get_429_with_retry_after(
    fake_upstream: MakeUpstream,
) -> None:
    upstream = await fake_upstream(default=Reply.text("a ", "slow ", "long ", "answer", delay=0.5))
    body = {"model": "a", "messages": HELLO, "stream": True}
    async with (
        serving(one_provider(upstream, "max_concurrent_requests = 2")) as (url, _),
        aiohttp.ClientSession() as session,
    ):
        first = await session.post(f"{url}{CHAT}", json=body)
        second = await session.post(f"{url}{CHAT}", json=body)
        async with session.post(f"{url}{CHAT}", json=body) as refused:
            assert refused.status == 429
            assert refused.headers["Retry-After"] == "1"
            error = (await refused.json())["error"]
        async with session.get(f"{url}/healthz") as health:
            assert health.status == 200
        texts = [await first.text(), await second.text()]
        first.release()
        second.release()
        async with session.post(f"{url}{CHAT}", json=body) as again:
            assert again.status == 200
            assert events(await again.text())[-1] == "[DONE]"
    assert [events(text)[-1] for text in texts] == ["[DONE]", "[DONE]"]
    assert error == {
        "message": "the gateway is answering 2 requests already; retry in 1 s",
        "type": "rate_limit_error",
        "param": None,
        "code": "server_busy",
    }
    assert len(upstream.requests) == 3


async def test_slow_bodies_hold_only_the_bytes_they_sent(fake_upstream: MakeUpstream) -> None:
    """Four bodies declaring 16 MiB and four chunked ones, each trickling a byte at a time,
    do not keep ordinary requests out: a body is charged for what arrived, not what it says."""
    upstream = await fake_upstream(default=Reply.text("served"))
    head = f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    heads = [f"{head}Content-Length: {16 * 2**20}\r\n\r\n"] * 4
    heads += [f"{head}Transfer-Encoding: chunked\r\n\r\n"] * 4
    async with serving(one_provider(upstream)) as (url, runner):
        port = int(url.rsplit(":", 1)[1])
        admission = runner.app[gateway_app.ADMISSION]
        opened = [await asyncio.open_connection("127.0.0.1", port) for _ in heads]
        trickles = []
        for index, (reader, writer) in enumerate(opened):
            writer.write(heads[index].encode())
            piece = b" " if index < 4 else b"1\r\n \r\n"
            trickles.append(asyncio.create_task(trickle(reader, writer, piece)))
        await until(lambda: admission.requests == len(heads))
        async with aiohttp.ClientSession() as session:
            answers = []
            for _ in range(3):
                body = {"model": "a", "messages": HELLO}
                async with session.post(f"{url}{CHAT}", json=body) as response:
                    answers.append((response.status, await response.json()))
        for task in trickles:
            task.cancel()
        await asyncio.gather(*trickles, return_exceptions=True)
        for _, writer in opened:
            await close(writer)
        await until(lambda: not runner.server.connections)
    assert [status for status, _ in answers] == [200] * 3
    assert [a["choices"][0]["message"]["content"] for _, a in answers] == ["served"] * 3


async def test_bodies_in_flight_are_bounded_by_what_they_cost(
    fake_upstream: MakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against a 2 MiB budget (the real one is 64 MiB): a 600 kB body in flight costs 1.8 MB, so
    a second is refused 429 while it is answered, the first is served, then an 800 kB one alone
    is a 413 (the refused ones never reach the upstream)."""
    monkeypatch.setattr(gateway_app, "MAX_BODIES", 2 * 2**20)
    upstream = await fake_upstream(default=Reply.text("ok", delay=1.0))
    async with serving(one_provider(upstream)) as (url, _), aiohttp.ClientSession() as session:

        async def send(size: int) -> tuple[int, dict[str, Any]]:
            body = {"model": "a", "messages": [{"role": "user", "content": "x" * size}]}
            async with session.post(f"{url}{CHAT}", json=body) as response:
                return response.status, await response.json()

        first = asyncio.create_task(send(600_000))
        await until(lambda: len(upstream.requests) == 1)
        second = await send(600_000)
        served = await first
        alone = await send(800_000)
    assert served[0] == 200
    assert second == (
        429,
        {
            "error": {
                "message": "request bodies in flight would exceed 2 MiB; retry in 1 s",
                "type": "rate_limit_error",
                "param": None,
                "code": "server_busy",
            }
        },
    )
    assert alone[0] == 413
    assert alone[1]["error"]["code"] == "body_too_large"
    assert alone[1]["error"]["message"].startswith(
        "the request body would take more than 2 MiB of memory decoded"
    )
    assert len(upstream.requests) == 1


@pytest.mark.parametrize(
    "items",
    [
        pytest.param(b'{"role": "user", "content": "a1"}', id="many-small-messages"),
        pytest.param(b"{}", id="many-empty-objects"),
    ],
)
async def test_a_body_decoding_past_the_budget_is_413_whatever_its_bytes(
    fake_upstream: MakeUpstream, items: bytes
) -> None:
    """A few MB of bytes, but 300,000 JSON objects decode to more than the 64 MiB budget:
    refused before decoding, with what to reduce; a body of one long string is served."""
    upstream = await fake_upstream(default=Reply.text("ok"))
    many = b",".join([items] * 300_000)
    if items.startswith(b'{"role"'):
        body = b'{"model": "a", "messages": [' + many + b"]}"
    else:
        body = b'{"model": "a", "messages": [{"role": "user", "content": "x"}], "metadata": ['
        body += many + b"]}"
    big = json.dumps({"model": "a", "messages": [{"role": "user", "content": "x" * 800_000}]})
    headers = {"Content-Type": "application/json"}
    async with serving(one_provider(upstream)) as (url, _), aiohttp.ClientSession() as session:
        async with session.post(f"{url}{CHAT}", data=io.BytesIO(body), headers=headers) as response:
            status, error = response.status, (await response.json())["error"]
        async with session.post(
            f"{url}{CHAT}", data=io.BytesIO(big.encode()), headers=headers
        ) as response:
            served = response.status
    assert status == 413
    assert (error["code"], error["type"]) == ("body_too_large", "invalid_request_error")
    assert error["message"] == (
        "the request body would take more than 64 MiB of memory decoded (3 bytes per byte and "
        "160 per JSON object, array or element); send fewer or shorter messages, content parts "
        "or parameter items"
    )
    assert served == 200
    assert len(upstream.requests) == 1


async def test_clients_gone_mid_stream_are_499_lines_and_never_an_error(
    fake_upstream: MakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """Clients reset their connection (RST) as soon as the first chunk arrives while the
    upstream streams (paced, so the answer cannot all fit in socket buffers before the reset):
    the gateway's next write meets a closing transport. Each is one 499 access line; nothing
    is logged as an error."""
    upstream = await fake_upstream(default=Reply.text(*(["word "] * 2000), delay=0.0005))
    caplog.set_level(logging.DEBUG)
    body = json.dumps({"model": "a", "messages": HELLO, "stream": True}).encode()
    request = (
        f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    clients = 40
    async with serving(one_provider(upstream)) as (url, runner):
        port = int(url.rsplit(":", 1)[1])

        async def reset_after_first_chunk() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            async with asyncio.timeout(BOUND):
                await reader.readuntil(b"data: ")
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()

        await asyncio.gather(*(reset_after_first_chunk() for _ in range(clients)))
        await until(lambda: not runner.server.connections)
        await until(lambda: upstream.active == 0)
    access = [r.getMessage() for r in caplog.records if r.name == "providerhub.server"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == []
    assert len(access) == clients
    assert all(line.startswith(f"POST {CHAT} 499 provider=a ") for line in access), access


async def test_a_stream_whose_client_stops_reading_is_cut_and_its_slot_reused(
    fake_upstream: MakeUpstream, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Two clients take both slots with streams they never read: once the gateway's writes make
    no progress for `WRITE_STALL` (0.3 s here) their connections are aborted (499 lines, the
    upstream closed), and the next request is served."""
    monkeypatch.setattr(limits, "WRITE_STALL", 0.3)
    upstream = await fake_upstream(default=Reply.text(*(["x" * 2000] * 4000)))
    caplog.set_level(logging.INFO, logger="providerhub.server")
    body = json.dumps({"model": "a", "messages": HELLO, "stream": True}).encode()
    request = (
        f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    async with serving(one_provider(upstream, "max_concurrent_requests = 2")) as (url, runner):
        port = int(url.rsplit(":", 1)[1])
        admission = runner.app[gateway_app.ADMISSION]
        stalled = []
        for _ in range(2):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            _, writer = await asyncio.open_connection(sock=sock)
            writer.transport.pause_reading()
            writer.write(request)
            stalled.append(writer)
        await until(lambda: len(upstream.requests) == 2)
        await until(lambda: admission.requests == 0)
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{url}{CHAT}", json={"model": "a", "messages": HELLO}) as response,
        ):
            assert response.status == 200
        for writer in stalled:
            await close(writer)
        await until(lambda: upstream.active == 0)
    access = [r.getMessage() for r in caplog.records if r.name == "providerhub.server"]
    assert [line.split()[2] for line in access if line.startswith("POST")] == ["499", "499", "200"]
