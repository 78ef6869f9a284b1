"""The common text chunk of a stream, recognized without decoding its JSON, for
`providerhub.chat_completions.parse_events`.

Most upstreams send every text delta of an answer as one document with only the content
changed: `{"id": "x", ..., "choices": [{"index": 0, "delta": {"content": "Hi"}, ...}]}`. Once
such a chunk has been parsed in full, its text around the content's characters is the
stream's shape: a later event that is the shape's prefix, characters a JSON string holds
literally (no quote, backslash or control character) and the shape's suffix is that same
document with another content, so its text is exactly those characters, what decoding it would
give. Anything else is decoded. Private: the parser owns it.
"""

from __future__ import annotations

import sys
from typing import Any

TRIES = 3
"""Shapes learned per stream at most (a stream whose chunks differ in more than the content,
say a random padding field, is decoded after that)."""

_PROBE = "providerhub shape probe"
_KEY = '"content":'


class TextShape:
    """A stream's shape; `least` is sys.maxsize until one is learned, so nothing matches."""

    __slots__ = ("least", "prefix", "suffix", "tries")

    def __init__(self) -> None:
        self.prefix = ""
        self.suffix = ""
        self.least = sys.maxsize
        self.tries = 0

    def learn(self, data: str, chunk: dict[str, Any], loads: Any) -> None:
        """Take the shape of `data`, which decoded to `chunk`: a chunk whose only effect is
        the text of its first choice's delta, `{"content": ...}` alone.

        The content's characters must appear in `data` as they are, and the shape is kept only
        if `loads` of the shape with other characters gives that chunk with that content.
        """
        self.tries += 1
        choices = chunk["choices"]
        key = data.find(_KEY)
        if key < 0:
            return
        start = key + len(_KEY)
        while data[start : start + 1] in (" ", "\t"):
            start += 1
        if data[start : start + 1] != '"':
            return
        start += 1
        end = data.find('"', start)
        if end < 0 or data[start:end] != choices[0]["delta"]["content"]:
            return
        prefix, suffix = data[:start], data[end:]
        probe = {**chunk, "choices": [{**choices[0], "delta": {"content": _PROBE}}, *choices[1:]]}
        try:
            if loads(prefix + _PROBE + suffix) != probe:
                return
        except (ValueError, RecursionError):
            return
        self.prefix, self.suffix, self.least = prefix, suffix, len(prefix) + len(suffix)
