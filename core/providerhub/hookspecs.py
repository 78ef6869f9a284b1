"""The pluggy hooks of project "providerhub": what a plugin may implement."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .provider import Provider

PROJECT = "providerhub"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_providers(register: Callable[[Provider], None]) -> None:
    """Call `register(provider)` once for each provider (a class or an instance) of this plugin."""
