"""`providerhub chat`: stream one answer to stdout as it arrives.

`targets.select` turns the arguments into the chain to call (checked before any network I/O);
`attach.content` the prompt and any -a files into the user message; `call_options` the
arguments into the transport options of the call; `stream` does the call and, with -v, writes
the chain's attempt trace to stderr once the stream has ended, however it ended. For -p (a
one-provider chain) a failure is the provider's own error, as if it had been called alone.

The answer is written by a `TextOutput` (text as it arrives, then the refusal and tool-call
lines of OUTPUT below) or, with --json, a `JsonOutput` (one JSON object per line per event, then
an end line: JSON_LINES below).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, Protocol, TextIO

from ..attempt import Attempt
from ..errors import AllProvidersFailedError, StreamInterruptedError
from ..events import Event, Logprobs, RefusalDelta, ToolCallDelta
from ..messages import Messages
from ..routing import FallbackChain
from ..stream import ChunkStream
from . import attach
from .common import UsageError, config_option, load_setup
from .targets import select

OUTPUT = """\
output:
  The text is written as it arrives. A refusal goes on its own line,
  "[refusal] TEXT". Once the answer is complete, each tool call it made gets
  a line "[tool call ID] NAME(ARGUMENTS)", the arguments as the model sent
  them.
"""

JSON_LINES = """\
--json: one JSON object per line, in the order the events arrive:
  {"type": "text", "text": TEXT}
  {"type": "tool_call", "index": N, "id": ID|null, "name": NAME|null,
   "arguments": TEXT}
  {"type": "refusal", "text": TEXT}
  {"type": "logprobs", "data": {...}}
  {"type": "end", "finish_reason": REASON|null, "usage": {...}|null,
   "tool_calls": [CALL, ...], "provider": NAME}
  A tool_call line is one delta as it arrived: the first of call N carries
  its id and name, later ones fragments of its arguments. The end line has
  the calls assembled, CALL = {"id", "type", "function": {"name",
  "arguments"}}, and names the provider that served; it is written only when
  the answer completed (an error goes to stderr as usual).
"""

ATTACHMENTS = f"""\
-a FILE: a content part after the prompt's text, at most {attach.MAX_BYTES // 2**20} MiB:
  .png .jpg .jpeg .gif .webp an image, .wav .mp3 audio, anything else a file.
  A provider that cannot take it refuses before sending anything (exit 3).
"""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `chat` subcommand."""
    chat = commands.add_parser(
        "chat",
        help="stream an answer from a provider or a fallback chain",
        description="Stream an answer to PROMPT (or to stdin) from a provider or a chain, "
        "to stdout.",
        epilog=f"{OUTPUT}\n{JSON_LINES}\n{ATTACHMENTS}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        "-a",
        "--attach",
        action="append",
        default=[],
        metavar="FILE",
        help="attach FILE to the prompt (repeatable): an image, audio or any file; see below",
    )
    chat.add_argument(
        "--json",
        action="store_true",
        help="write one JSON object per line per event, then an end line (see below)",
    )
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
    """Select, read the prompt and the attachments, stream the answer."""
    target = select(args, load_setup(args.config))
    prompt = attach.content(read_prompt(args.prompt, sys.stdin), args.attach)
    messages = build_messages(args.system, prompt)
    trace = sys.stderr if args.verbose else None
    options = call_options(args)
    try:
        asyncio.run(
            stream(
                target.chain, target.model, messages, options, sys.stdout, trace, as_json=args.json
            )
        )
    except (AllProvidersFailedError, StreamInterruptedError) as exc:
        if not target.single:
            raise
        failure = own_error(exc)
    else:
        return 0
    raise failure


def own_error(error: AllProvidersFailedError | StreamInterruptedError) -> BaseException:
    """What a one-provider chain's failure was for its provider: the error of its one attempt
    when that failed, or what cut its answer; else `error` itself (the provider was skipped)."""
    if isinstance(error, StreamInterruptedError):
        return error.__cause__ or error
    failed = [attempt.error for attempt in error.attempts if attempt.outcome == "failed"]
    own = failed[0] if len(error.attempts) == 1 and failed else None
    return own or error


