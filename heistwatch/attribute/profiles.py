"""Actor profiles from the knowledge base: what each ATT&CK group uses, the names tied to it, whom it targets.

Candidates are ATT&CK's groups (the only records with behavioural profiles). A profile holds:
- techniques and software the group `uses` (ATT&CK), strength 1;
- `name:` items: the names of every record that a source ties to the group, each at the strength of the
  claim's likelihood (ClearSky: CryptoCore is "likely" Lazarus -> 0.675); names listed for the group itself
  (ATT&CK, the galaxy's entries that denote it) at 1, and malware a galaxy entry says the actor uses at 0.7;
- `sector:` and `victim:` items from the galaxy's threat-actor entries (cfr-target-category,
  cfr-suspected-victims) that denote the group.
Country and umbrella labels come from name resolution (the combined view, most-supported label).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from heistwatch.attribute.model import Item, Profile
from heistwatch.kb.resolve import Resolver
from heistwatch.kb.seed.attack import SOURCE_KEY as ATTACK
from heistwatch.kb.store import KnowledgeStore
from heistwatch.model import Claim, KBObject, ObjectType, Relation, name_key

# Strength of a name tied by a claim that gives no likelihood, by relation.
_RELATION_STRENGTH = {
    Relation.SAME_AS: 0.9,
    Relation.SUBGROUP_OF: 0.8,
    Relation.ATTRIBUTED_TO: 0.675,
    Relation.OVERLAPS: 0.5,
    Relation.RELATED_TO: 0.3,
}
LISTED_STRENGTH = 1.0
USES_STRENGTH = 0.7
# The galaxy spells one sector several ways; these keys are read as one.
_SECTOR_SYNONYMS = {
    "financial": "finance",
    "financialservices": "finance",
    "banking": "finance",
    "banks": "finance",
    "telecomms": "telecommunications",
    "telecoms": "telecommunications",
    "defence": "defense",
}
_VICTIM_FIELDS = {"cfr-target-category": "sector", "cfr-suspected-victims": "victim"}


@dataclass(frozen=True)
class KnowledgeProfiles:
    """Everything the scoring model needs from the knowledge base, plus labels for the group levels."""

    items: list[Item]
    profiles: list[Profile]
    umbrellas: dict[str, str]
    item_names: dict[str, str]


def name_item(name: str) -> str:
    """The vocabulary id of a name ("name:cryptocore")."""
    return f"name:{name_key(name)}"


def victim_item(kind: str, value: str) -> str:
    """The vocabulary id of a targeted sector or victim ("sector:finance", "victim:japan")."""
    key = name_key(value)
    return f"{kind}:{_SECTOR_SYNONYMS.get(key, key) if kind == 'sector' else key}"


def knowledge_profiles(store: KnowledgeStore, resolver: Resolver | None = None) -> KnowledgeProfiles:
    """Profiles of every ATT&CK group and the vocabulary they are written in."""
    resolver = resolver or Resolver(store)
    groups = {g.id: g for g in store.objects(type=ObjectType.INTRUSION_SET, source=ATTACK) if g.external_id}
    external = _external_ids(store)
    items = _vocabulary(store, external)
    strengths: dict[str, dict[str, float]] = {gid: {} for gid in groups}
    for rel in store.relationships(from_ids=list(groups), type="uses"):
        if rel.target_ref in external:
            strengths[rel.source_ref][external[rel.target_ref]] = 1.0
    _add_names(store, resolver, groups, strengths)
    profiles, umbrellas = [], {}
    for gid, group in sorted(groups.items(), key=lambda kv: str(kv[1].external_id)):
        resolution = resolver.resolve(group.name)
        country = _top(resolution.country.values)
        umbrella = _top(resolution.umbrella.values)
        actor = str(group.external_id)
        if umbrella:
            umbrellas[actor] = umbrella
        profiles.append(Profile(actor, group.name, strengths[gid], country=country))
    names = {name_item(e.name): e.name for e in store.names() if e.primary}
    names |= {str(o.external_id): o.name for o in _attack_objects(store)}
    return KnowledgeProfiles(items, profiles, _without_cycles(umbrellas, profiles), names)


def _without_cycles(umbrellas: dict[str, str], profiles: list[Profile]) -> dict[str, str]:
    """Where two groups are each other's umbrella (sources disagree), keep the one more groups sit under."""
    label = {p.actor_id: f"{p.name} ({p.actor_id})" for p in profiles}
    by_label = {v: k for k, v in label.items()}
    under = Counter(umbrellas.values())
    kept = dict(umbrellas)
    for actor, umbrella in umbrellas.items():
        other = by_label.get(umbrella)
        if other is not None and umbrellas.get(other) == label[actor] and under[label[actor]] >= under[umbrella]:
            kept.pop(actor, None)
    return kept


