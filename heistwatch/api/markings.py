"""TLP 2.0 access rules: who may read what, and the level each source's records are held at as a minimum.

The rules (FIRST TLP 2.0, as an exchange's server applies them):
- a user reads a record when its level is at most the user's clearance;
- TLP:AMBER+STRICT and TLP:RED stay inside the organisation: a partner's user reads at most TLP:AMBER,
  whatever clearance they were given;
- a record is held at least at its source's level (an ingested report marked AMBER keeps everything it yields
  AMBER), and a relationship at least at the level of the records it ties together.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from heistwatch.model import TLP, Report

LEVELS = list(TLP)  # least to most restricted
PARTNER_CEILING = TLP.AMBER


def level(tlp: TLP) -> int:
    """The label's rank: 0 for CLEAR up to 4 for RED."""
    return LEVELS.index(tlp)


def most_restrictive(labels: Iterable[TLP]) -> TLP:
    """The most restricted of the labels (CLEAR for none)."""
    return max(labels, key=level, default=TLP.CLEAR)


def report_level(report: Report, floors: Mapping[str, TLP], held: Mapping[str, TLP]) -> TLP:
    """A report's marking: its source's level (`floors`), raised to its most restricted indicator (`held`)."""
    return most_restrictive((floors.get(report.source, TLP.CLEAR), held.get(report.source, TLP.CLEAR)))


def may_read(tlp: TLP, clearance: TLP, *, internal: bool) -> bool:
    """Whether a user with `clearance`, inside the organisation or not, may read a record marked `tlp`."""
    if not internal and level(tlp) > level(PARTNER_CEILING):
        return False
    return level(tlp) <= level(clearance)


def readable(clearance: TLP, *, internal: bool) -> frozenset[TLP]:
    """Every label such a user may read."""
    return frozenset(t for t in TLP if may_read(t, clearance, internal=internal))


class SourceLevels:
    """The minimum level of each source's records, kept in the server's state file."""

    def __init__(self, path: Path) -> None:
        """Open (creating if needed) the table in the state file at `path`."""
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS source_levels (source TEXT PRIMARY KEY, tlp TEXT NOT NULL)")

    def all(self) -> dict[str, TLP]:
        """Source key -> its minimum level, for the sources that have one."""
        with self._lock:
            return {source: TLP(tlp) for source, tlp in self._db.execute("SELECT source, tlp FROM source_levels")}

    def get(self, source: str) -> TLP:
        """A source's minimum level (CLEAR when none was set)."""
        with self._lock:
            row = self._db.execute("SELECT tlp FROM source_levels WHERE source = ?", (source,)).fetchone()
        return TLP(row[0]) if row else TLP.CLEAR

    def raise_to(self, source: str, tlp: TLP) -> TLP:
        """Hold the source at least at `tlp` (never lowers it); returns the level now in force."""
        with self._lock:
            row = self._db.execute("SELECT tlp FROM source_levels WHERE source = ?", (source,)).fetchone()
            current = TLP(row[0]) if row else TLP.CLEAR
            kept = most_restrictive((current, tlp))
            self._db.execute("INSERT OR REPLACE INTO source_levels VALUES (?, ?)", (source, kept.value))
        return kept

    def set(self, source: str, tlp: TLP) -> None:
        """Set a source's minimum level, lower or higher (an admin's decision)."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO source_levels VALUES (?, ?)", (source, tlp.value))

    def close(self) -> None:
        """Close the state file."""
        self._db.close()
