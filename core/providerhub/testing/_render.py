"""How a Reply becomes bytes: one format's events with the faults, pauses and cuts in their
places, or the format's non-streamed answer."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ._anthropic import Anthropic
from ._dialect import Dialect, Item
from ._ndjson import NDJSON
from ._openai import OpenAI

if TYPE_CHECKING:
    # Typing only: a Reply renders itself through the formats (`Reply.wire`); see _dialect.py.
    from ._reply import Reply, WireFormat

DIALECTS: dict[str, Dialect] = {"openai": OpenAI(), "anthropic": Anthropic(), "ndjson": NDJSON()}


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


@dataclass(frozen=True, slots=True)
class Stop:
    how: Literal["hang", "close"]


Piece = bytes | Pause | Stop


def response(
    reply: Reply, payload: Mapping[str, Any], wire: WireFormat
) -> tuple[str, Iterator[Piece]]:
    """The content type and body of a successful answer: a stream, unless the request asks
    for none (then the format's non-streamed answer, cut by `split` and ended by `end`)."""
    dialect = DIALECTS[wire]
    if reply.raw is not None or dialect.streamed(payload):
        return dialect.content_type, pieces(reply, payload, wire)
    dialect.refuse_lacking(reply, wire)
    whole: list[Piece] = [dialect.encode(dialect.completion(reply, payload)).encode()]
    if reply.end != "eof":
        whole.append(Stop(reply.end))
    return "application/json", _coalesced(whole, reply.split)


def pieces(reply: Reply, payload: Mapping[str, Any], wire: WireFormat) -> Iterator[Piece]:
    """The byte pieces of a streamed reply, with pauses and faults in their places.

    Everything but a trickle is rendered before this returns, so a reply the format cannot
    send fails here (ValueError), before any byte is sent.
    """
    dialect = DIALECTS[wire]
    if reply.trickle is not None:
        return _trickle(reply, payload, dialect)
    if reply.raw is None:
        dialect.refuse_lacking(reply, wire)
        events = _events(reply, payload, dialect)
    else:
        size = reply.split or 65536
        events = [reply.raw[start : start + size] for start in range(0, len(reply.raw), size)]
    if reply.end != "eof":
        events.append(Stop(reply.end))
    return _coalesced(events, reply.split)


def _trickle(reply: Reply, payload: Mapping[str, Any], dialect: Dialect) -> Iterator[Piece]:
    """The stream's opening, then keep-alives forever."""
    end = reply.line_ending
    for kind, data in dialect.items(reply, payload):
        if kind != "head":
            break
        yield dialect.frame(data, end).encode()
    while True:
        yield dialect.keepalive(end).encode()
        yield Pause(reply.trickle or 0.0)


def _events(reply: Reply, payload: Mapping[str, Any], dialect: Dialect) -> list[Piece]:
    """The events in order; a fault "after N" comes after the Nth delta (or scripted event),
    after the stream's opening for N = 0."""
    end = reply.line_ending
    keepalive = dialect.keepalive(end).encode() if reply.keepalive else b""

    def event(data: str) -> bytes:
        return keepalive + dialect.frame(data, end).encode()

    items: Sequence[Item]
    if reply.verbatim_events is None:
        items = dialect.items(reply, payload)
    else:
        items = [("delta", data) for data in reply.verbatim_events]
    count = sum(kind == "delta" for kind, _ in items)

    def faults(index: int) -> list[Piece]:
        out: list[Piece] = []
        if index == reply.hang_after:
            out.append(Stop("hang"))
        if index == reply.close_after:
            out.append(Stop("close"))
        if index == reply.malformed_after:
            out.append(event(dialect.malformed[index == count]))
        if index == reply.error_after:
            out.append(event(dialect.encode(dialect.error(None, reply.error_type, reply.message))))
        return out

    opening = 0
    while opening < len(items) and items[opening][0] == "head":
        opening += 1
    events: list[Piece] = [event(data) for _, data in items[:opening]]
    events += faults(0)
    seen = 0
    for kind, data in items[opening:]:
        if seen == reply.error_after:
            return events
        if kind == "delta" and reply.delay:
            events.append(Pause(reply.delay))
        events.append(event(data))
        if kind == "delta":
            seen += 1
            events += faults(seen)
    if seen == reply.error_after:
        return events
    events.extend(event(data) for data in reply.after_done)
    return events


def _coalesced(events: Sequence[Piece], split: int | None) -> Iterator[Piece]:
    """Join adjacent events into writes of about 64 KiB, or cut them into `split`-byte pieces."""
    pending = bytearray()
    for item in events:
        if not isinstance(item, bytes):
            yield from _drain(pending, split)
            yield item
            continue
        pending += item
        if split is None and len(pending) >= 65536:
            yield from _drain(pending, split)
    yield from _drain(pending, split)


def _drain(pending: bytearray, split: int | None) -> Iterator[bytes | Pause]:
    if split is None:
        if pending:
            yield bytes(pending)
            pending.clear()
        return
    while pending:
        yield bytes(pending[:split])
        del pending[:split]
        yield Pause(0.001)
