"""Finding, reading and validating providerhub.toml (structure only; types need a registry).

Search order: an explicit path (`--config`), then $PROVIDERHUB_CONFIG, then
$XDG_CONFIG_HOME/providerhub/providerhub.toml (XDG_CONFIG_HOME defaults to ~/.config). Each
table has its parser: `routes` ([providers], [chains], [models]) and `settings` ([server],
[health]), sharing `checks`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from . import routes, settings
from .checks import Checker
from .schema import Config

CONFIG_ENV = "PROVIDERHUB_CONFIG"
FILENAME = "providerhub.toml"


def find_config(
    explicit: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The config file to use, or None when none is given and the default does not exist.

    A file named explicitly or by $PROVIDERHUB_CONFIG must exist (ConfigError otherwise).
    """
    env = os.environ if environ is None else environ
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError("config file not found", path=path)
        return path
    if env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV]).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file not found (named by ${CONFIG_ENV})", path=path)
        return path
    path = default_path(env)
    return path if path.is_file() else None


def default_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the config is looked for when neither --config nor $PROVIDERHUB_CONFIG names one."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".config")
    return Path(base) / "providerhub" / FILENAME


def load_config(
    explicit: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> Config | None:
    """Find (see `find_config`), read and validate the config; None when there is none."""
    path = find_config(explicit, environ)
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=path) from None
    return parse_config(text, path)


def parse_config(text: str, path: str | os.PathLike[str] | None = None) -> Config:
    """Validate a providerhub.toml document; ConfigError names the file, table and key at fault."""
    import tomllib

    where = None if path is None else Path(path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", path=where) from None
    except RecursionError:
        raise ConfigError("invalid TOML: arrays or tables nested too deeply", path=where) from None
    return _config(Checker(where), document)


def _config(c: Checker, document: dict[str, Any]) -> Config:
    """The whole document: every table parsed, then what ties them together."""
    c.known_keys(None, document, ("providers", "chains", "models", "server", "health"))
    providers = {
        name: routes.provider(c, name, body)
        for name, body in c.tables(document, "providers").items()
    }
    chains = {
        name: routes.chain(c, name, body) for name, body in c.tables(document, "chains").items()
    }
    provider_names = {known.lower() for known in providers}
    for name in chains:
        if name.lower() in provider_names:
            raise c.error(f"chains.{name}", f"{name!r} is also the name of a provider; rename one")
    by_lower = {name.lower(): spec for name, spec in chains.items()}
    routes.check_cycles(c, by_lower)
    models = routes.models(c, c.table(document, "models", None), by_lower)
    server = settings.server(c, c.table(document, "server", None), by_lower)
    health = settings.health(c, c.table(document, "health", None))
    return Config(c.path, providers, chains, models, server, health)
