"""Evidence for attribution, read from a JSON evidence file, a STIX bundle (e.g. from `ingest`), or a stored report.

An evidence file is `{"evidence": [{"kind": K, "value": V, "source": S, "reliability": R, "origin": O}, ...]}`
with K one of: technique (an ATT&CK id), software (an ATT&CK id or a name), name (an actor, campaign or
malware name), sector, victim, indicator (V = "kind:value", e.g. "domain:evil.example"). `source`,
`reliability` (0..1, default 1) and `origin` (evidence copied from one origin counts once) are optional.
Indicators count through the knowledge base: an indicator some ingested report also gives is evidence for
the actors that report names, at half reliability, with that report as origin.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from heistwatch.attribute.model import Evidence
from heistwatch.attribute.profiles import name_item, victim_item
from heistwatch.errors import InputError
from heistwatch.ingest.analyze import NEGATED
from heistwatch.kb.seed.attack import SOURCE_KEY as ATTACK
from heistwatch.kb.store import KnowledgeStore
from heistwatch.model import Finding, ObjectType, Report, Sighting, name_key, normalize_indicator

KINDS = ("technique", "software", "name", "sector", "victim", "indicator")
INDICATOR_RELIABILITY = 0.5
# A technique read from prose is as reliable as the tagger's measured precision (benchmarks/technique_tagging.py).
TECHNIQUE_RELIABILITY = {"id": 1.0, "model": 0.9, "model-possible": 0.66}
_TECHNIQUE = re.compile(r"T\d{4}(?:\.\d{3})?")
_SOFTWARE = re.compile(r"S\d{4}")
_NAMED = {ObjectType.INTRUSION_SET, ObjectType.CAMPAIGN, ObjectType.MALWARE, ObjectType.TOOL}
# Matched detection rules (see `rule_evidence`): a rule without a level or score, and the most any rule is trusted.
RULE_RELIABILITY = 0.6
RULE_RELIABILITY_MAX = 0.8
SIGMA_LEVEL_RELIABILITY = {"critical": 0.8, "high": 0.7, "medium": 0.5, "low": 0.3, "informational": 0.1}
FAMILY_RELIABILITY_MAX = 0.8
_ATTACK_TAG = re.compile(r"(?<![a-z0-9])(?:attack[._])?([tsg]\d{4}(?:[._]\d{3})?)(?![0-9])")
_YARA_TECHNIQUE_KEYS = {"mitre_attack", "attack", "technique", "techniques", "mitre_technique", "tags"}
_YARA_NAME_KEYS = {"actor", "threat_actor", "apt", "group", "malware", "malware_family", "family"}


def read_evidence(path: Path, store: KnowledgeStore) -> list[Evidence]:
    """Evidence from a JSON evidence file or a STIX 2.1 bundle; InputError names the file and the problem."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(str(path), f"cannot read JSON: {err}") from err
    if isinstance(data, dict) and data.get("type") == "bundle":
        return bundle_evidence(data, store, source=path.name)
    if not isinstance(data, dict) or not isinstance(data.get("evidence"), list):
        raise InputError(str(path), 'expected {"evidence": [...]} or a STIX bundle')
    out: list[Evidence] = []
    for n, row in enumerate(data["evidence"]):
        out += _row_evidence(row, store, f"{path}: evidence[{n}]", path.name)
    return out


def _row_evidence(row: Any, store: KnowledgeStore, where: str, default_source: str) -> list[Evidence]:
    if not isinstance(row, dict) or row.get("kind") not in KINDS or not isinstance(row.get("value"), str):
        raise InputError(where, f"needs a string `value` and a `kind` among {', '.join(KINDS)}")
    reliability = row.get("reliability", 1.0)
    if not isinstance(reliability, int | float) or not 0 <= reliability <= 1:
        raise InputError(where, "`reliability` must be a number from 0 to 1")
    source = str(row.get("source", default_source))
    origin = row.get("origin")
    kind, value = row["kind"], row["value"].strip()
    items = _items(kind, value, store, where)
    evidence = [Evidence(i, k, source, float(reliability), origin) for k, i in items]
    if kind == "indicator":
        evidence = [*evidence, *indicator_evidence(store, value, where)]
    return evidence


def _items(kind: str, value: str, store: KnowledgeStore, where: str) -> list[tuple[str, str]]:
    """(kind, vocabulary id) pairs one evidence row stands for."""
    if kind == "technique":
        if not _TECHNIQUE.fullmatch(value.upper()):
            raise InputError(where, f"{value!r} is not an ATT&CK technique id (T1234 or T1234.001)")
        return [("technique", value.upper())]
    if kind == "software":
        return [("software", value.upper())] if _SOFTWARE.fullmatch(value.upper()) else _named(value, store)
    if kind == "name":
        return _named(value, store)
    if kind in ("sector", "victim"):
        return [(kind, victim_item(kind, value))]
    return []


