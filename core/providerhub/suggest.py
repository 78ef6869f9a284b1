""" "Did you mean": the one rule for the names a misspelt one may stand for, and its phrasing.

A name that is not found is compared with the known ones ignoring case: names similar in
spelling come first, then names containing it (when it has at least 3 characters), each as
`known` spells it. A message ends either with the list, as a name that is not found does
("; did you mean a, b?"), or with the one best guess for a key, a type or a hook, quoted like
the key itself ("; did you mean 'x'?").
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

__all__ = ["LIMIT", "best", "hint", "suggest"]

LIMIT = 3
"""How many names a list of suggestions holds at most."""


def suggest(name: str, known: Iterable[str], limit: int = LIMIT) -> list[str]:
    """The known names `name` may stand for, best first (at most `limit`)."""
    by_lower: dict[str, str] = {}
    for item in known:
        by_lower.setdefault(item.lower(), item)
    wanted = name.lower()
    close = difflib.get_close_matches(wanted, list(by_lower), n=limit)
    containing = [key for key in by_lower if len(wanted) >= 3 and wanted in key]
    return [by_lower[key] for key in list(dict.fromkeys(close + containing))[:limit]]


def hint(suggestions: Sequence[str]) -> str:
    """The end of a not-found message: "; did you mean a, b?", or "" without suggestions."""
    return f"; did you mean {', '.join(suggestions)}?" if suggestions else ""


def best(name: str, known: Iterable[str]) -> str:
    """The end of an unknown-key message: "; did you mean 'x'?", or "" when nothing is close."""
    found = suggest(name, known, 1)
    return f"; did you mean {found[0]!r}?" if found else ""
