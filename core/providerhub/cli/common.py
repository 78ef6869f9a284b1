"""What every subcommand shares: the config option, the registry (plugins plus configured
instances), the errors that pick exit codes 2, 5 and 8, and `RedactedText`, the stderr every
command writes to.
"""

from __future__ import annotations

import argparse
import io
from dataclasses import dataclass
from typing import TextIO

from ..config import Config, load_config
from ..redaction import redact
from ..registry import STRICT_ENV, Registry, default_registry


class UsageError(Exception):
    """Arguments that parse but make no sense together (exit code 2)."""


class ListenError(Exception):
    """The gateway cannot listen on its address: in use or not allowed (exit code 8)."""


class PluginLoadError(Exception):
    """Strict plugin loading failed (exit code 5); the cause is the plugin's own error."""


@dataclass(frozen=True, slots=True)
class Setup:
    """The config in use (None when there is none) and the registry built from it."""

    config: Config | None
    registry: Registry


def config_option(parser: argparse.ArgumentParser, *, default: object) -> None:
    """Add --config: the main parser takes it before the command, each command after it too."""
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help="providerhub.toml to use (default: $PROVIDERHUB_CONFIG, then "
        "$XDG_CONFIG_HOME/providerhub/providerhub.toml if it exists)",
    )


def load_setup(explicit: str | None) -> Setup:
    """Find and validate the config (ConfigError), then register its provider instances.

    No config file is fine (plugins only); a file named by --config or $PROVIDERHUB_CONFIG
    must exist.
    """
    config = load_config(explicit)
    registry = load_registry()
    if config is not None:
        config.build_registry(registry)
    return Setup(config, registry)


def load_registry() -> Registry:
    """The registry of installed plugins (scanned once per process).

    It raises only in strict mode (PROVIDERHUB_STRICT_PLUGINS=1), on the first plugin failure.
    """
    try:
        return default_registry()
    except Exception as exc:
        raise PluginLoadError(f"a plugin failed to load ({STRICT_ENV} is set): {exc}") from exc


class RedactedText(io.TextIOBase):
    """A text stream writing to `target` with the remembered secrets redacted (see
    `providerhub.redaction`). `main` puts one in place of sys.stderr, so error lines, the -v
    trace, serve's log lines and any traceback go through it, whoever writes them."""

    def __init__(self, target: TextIO) -> None:
        super().__init__()
        self.target = target

    def write(self, text: str) -> int:
        self.target.write(redact(text))
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def fileno(self) -> int:
        return self.target.fileno()

    def isatty(self) -> bool:
        return self.target.isatty()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.target.encoding