def _named(name: str, store: KnowledgeStore) -> list[tuple[str, str]]:
    """A name as evidence: the name item, plus ATT&CK software ids of software records so named."""
    found = [("name", name_item(name))]
    for entry in store.lookup(name_key(name)):
        if entry.object_type in (ObjectType.MALWARE, ObjectType.TOOL) and entry.source == ATTACK:
            obj = store.get(entry.object_id)
            if obj is not None and obj.external_id:
                found.append(("software", obj.external_id))
    return list(dict.fromkeys(found))


def indicator_evidence(store: KnowledgeStore, value: str, where: str) -> list[Evidence]:
    """Names from every ingested report that also gives this indicator ("kind:value")."""
    kind, sep, raw = value.partition(":")
    if not sep:
        raise InputError(where, f"indicator {value!r} must be written kind:value (e.g. domain:evil.example)")
    try:
        normalized = normalize_indicator(kind, raw)
    except ValueError as err:
        raise InputError(where, f"indicator {value!r}: {err}") from err
    sources = {i.source for i in store.indicators(kind=kind, value=normalized)}
    out: list[Evidence] = []
    for report in store.reports():
        if report.source in sources:
            named = [f for f in store.findings(report.id) if f.role == "entity" and not f.reason.endswith(NEGATED)]
            out += [
                Evidence(name_item(f.value), "name", report.name, INDICATOR_RELIABILITY, report.sha256) for f in named
            ]
    return out


def findings_evidence(findings: Sequence[Finding], store: KnowledgeStore, report: Report) -> list[Evidence]:
    """Evidence from a report's findings: its techniques, and the software, actors and campaigns it names.

    A name in a sentence that denies it ("no code overlap with AppleJeus") is left out. The report is the
    origin, so the same fact reached again through the report (an indicator it gives) counts once.
    """
    out: list[Evidence] = []
    for f in findings:
        if f.role == "technique":
            via = f.reason.partition(":")[0]
            reliability = TECHNIQUE_RELIABILITY.get(via, 1.0)
            out.append(Evidence(f.value, "technique", report.name, reliability, report.sha256))
        elif f.role == "entity" and not f.reason.endswith(NEGATED):
            out += [Evidence(i, k, report.name, 1.0, report.sha256) for k, i in _named(f.value, store)]
    return _unique(out)


def sighting_evidence(sightings: Sequence[Sighting], store: KnowledgeStore) -> list[Evidence]:
    """Evidence from hunt sightings.

    A sighted indicator counts for the actors named by the ingested reports that give it (a lookalike of the
    exchange's own brand is given by none, so it adds nothing about the actor). A matched Sigma or YARA rule adds
    the ATT&CK techniques, software and groups in its tags and the actor or malware its metadata names; a TLSH
    match near a known family adds the family's name.
    """
    out: list[Evidence] = []
    for sighting in {(s.kind, s.value, s.raw if s.kind == "tlsh" else ""): s for s in sightings}.values():
        if sighting.kind in ("yara", "sigma"):
            out += rule_evidence(sighting, store)
        elif sighting.kind == "tlsh":
            out += family_evidence(sighting, store)
        else:
            with contextlib.suppress(InputError):  # a value the store cannot normalize names no report
                out += indicator_evidence(store, f"{sighting.kind}:{sighting.value}", f"sighting of {sighting.value}")
    return _unique(out)


def rule_evidence(sighting: Sighting, store: KnowledgeStore) -> list[Evidence]:
    """What a matched rule says about the actor: ATT&CK ids in its tags, actor and malware names in its metadata.

    A rule's tags say what its author meant it to detect, not what this match is: a match can be a false
    positive or a technique many actors share. So Sigma evidence is weighted by the rule's own level (its
    author's estimate of how often a match is real) and YARA evidence by its `score` metadata where given
    (signature-base style, 0-100), else `RULE_RELIABILITY`; one rule counts once however often it matched.
    """
    tags, names, reliability = _rule_facts(sighting, store)
    origin = f"{sighting.kind}:{sighting.value}"
    label = f"{sighting.kind} rule {sighting.value}"
    out = [Evidence(item, kind, label, reliability, origin) for kind, item in _attack_tags(tags, store)]
    for name in names:
        if any(e.object_type in _NAMED for e in store.lookup(name_key(name))):
            out += [Evidence(item, kind, label, reliability, origin) for kind, item in _named(name, store)]
    return out


