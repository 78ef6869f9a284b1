"""The one "did you mean" rule and its two phrasings, shared by every not-found message."""

from __future__ import annotations

from providerhub import suggest

KNOWN = ["GoodProvider", "GoodProxy", "Other", "LocalA", "LocalB"]


def test_close_names_first_then_names_containing_it_in_any_case() -> None:
    assert suggest.suggest("goodprovidr", KNOWN) == ["GoodProvider", "GoodProxy"]
    assert suggest.suggest("VIDER", KNOWN) == ["GoodProvider"]
    assert len(suggest.suggest("local", KNOWN, limit=1)) == 1
    assert suggest.suggest("zzz", KNOWN) == []


def test_short_names_are_not_matched_by_containment() -> None:
    assert suggest.suggest("th", ["Other", "three"]) == []


def test_the_list_and_the_one_best_guess() -> None:
    assert suggest.hint(["a", "b"]) == "; did you mean a, b?"
    assert suggest.hint([]) == ""
    assert suggest.best("retry", ("retries", "order")) == "; did you mean 'retries'?"
    assert suggest.best("zzz", ("retries",)) == ""
