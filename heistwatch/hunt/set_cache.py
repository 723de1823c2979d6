"""Indicator sets and their prefilters kept between runs: what a log hunt compiles once per indicator list.

At a million indicators a run spends seconds compiling the set's tables, more listing its prefilter literals, and
about a minute compiling the Hyperscan database. `load_indicator_set` keys one cache entry on a digest of the
(id, kind, value) rows and of the code that compiles them; the entry holds the set's tables (marshal: plain
built-in values, nothing executable) and the digest of the set's literals, which names the compiled database in
the prefilter's own cache. A run with the same rows reads both and compiles nothing.
"""

from __future__ import annotations

import hashlib
import marshal
from collections.abc import Iterable
from pathlib import Path

from heistwatch.hunt import matcher, prefilter
from heistwatch.hunt.disk_cache import DiskCache
from heistwatch.hunt.matcher import IndicatorSet
from heistwatch.hunt.prefilter import Prefilter, database_cache, keep_prefilter, literal_digest, literals

_FORMAT = b"indicator-set 1"


def _rows_key(rows: list[tuple[str, str, str]]) -> str:
    """A digest of the rows, in order, and of the modules whose code decides what they compile to."""
    digest = hashlib.sha256(_FORMAT)
    for module in (matcher, prefilter):
        digest.update(hashlib.sha256(Path(str(module.__file__)).read_bytes()).digest())
    digest.update("".join(f"{i}\t{k}\t{v}\n" for i, k, v in rows).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def set_cache(folder: Path) -> DiskCache:
    """The cache of compiled indicator sets under a cache folder."""
    return DiskCache(folder / "sets", "iset", keep=3)


def load_indicator_set(
    rows: Iterable[tuple[str, str, str]], cache: Path | None, *, with_prefilter: bool = True
) -> IndicatorSet:
    """The set compiled from (id, kind, value) rows, with its prefilter made (unless `with_prefilter` is False);
    both are read from the `cache` folder when these rows were compiled before, and written there when not."""
    listed = list(rows)
    if cache is None:
        indicators = IndicatorSet.from_values(listed)
        if with_prefilter:
            prefilter.prefilter_for(indicators)
        return indicators
    sets, key = set_cache(cache), _rows_key(listed)
    stored = _read(sets, key)
    if stored is None:
        indicators = IndicatorSet.from_values(listed)
        listed.clear()  # the rows are compiled: free them before the literal list and the compiler need memory
        words = literals(indicators) if indicators.size else None
        digest = literal_digest(words) if words else None
        sets.put(key, marshal.dumps((indicators.state(), digest)))
    else:
        indicators, digest = stored
        words = None
    if with_prefilter:
        keep_prefilter(indicators, _prefilter(indicators, digest, words, cache))
    return indicators


def _read(sets: DiskCache, key: str) -> tuple[IndicatorSet, str | None] | None:
    """The set and literal digest stored under `key`; None (and the entry dropped) when it does not read as one."""
    payload = sets.get(key)
    if payload is None:
        return None
    try:
        state, digest = marshal.loads(payload)
        if digest is not None and not isinstance(digest, str):
            raise ValueError("literal digest is not text")
        return IndicatorSet.from_state(state), digest
    except (ValueError, TypeError, EOFError):
        sets.discard(key)
        return None


def _prefilter(indicators: IndicatorSet, digest: str | None, words: list[str] | None, cache: Path) -> Prefilter | None:
    """The set's prefilter by its literal digest (None when Hyperscan is missing or some indicator has no literal)."""
    if not prefilter.available() or digest is None:
        return None
    return Prefilter.load(digest, lambda: words or literals(indicators), database_cache(cache))
