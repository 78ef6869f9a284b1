"""SSEDecoder: the WHATWG event-stream rules, whatever the chunking."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from providerhub.sse import ServerSentEvent, SSEDecoder


def decode(*chunks: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.flush()


def datas(events: list[ServerSentEvent]) -> list[str]:
    return [event.data for event in events]


def decode_data(*chunks: bytes) -> list[str]:
    decoder = SSEDecoder()
    return [data for chunk in chunks for data in decoder.feed_data(chunk)] + decoder.flush_data()


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_line_endings(end: str) -> None:
    stream = f"data: one{end}{end}data: two{end}{end}".encode()
    assert datas(decode(stream)) == ["one", "two"]
    assert datas(decode(*(stream[i : i + 1] for i in range(len(stream))))) == ["one", "two"]


def test_cr_at_chunk_end_then_lf_in_next_is_one_line_ending() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert datas(decoder.feed(b"\n\r")) == ["a"]
    assert datas(decoder.feed(b"\ndata: b\r\n\r\n")) == ["b"]
    assert decoder.flush() == []


def test_cr_terminated_event_is_not_held_for_the_next_read() -> None:
    decoder = SSEDecoder()
    assert datas(decoder.feed(b"data: now\r\r")) == ["now"]


def test_event_is_returned_by_the_read_that_completes_it() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x") == []
    assert decoder.feed(b"y\n") == []
    assert datas(decoder.feed(b"\ndata: z\n\ndata: w")) == ["xy", "z"]
    assert datas(decoder.flush()) == ["w"]


def test_comments_are_ignored_and_dispatch_nothing() -> None:
    stream = b": keep-alive\n\n:another\ndata: a\n: inside\n\n"
    assert datas(decode(stream)) == ["a"]


def test_multi_line_data_joined_with_lf() -> None:
    events = decode(b"data: first\ndata:second\ndata:  third\ndata\n\n")
    assert datas(events) == ["first\nsecond\n third\n"]


def test_event_id_retry_fields() -> None:
    events = decode(b"event: delta\nid: 7\nretry: 1500\ndata: a\n\ndata: b\n\n")
    assert events == [
        ServerSentEvent("a", event="delta", id="7", retry=1500),
        ServerSentEvent("b", event="message", id="7", retry=1500),
    ]


def test_invalid_fields_are_ignored() -> None:
    events = decode(b"id: a\0b\nretry: soon\nunknown: x\nevent\ndata: a\n\n")
    assert events == [ServerSentEvent("a", event="message", id=None, retry=None)]


def test_block_without_data_dispatches_nothing_and_resets_event_type() -> None:
    assert datas(decode(b"event: ping\n\ndata: a\n\n")) == ["a"]
    assert decode(b"event: ping\n\ndata: a\n\n")[0].event == "message"


def test_empty_data_line_dispatches_an_empty_event() -> None:
    assert datas(decode(b"data:\n\n")) == [""]


def test_leading_bom_is_dropped_even_when_split() -> None:
    stream = b"\xef\xbb\xbfdata: a\n\n"
    assert datas(decode(stream)) == ["a"]
    assert datas(decode(stream[:1], stream[1:2], stream[2:])) == ["a"]


def test_utf8_split_inside_a_character() -> None:
    stream = "data: héllo ✓\n\n".encode()
    assert datas(decode(stream[:8], stream[8:15], stream[15:])) == ["héllo ✓"]


def test_flush_dispatches_the_unterminated_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b") == [ServerSentEvent("a")]
    assert datas(decoder.flush()) == ["b"]
    assert decoder.flush() == []


def test_flush_after_a_complete_line_without_blank_line() -> None:
    assert datas(decode(b"data: a\n")) == ["a"]
    assert datas(decode(b"data: a\r")) == ["a"]


def test_flush_of_nothing_pending() -> None:
    assert decode(b"") == []
    assert decode(b": comment\n") == []


def test_max_line_bounds_an_unfinished_line() -> None:
    decoder = SSEDecoder(max_line=10)
    assert decoder.feed(b"data: 1234") == []
    with pytest.raises(ValueError, match="event-stream line longer than 10 bytes"):
        decoder.feed(b"5")


def test_max_line_counts_held_bytes_not_complete_lines() -> None:
    decoder = SSEDecoder(max_line=10)
    assert datas(decoder.feed(b"data: 0123456789abcdef\n\n")) == ["0123456789abcdef"]
    assert decoder.feed(b"data: 1234") == []
    assert datas(decoder.feed(b"\n\n")) == ["1234"]


@pytest.mark.parametrize(
    ("first", "then"),
    [
        (b"data: 12345\n", b"data: 678901\n"),
        (None, b"data: 123456\ndata: 78901\n"),
        (b"data: 123456\n", b"data: 7890\ndata: x"),
    ],
    ids=["never dispatched", "within one read", "pending data counts with the held line"],
)
def test_max_line_bounds_data_lines(first: bytes | None, then: bytes) -> None:
    decoder = SSEDecoder(max_line=10)
    if first is not None:
        assert decoder.feed(first) == []
    with pytest.raises(ValueError, match=r"^event-stream event longer than 10 bytes$"):
        decoder.feed(then)


def test_max_line_counts_each_data_line_once_and_resets_on_dispatch() -> None:
    decoder = SSEDecoder(max_line=10)
    for piece in (b"data: 12\n", b"data: 34\n", b"data: 56\n", b": comment\n", b"data: 78\n"):
        assert decoder.feed(piece) == []
    assert datas(decoder.feed(b"\n")) == ["12\n34\n56\n78"]
    assert datas(decoder.feed(b"data: 0123456789\n\ndata: 0123456789\n")) == ["0123456789"]
    assert datas(decoder.flush()) == ["0123456789"]


def test_a_line_spanning_many_reads() -> None:
    payload = b"x" * 300_000
    stream = b"data: " + payload + b"\n\n"
    pieces = [stream[i : i + 4096] for i in range(0, len(stream), 4096)]
    assert decode(*pieces) == [ServerSentEvent(payload.decode())]


# Property: any split of the encoded stream decodes to the same events.

_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\0"),
    max_size=20,
)
_events = st.lists(
    st.builds(
        ServerSentEvent,
        data=st.lists(_text, min_size=1, max_size=3).map("\n".join),
        event=st.sampled_from(["message", "delta", "error"]),
        id=st.none() | st.text(alphabet="abc123", min_size=1, max_size=4),
    ),
    max_size=8,
)
_endings = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def _encoded(draw: st.DrawFn) -> tuple[list[ServerSentEvent], bytes]:
    """Events and a wire encoding of them with randomly mixed line endings and comments."""
    out: list[str] = []

    def line(text: str) -> None:
        ending = draw(_endings)
        if not text and ending == "\n" and out and out[-1].endswith("\r"):
            ending = "\r\n"  # CR then a lone LF would read as one CRLF line ending
        out.append(text + ending)

    last_id: str | None = None
    expected = []
    for event in draw(_events):
        if draw(st.booleans()):
            line(": keep-alive")
        if event.event != "message":
            line(f"event: {event.event}")
        if event.id is not None:
            line(f"id: {event.id}")
            last_id = event.id
        for data in event.data.split("\n"):
            line(f"data: {data}")
        line("")
        expected.append(ServerSentEvent(event.data, event.event, last_id))
    return expected, "".join(out).encode()


def _split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(stream) + 1) for cut in cuts})
    bounds = [0, *points, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(_encoded(), st.lists(st.integers(min_value=0), max_size=30))
def test_any_split_yields_the_same_events(
    encoded: tuple[list[ServerSentEvent], bytes], cuts: list[int]
) -> None:
    expected, stream = encoded
    whole = decode(stream)
    assert whole == expected
    assert decode(*_split(stream, cuts)) == whole
    assert decode_data(*_split(stream, cuts)) == datas(whole)


@settings(max_examples=100, deadline=None)
@given(_encoded())
def test_byte_by_byte_yields_the_same_events(encoded: tuple[list[ServerSentEvent], bytes]) -> None:
    expected, stream = encoded
    assert decode(*(stream[i : i + 1] for i in range(len(stream)))) == expected


# feed_data: the same events' data, with no object per event (what http.read_data yields).


def test_the_common_shape_is_framed_in_one_read() -> None:
    stream = b'data: {"a": 1}\n\ndata: two words\n\ndata:  spaced\n\ndata: tail'
    decoder = SSEDecoder()
    assert decoder.feed_data(stream) == ['{"a": 1}', "two words", " spaced"]
    assert decoder.flush_data() == ["tail"]
    assert datas(decode(stream)) == ['{"a": 1}', "two words", " spaced", "tail"]


def test_an_event_name_pending_from_the_last_read_names_the_next_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 4\nevent: delta\n") == []
    assert decoder.feed(b"data: a\n\ndata: b\n\n") == [
        ServerSentEvent("a", "delta", "4"),
        ServerSentEvent("b", "message", "4"),
    ]


def test_invalid_utf8_is_replaced_as_line_by_line_whatever_the_reads() -> None:
    stream = b"data: a\xe2\x82\n\ndata: \xff\xfe b\n\nevent: \xc3\n" + b"data: \xac\n\n"
    expected = ["a\ufffd", "\ufffd\ufffd b", "\ufffd"]
    assert datas(decode(stream)) == expected
    assert datas(decode(*(stream[i : i + 1] for i in range(len(stream))))) == expected
    assert decode(stream)[2].event == "\ufffd"


def test_a_retry_of_non_ascii_digits_is_ignored() -> None:
    assert decode("retry: ٣\ndata: a\n\n".encode()) == [ServerSentEvent("a", retry=None)]
