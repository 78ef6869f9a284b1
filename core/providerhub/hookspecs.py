"""The pluggy hooks of project "providerhub": what a plugin may implement.

Hook arguments have no defaults (pluggy would not pass them), so an implementation may take any
subset of them by name; the registry reports an implementation whose names match no hook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .attempt import Attempt
    from .provider import Provider

PROJECT = "providerhub"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_providers(register: Callable[[Provider], None]) -> None:
    """Call `register(provider)` once for each provider (a class or an instance) of this plugin."""


@hookspec
def register_provider_types(register: Callable[[str, Callable[..., Provider]], None]) -> None:
    """Call `register(type_name, factory)` for each configurable provider type of this plugin.

    A config table `[providers.NAME]` with `use = "type_name"` builds its provider as
    `factory(name=NAME, **options)`; the factory raises TypeError or ValueError naming a bad option.
    """


@hookspec
def attempt_finished(attempt: Attempt) -> None:
    """Called once per provider a chain tried or skipped, when its outcome is final (metrics),
    for the chains of this plugin's registry (`Registry.attempt_finished`)."""
