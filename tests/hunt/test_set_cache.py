"""The on-disk cache of compiled indicator sets and Hyperscan databases: reused when good, rebuilt when not."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import heistwatch.cli.hunt  # noqa: F401  (registers the command)
from heistwatch.cli.main import cli
from heistwatch.config import cache_folder
from heistwatch.hunt import IndicatorSet, hunt_logs, prefilter, set_cache
from heistwatch.hunt.disk_cache import DiskCache
from heistwatch.kb import SQLiteStore
from heistwatch.model import ImportBatch, Source, make_indicator

ROWS = [
    ("i-dom", "domain", "evil.com"),
    ("i-net", "ipv4", "1.2.3.0/24"),
    ("i-url", "url", "http://bad.org/payload/x.php"),
    ("i-md5", "md5", "d41d8cd98f00b204e9800998ecf8427e"),
]
LOG = (
    b'{"host": "A.EVIL.COM."}\n{"host": "notevil.com"}\n{"dst_ip": "1.2.3.77"}\n{"dst_ip": "11.2.3.45"}\n'
    b'{"url": "http://bad.org/payload/x.php?s=1"}\n{"md5": "D41D8CD98F00B204E9800998ECF8427E"}\n'
)
KEY = "ab" * 32
needs_hyperscan = pytest.mark.skipif(not prefilter.available(), reason="the hyperscan package is not installed")


def sightings(iset: IndicatorSet, tmp_path: Path) -> list[tuple[str, int]]:
    log = tmp_path / "events.jsonl"
    log.write_bytes(LOG)
    return sorted((s.indicator_id, s.line) for s in hunt_logs([log], iset, workers=1).sightings)


EXPECTED = [("i-dom", 1), ("i-md5", 6), ("i-net", 3), ("i-url", 5)]


def entries(folder: Path) -> list[str]:
    return sorted(p.parent.name for p in folder.rglob("*") if p.is_file())


def test_disk_cache_round_trip_and_bound(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path, "bin", keep=2)
    assert cache.get(KEY) is None
    for number, key in enumerate(("a" * 64, "b" * 64, "c" * 64)):
        cache.put(key, b"payload %d" % number)
        os.utime(tmp_path / f"{key}.bin", ns=(number * 10**9, number * 10**9))
    cache.put(KEY, b"newest")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{'c' * 64}.bin", f"{KEY}.bin"])
    assert (cache.get(KEY), cache.get("c" * 64), cache.get("a" * 64)) == (b"newest", b"payload 2", None)


def test_disk_cache_drops_corrupt_and_foreign_files(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path, "bin")
    cache.put(KEY, b"x" * 1000)
    path = tmp_path / f"{KEY}.bin"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    assert cache.get(KEY) is None and not path.exists()
    path.write_bytes(b"something else entirely")
    assert cache.get(KEY) is None and not path.exists()
    with pytest.raises(ValueError, match="hex digests"):
        cache.get("../escape")


def test_cache_folder_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_folder() == tmp_path / "heistwatch"


def test_state_round_trip_matches_alike() -> None:
    built = IndicatorSet.from_values(ROWS)
    again = IndicatorSet.from_state(built.state())
    probes = [("domain", "x.EVIL.com"), ("ipv4", "1.2.3.9"), ("ipv4", "1.2.4.9"), ("md5", ROWS[3][2].upper())]
    for kind, value in probes:
        assert again.match_value(kind, value) == built.match_value(kind, value)
    with pytest.raises(ValueError, match="not the state"):
        IndicatorSet.from_state(("tables", {}))  # type: ignore[arg-type]


@needs_hyperscan
def test_second_load_compiles_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    first = set_cache.load_indicator_set(ROWS, cache)
    assert entries(cache) == ["prefilter", "sets"]
    assert sightings(first, tmp_path) == EXPECTED

    def refuse(*_: object) -> None:
        raise AssertionError("compiled although cached")

    monkeypatch.setattr(IndicatorSet, "from_values", refuse)
    monkeypatch.setattr(prefilter, "_compile_apart", refuse)
    second = set_cache.load_indicator_set(iter(ROWS), cache)
    assert second is not first and prefilter.prefilter_for(second) is not None
    assert sightings(second, tmp_path) == EXPECTED


@needs_hyperscan
@pytest.mark.parametrize("damage", ["flip", "foreign-database", "not-a-set"])
def test_damaged_entries_are_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str) -> None:
    cache = tmp_path / "cache"
    set_cache.load_indicator_set(ROWS, cache)
    [database] = (cache / "prefilter").iterdir()
    [stored_set] = (cache / "sets").iterdir()
    if damage == "flip":
        data = bytearray(database.read_bytes())
        data[len(data) // 2] ^= 0xFF
        database.write_bytes(bytes(data))
    elif damage == "foreign-database":  # passes the digest check, and Hyperscan refuses it
        prefilter.database_cache(cache).put(database.stem, b"\xdb\xdb\xdb\xdb not a database")
    else:
        set_cache.set_cache(cache).put(stored_set.stem, b"\x00\x01 not marshal")
    compiled: list[int] = []
    real = prefilter._compile_apart

    def counted(words: list[str]) -> bytes:
        compiled.append(len(words))
        return real(words)

    monkeypatch.setattr(prefilter, "_compile_apart", counted)
    again = set_cache.load_indicator_set(ROWS, cache)
    assert sightings(again, tmp_path) == EXPECTED
    assert compiled == ([] if damage == "not-a-set" else [len(prefilter.literals(again) or [])])
    assert set_cache.load_indicator_set(ROWS, cache) is not again  # and the rebuilt entries read back
    assert len(list((cache / "prefilter").iterdir())) == len(list((cache / "sets").iterdir())) == 1


@needs_hyperscan
def test_other_rows_get_their_own_entries(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    set_cache.load_indicator_set(ROWS, cache)
    other = set_cache.load_indicator_set([*ROWS, ("i-new", "domain", "new.example")], cache)
    assert len(list((cache / "sets").iterdir())) == len(list((cache / "prefilter").iterdir())) == 2
    assert [m.value for m in other.match_value("domain", "a.new.example")] == ["new.example"]


def test_without_a_cache_folder_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    iset = set_cache.load_indicator_set(ROWS, None)
    assert sightings(iset, tmp_path) == EXPECTED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl"]


@needs_hyperscan
def test_hunt_logs_command_caches_in_the_xdg_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    kb = tmp_path / "kb.sqlite"
    store = SQLiteStore(kb)
    evil = make_indicator("domain", "evil.com", source="report-x")
    store.import_batch(ImportBatch(sources=(Source("report-x", "A report"),), indicators=(evil,)))
    store.close()
    log = tmp_path / "events.jsonl"
    log.write_bytes(LOG)
    for cache in ("--cache", "--cache", "--no-cache"):
        args = ["--kb", str(kb), "hunt", "logs", "--no-record", "--json", cache, str(log)]
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert [(s["value"], s["line"]) for s in json.loads(result.stdout)["sightings"]] == [("evil.com", 1)]
    assert entries(tmp_path / "xdg" / "heistwatch") == ["prefilter", "sets"]
