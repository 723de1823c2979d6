"""A caseless multi-literal prefilter (Hyperscan) that finds the few lines worth parsing in a block of log bytes.

Every indicator contributes literals that any line it can match must contain (its domain in punycode and
Unicode form, an e-mail, a digest, the octet-aligned prefixes of a CIDR block, a URL's path or host), so the
prefilter never loses a hit; matched lines are then parsed and verified exactly. Limits, by design: values that
a log writes escaped (JSON `\\u0065vil.com`, Zeek `\\x..`) or IPv6 hextets with leading zeros are not seen.
Without the optional `hyperscan` package, or when some indicator has no literal, every line is verified.

Compiling a million literals takes a minute or more and loading the compiled database well under a second, so a
`DiskCache` can keep compiled databases, keyed by a digest of the literals, the compile flags and the Hyperscan
version; an entry that fails its digest or that Hyperscan refuses to load is deleted and compiled again.
"""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
import platform
import re
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from heistwatch.hunt.disk_cache import DiskCache
from heistwatch.hunt.matcher import IndicatorSet

try:
    import hyperscan
except ImportError:  # pragma: no cover - exercised where the wheel is missing
    hyperscan = None  # type: ignore[assignment]

_MAX_EXPANSION = 256
CHILD_COMPILE_WORDS = 20_000
_SAFE_PATH = re.compile(r"[A-Za-z0-9/._~%=&?+-]{8,}")


def _domain_literals(key: str) -> Iterator[str]:
    yield key
    if "xn--" in key:
        try:
            yield key.encode("ascii").decode("idna")
        except UnicodeError:
            return


