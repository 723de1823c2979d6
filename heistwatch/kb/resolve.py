"""Resolve a name: what each source says about it, and a combined group / umbrella / country view.

Nothing is merged. Each source's statements are reported as that source made them; the combined view
counts, per level, which sources put the name where, and says where they disagree. Group labels are
written in ATT&CK's terms where a label names exactly one ATT&CK group, so sources can be compared.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from heistwatch.errors import NotFoundError
from heistwatch.kb.names import NameIndex
from heistwatch.kb.seed.attack import SOURCE_KEY as ATTACK
from heistwatch.kb.seed.claims import PACK_SOURCE
from heistwatch.kb.store import KnowledgeStore
from heistwatch.model import Claim, KBObject, NameEntry, ObjectType, Relation, Source, name_key

_ACTORS = (ObjectType.INTRUSION_SET,)
_ALL = tuple(ObjectType)
_UMBRELLA_DEPTH = 3


@dataclass(frozen=True)
class Statement:
    """One thing one source says about the name: that it lists it, or a claim that involves it."""

    source: str
    source_name: str
    subject: str
    relation: str
    object: str
    object_type: str
    likelihood: str | None = None
    said: str | None = None
    date: str | None = None
    reference: str | None = None
    title: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class LevelView:
    """At one level (aliases, group, umbrella, country): each label with the sources that give it."""

    values: dict[str, list[str]]

    @property
    def agreement(self) -> str:
        """ "agree" (one label), "disagree" (several) or "unknown" (no source says)."""
        return "unknown" if not self.values else "agree" if len(self.values) == 1 else "disagree"


@dataclass(frozen=True)
class Usage:
    """A technique or software an actor record uses, with the sources that say so."""

    external_id: str | None
    name: str
    type: str
    sources: list[str]


@dataclass(frozen=True)
class Resolution:
    """Everything the knowledge base says about one name."""

    query: str
    matches: list[dict[str, Any]]
    statements: list[Statement]
    aliases: LevelView
    group: LevelView
    umbrella: LevelView
    country: LevelView
    techniques: list[Usage] = field(default_factory=list)
    software: list[Usage] = field(default_factory=list)

    @property
    def disagreements(self) -> list[str]:
        """One sentence per level where sources disagree."""
        out = []
        for level in ("group", "umbrella", "country"):
            view: LevelView = getattr(self, level)
            if view.agreement == "disagree":
                said = "; ".join(f"{', '.join(srcs)} say {label}" for label, srcs in view.values.items())
                out.append(f"{level}: {said}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form; each statement names its source under `source`."""
        data = asdict(self)
        data["aliases"] = self.aliases.values
        for level in ("group", "umbrella", "country"):
            view: LevelView = getattr(self, level)
            data[level] = {"values": view.values, "agreement": view.agreement}
        data["disagreements"] = self.disagreements
        return data


