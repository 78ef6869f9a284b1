"""The `providerhub` command: list providers and plugins, chat, check the config, serve.

    providerhub [--config PATH] providers [--json] [--working] [--model M]
    providerhub plugins [--json]
    providerhub [--config PATH] chat (-p NAME | --chain A,B,C | --chain NAME | -m ALIAS)
        [-m MODEL] [--system TEXT] [-a FILE]... [--json] [--ignore-working] [--timeout S]
        [--retries N] [--hedge-after S] [-v] [PROMPT]
    providerhub [--config PATH] config check
    providerhub [--config PATH] serve [--host H] [--port P] [--chain NAME] [--log-level L]

The config is --config PATH (before or after the command), else $PROVIDERHUB_CONFIG, else
$XDG_CONFIG_HOME/providerhub/providerhub.toml when it exists; with none, only plugins are used.

`chat -p NAME` calls the provider through its one-provider chain, as the gateway does, after
checking that it can serve the call at all; a failure is the provider's own error. `chat --chain
NAME` uses the chain NAME of the config; any other value is a comma-separated list of provider
(or configured chain) names tried in order, so one provider's name makes a one-provider chain.
Without -p and --chain, `-m ALIAS` routes through the chain of a `[models]` alias; with them, -m
is a model name as given. `-v` prints the chain's attempts to stderr, one line each, once the
stream has ended, however it ended.

Only this package prints. Whatever goes to stderr has every secret value the process read
redacted (`common.RedactedText`, `providerhub.redaction`), and no error names an upstream's
URL or address. An error is one line on stderr, `providerhub: error: ...` (when every provider
of a chain failed, one indented line per provider follows it), and the exit code says what
kind of error it was:

    0    success
    1    unexpected error (a bug in providerhub or in a plugin)
    2    usage: bad arguments, no prompt, nothing to call
    3    request refused before any network I/O: provider or chain not found, marked not
         working, model not supported, invalid request, missing credentials
    4    upstream failure of the provider called or serving: HTTP error, timeout, connection,
         malformed or empty stream; a stream interrupted after text was printed (the text
         stays on stdout)
    5    a plugin failed to load with PROVIDERHUB_STRICT_PLUGINS=1 (its traceback is printed)
    6    every provider of a chain was skipped or failed (AllProvidersFailedError)
    7    config error: the file is missing (when named), unreadable or invalid; the line names
         the file, table and key
    8    `serve` cannot listen on its host:port (in use, not allowed)
    130  interrupted (Ctrl-C)

Listing never imports aiohttp, so it stays fast however many plugins are installed.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from typing import TextIO, cast

from .. import __version__
from ..errors import (
    AllProvidersFailedError,
    ConfigError,
    InvalidRequestError,
    MissingCredentialsError,
    ModelNotSupportedError,
    ProviderHubError,
    ProviderNotFoundError,
    ProviderNotWorkingError,
    StreamInterruptedError,
    UpstreamError,
)
from . import chat, configcmd, listing, serve
from .common import ListenError, PluginLoadError, RedactedText, UsageError, config_option

USAGE = 2
REFUSED = 3
UPSTREAM = 4
PLUGIN = 5
ALL_FAILED = 6
CONFIG = 7
LISTEN = 8
INTERRUPTED = 130

EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (ConfigError, CONFIG),
    (ProviderNotFoundError, REFUSED),
    (ProviderNotWorkingError, REFUSED),
    (ModelNotSupportedError, REFUSED),
    (InvalidRequestError, REFUSED),
    (MissingCredentialsError, REFUSED),
    (UpstreamError, UPSTREAM),
    (StreamInterruptedError, UPSTREAM),
    (AllProvidersFailedError, ALL_FAILED),
)
"""Error type → exit code, first match wins; anything else exits 1."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each subcommand module adds its own subparser."""
    parser = argparse.ArgumentParser(
        prog="providerhub",
        description="Pluggable multi-provider LLM chat: list providers and plugins, chat through "
        "a provider or a fallback chain, check the config, serve the OpenAI-compatible gateway.",
    )
    parser.add_argument("--version", action="version", version=f"providerhub {__version__}")
    config_option(parser, default=None)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    listing.add_parsers(commands)
    chat.add_parser(commands)
    configcmd.add_parser(commands)
    serve.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]) and return the exit code."""
    stderr = sys.stderr
    sys.stderr = cast("TextIO", RedactedText(stderr))
    try:
        return _run(argv)
    finally:
        sys.stderr = stderr


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except UsageError as exc:
        return _error(str(exc), USAGE)
    except ListenError as exc:
        return _error(str(exc), LISTEN)
    except PluginLoadError as exc:
        traceback.print_exception(exc.__cause__ or exc)
        return _error(str(exc), PLUGIN)
    except Exception as exc:
        return _error(describe(exc), exit_code(exc))
    return code


def exit_code(exc: BaseException) -> int:
    """The exit code for an error (see the module docstring)."""
    return next((code for kind, code in EXIT_CODES if isinstance(exc, kind)), 1)


def describe(exc: BaseException) -> str:
    """An error as one line, phrased for the command line.

    AllProvidersFailedError keeps its lines: the first, then one indented line per provider.
    """
    if isinstance(exc, AllProvidersFailedError):
        return "\n".join(line.rstrip() for line in str(exc).splitlines() if line.strip())
    if isinstance(exc, ProviderNotWorkingError):
        return (
            f"provider {exc.provider!r} is marked not working; "
            "pass --ignore-working to use it anyway"
        )
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    message = lines[0] if lines else ""
    for line in lines[1:]:
        message += (" " if message.endswith(":") else "; ") + line
    if not isinstance(exc, ProviderHubError):
        message = f"unexpected {type(exc).__name__}" + (f": {message}" if message else "")
    return message


def _error(message: str, code: int) -> int:
    sys.stderr.write(f"providerhub: error: {message}\n")
    sys.stderr.flush()
    return code


def _silence_stdout() -> None:
    """The reader went away (e.g. `| head`): send what is left of stdout nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