def _rule_facts(sighting: Sighting, store: KnowledgeStore) -> tuple[list[str], list[str], float]:
    """A matched rule's tags, the names its metadata gives, and how far its matches are to be trusted."""
    if sighting.kind == "sigma":
        rule = _sigma_rule(sighting, store)
        tags = [str(t) for t in rule.get("tags") or () if isinstance(t, str)]
        return tags, [], SIGMA_LEVEL_RELIABILITY.get(str(rule.get("level", "")).lower(), RULE_RELIABILITY)
    try:
        seen = json.loads(sighting.raw)
    except json.JSONDecodeError:
        return [], [], RULE_RELIABILITY
    meta = [(str(k).lower(), v) for k, v in seen.get("meta", ()) if isinstance(v, str | int | float)]
    tags = [str(t) for t in seen.get("tags", ())]
    tags += [str(v) for k, v in meta if k in _YARA_TECHNIQUE_KEYS]
    names = [str(v) for k, v in meta if k in _YARA_NAME_KEYS and isinstance(v, str)]
    score = next((v for k, v in meta if k == "score" and isinstance(v, int | float)), None)
    reliability = RULE_RELIABILITY if score is None else min(max(float(score) / 100, 0.1), RULE_RELIABILITY_MAX)
    return tags, [part.strip() for name in names for part in re.split(r"[,;/]", name) if part.strip()], reliability


def _sigma_rule(sighting: Sighting, store: KnowledgeStore) -> dict[str, Any]:
    """The sighted Sigma rule's YAML as stored in its indicator's pattern (empty when not stored or not YAML)."""
    for indicator in store.indicators(kind="sigma", value=sighting.value):
        with contextlib.suppress(yaml.YAMLError):
            rule = yaml.safe_load(indicator.pattern)
            if isinstance(rule, dict):
                return rule
    return {}


def _attack_tags(tags: Iterable[str], store: KnowledgeStore) -> list[tuple[str, str]]:
    """(evidence kind, item) for every ATT&CK technique, software or group id in the tags (`attack.t1059.001`)."""
    out: list[tuple[str, str]] = []
    for tag in tags:
        for found in _ATTACK_TAG.finditer(tag.lower()):
            attack_id = found.group(1).upper().replace("_", ".")
            if attack_id.startswith("T"):
                out.append(("technique", attack_id))
            elif attack_id.startswith("S"):
                out.append(("software", attack_id))
            else:
                out += [(kind, item) for name in _group_names(attack_id, store) for kind, item in _named(name, store)]
    return list(dict.fromkeys(out))


def _group_names(group_id: str, store: KnowledgeStore) -> list[str]:
    """The name ATT&CK gives a group id (G0032 -> Lazarus Group)."""
    return [o.name for o in store.objects(type=ObjectType.INTRUSION_SET, source=ATTACK) if o.external_id == group_id]


def family_evidence(sighting: Sighting, store: KnowledgeStore) -> list[Evidence]:
    """A file near a known family's sample: the family's name, as reliable as the TLSH distance is small.

    Reliability falls linearly from `FAMILY_RELIABILITY_MAX` at distance 0 to 0 at twice the match threshold
    (half of it at the threshold): TLSH's false-match rate grows with distance, and even an identical digest
    shows shared code, which families and actors borrow, rather than the same operator.
    """
    try:
        seen = json.loads(sighting.raw)
        family, distance, threshold = str(seen["family"]), int(seen["distance"]), int(seen["threshold"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return []
    reliability = round(FAMILY_RELIABILITY_MAX * (1 - distance / (2 * max(threshold, 1))), 3)
    if reliability <= 0 or not family.strip():
        return []
    label = f"TLSH match to {family} (distance {distance})"
    return [Evidence(item, kind, label, reliability, f"tlsh:{family}") for kind, item in _named(family, store)]


def bundle_evidence(bundle: dict[str, Any], store: KnowledgeStore, source: str) -> list[Evidence]:
    """Evidence from a STIX bundle: attack patterns and software by ATT&CK id, named objects, indicators."""
    out: list[Evidence] = []
    for obj in bundle.get("objects", ()):
        if not isinstance(obj, dict):
            continue
        kind, name = obj.get("type"), obj.get("name")
        attack_id = _attack_id(obj)
        if kind == "attack-pattern" and attack_id:
            out.append(Evidence(attack_id, "technique", source))
        elif kind in ("malware", "tool") and attack_id:
            out.append(Evidence(attack_id, "software", source))
        if kind in {t.value for t in _NAMED} and isinstance(name, str):
            out += [Evidence(i, k, source) for k, i in _named(name, store)]
        if kind == "indicator" and isinstance(obj.get("x_heistwatch_indicator"), dict):
            ind = obj["x_heistwatch_indicator"]
            out += indicator_evidence(store, f"{ind.get('kind')}:{ind.get('value')}", obj.get("id", "indicator"))
    return _unique(out)


def _attack_id(obj: dict[str, Any]) -> str | None:
    for ref in obj.get("external_references", ()):
        if isinstance(ref, dict) and ref.get("source_name") in ("mitre-attack", ATTACK):
            value = ref.get("external_id")
            if isinstance(value, str) and (_TECHNIQUE.fullmatch(value) or _SOFTWARE.fullmatch(value)):
                return value
    return None


def _unique(evidence: Iterable[Evidence]) -> list[Evidence]:
    return list(dict.fromkeys(evidence))
