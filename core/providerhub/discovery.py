"""Finding installed plugins without importing them: the entry points of a group, by name.

importlib-metadata lists a distribution once even when it is on sys.path twice (the first copy
wins, as for imports), so a plugin installed twice is declared once. Two declarations of one
name (two distributions, or a name repeated in one entry_points.txt) are a clash for the registry
to report: neither filesystem nor file order decides.
"""

from __future__ import annotations

from dataclasses import dataclass

import importlib_metadata


@dataclass(frozen=True, slots=True)
class Declared:
    """One entry point and the name and version of the distribution that declares it."""

    point: importlib_metadata.EntryPoint
    distribution: str | None
    version: str | None

    @property
    def spec(self) -> str:
        """The declaration as written in entry_points.txt: "name = module[:attr]"."""
        return f"{self.point.name} = {self.point.value}"

    def load(self) -> object:
        """Import the plugin module (or the object the entry point names)."""
        return self.point.load()


def declared(group: str) -> dict[str, list[Declared]]:
    """Every entry point of `group`, by name in sorted order; one scan of the installed metadata."""
    by_name: dict[str, list[Declared]] = {}
    for point in importlib_metadata.entry_points(group=group):
        name, version = _name_version(point.dist)
        by_name.setdefault(point.name, []).append(Declared(point, name, version))
    return dict(sorted(by_name.items()))


def _name_version(dist: importlib_metadata.Distribution | None) -> tuple[str | None, str | None]:
    """A distribution's Name and Version, read from its metadata headers.

    `dist.name` and `dist.version` parse the whole METADATA with the email package on every
    access, which was most of the scan time with 50 plugins; the two headers are all we need.
    """
    if dist is None:
        return None, None
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    fields: dict[str, str] = {}
    for line in text.partition("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        if key in ("Name", "Version") and key not in fields:
            fields[key] = value.strip()
    return fields.get("Name") or None, fields.get("Version") or None
