"""The attribution package's public API stays sorted and importable; calibration files round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest

import heistwatch.attribute
from heistwatch.attribute import DEFAULT_CALIBRATION, load_calibration, save_calibration
from heistwatch.errors import InputError


def test_all_is_sorted_and_importable() -> None:
    names = heistwatch.attribute.__all__
    assert names == sorted(names)
    assert all(hasattr(heistwatch.attribute, n) for n in names)


def test_calibration_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    save_calibration(DEFAULT_CALIBRATION, path)
    assert load_calibration(path) == DEFAULT_CALIBRATION


def test_bad_calibration_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"weights": {"no-such-feature": 1}}', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.json"):
        load_calibration(path)


def test_packaged_calibration_loads() -> None:
    assert load_calibration().weights
