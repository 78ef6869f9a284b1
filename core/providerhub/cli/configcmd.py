"""`providerhub config check`: validate the config and print it resolved, secrets redacted.

Validation goes as far as a chat would: the file's structure, every provider instance built
from its type, every chain built with its members resolved. The first problem is a ConfigError
naming the file, table and key (exit code 7). Keys appear only as environment variable names,
with whether each is set.
"""

from __future__ import annotations

import argparse
import sys

from ..config import CONFIG_ENV, FILENAME, ConfigError
from .common import config_option, load_setup


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `config` subcommand and its actions."""
    config = commands.add_parser(
        "config",
        help="check the providerhub.toml in use",
        description="Work with the config file (providerhub.toml).",
    )
    actions = config.add_subparsers(title="actions", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="validate the config and print it resolved, secrets redacted",
        description="Validate the config (structure, provider types and options, chains) and "
        "print it resolved as TOML, with secrets redacted. Exit code 7 names what is wrong.",
    )
    config_option(check, default=argparse.SUPPRESS)
    check.set_defaults(run=run_check)


def run_check(args: argparse.Namespace) -> int:
    """Print the resolved config; a summary line goes to stderr."""
    setup = load_setup(args.config)
    config = setup.config
    if config is None:
        raise ConfigError(
            f"no config file: give --config PATH, set ${CONFIG_ENV}, or create "
            f"$XDG_CONFIG_HOME/providerhub/{FILENAME} (XDG_CONFIG_HOME defaults to ~/.config)"
        )
    for name in config.chains:
        config.chain(name, setup.registry)
    sys.stdout.write(config.render(setup.registry))
    counts = (
        _count(len(config.providers), "provider"),
        _count(len(config.chains), "chain"),
        _count(len(config.models), "model alias", "model aliases"),
    )
    sys.stderr.write(f"providerhub: {config.path}: ok ({', '.join(counts)})\n")
    return 0


def _count(number: int, one: str, many: str | None = None) -> str:
    return f"{number} {one if number == 1 else many or one + 's'}"
