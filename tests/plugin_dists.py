"""Real plugin distributions for tests and benchmarks, written into a directory for sys.path.

A distribution here is what pip leaves in site-packages: the package's files plus
`NAME-VERSION.dist-info/` with METADATA and entry_points.txt, so importlib-metadata finds it
exactly as it finds an installed plugin. Nothing is mocked.

`write_dist` writes one; `write_plugin_zoo` writes a good third-party plugin next to one broken
plugin of each kind, with the reasons the registry must record for them (`ZOO_ERRORS`).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from pathlib import Path

GOOD_URL_ENV = "PH_GOOD_API_URL"
"""The good plugin's provider reads its upstream URL from this variable at import."""

GOOD_PROVIDER = '''
"""A third-party plugin: CodeLinkAva's wire format at a URL from the env; one working."""

import os

import providerhub
from providerhub_codelinkava import CodeLinkAva


class GoodProvider(CodeLinkAva):
    working = True
    supports_gpt_4 = True
    api_url = os.environ.get("PH_GOOD_API_URL", "http://127.0.0.1:9/api/chat")


class Dormant(GoodProvider):
    working = False


@providerhub.hookimpl
def register_providers(register):
    register(GoodProvider)
    register(Dormant)
'''

RAISING_PROVIDER = """
import providerhub
from providerhub_codelinkava import CodeLinkAva


class CodeX(CodeLinkAva):
    working = True

    @classmethod
    def supports_model(cls, model):
        raise RuntimeError("boom")


@providerhub.hookimpl
def register_providers(register):
    register(CodeX)
"""

RAISING_REASON = "CodeX.supports_model raised RuntimeError: boom"
"""What the registry records on plugin `raising` when a query asks CodeX about a model."""

ZOO_PLUGINS: dict[str, str] = {
    "importerror": """
import ph_missing_dependency
""",
    "raises": """
import providerhub
from providerhub_codelinkava import CodeLinkAva


class HalfRegistered(CodeLinkAva):
    working = True


@providerhub.hookimpl
def register_providers(register):
    register(HalfRegistered)
    raise RuntimeError("boom in plugin")
""",
    "twin": """
import providerhub
from providerhub_codelinkava import CodeLinkAva


class GoodProvider(CodeLinkAva):
    working = True


@providerhub.hookimpl
def register_providers(register):
    register(GoodProvider)
""",
    "notprovider": """
import providerhub


class NotAProvider:
    name = "NotAProvider"


@providerhub.hookimpl
def register_providers(register):
    register(NotAProvider)
""",
    "misspelled": """
import providerhub
from providerhub_codelinkava import CodeLinkAva


class Misspelled(CodeLinkAva):
    working = True


@providerhub.hookimpl
def register_provider(register):
    register(Misspelled)
""",
    "wrongargs": """
import providerhub
from providerhub_codelinkava import CodeLinkAva


class WrongArgs(CodeLinkAva):
    working = True


@providerhub.hookimpl
def register_providers(reg):
    reg(WrongArgs)
""",
}
"""Broken plugins, by entry-point name; each lives in distribution `ph-NAME` 1.0."""

CLASH = """
import providerhub
from providerhub_codelinkava import CodeLinkAva


class Clash{letter}(CodeLinkAva):
    working = True


@providerhub.hookimpl
def register_providers(register):
    register(Clash{letter})
"""

ZOO_ERRORS: dict[tuple[str, str], str] = {
    ("importerror", "ph-importerror"): (
        "import failed: ModuleNotFoundError: No module named 'ph_missing_dependency'"
    ),
    ("raises", "ph-raises"): "register_providers raised RuntimeError: boom in plugin",
    ("twin", "ph-twin"): "provider name 'GoodProvider' is already registered by ph-good 1.0",
    ("notprovider", "ph-notprovider"): (
        "registered class 'NotAProvider', which is not a provider: "
        "it has no create_async_generator()"
    ),
    ("misspelled", "ph-misspelled"): (
        "unknown hook 'register_provider'; did you mean 'register_providers'?"
    ),
    ("wrongargs", "ph-wrongargs"): (
        "invalid hook register_providers(reg): argument(s) {'reg'} are declared in the hookimpl "
        "but can not be found in the hookspec (the hookspec is register_providers(register))"
    ),
    ("clash", "ph-clash-a"): (
        "entry point name 'clash' is declared by ph-clash-a 1.0 and ph-clash-b 2.0; "
        "neither is loaded"
    ),
    ("clash", "ph-clash-b"): (
        "entry point name 'clash' is declared by ph-clash-a 1.0 and ph-clash-b 2.0; "
        "neither is loaded"
    ),
}
"""(entry-point name, distribution) → the exact reason the registry records."""


def write_dist(
    site: Path,
    name: str,
    *,
    version: str = "1.0",
    entry_points: Mapping[str, str] | None = None,
    files: Mapping[str, str] | None = None,
) -> Path:
    """Write distribution `name` into `site`: its files and a dist-info; returns the dist-info.

    `entry_points` maps names of group "providerhub" to their values ("module" or
    "module:attr"); `files` maps paths relative to `site` to their (dedented) source.
    """
    for relative, source in (files or {}).items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    info = site / f"{re.sub(r'[-_.]+', '_', name)}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    lines = ["[providerhub]", *(f"{key} = {value}" for key, value in (entry_points or {}).items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (info / "INSTALLER").write_text("providerhub-tests\n", encoding="utf-8")
    return info


def write_good_plugin(site: Path) -> Path:
    """The working third-party plugin: distribution ph-good 1.0, entry point `good`."""
    return write_dist(
        site, "ph-good", entry_points={"good": "ph_good"}, files={"ph_good.py": GOOD_PROVIDER}
    )


def write_raising_plugin(site: Path) -> Path:
    """Distribution ph-raising 1.0, entry point `raising`: CodeX loads, but its supports_model
    raises RuntimeError("boom") (reason: `RAISING_REASON`)."""
    return write_dist(
        site,
        "ph-raising",
        entry_points={"raising": "ph_raising"},
        files={"ph_raising.py": RAISING_PROVIDER},
    )


def write_plugin_zoo(site: Path) -> None:
    """The good plugin and, next to it, one broken plugin of every kind in ZOO_ERRORS."""
    write_good_plugin(site)
    for entry, source in ZOO_PLUGINS.items():
        module = f"ph_{entry}"
        write_dist(
            site, f"ph-{entry}", entry_points={entry: module}, files={f"{module}.py": source}
        )
    for letter, version in (("a", "1.0"), ("b", "2.0")):
        module = f"ph_clash_{letter}"
        write_dist(
            site,
            f"ph-clash-{letter}",
            version=version,
            entry_points={"clash": module},
            files={f"{module}.py": CLASH.format(letter=letter.upper())},
        )
