"""`providerhub chat`: stream one answer to stdout, chunk by chunk, as it arrives.

`targets.select` turns the arguments into what to call (checked before any network I/O);
`call_options` into the transport options of the call; `stream` does the call and, with -v,
writes the attempt trace to stderr once the stream has ended, however it ended.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any, TextIO

from .. import failure
from ..attempt import Attempt
from ..messages import Messages
from ..provider import Provider
from ..routing import FallbackChain
from .common import UsageError, config_option, load_setup
from .targets import select


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `chat` subcommand."""
    chat = commands.add_parser(
        "chat",
        help="stream an answer from a provider or a fallback chain",
        description="Stream an answer to PROMPT (or to stdin) from a provider or a chain, "
        "to stdout.",
    )
    target = chat.add_mutually_exclusive_group()
    target.add_argument("-p", "--provider", metavar="NAME", help="provider name (any case)")
    target.add_argument(
        "--chain",
        metavar="A,B,C",
        help="try providers in order until one answers: comma-separated provider (or chain) "
        "names, or the name of a chain in the config",
    )
    chat.add_argument(
        "-m",
        "--model",
        default="",
        help="model name (default: each provider's default); without -p and --chain, "
        "a model alias from the config's [models] picks its chain",
    )
    chat.add_argument("--system", metavar="TEXT", help="a system message sent before the prompt")
    chat.add_argument(
        "--ignore-working",
        action="store_true",
        help="use providers even though they are marked not working",
    )
    chat.add_argument(
        "--timeout",
        type=_seconds,
        metavar="S",
        help="seconds the whole answer may take (also caps connect, first chunk and idle); "
        "in a chain, each provider's attempt",
    )
    chat.add_argument(
        "--retries",
        type=_count,
        metavar="N",
        help="chain: retry a provider's retryable failure N times before moving on",
    )
    chat.add_argument(
        "--hedge-after",
        type=_seconds,
        metavar="S",
        help="chain: start the next provider too when one has sent nothing for S seconds",
    )
    chat.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print the attempt trace to stderr after the answer",
    )
    config_option(chat, default=argparse.SUPPRESS)
    chat.add_argument("prompt", nargs="*", help="the prompt (default: read stdin)")
    chat.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Select, read the prompt, stream the answer."""
    target = select(args, load_setup(args.config))
    messages = build_messages(args.system, read_prompt(args.prompt, sys.stdin))
    trace = sys.stderr if args.verbose else None
    asyncio.run(
        stream(target.provider, target.model, messages, call_options(args), sys.stdout, trace)
    )
    return 0


def call_options(args: argparse.Namespace) -> dict[str, Any]:
    """Transport options of the call (keyword arguments of create_async_generator)."""
    return {} if args.timeout is None else {"timeout": args.timeout}


def read_prompt(words: list[str], stdin: TextIO | None) -> str:
    """The prompt from the arguments, or else all of stdin; an empty one is a usage error."""
    text = " ".join(words) if words else (stdin.read() if stdin is not None else "")
    if not text.strip():
        raise UsageError("no prompt: give it as arguments or on stdin")
    return text.rstrip("\n")


def build_messages(system: str | None, prompt: str) -> list[dict[str, str]]:
    """The chat: an optional system message, then the prompt."""
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": prompt}]


async def stream(
    provider: Provider,
    model: str,
    messages: Messages,
    options: dict[str, Any],
    out: TextIO,
    trace: TextIO | None = None,
) -> None:
    """Write each chunk to `out` as it arrives; end the output with a newline.

    With `trace`, write one line per attempt to it at the end (a chain's `attempts`; for a
    single provider, one attempt timed here).
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    own: Attempt | None = None
    chunks: AsyncIterator[str]
    if isinstance(provider, FallbackChain):
        chunks = provider.stream(model, messages, **options)
        attempts = chunks.attempts
    else:
        chunks = provider.create_async_generator(model, messages, **options)
        own = Attempt(provider.name, "failed")
        attempts = [own]
    ends_line = True
    try:
        async for chunk in chunks:
            if chunk:
                if own is not None and own.time_to_first_chunk is None:
                    own.time_to_first_chunk = loop.time() - started
                out.write(chunk)
                out.flush()
                ends_line = chunk.endswith("\n")
        if own is not None:
            own.outcome = "served"
    except BaseException as exc:
        if own is not None:
            _ended(own, exc)
        raise
    finally:
        if own is not None:
            own.duration = loop.time() - started
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
        if not ends_line:
            out.write("\n")
            out.flush()
        if trace is not None:
            trace.write("".join(f"{line}\n" for line in trace_lines(attempts)))
            trace.flush()


def trace_lines(attempts: list[Attempt], parent: str = "") -> list[str]:
    """The -v trace: per attempt, provider, outcome, reason, time to first chunk, duration.

    The attempts of a nested chain (`Attempt.inner`), whether it served, failed or was
    interrupted, follow its own line, numbered under it (2.1, 2.2, ...).
    """
    lines = []
    for number, attempt in enumerate(attempts, 1):
        label = f"{parent}{number}"
        lines.append(f"providerhub: attempt {label}: {attempt}{attempt.details()}")
        lines += trace_lines(attempt.inner, f"{label}.")
    return lines


def _ended(attempt: Attempt, exc: BaseException) -> None:
    """Record how a single provider's stream failed or was stopped."""
    if not isinstance(exc, Exception):
        attempt.outcome, attempt.reason = "cancelled", "stopped by the consumer"
        return
    attempt.outcome = "failed" if attempt.time_to_first_chunk is None else "interrupted"
    attempt.error, attempt.reason = exc, failure.reason(exc, attempt.provider)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value