def _vocabulary(store: KnowledgeStore, ids: dict[str, str]) -> list[Item]:
    """ATT&CK techniques (with parent and tactics) and software (with the techniques it implements)."""
    items = [
        Item(
            str(t.external_id),
            "technique",
            parent=t.attrs.get("parent"),
            tactics=tuple(t.attrs.get("tactics", ())),
        )
        for t in store.objects(type=ObjectType.ATTACK_PATTERN, source=ATTACK)
        if t.external_id
    ]
    software = [o for kind in (ObjectType.MALWARE, ObjectType.TOOL) for o in store.objects(type=kind, source=ATTACK)]
    implements: defaultdict[str, list[str]] = defaultdict(list)
    for rel in store.relationships(from_ids=[s.id for s in software], type="uses"):
        if rel.target_ref in ids:
            implements[rel.source_ref].append(ids[rel.target_ref])
    items += [
        Item(str(s.external_id), "software", software_techniques=tuple(sorted(implements[s.id])))
        for s in software
        if s.external_id
    ]
    return items


def _attack_objects(store: KnowledgeStore) -> list[KBObject]:
    """ATT&CK's techniques and software that carry an ATT&CK id."""
    kinds = (ObjectType.ATTACK_PATTERN, ObjectType.MALWARE, ObjectType.TOOL)
    return [o for k in kinds for o in store.objects(type=k, source=ATTACK) if o.external_id]


def _external_ids(store: KnowledgeStore) -> dict[str, str]:
    """Knowledge-base id -> ATT&CK id (T…, S…) of ATT&CK's techniques and software."""
    return {o.id: str(o.external_id) for o in _attack_objects(store)}


def _add_names(
    store: KnowledgeStore, resolver: Resolver, groups: dict[str, KBObject], strengths: dict[str, dict[str, float]]
) -> None:
    """Name, sector and victim items for each group, from listings, claims and galaxy `uses` links."""
    actors = store.objects(type=ObjectType.INTRUSION_SET)
    by_id = {o.id: o for o in actors}
    for actor in actors:
        group = resolver.attack_group(actor)
        if group is not None and group.id in strengths:
            _raise(strengths[group.id], _names(actor), LISTED_STRENGTH)
            _raise(strengths[group.id], _victims(actor), LISTED_STRENGTH)
    claims = store.claims()
    ends = {o.id: o for o in store.objects(ids={c.subject_id for c in claims} | {c.object_id for c in claims})}
    for record, ties in _claimed_groups(claims, ends, resolver).items():
        for group_id, strength in ties.items():
            if group_id in strengths:
                _raise(strengths[group_id], _names(ends[record]), strength)
    used = store.relationships(from_ids=list(by_id), type="uses")
    targets = {o.id: o for o in store.objects(ids={r.target_ref for r in used})}
    for rel in used:
        group = resolver.attack_group(by_id[rel.source_ref])
        target = targets.get(rel.target_ref)
        if group is not None and group.id in strengths and target is not None and target.type is ObjectType.MALWARE:
            _raise(strengths[group.id], _names(target), USES_STRENGTH)


def _claimed_groups(claims: list[Claim], ends: dict[str, KBObject], resolver: Resolver) -> dict[str, dict[str, float]]:
    """Record id -> {ATT&CK group id: strength} from claims, plus one hop along same-as claims.

    "Dangerous Password is CryptoCore" (same-as) and "CryptoCore is likely Lazarus" tie Dangerous Password to
    Lazarus at the product of the two strengths.
    """
    direct: defaultdict[str, dict[str, float]] = defaultdict(dict)
    same_as: list[tuple[str, str, float]] = []
    for claim in claims:
        strength = claim.likelihood.probability if claim.likelihood else _RELATION_STRENGTH[claim.relation]
        pairs = [(claim.subject_id, claim.object_id)]
        if claim.relation is Relation.SAME_AS:
            pairs.append((claim.object_id, claim.subject_id))
            same_as += [(a, b, strength) for a, b in pairs]
        for named, actor_id in pairs:
            group = resolver.attack_group(ends[actor_id])
            if group is not None:
                _raise(direct[named], [group.id], strength)
    ties = {record: dict(groups) for record, groups in direct.items()}
    for record, alias, strength in same_as:
        for group_id, tie in direct.get(alias, {}).items():
            _raise(ties.setdefault(record, {}), [group_id], strength * tie)
    return ties


def _names(obj: KBObject) -> list[str]:
    return [name_item(n) for n in (obj.name, *obj.aliases) if len(name_key(n)) >= 3]


def _victims(obj: KBObject) -> list[str]:
    out = []
    for field, kind in _VICTIM_FIELDS.items():
        values = obj.attrs.get(field, ())
        out += [victim_item(kind, v) for v in values if isinstance(v, str) and name_key(v)]
    return out


def _raise(profile: dict[str, float], items: Iterable[str], strength: float) -> None:
    for item in items:
        profile[item] = max(profile.get(item, 0.0), strength)


def _top(votes: dict[str, list[str]]) -> str | None:
    """The label most sources give (ties: the first given)."""
    return max(votes, key=lambda label: len(votes[label])) if votes else None