def _ipv4_literals(key: str) -> Iterator[str] | None:
    address, _, bits = key.partition("/")
    prefix = int(bits) if bits else 32
    if prefix == 32:
        return iter((address,))
    aligned = -(-prefix // 8) * 8
    while 1 << (aligned - prefix) > _MAX_EXPANSION:
        aligned -= 8
    if aligned == 0:
        return None
    first = int.from_bytes(bytes(int(o) for o in address.split(".")), "big") >> (32 - aligned)
    count = 1 << max(aligned - prefix, 0)
    return (_octets(first + i, aligned) for i in range(count))


def _octets(number: int, bits: int) -> str:
    """The dotted spelling of the first `bits` of an address, with a closing dot when it is a prefix."""
    parts = [str((number >> shift) & 0xFF) for shift in range(bits - 8, -1, -8)]
    return ".".join(parts) + ("." if bits < 32 else "")


def _ipv6_literals(key: str) -> Iterator[str] | None:
    address, _, bits = key.partition("/")
    first = address.split(":", 1)[0]
    if not first or (bits and int(bits) < 16):
        return None
    return iter((f"{first}:",))


def _url_literals(key: str) -> Iterator[str]:
    host, slash, rest = key.removeprefix("//").partition("/")
    path = _SAFE_PATH.fullmatch(slash + rest)
    if path:
        return iter((path.group(),))
    return _domain_literals(host.rpartition(":")[0] if host.count(":") == 1 else host.strip("[]"))


def literals(indicators: IndicatorSet) -> list[str] | None:
    """Literals that cover every indicator in the set, or None when some indicator has none."""
    out: set[str] = set()
    for kind in indicators.kinds():
        for key in indicators.keys(kind):
            found = _literals(kind, key)
            if found is None:
                return None
            out.update(found)
    return sorted(out)


def _literals(kind: str, key: str) -> Iterable[str] | None:
    if kind == "domain":
        return _domain_literals(key)
    if kind == "ipv4":
        return _ipv4_literals(key)
    if kind == "ipv6":
        return _ipv6_literals(key)
    if kind == "url":
        return _url_literals(key)
    if kind == "registry":
        return (key.rpartition("\\")[2],)
    return (key,)


def available() -> bool:
    """Whether the optional Hyperscan package is installed."""
    return hyperscan is not None


def literal_digest(words: list[str]) -> str:
    """A digest of a sorted literal list, which names its compiled database in the cache."""
    return hashlib.sha256("\0".join(words).encode("utf-8")).hexdigest()


@functools.cache
def _library_version() -> str:
    """The Hyperscan library's own version line, as a compiled database reports it."""
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    database.compile(expressions=[b"x"], ids=[0], elements=1, flags=[hyperscan.HS_FLAG_CASELESS], literal=True)
    return str(database.info())


def database_key(digest: str) -> str:
    """The cache key of the database compiled from the literals with this digest, here, with these flags."""
    settings = (
        "block",
        "caseless-literal",
        hyperscan.HS_MODE_BLOCK,
        hyperscan.HS_FLAG_CASELESS,
        getattr(hyperscan, "__version__", ""),
        _library_version(),
        platform.machine(),
    )
    return hashlib.sha256(f"{digest}|{settings!r}".encode()).hexdigest()


def _compile(words: list[str]) -> bytes:
    """A serialized caseless literal database for the words."""
    encoded = [w.encode("utf-8") for w in words if w]
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    flags = [hyperscan.HS_FLAG_CASELESS] * len(encoded)
    database.compile(
        expressions=encoded, ids=list(range(len(encoded))), elements=len(encoded), flags=flags, literal=True
    )
    return bytes(hyperscan.dumpb(database))


def _compile_apart(words: list[str]) -> bytes:
    """Compile in a forked child when the set is large: the compiler's transient memory (about 2 GB for a million
    literals) then goes back to the system with the child instead of staying in the hunting process."""
    if len(words) < CHILD_COMPILE_WORDS or "fork" not in multiprocessing.get_all_start_methods():
        return _compile(words)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        return pool.apply(_compile, (words,))


class Prefilter:
    """A compiled Hyperscan block-mode database of caseless literals."""

    def __init__(self, serialized: bytes) -> None:
        self._db: Any = hyperscan.loadb(serialized, hyperscan.HS_MODE_BLOCK)
        self._db.scratch = hyperscan.Scratch(self._db)

    @classmethod
    def build(cls, indicators: IndicatorSet, cache: DiskCache | None = None) -> Prefilter | None:
        """The prefilter for a set, or None when Hyperscan is missing or the set cannot be covered by literals."""
        words = literals(indicators) if hyperscan is not None and indicators.size else None
        return cls.load(literal_digest(words), lambda: words, cache) if words else None

    @classmethod
    def load(cls, digest: str, words: Callable[[], list[str] | None], cache: DiskCache | None) -> Prefilter:
        """The prefilter of the literals with this digest: the cached database when a good one is there, else the
        compiled `words()` (then cached)."""
        key = database_key(digest)
        serialized = cache.get(key) if cache is not None else None
        if serialized is not None:
            try:
                return cls(serialized)
            except hyperscan.error:  # another Hyperscan build or a damaged database: compile it again
                assert cache is not None
                cache.discard(key)
        listed = words()
        if not listed:
            raise ValueError("a prefilter needs at least one literal")
        serialized = _compile_apart(listed)
        if cache is not None:
            cache.put(key, serialized)
        return cls(serialized)

    def line_starts(self, block: bytes) -> list[int]:
        """Sorted offsets of the starts of the lines in `block` that contain at least one literal."""
        ends: list[int] = []

        def on_match(_id: int, _start: int, end: int, _flags: int, _context: object) -> None:
            ends.append(end)

        self._db.scan(block, match_event_handler=on_match)
        return sorted({block.rfind(b"\n", 0, end - 1) + 1 for end in ends})


_COMPILED: weakref.WeakKeyDictionary[IndicatorSet, Prefilter | None] = weakref.WeakKeyDictionary()


def database_cache(folder: Path) -> DiskCache:
    """The cache of compiled databases under a cache folder (a 1M-literal database is ~120 MB: keep three)."""
    return DiskCache(folder / "prefilter", "hsdb", keep=3)


def prefilter_for(indicators: IndicatorSet, cache: Path | None = None) -> Prefilter | None:
    """The set's prefilter, made on first use and kept as long as the set (compiling 1M literals takes ~50 s);
    with a `cache` folder the compiled database is read from there, or written there for the next run."""
    if indicators not in _COMPILED:
        _COMPILED[indicators] = Prefilter.build(indicators, database_cache(cache) if cache else None)
    return _COMPILED[indicators]


def keep_prefilter(indicators: IndicatorSet, prefilter: Prefilter | None) -> None:
    """Make `prefilter` the set's, for as long as the set lives (a set read from a cache brings its own)."""
    _COMPILED[indicators] = prefilter