def call_options(args: argparse.Namespace) -> dict[str, Any]:
    """Transport options of the call (keyword arguments of `stream()`)."""
    return {} if args.timeout is None else {"timeout": args.timeout}


def read_prompt(words: list[str], stdin: TextIO | None) -> str:
    """The prompt from the arguments, or else all of stdin; an empty one is a usage error."""
    text = " ".join(words) if words else (stdin.read() if stdin is not None else "")
    if not text.strip():
        raise UsageError("no prompt: give it as arguments or on stdin")
    return text.rstrip("\n")


def build_messages(system: str | None, prompt: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chat: an optional system message, then the prompt (a string or content parts)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": prompt}]


async def stream(
    chain: FallbackChain,
    model: str,
    messages: Messages,
    options: dict[str, Any],
    out: TextIO,
    trace: TextIO | None = None,
    *,
    as_json: bool = False,
) -> None:
    """Write the answer to `out` as it arrives: readable, or with `as_json` as JSON lines.

    With `trace`, write the chain's attempts to it at the end, one line each.
    """
    answer = chain.stream(model, messages, **options)
    output: Output = JsonOutput(out) if as_json else TextOutput(out)
    write = output.event
    try:
        async for event in answer.events():
            if event:
                write(event)
        output.end(answer, answer.provider)
    finally:
        await answer.aclose()
        output.close()
        if trace is not None:
            trace.write("".join(f"{line}\n" for line in trace_lines(answer.attempts)))
            trace.flush()


class Output(Protocol):
    """Where `stream` writes an answer."""

    def event(self, event: Event) -> None:
        """Write one (non-empty) event as it arrives."""

    def end(self, answer: ChunkStream, served_by: str | None) -> None:
        """The answer has completed."""

    def close(self) -> None:
        """The stream has ended, however it ended."""


class TextOutput:
    """The answer for people: OUTPUT above (a tool call is written once it is complete)."""

    __slots__ = ("ends_line", "out", "refusing")

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.ends_line = True
        self.refusing = False

    def event(self, event: Event) -> None:
        if isinstance(event, str):
            if self.refusing:
                self.refusing = False
                self.close()
            out = self.out
            out.write(event)
            out.flush()
            self.ends_line = event.endswith("\n")
        elif isinstance(event, RefusalDelta):
            if not self.refusing:
                self.refusing = True
                self.close()
                self._write("[refusal] ")
            self._write(event.text)

    def end(self, answer: ChunkStream, served_by: str | None) -> None:
        self.close()
        for call in answer.tool_calls:
            label = f"[tool call {call['id']}]" if call["id"] else "[tool call]"
            function = call["function"]
            self._write(f"{label} {function['name']}({function['arguments']})\n")

    def close(self) -> None:
        """End the last line."""
        if not self.ends_line:
            self._write("\n")

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()
        self.ends_line = text.endswith("\n")


class JsonOutput:
    """The answer for scripts: JSON_LINES above."""

    __slots__ = ("out",)

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def event(self, event: Event) -> None:
        self._line(event_record(event))

    def end(self, answer: ChunkStream, served_by: str | None) -> None:
        self._line(
            {
                "type": "end",
                "finish_reason": answer.finish_reason,
                "usage": answer.usage,
                "tool_calls": answer.tool_calls,
                "provider": served_by,
            }
        )

    def close(self) -> None:
        """Nothing to finish: every line is whole."""

    def _line(self, record: dict[str, Any]) -> None:
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()


def event_record(event: Event) -> dict[str, Any]:
    """An event as its --json line's object."""
    if isinstance(event, str):
        return {"type": "text", "text": event}
    if isinstance(event, ToolCallDelta):
        return {
            "type": "tool_call",
            "index": event.index,
            "id": event.id,
            "name": event.name,
            "arguments": event.arguments,
        }
    if isinstance(event, RefusalDelta):
        return {"type": "refusal", "text": event.text}
    if isinstance(event, Logprobs):
        return {"type": "logprobs", "data": event.data}
    raise TypeError(f"not a stream event: {type(event).__name__}")


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
