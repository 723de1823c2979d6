"""The curated public API stays sorted and importable."""

from __future__ import annotations

import heistwatch
import heistwatch.kb
import heistwatch.model


def test_all_is_sorted_and_importable() -> None:
    for module in (heistwatch, heistwatch.kb, heistwatch.model):
        names = module.__all__
        assert names == sorted(names)
        assert all(hasattr(module, n) for n in names)
