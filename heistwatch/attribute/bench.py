"""Reader for the attribution-bench folder format (groups, items, task instances) into attribution inputs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heistwatch.attribute.model import Evidence, Item, Profile
from heistwatch.errors import InputError


@dataclass(frozen=True)
class BenchGroup:
    """One candidate group: id, name, origin country and profile items with their citation names."""

    group_id: str
    name: str
    country: str | None
    cites: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Instance:
    """One benchmark instance: evidence ids, gold group ids, and the profile items to mask for it."""

    instance_id: str
    task: str
    gold: tuple[str, ...]
    evidence: tuple[str, ...]
    masked: Mapping[str, frozenset[str]]


@dataclass(frozen=True)
class Bench:
    """A loaded benchmark folder: vocabulary, candidate groups, and the instances of each task present."""

    items: tuple[Item, ...]
    groups: tuple[BenchGroup, ...]
    tasks: Mapping[str, tuple[Instance, ...]]


def _rows(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file."""
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(str(path), f"cannot read benchmark file: {exc}") from exc


def _item(row: Mapping[str, Any]) -> Item:
    """A vocabulary row as an Item."""
    return Item(
        id=row["id"],
        kind=row["kind"],
        parent=row.get("parent"),
        tactics=tuple(row.get("tactics") or ()),
        software_techniques=tuple(row.get("software_techniques") or ()),
    )


def _group(row: Mapping[str, Any]) -> BenchGroup:
    """A groups.jsonl row as a BenchGroup."""
    cites = {entry["id"]: tuple(entry.get("cites") or ()) for entry in row.get("profile") or ()}
    return BenchGroup(row["group_id"], row["name"], row.get("origin_country"), cites)


def _instance(row: Mapping[str, Any]) -> Instance:
    """A task row as an Instance (evidence = techniques then software)."""
    evidence = row.get("evidence") or {}
    masked = {group: frozenset(ids) for group, ids in (row.get("masked_profile_items") or {}).items()}
    return Instance(
        instance_id=row["instance_id"],
        task=row["task"],
        gold=tuple(row["gold"]),
        evidence=tuple(evidence.get("techniques") or ()) + tuple(evidence.get("software") or ()),
        masked=masked,
    )


def load_bench(folder: Path) -> Bench:
    """Read a benchmark folder; tasks whose files are absent are left out."""
    tasks = {}
    for task in ("A", "B", "C"):
        path = folder / f"task_{task.lower()}.jsonl"
        if path.exists():
            tasks[task] = tuple(_instance(row) for row in _rows(path))
    items = tuple(_item(row) for row in _rows(folder / "items.jsonl"))
    groups = tuple(_group(row) for row in _rows(folder / "groups.jsonl"))
    return Bench(items=items, groups=groups, tasks=tasks)


def bench_profiles(groups: Sequence[BenchGroup], masked: Mapping[str, frozenset[str]]) -> list[Profile]:
    """Profiles minus an instance's masked items; an item's strength is its number of citations (at least 1)."""
    profiles = []
    for group in groups:
        hidden = masked.get(group.group_id, frozenset())
        items = {i: float(max(len(c), 1)) for i, c in group.cites.items() if i not in hidden}
        profiles.append(Profile(group.group_id, group.name, items, group.country))
    return profiles


def bench_evidence(instance: Instance) -> list[Evidence]:
    """The instance's evidence ids as Evidence of full reliability, kind taken from the id's prefix."""
    return [
        Evidence(i, "software" if i.startswith("S") else "technique", instance.instance_id) for i in instance.evidence
    ]
