"""MISP galaxy clusters (threat actors, Microsoft and Tidal groups, Malpedia families, MITRE clusters).

Read as JSON from the `pymispgalaxies` package data. Each cluster is its own source: its entries become
objects, their synonyms become names, and their `related` links become claims (identity: similar,
overlaps, part-of, linked-to) or relationships (behaviour: uses, deploys, targets), with the
estimative-language likelihood tag the galaxy puts on each link.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from importlib import metadata, resources
from typing import Any

from heistwatch.model import (
    Claim,
    ImportBatch,
    KBObject,
    ObjectType,
    Relation,
    Relationship,
    Source,
    derive_id,
    parse_likelihood,
)

CONFIDENCE = 70  # community-curated; the galaxy's own default link likelihood is "likely"

# cluster -> type of its entries
CLUSTERS: dict[str, ObjectType] = {
    "threat-actor": ObjectType.INTRUSION_SET,
    "microsoft-activity-group": ObjectType.INTRUSION_SET,
    "tidal-groups": ObjectType.INTRUSION_SET,
    "mitre-intrusion-set": ObjectType.INTRUSION_SET,
    "tidal-campaigns": ObjectType.CAMPAIGN,
    "malpedia": ObjectType.MALWARE,
    "mitre-malware": ObjectType.MALWARE,
    "mitre-tool": ObjectType.TOOL,
}
# Clusters read only to resolve `related` links that point into ATT&CK (same UUIDs as ATT&CK's objects).
_ATTACK_ALIASES = {"mitre-attack-pattern": "attack-pattern"}

_CLAIM_RELATIONS = {
    "similar": Relation.SAME_AS,
    "overlaps": Relation.OVERLAPS,
    "part-of": Relation.SUBGROUP_OF,
    "linked-to": Relation.RELATED_TO,
    "related-to": Relation.RELATED_TO,
}
_BEHAVIOUR_RELATIONS = {"uses": "uses", "deploys": "uses", "targets": "targets"}
_ATTACK_SUFFIX = re.compile(r"\s+-\s+[GSCT]\d{4}(?:\.\d{3})?$")
_LIKELIHOOD_TAG = re.compile(r'estimative-language:likelihood-probability="([a-z-]+)"')


@dataclass(frozen=True)
class GalaxyLoad:
    """A batch from the galaxy, and the links it could not resolve (to clusters not loaded)."""

    batch: ImportBatch
    unresolved_links: int


def _cluster(name: str) -> dict[str, Any]:
    path = resources.files("pymispgalaxies") / "data" / "misp-galaxy" / "clusters" / f"{name}.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


def load_cluster_values(name: str) -> list[dict[str, Any]]:
    """The entries of one packaged galaxy cluster, as the galaxy's JSON has them."""
    return list(_cluster(name)["values"])


def _source(name: str, cluster: dict[str, Any]) -> Source:
    return Source(
        key=f"misp-galaxy:{name}",
        name=f"MISP galaxy {cluster.get('name', name)}",
        version=str(cluster.get("version")),
        url=f"https://github.com/MISP/misp-galaxy/blob/main/clusters/{name}.json",
        package=f"pymispgalaxies {metadata.version('pymispgalaxies')}",
    )


def load_misp_galaxies(attack_ids: Collection[str]) -> GalaxyLoad:
    """Every entry of the clusters in CLUSTERS with its names and links; links into ATT&CK use `attack_ids`."""
    clusters = {name: _cluster(name) for name in CLUSTERS}
    ids = {
        v["uuid"]: derive_id(CLUSTERS[name].value, f"misp-galaxy:{name}", v["uuid"])
        for name, cluster in clusters.items()
        for v in cluster["values"]
    }
    for name, stix_type in _ATTACK_ALIASES.items():
        for v in load_cluster_values(name):
            if f"{stix_type}--{v['uuid']}" in attack_ids:
                ids.setdefault(v["uuid"], f"{stix_type}--{v['uuid']}")
    objects: list[KBObject] = []
    claims: list[Claim] = []
    relationships: list[Relationship] = []
    unresolved = 0
    for name, cluster in clusters.items():
        source = f"misp-galaxy:{name}"
        for value in cluster["values"]:
            obj = _object(value, CLUSTERS[name], source, ids[value["uuid"]])
            objects.append(obj)
            for link in value.get("related", ()):
                target = ids.get(link.get("dest-uuid", ""))
                kind = link.get("type", "")
                if target is None:
                    unresolved += kind in _CLAIM_RELATIONS or kind in _BEHAVIOUR_RELATIONS
                elif kind in _CLAIM_RELATIONS:
                    claims.append(_claim(obj, kind, target, link, source))
                elif kind in _BEHAVIOUR_RELATIONS:
                    relationships.append(
                        Relationship(
                            id=derive_id("relationship", source, obj.id, kind, target),
                            type=_BEHAVIOUR_RELATIONS[kind],
                            source_ref=obj.id,
                            target_ref=target,
                            source=source,
                            confidence=CONFIDENCE,
                            reference=obj.reference,
                        )
                    )
    batch = ImportBatch(
        sources=tuple(_source(n, c) for n, c in clusters.items()),
        objects=tuple(objects),
        claims=tuple(claims),
        relationships=tuple(relationships),
    )
    return GalaxyLoad(batch=batch, unresolved_links=unresolved)


def _object(value: dict[str, Any], otype: ObjectType, source: str, oid: str) -> KBObject:
    meta = dict(value.get("meta") or {})
    name = _ATTACK_SUFFIX.sub("", value["value"]).strip()
    synonyms = [s for s in meta.pop("synonyms", ()) if isinstance(s, str) and s.strip() and s != name]
    refs = [r for r in meta.get("refs", ()) if isinstance(r, str)]
    external_id = next((meta[k] for k in ("external_id", "group_attack_id", "campaign_attack_id") if meta.get(k)), None)
    return KBObject(
        id=oid,
        type=otype,
        name=name,
        source=source,
        aliases=tuple(dict.fromkeys(synonyms)),
        description=value.get("description") or "",
        external_id=external_id,
        reference=refs[0] if refs else None,
        confidence=CONFIDENCE,
        attrs={**meta, "misp_uuid": value["uuid"]},
    )


def _claim(subject: KBObject, kind: str, target: str, link: dict[str, Any], source: str) -> Claim:
    likelihood = None
    for tag in link.get("tags") or ():
        match = _LIKELIHOOD_TAG.search(tag)
        if match:
            with contextlib.suppress(ValueError):
                likelihood = parse_likelihood(match.group(1))
    return Claim(
        id=derive_id("relationship", source, subject.id, kind, target),
        subject_id=subject.id,
        relation=_CLAIM_RELATIONS[kind],
        object_id=target,
        source=source,
        likelihood=likelihood,
        said=kind,
        reference=subject.reference,
    )
