"""`providerhub chat -a FILE`: files attached to the prompt as chat-completions content parts.

By extension: .png, .jpg/.jpeg, .gif and .webp become `image_url` parts (a base64 data URL),
.wav and .mp3 `input_audio` parts (base64 data and the format), anything else a `file` part
(its name and a data URL typed by `mimetypes`, else application/octet-stream). Files are read
before any network I/O; one that is missing, unreadable or over MAX_BYTES is a usage error
naming it.
"""

from __future__ import annotations

import base64
import mimetypes
import os
from collections.abc import Sequence
from typing import Any

from .common import UsageError

MAX_BYTES = 20 * 1024 * 1024
"""The largest file -a takes (20 MiB)."""

IMAGES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
AUDIO = {".wav": "wav", ".mp3": "mp3"}
COMPRESSED = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz"}


def content(prompt: str, paths: Sequence[str]) -> str | list[dict[str, Any]]:
    """The user message's content: the prompt alone, or its text part then one part per file."""
    if not paths:
        return prompt
    return [{"type": "text", "text": prompt}, *(part(path) for path in paths)]


def part(path: str) -> dict[str, Any]:
    """The content part for the file at `path` (UsageError if it cannot be attached)."""
    data = base64.b64encode(read(path)).decode("ascii")
    suffix = os.path.splitext(path)[1].lower()
    if suffix in IMAGES:
        return {"type": "image_url", "image_url": {"url": f"data:{IMAGES[suffix]};base64,{data}"}}
    if suffix in AUDIO:
        return {"type": "input_audio", "input_audio": {"data": data, "format": AUDIO[suffix]}}
    mime, encoding = mimetypes.guess_type(path)
    if encoding is not None:  # e.g. .tar.gz: the bytes are the compressed file
        mime = COMPRESSED.get(encoding)
    mime = mime or "application/octet-stream"
    name = os.path.basename(path)
    return {"type": "file", "file": {"filename": name, "file_data": f"data:{mime};base64,{data}"}}


def read(path: str) -> bytes:
    """The bytes of `path`, at most MAX_BYTES of them, or UsageError naming it."""
    try:
        with open(path, "rb") as file:
            if os.fstat(file.fileno()).st_size > MAX_BYTES:
                raise _too_large(path)
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot attach {path!r}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise _too_large(path)
    return data


def _too_large(path: str) -> UsageError:
    return UsageError(f"cannot attach {path!r}: larger than {MAX_BYTES // 2**20} MiB")
