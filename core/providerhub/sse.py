"""Incremental server-sent-events decoder: bytes in, events out, whatever the TCP chunking.

A plugin gets `ServerSentEvent`s from `providerhub.http.read_events`, which runs an
`SSEDecoder` over the response; a plugin reading bytes some other way feeds its own decoder.
Follows the WHATWG event-stream rules: lines end in LF, CRLF or CR; a leading BOM is dropped;
`data:` lines accumulate (joined by LF) until a blank line dispatches the event (a block with no
data dispatches nothing); lines starting with `:` are comments; `id` persists across events.
No aiohttp import.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent"]


@dataclass(slots=True)
class ServerSentEvent:
    """One dispatched event. `data` is the joined data lines, decoded as UTF-8."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed it bytes as they arrive; it returns the events completed so far.

    A line is handled as soon as its terminator arrives (a CR ending one read is not held back
    waiting for a possible LF). `max_line` bounds the bytes held for one unfinished line and the
    data accumulated for one undispatched event, so a hostile upstream cannot make the decoder
    buffer without limit (ValueError past it); a long line costs linear time however many reads
    it spans.
    """

    __slots__ = (
        "_counted",
        "_data",
        "_data_size",
        "_event",
        "_held",
        "_id",
        "_parts",
        "_retry",
        "_skip_lf",
        "_started",
        "max_line",
    )

    def __init__(self, max_line: int = 16 * 1024 * 1024) -> None:
        self.max_line = max_line
        self._parts: list[bytes] = []
        self._held = 0
        self._skip_lf = False
        self._started = False
        self._data: list[bytes] = []
        self._counted = 0
        self._data_size = 0
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume `chunk`; return the events it completed, in order."""
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[0] == 10:  # the LF of a CRLF cut between two reads
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._skip_lf = chunk[-1] == 13
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = chunk.split(b"\n")
        rest = lines.pop()
        if not lines:
            if rest:
                self._hold(rest)
            return []
        if self._parts:
            self._parts.append(lines[0])
            lines[0] = b"".join(self._parts)
            self._parts = []
            self._held = 0
        if not self._started:
            self._started = True
            if lines[0].startswith(b"\xef\xbb\xbf"):
                lines[0] = lines[0][3:]
        if rest:
            self._hold(rest)
        events: list[ServerSentEvent] = []
        data = self._data
        for line in lines:
            if line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif not line:
                if data:
                    events.append(self._dispatch())
                    data = self._data
                else:
                    self._event = None
            elif line[0] != 58:  # b":" starts a comment
                self._field(line)
        if data:
            self._count(data)
        return events

    def flush(self) -> list[ServerSentEvent]:
        """End of stream: dispatch the pending event even though no blank line ended it.

        Strictly the spec discards it; line-oriented upstreams (and the seed's reader) rely on it.
        """
        events = self.feed(b"\n") if self._parts else []
        self._skip_lf = False
        if self._data:
            events.append(self._dispatch())
        self._event = None
        return events

    def _hold(self, piece: bytes) -> None:
        self._parts.append(piece)
        self._held += len(piece)
        if self._held > self.max_line:
            raise ValueError(f"event-stream line longer than {self.max_line} bytes")

    def _count(self, data: list[bytes]) -> None:
        """Add the data lines this read left pending to the event's size (each counted once)."""
        counted = self._counted
        self._counted = len(data)
        for index in range(counted, len(data)):
            self._data_size += len(data[index])
        if self._data_size + self._held > self.max_line:
            raise ValueError(f"event-stream event longer than {self.max_line} bytes")

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
        data = self._data
        text = (data[0] if len(data) == 1 else b"\n".join(data)).decode("utf-8", "replace")
        event = ServerSentEvent(text, self._event or "message", self._id, self._retry)
        self._data = []
        self._counted = 0
        self._data_size = 0
        self._event = None
        return event
