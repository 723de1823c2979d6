"""Deterministic ids."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from heistwatch.model import derive_id
from heistwatch.model.objects import HEISTWATCH_NAMESPACE


@given(st.lists(st.text(), min_size=1, max_size=4))
def test_derive_id_is_uuid5_over_the_joined_parts(parts: list[str]) -> None:
    expected = uuid.uuid5(HEISTWATCH_NAMESPACE, chr(31).join(parts))
    assert derive_id("indicator", *parts) == f"indicator--{expected}"
