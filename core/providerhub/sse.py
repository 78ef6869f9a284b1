"""Incremental server-sent-events decoder: bytes in, events out, whatever the TCP chunking.

Follows the WHATWG event-stream rules: lines end in LF, CRLF or CR; `data:` lines accumulate
(joined by LF) until a blank line dispatches the event; lines starting with `:` are comments.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class ServerSentEvent:
    """One dispatched event. `data` is the joined data lines, decoded as UTF-8."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed it bytes as they arrive; it returns the events completed so far.

    `max_line` bounds the bytes held for one unfinished line, so a hostile upstream cannot make
    the decoder buffer without limit (ValueError past it).
    """

    __slots__ = ("_buffer", "_data", "_event", "_id", "_retry", "max_line")

    def __init__(self, max_line: int = 16 * 1024 * 1024) -> None:
        self.max_line = max_line
        self._buffer = b""
        self._data: list[bytes] = []
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume `chunk`; return the events it completed, in order."""
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            hold_cr = buffer.endswith(b"\r")
            if hold_cr:
                buffer = buffer[:-1]
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if hold_cr:
                buffer += b"\r"
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        if len(self._buffer) > self.max_line:
            raise ValueError(f"event-stream line longer than {self.max_line} bytes")
        events: list[ServerSentEvent] = []
        data = self._data
        for line in lines:
            if line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif not line:
                if data or self._event is not None:
                    events.append(self._dispatch())
                    data = self._data
            elif line[0] != 58:  # b":" starts a comment
                self._field(line)
        return events

    def flush(self) -> list[ServerSentEvent]:
        """End of stream: dispatch the pending event even though no blank line ended it.

        Strictly the spec discards it; line-oriented upstreams (and the seed's reader) rely on it.
        """
        events = self.feed(b"\n") if self._buffer.rstrip(b"\r") else []
        self._buffer = b""
        if self._data:
            events.append(self._dispatch())
        return events

    def _field(self, line: bytes) -> None:
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id" and b"\0" not in value:
            self._id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():
            self._retry = int(value)
        elif name == b"data":
            self._data.append(value)

    def _dispatch(self) -> ServerSentEvent:
        data = b"\n".join(self._data).decode("utf-8", "replace") if self._data else ""
        event = ServerSentEvent(data, self._event or "message", self._id, self._retry)
        self._data = []
        self._event = None
        return event
