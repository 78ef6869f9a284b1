"""What every subcommand shares: the registry, and the errors that pick exit codes 2 and 5."""

from __future__ import annotations

from ..registry import STRICT_ENV, Registry, default_registry


class UsageError(Exception):
    """Arguments that parse but make no sense together (exit code 2)."""


class PluginLoadError(Exception):
    """Strict plugin loading failed (exit code 5); the cause is the plugin's own error."""


def load_registry() -> Registry:
    """The registry of installed plugins (scanned once per process).

    It raises only in strict mode (PROVIDERHUB_STRICT_PLUGINS=1), on the first plugin failure.
    """
    try:
        return default_registry()
    except Exception as exc:
        raise PluginLoadError(f"a plugin failed to load ({STRICT_ENV} is set): {exc}") from exc
