"""`providerhub chat`: stream one answer to stdout, chunk by chunk, as it arrives.

`select` turns the arguments into what to call (one provider, checked before any network I/O);
`call_options` into the transport options of the call; `stream` does the call.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, TextIO

from ..errors import ModelNotSupportedError, ProviderNotWorkingError
from ..messages import Messages
from ..provider import Provider
from ..registry import Registry
from .common import UsageError, load_registry


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `chat` subcommand."""
    chat = commands.add_parser(
        "chat",
        help="stream an answer from a provider",
        description="Stream an answer to PROMPT (or to stdin) from a provider, to stdout.",
    )
    target = chat.add_mutually_exclusive_group(required=True)
    target.add_argument("-p", "--provider", metavar="NAME", help="provider name (any case)")
    chat.add_argument(
        "-m", "--model", default="", help="model name (default: the provider's default)"
    )
    chat.add_argument("--system", metavar="TEXT", help="a system message sent before the prompt")
    chat.add_argument(
        "--ignore-working",
        action="store_true",
        help="use a provider even though it is marked not working",
    )
    chat.add_argument(
        "--timeout",
        type=_seconds,
        metavar="S",
        help="seconds the whole answer may take (also caps connect, first chunk and idle)",
    )
    chat.add_argument("prompt", nargs="*", help="the prompt (default: read stdin)")
    chat.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Select, read the prompt, stream the answer."""
    provider = select(args, load_registry())
    messages = build_messages(args.system, read_prompt(args.prompt, sys.stdin))
    asyncio.run(stream(provider, args.model, messages, call_options(args), sys.stdout))
    return 0


def select(args: argparse.Namespace, registry: Registry) -> Provider:
    """What to call: the provider named by -p, refused if marked not working or off-model."""
    provider = registry.get(args.provider)
    if not provider.working and not args.ignore_working:
        raise ProviderNotWorkingError(provider.name)
    if args.model and not provider.supports_model(args.model):
        raise ModelNotSupportedError(provider.name, args.model)
    return provider


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
    provider: Provider, model: str, messages: Messages, options: dict[str, Any], out: TextIO
) -> None:
    """Write each chunk to `out` as it arrives; end the output with a newline."""
    chunks = provider.create_async_generator(model, messages, **options)
    ends_line = True
    try:
        async for chunk in chunks:
            if chunk:
                out.write(chunk)
                out.flush()
                ends_line = chunk.endswith("\n")
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
        if not ends_line:
            out.write("\n")
            out.flush()


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value