class Resolver:
    """Answers name questions from one store; build once, resolve many names."""

    def __init__(self, store: KnowledgeStore, index: NameIndex | None = None) -> None:
        self.store = store
        self.index = index or NameIndex.from_store(store)
        self.sources: dict[str, Source] = {s.key: s for s in store.sources()}
        self._attack_groups = {o.external_id: o for o in store.objects(type=ObjectType.INTRUSION_SET, source=ATTACK)}
        by_key: defaultdict[str, set[str]] = defaultdict(set)
        for group in self._attack_groups.values():
            for n in (group.name, *group.aliases):
                by_key[name_key(n)].add(str(group.external_id))
        self._attack_by_key = by_key

    def resolve(self, name: str) -> Resolution:
        """Per-source statements and the combined view for `name`; NotFoundError if no source knows it."""
        entries = self.index.lookup(name)
        if not entries:
            raise NotFoundError(name)
        matched = {o.id: o for o in self.store.objects(ids={e.object_id for e in entries})}
        claims = self.store.claims(about=matched)
        ends = self._objects({c.subject_id for c in claims} | {c.object_id for c in claims}) | matched
        statements = [
            self._listing(e, matched[e.object_id]) for e in entries if matched[e.object_id].source != PACK_SOURCE
        ]
        statements += [self._claim(c, ends) for c in claims]
        aliases, alias_ids = self._aliases(matched, claims, ends)
        group = self._group(entries, matched, claims, ends)
        related = set(matched) | alias_ids | self._label_ids(group)
        umbrella, umbrella_ids = self._umbrella(related)
        if group:  # the name's own group is not its umbrella
            umbrella.pop(max(group, key=lambda label: len(group[label])), None)
        country = self._country(related | umbrella_ids)
        actors = [o for o in matched.values() if o.type in (*_ACTORS, ObjectType.CAMPAIGN)]
        techniques, software = self._usage(actors)
        return Resolution(
            query=name,
            matches=[_summary(o) for o in matched.values()],
            statements=statements,
            aliases=LevelView(aliases),
            group=LevelView(group),
            umbrella=LevelView(umbrella),
            country=LevelView(country),
            techniques=techniques,
            software=software,
        )

    # -- statements ---------------------------------------------------------------------------------

    def _source_name(self, key: str) -> str:
        source = self.sources.get(key)
        if source is None:
            return key
        return f"{source.name} {source.version}" if source.version else source.name

    def _listing(self, entry: NameEntry, obj: KBObject) -> Statement:
        return Statement(
            source=obj.source,
            source_name=self._source_name(obj.source),
            subject=entry.name,
            relation="name-of" if entry.primary else "alias-of",
            object=self.display(obj),
            object_type=obj.type.value,
            reference=obj.reference,
        )

    def _claim(self, claim: Claim, ends: dict[str, KBObject]) -> Statement:
        subject, target = ends[claim.subject_id], ends[claim.object_id]
        return Statement(
            source=claim.source,
            source_name=self._source_name(claim.source),
            subject=self.display(subject),
            relation=claim.relation.value,
            object=self.display(target),
            object_type=target.type.value,
            likelihood=claim.likelihood.words if claim.likelihood else None,
            said=claim.said,
            date=claim.date,
            reference=claim.reference,
            title=claim.title,
            note=claim.note,
        )

    def display(self, obj: KBObject) -> str:
        """The name as the source wrote it, and its ATT&CK group where that differs."""
        label = self.label(obj)
        return label if label.startswith(obj.name) else f"{obj.name} [{label}]"

    def label(self, obj: KBObject) -> str:
        """A name comparable across sources: "APT38 (G0082)" where it names one ATT&CK group."""
        group = self.attack_group(obj)
        return f"{group.name} ({group.external_id})" if group else obj.name

    def attack_group(self, obj: KBObject) -> KBObject | None:
        """The ATT&CK group an actor record is, by id or by a name that denotes exactly one ATT&CK group."""
        if obj.type is not ObjectType.INTRUSION_SET:
            return None
        group = self._attack_groups.get(obj.external_id)
        if group is None:
            ids = self._attack_by_key.get(name_key(obj.name), set())
            group = self._attack_groups[next(iter(ids))] if len(ids) == 1 else None
        return group

    # -- combined view ------------------------------------------------------------------------------

    def _objects(self, ids: Iterable[str]) -> dict[str, KBObject]:
        return {o.id: o for o in self.store.objects(ids=set(ids))}

    def _group(
        self,
        entries: Iterable[NameEntry],
        matched: dict[str, KBObject],
        claims: list[Claim],
        ends: dict[str, KBObject],
    ) -> dict[str, list[str]]:
        votes: dict[str, list[str]] = defaultdict(list)
        for entry in entries:
            obj = matched[entry.object_id]
            if obj.type in _ACTORS and obj.source != PACK_SOURCE:
                _vote(votes, self.label(obj), obj.source)
        for claim in claims:
            subject, target = ends[claim.subject_id], ends[claim.object_id]
            if claim.relation is Relation.SAME_AS and subject.type in _ACTORS and target.type in _ACTORS:
                other = target if claim.subject_id in matched else subject
                if self.label(other) != other.name:  # names an ATT&CK group
                    _vote(votes, self.label(other), claim.source)
            elif (
                claim.relation is Relation.ATTRIBUTED_TO
                and claim.subject_id in matched
                and subject.type not in _ACTORS
                and target.type in _ACTORS
            ):
                _vote(votes, self.label(target), claim.source)
        return dict(votes)

    def _label_ids(self, labels: Iterable[str], types: tuple[ObjectType, ...] = _ACTORS) -> set[str]:
        """Ids of every record of `types` any source files under one of `labels`."""
        ids: set[str] = set()
        for label in labels:
            name = label.rsplit(" (", 1)[0] if label.endswith(")") else label
            ids |= {e.object_id for e in self.index.lookup(name) if e.object_type in types}
        return ids

    def _aliases(
        self, matched: dict[str, KBObject], claims: list[Claim], ends: dict[str, KBObject]
    ) -> tuple[dict[str, list[str]], set[str]]:
        """Other names sources say are the same actor (same-as claims), and those names' records."""
        votes: dict[str, list[str]] = defaultdict(list)
        for claim in claims:
            if claim.relation is Relation.SAME_AS:
                other = ends[claim.object_id] if claim.subject_id in matched else ends[claim.subject_id]
                if other.id not in matched:
                    _vote(votes, other.name, claim.source)
        return dict(votes), self._label_ids(votes, _ALL)

    def _umbrella(self, start: set[str]) -> tuple[dict[str, list[str]], set[str]]:
        """Actors that sources put the name's records under (subgroup-of, attributed-to), up to 3 levels."""
        votes: dict[str, list[str]] = defaultdict(list)
        frontier = set(start)
        seen = set(frontier)
        for _ in range(_UMBRELLA_DEPTH):
            parents = [
                c
                for c in self.store.claims(about=frontier)
                if c.subject_id in frontier and c.relation in (Relation.SUBGROUP_OF, Relation.ATTRIBUTED_TO)
            ]
            targets = self._objects(c.object_id for c in parents)
            labels = set()
            for claim in parents:
                target = targets[claim.object_id]
                if target.type in _ACTORS:
                    _vote(votes, self.label(target), claim.source)
                    labels.add(self.label(target))
            frontier = self._label_ids(labels) - seen
            seen |= frontier
            if not frontier:
                break
        return dict(votes), seen

    def _country(self, ids: set[str]) -> dict[str, list[str]]:
        """Countries the sources attribute the name's records (and their groups and umbrellas) to."""
        votes: dict[str, list[str]] = defaultdict(list)
        for obj in self._objects(ids).values():
            for code in _countries(obj):
                _vote(votes, code, obj.source)
        claims = [
            c for c in self.store.claims(about=ids) if c.subject_id in ids and c.relation is Relation.ATTRIBUTED_TO
        ]
        targets = self._objects(c.object_id for c in claims)
        for claim in claims:
            if targets[claim.object_id].type is ObjectType.LOCATION:
                _vote(votes, targets[claim.object_id].name, claim.source)
        return dict(votes)

    def _usage(self, actors: list[KBObject]) -> tuple[list[Usage], list[Usage]]:
        if not actors:
            return [], []
        uses = self.store.relationships(from_ids=[a.id for a in actors], type="uses")
        targets = self._objects(r.target_ref for r in uses)
        found: dict[str, Usage] = {}
        for rel in uses:
            target = targets.get(rel.target_ref)
            if target is None:
                continue
            key = target.external_id or target.id
            usage = found.setdefault(key, Usage(target.external_id, target.name, target.type.value, []))
            if rel.source not in usage.sources:
                usage.sources.append(rel.source)
        ordered = sorted(found.values(), key=lambda u: (u.external_id or "", u.name))
        return (
            [u for u in ordered if u.type == ObjectType.ATTACK_PATTERN.value],
            [u for u in ordered if u.type in (ObjectType.MALWARE.value, ObjectType.TOOL.value)],
        )


def resolve_name(store: KnowledgeStore, name: str) -> Resolution:
    """Resolve one name (build a `Resolver` to resolve many)."""
    return Resolver(store).resolve(name)


def _vote(votes: dict[str, list[str]], label: str, source: str) -> None:
    if source not in votes[label]:
        votes[label].append(source)


def _countries(obj: KBObject) -> list[str]:
    value = obj.attrs.get("country")
    values = value if isinstance(value, list) else [value] if value else []
    return [v.upper() for v in values if isinstance(v, str) and len(v) == 2]


def _summary(obj: KBObject) -> dict[str, Any]:
    return {
        "id": obj.id,
        "type": obj.type.value,
        "name": obj.name,
        "source": obj.source,
        "external_id": obj.external_id,
        "aliases": list(obj.aliases),
        "reference": obj.reference,
    }
