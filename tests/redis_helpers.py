"""A real redis-server on a free loopback port, for the shared health store's tests.

Without redis-server these tests skip locally (saying how to install it) and fail in CI (`CI`
set, as `.ci/run` does): the suite must never pass there without having run them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

BOUND = 10.0
"""Seconds a server may take to start or stop (a hang guard only)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process on 127.0.0.1:`port`, no persistence; `stop` and `start` again
    (same port, empty state) to play a restart."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tempfile.mkdtemp(prefix="providerhub-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", self.dir]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(BOUND)
            self.process = None


def redis_binary() -> str:
    """The redis-server to run; skip (fail in CI) when there is none."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = (
            "redis-server is not installed: `apt-get install redis-server` (or your system's "
            "package) to run the shared health store's tests"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


def serve_redis() -> Iterator[RedisServer]:
    server = RedisServer(redis_binary())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
