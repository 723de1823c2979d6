"""The name dictionary: every name of every object, looked up in memory by spelling-independent key."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from heistwatch.kb.store import KnowledgeStore
from heistwatch.model import NameEntry, loose_key, name_key


@dataclass(frozen=True)
class NameIndex:
    """Name key -> the objects that carry that name; a second map without generic suffixes ("group")."""

    exact: Mapping[str, tuple[NameEntry, ...]]
    loose: Mapping[str, tuple[NameEntry, ...]]

    @classmethod
    def from_entries(cls, entries: list[NameEntry]) -> NameIndex:
        """Index a list of name entries."""
        exact: defaultdict[str, list[NameEntry]] = defaultdict(list)
        loose: defaultdict[str, list[NameEntry]] = defaultdict(list)
        for entry in entries:
            exact[entry.key].append(entry)
            loose[loose_key(entry.key)].append(entry)
        return cls({k: tuple(v) for k, v in exact.items()}, {k: tuple(v) for k, v in loose.items()})

    @classmethod
    def from_store(cls, store: KnowledgeStore) -> NameIndex:
        """Index the store's whole name dictionary."""
        return cls.from_entries(store.names())

    def lookup(self, name: str) -> tuple[NameEntry, ...]:
        """Entries named `name` in any spelling ("APT 38", "apt-38"), and those equal without "group"."""
        key = name_key(name)
        exact = self.exact.get(key, ())
        loose = self.loose.get(loose_key(key), ())
        return exact + tuple(e for e in loose if e not in exact) if loose else exact

    def __iter__(self) -> Iterator[str]:
        """Every distinct name key."""
        return iter(self.exact)

    def __len__(self) -> int:
        return len(self.exact)
