"""The floor of any Python asyncio gateway: a byte relay on bare asyncio protocols.

`POST /<index>/v1/chat/completions` goes to upstream number `index`, over an upstream
connection of the client's connection (opened on its first request there). The request's head
is parsed only for its path and Content-Length; it goes upstream as a fixed POST with its body,
and the chunked answer's bytes go back as they arrive until its last chunk. No HTTP library, no
JSON, no checks: what asyncio's transports cost by themselves on this machine. It serves the
bench's upstreams only (keep-alive, chunked answers), one request at a time per connection.

    python bench/_relay.py URL [URL ...]     # prints "serving http://127.0.0.1:PORT"
"""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import urlsplit

LAST_CHUNK = b"0\r\n\r\n"


class Front(asyncio.Protocol):
    """A client connection: requests in, relayed one at a time."""

    def __init__(self, upstreams: list[tuple[str, int]]) -> None:
        self.upstreams = upstreams
        self.buffer = b""
        self.backs: dict[int, asyncio.Transport] = {}
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.pump()

    def pump(self) -> None:
        """Send the next whole request upstream, unless one is in flight."""
        if self.busy:
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        request_line, *headers = self.buffer[:end].split(b"\r\n")
        length = 0
        for line in headers:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        body = self.buffer[end + 4 : end + 4 + length]
        self.buffer = self.buffer[end + 4 + length :]
        self.busy = True
        index = int(request_line.split(b" ")[1].split(b"/")[1])
        host, port = self.upstreams[index]
        head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
        head += f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        back = self.backs.get(index)
        if back is not None:
            back.write(head.encode() + body)
        else:
            self.opening = asyncio.get_running_loop().create_task(
                self.open(index, head.encode() + body)
            )

    async def open(self, index: int, request: bytes) -> None:
        loop = asyncio.get_running_loop()
        back, _ = await loop.create_connection(lambda: Back(self), *self.upstreams[index])
        self.backs[index] = back
        back.write(request)

    def connection_lost(self, exc: Exception | None) -> None:
        for back in self.backs.values():
            back.close()


class Back(asyncio.Protocol):
    """The upstream connection of one `Front`: its answers' bytes go straight back."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.tail = b""

    def data_received(self, data: bytes) -> None:
        self.front.transport.write(data)
        self.tail = (self.tail + data)[-len(LAST_CHUNK) :]
        if self.tail == LAST_CHUNK:
            self.tail = b""
            self.front.busy = False
            self.front.pump()


async def main(urls: list[str]) -> None:
    upstreams = []
    for url in urls:
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None
        upstreams.append((parts.hostname, parts.port))
    server = await asyncio.get_running_loop().create_server(
        lambda: Front(upstreams), "127.0.0.1", 0
    )
    print(f"serving http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
