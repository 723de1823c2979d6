"""The curated public API of heistwatch.trace stays sorted and importable."""

from __future__ import annotations

import heistwatch.trace


def test_all_is_sorted_and_importable() -> None:
    names = heistwatch.trace.__all__
    assert names == sorted(names)
    assert all(hasattr(heistwatch.trace, n) for n in names)
