"""The request/answer loop of an endpoint that answers in JSON or server-sent events.

`post` sends one request and yields the answer's events: a JSON body read whole (at most
`providerhub.http.MAX_BODY` bytes), or SSE batches, each batch's events yielded before the
error it ends with is raised, so the text received before an in-stream error still reaches
the caller. A stream that ends before its format's last event is an UpstreamConnectionError,
one that carried nothing an EmptyStreamError; every UpstreamError raised is scrubbed of the
secrets sent first, and logged (INFO, on the plugin's logger) with the URL its text leaves out.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from ..errors import (
    EmptyStreamError,
    InvalidRequestError,
    ModelNotSupportedError,
    UpstreamConnectionError,
    UpstreamError,
)
from ..events import Event
from ..pool import Pool
from ..timeouts import Timeouts
from .credentials import Credentials

__all__ = ["Format", "choose", "post", "serves"]


def serves(model: str, models: Sequence[str], default_model: str | None) -> bool:
    """With `models` configured, those (and the default); with none, any model.

    "" means the default model, so it is served only when one is configured.
    """
    if not model:
        return default_model is not None
    return not models or model in models or model == default_model


def choose(
    provider: str,
    model: str,
    default_model: str | None,
    supported: Callable[[str], bool],
    params: dict[str, Any],
    supports_stream: bool,
) -> tuple[str, bool]:
    """The model to ask for (`supported` by the provider) and whether to stream, popping
    `stream` from `params`; InvalidRequestError or ModelNotSupportedError before any I/O."""
    model = model or default_model or ""
    if not model:
        raise InvalidRequestError(f"{provider}: no model given and no default_model configured")
    if not supported(model):
        raise ModelNotSupportedError(provider, model)
    stream = params.pop("stream", supports_stream)
    if not isinstance(stream, bool):
        raise InvalidRequestError(f"stream must be true or false, not {type(stream).__name__}")
    return model, stream and supports_stream


@dataclass(frozen=True, slots=True)
class Format:
    """How to read one call's answer; the callables fill that call's own answer state.

    `body` turns a JSON answer into its events; `batch` appends the events of a batch of event
    data (`http.read_data`) to `out` and says whether the answer is complete (stop reading);
    `finished` says, after the stream ended, whether it had ended properly; `end` names what a
    complete stream ends with ("data: [DONE]"), for the error when it did not.
    """

    body: Callable[[bytes], list[Event]]
    batch: Callable[[list[str], list[Event]], bool]
    finished: Callable[[], bool]
    end: str


async def post(
    provider: str,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    *,
    timeouts: Timeouts,
    proxy: str | None,
    credentials: Credentials,
    answer: Format,
    log: logging.Logger,
    pool: Pool | None = None,
) -> AsyncIterator[Event]:
    """POST `body` (its "stream" and "model" fields say what is asked) and yield the answer,
    on a connection from `pool` (the provider's)."""
    from .. import http  # imports aiohttp: only when a request is made

    stream = body["stream"]
    log.debug("%s: POST %s model=%s stream=%s", provider, url, body["model"], stream)
    produced = done = False
    try:
        async with http.request(
            provider,
            url,
            json_body=body,
            headers=headers,
            timeouts=timeouts,
            proxy=proxy,
            pool=pool,
        ) as response:
            if not stream or response.content_type == "application/json":
                events = answer.body(await http.read_body(response, provider))
                if not events:
                    raise EmptyStreamError(provider)
                for event in events:
                    yield event
                return
            batches = http.read_data(response, provider)
            out: list[Event] = []
            try:
                async for batch in batches:
                    failure: UpstreamError | None = None
                    try:
                        done = answer.batch(batch, out)
                    except UpstreamError as exc:
                        failure = exc
                    for event in out:
                        yield event
                    if failure is not None:
                        raise failure
                    produced = produced or bool(out)
                    out.clear()
                    if done:
                        break
            finally:
                await cast("AsyncGenerator[Any, None]", batches).aclose()
        if not done and not answer.finished():
            raise UpstreamConnectionError(provider, f"stream ended before {answer.end}", url=url)
        if not produced:
            raise EmptyStreamError(provider)
    except UpstreamError as exc:
        credentials.scrub(exc)
        log.info("%s: POST %s failed: %s%s", provider, url, exc, _cause(exc))
        raise


def _cause(error: BaseException) -> str:
    """The transport error behind `error`, for the log line (it may name the host)."""
    cause = error.__cause__
    return "" if cause is None else f" ({type(cause).__name__}: {cause})"
