"""`providerhub serve`: run the OpenAI-compatible gateway until SIGINT or SIGTERM.

Host and port come from `--host`/`--port`, else `[server] host`/`port`, else 127.0.0.1:8080;
`--port 0` picks a free port. Once listening, one line on stdout gives the base URL for OpenAI
clients (`providerhub: serving http://127.0.0.1:PORT/v1 ...`). Access lines and the chains'
attempt lines go to stderr. Stopping with SIGINT (Ctrl-C) or SIGTERM is the normal end of a
server: in-flight answers get `[server] shutdown_grace` seconds (streams still running then end
with an error event), and the exit code is 0. An address that cannot be bound (in use, not
allowed) exits with code 8, naming host:port.

With `[server] api_key_env`, the variable must be set when the gateway starts (exit code 7
otherwise, naming the variable, never a value), and clients must send its value as a Bearer
token. aiohttp.web is imported only here, when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import sys

from ..config import ConfigError, ServerSettings
from .common import ListenError, config_option, load_setup


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `serve` subcommand."""
    serve = commands.add_parser(
        "serve",
        help="run the OpenAI-compatible HTTP gateway",
        description="Serve /v1/chat/completions (SSE and JSON), /v1/models, /v1/providers and "
        "/healthz in front of the configured chains and the installed providers.",
    )
    serve.add_argument("--host", help="address to bind (default: [server] host, 127.0.0.1)")
    serve.add_argument(
        "--port", type=_port, help="port to bind, 0 for any free one (default: [server] port)"
    )
    serve.add_argument(
        "--chain",
        metavar="NAME",
        help="the configured chain that answers models nothing else matches "
        "(default: [server] chain)",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="level of the log lines on stderr (info: one line per request and attempt)",
    )
    config_option(serve, default=argparse.SUPPRESS)
    serve.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Build the gateway from the config, listen, serve until a stop signal."""
    setup = load_setup(args.config)
    settings = setup.config.server if setup.config is not None else ServerSettings()
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    api_key = _api_key(settings, setup.config.path if setup.config is not None else None)

    from ..server import create_app, serve

    app = create_app(setup.registry, setup.config, api_key=api_key, default_chain=args.chain)
    _configure_logging(args.log_level)
    if api_key is None and not _loopback(host):
        sys.stderr.write(
            f"providerhub: warning: listening on {host} without [server] api_key_env: anyone "
            "who can reach this address can use your providers and keys\n"
        )
    listening = False

    def ready(url: str) -> None:
        nonlocal listening
        listening = True
        sys.stdout.write(f"providerhub: serving {url}/v1 (OpenAI base_url; Ctrl-C stops)\n")
        sys.stdout.flush()

    try:
        asyncio.run(
            serve(
                app,
                host,
                port,
                grace=settings.shutdown_grace,
                request_timeout=settings.request_timeout,
                ready=ready,
            )
        )
    except OSError as exc:
        if listening:
            raise
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return 0


def _api_key(settings: ServerSettings, path: object) -> str | None:
    """The gateway's key from the variable `[server] api_key_env` names, or None."""
    variable = settings.api_key_env
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(
            f"environment variable {variable} (named by 'api_key_env') is not set; set it, "
            "or remove api_key_env to serve without auth",
            path=None if path is None else str(path),
            table="server",
            key="api_key_env",
        )
    return value


def _configure_logging(level: str) -> None:
    """Log lines of logger "providerhub" (requests, attempts) to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger("providerhub")
    logger.addHandler(handler)
    logger.setLevel(level.upper())


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535: {text!r}")
    return value
