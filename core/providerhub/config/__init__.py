"""providerhub.toml: provider instances, named chains, model aliases and gateway settings.

    config = load_config(args.config)          # --config, $PROVIDERHUB_CONFIG, XDG default
    registry = config.build_registry()         # plugins + [providers.*] ("config:<path>")
    chain = config.chain("default", registry)  # a FallbackChain
    alias = config.resolve_model("fast")       # ModelAlias(chain, model) or None
    text = config.render(registry)             # what `config check` prints, secrets redacted

A `[chains.NAME]` table takes `providers` and the options of FallbackChain, checked against
the same table the chain uses (`providerhub.routing.options`). Secrets are given only by
environment variable name; a literal key in the file is refused.

    spec.py    the parsed file as plain data (ProviderSpec, ChainSpec, ..., ConfigSpec)
    load.py    finding and reading the file, validated into a Config by:
    routes.py    [providers.*], [chains.*], [models]
    settings.py  [server], [health]
    checks.py    what they share: errors naming file, table and key; value checks
    build.py   provider instances from their types, into a registry
    render.py  the resolved config as TOML, secrets redacted
    schema.py  Config: the data, with the methods above on it
"""

from __future__ import annotations

from ..errors import ConfigError
from .load import CONFIG_ENV, FILENAME, default_path, find_config, load_config, parse_config
from .schema import Config
from .spec import ChainSpec, ConfigSpec, ModelAlias, ProviderSpec, ServerSettings

__all__ = [
    "CONFIG_ENV",
    "FILENAME",
    "ChainSpec",
    "Config",
    "ConfigError",
    "ConfigSpec",
    "ModelAlias",
    "ProviderSpec",
    "ServerSettings",
    "default_path",
    "find_config",
    "load_config",
    "parse_config",
]
