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
    """Evidence from hunt sightings: the actors named by the ingested reports that give each sighted indicator."""
    out: list[Evidence] = []
    for kind, value in dict.fromkeys((s.kind, s.value) for s in sightings):
        with contextlib.suppress(InputError):  # a value the store cannot normalize names no report
            out += indicator_evidence(store, f"{kind}:{value}", f"sighting of {value}")
    return _unique(out)


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
