"""MISP events (PyMISP's model): an ingested report, or an actor's indicators, ready to import into MISP.

Indicators become attributes of the matching MISP type and category with `to_ids` set; values a report only
mentions (reference links, abused services, private addresses) come along with `to_ids` off and correlation
disabled. Every attribute carries its sentence as the comment, a `tlp:` tag, and `heistwatch:` tags for the
source and the confidence (MISP attributes have no confidence field). Actors and ATT&CK techniques become
galaxy cluster tags (`misp-galaxy:threat-actor`, `misp-galaxy:mitre-intrusion-set`,
`misp-galaxy:mitre-attack-pattern`) where MISP's galaxies hold that name, else a `threat-actor` attribute.
An attribution becomes an event report plus one `threat-actor` attribute per leading candidate with its
probability and an `estimative-language` tag. Ids are deterministic, so re-importing updates the same event.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pymisp import MISPAttribute, MISPEvent, MISPObject

from heistwatch.attribute.knowledge import Levels
from heistwatch.ingest.analyze import NEGATED
from heistwatch.kb.store import KnowledgeStore
from heistwatch.model import TLP, Finding, Indicator, KBObject, ObjectType, derive_id, name_key
from heistwatch.share.attribution import render_attribution
from heistwatch.share.feeds import (
    WITHHELD,
    actor_records,
    find_report,
    report_text_within,
    select_indicators,
    tlp_allows,
    withheld_indicators,
)

# heistwatch indicator kind (and finding kind for CVEs) -> MISP attribute type and category.
MISP_TYPES: dict[str, tuple[str, str]] = {
    "domain": ("domain", "Network activity"),
    "ipv4": ("ip-dst", "Network activity"),
    "ipv6": ("ip-dst", "Network activity"),
    "url": ("url", "Network activity"),
    "email": ("email-src", "Payload delivery"),
    "md5": ("md5", "Payload delivery"),
    "sha1": ("sha1", "Payload delivery"),
    "sha256": ("sha256", "Payload delivery"),
    "filename": ("filename", "Payload delivery"),
    "btc": ("btc", "Financial fraud"),
    "registry": ("regkey", "Persistence mechanism"),
    "cve": ("vulnerability", "External analysis"),
}
# MISP has no Ethereum attribute type: an ETH address is a `coin-address` object (address-crypto + symbol).
COIN_OBJECTS = {"eth": "ETH"}
TLP_TAGS = {t: f"tlp:{t.value}" for t in TLP}
# Distribution by the event's TLP: only CLEAR goes to all communities; AMBER and above stay in the organisation.
_DISTRIBUTION = {TLP.CLEAR: 3, TLP.GREEN: 1, TLP.AMBER: 0, TLP.AMBER_STRICT: 0, TLP.RED: 0}
_TECHNIQUE_TIERS = ("id", "model")  # "model-possible" techniques (precision 0.66) are not asserted as tags
_CANDIDATES = 3
_SPACE = re.compile(r"\s+")


def report_event(
    store: KnowledgeStore,
    report: str,
    text: str | None = None,
    *,
    attribution: Levels | None = None,
    tlp_max: TLP = TLP.RED,
) -> MISPEvent:
    """The ingested report (id or document SHA-256) as an event; with the document's `text`, comments quote it."""
    found = find_report(store, report)
    findings = store.findings(found.id)
    entries = list(select_indicators(store, report=found.id, tlp_max=tlp_max))
    if text is not None:
        text = report_text_within(store, found, text, tlp_max)
    own = (i for i in store.indicators() if i.source == found.source)
    withheld = {i.description for i in withheld_indicators(own, tlp_max)}
    event = _event(derive_id("misp-event", found.id), found.title, found.ingested[:10])
    sentences = {(f.kind, f.value): _sentence(text, f) for f in _first_per_value(findings) if text is not None}
    for entry in entries:
        _add_indicator(event, entry.indicator, sentences.get((entry.indicator.kind, entry.indicator.value)), withheld)
    shown = {(e.indicator.kind, e.indicator.value) for e in entries}
    for f in _first_per_value(findings):
        if (f.kind, f.value) not in shown and (f.role == "mention" or f.kind == "cve") and f.kind in MISP_TYPES:
            note = f"mention ({f.reason})" if f.role == "mention" else "vulnerability"
            comment = f"{note}: {_sentence(text, f)}" if text is not None else note
            _add_value(event, found.id, f.kind, f.value, comment, indicator=False, tlp=TLP.CLEAR)
    names = _named_actors(store, findings, tlp_max)
    _tag_actors(event, store, names, tlp_max)
    _tag_techniques(event, _report_techniques(store, findings, tlp_max))
    tlps = [e.indicator.tlp for e in entries]
    if attribution is not None:
        _add_attribution(event, attribution, found.id)
    event.add_tag(TLP_TAGS[max(tlps, key=list(TLP).index, default=TLP.CLEAR)])
    event.distribution = _DISTRIBUTION[max(tlps, key=list(TLP).index, default=TLP.CLEAR)]
    return event


def actor_event(
    store: KnowledgeStore, actor: str, *, tlp_max: TLP = TLP.RED, now: datetime.datetime | None = None
) -> MISPEvent:
    """The indicators the knowledge base ties to `actor`, its galaxy tags and its ATT&CK techniques, as an event."""
    records = actor_records(store, actor, tlp_max)
    entries = list(select_indicators(store, actor=actor, tlp_max=tlp_max))
    day = (now or datetime.datetime.now(datetime.UTC)).date().isoformat()
    event = _event(derive_id("misp-event", "actor", name_key(actor)), f"heistwatch: indicators of {actor}", day)
    withheld = {i.description for i in withheld_indicators(store.indicators(), tlp_max)}
    for entry in entries:
        _add_indicator(event, entry.indicator, None, withheld)
    _tag_actors(event, store, [actor], tlp_max)
    uses = store.relationships(from_ids={r.id for r in records}, type="uses")
    targets = store.objects(ids={u.target_ref for u in uses if tlp_allows(u.tlp, tlp_max)}) if uses else []
    _tag_techniques(event, [o for o in targets if o.type is ObjectType.ATTACK_PATTERN and tlp_allows(o.tlp, tlp_max)])
    tlps = [e.indicator.tlp for e in entries] + [r.tlp for r in records]
    event.add_tag(TLP_TAGS[max(tlps, key=list(TLP).index)])
    event.distribution = _DISTRIBUTION[max(tlps, key=list(TLP).index)]
    return event


def event_json(event: MISPEvent) -> str:
    """The event as MISP imports it: `{"Event": {...}}`."""
    return json.dumps({"Event": json.loads(event.to_json())}, indent=1, ensure_ascii=False)


def _event(event_id: str, info: str, day: str) -> MISPEvent:
    event = MISPEvent()
    event.uuid = _uuid(event_id)
    event.info = info
    event.set_date(datetime.date.fromisoformat(day))
    event.analysis = 2  # completed: the report or knowledge base is the finished analysis
    event.threat_level_id = 2
    return event


def _uuid(stix_id: str) -> str:
    return stix_id.partition("--")[2]


def _sentence(text: str | None, finding: Finding) -> str:
    return _SPACE.sub(" ", (text or "")[finding.sentence_start : finding.sentence_end]).strip()


def _first_per_value(findings: Iterable[Finding]) -> list[Finding]:
    first: dict[tuple[str, str], Finding] = {}
    for f in findings:
        first.setdefault((f.kind, f.value), f)
    return list(first.values())


def _add_indicator(event: MISPEvent, indicator: Indicator, sentence: str | None, withheld: set[str]) -> None:
    """The indicator's attribute; its stored sentence is left out when it also names a withheld value."""
    described = WITHHELD if indicator.description in withheld else indicator.description
    comment = sentence or _SPACE.sub(" ", described).strip()
    attribute = _add_value(event, indicator.id, indicator.kind, indicator.value, comment, True, indicator.tlp)
    if attribute is None:
        return
    if indicator.first_seen:
        attribute.first_seen = _moment(indicator.first_seen)
    if indicator.last_seen:
        attribute.last_seen = _moment(indicator.last_seen)
    attribute.add_tag(f'heistwatch:source="{indicator.source}"')
    if indicator.confidence is not None:
        attribute.add_tag(f'heistwatch:confidence="{indicator.confidence}"')
    if indicator.reference:
        attribute.add_tag(f'heistwatch:reference="{indicator.reference.replace(chr(34), "%22")}"')


def _moment(stamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _add_value(
    event: MISPEvent, owner: str, kind: str, value: str, comment: str, indicator: bool, tlp: TLP
) -> MISPAttribute | None:
    """One attribute (or coin-address object) for a value; None for kinds MISP has no place for."""
    uuid = _uuid(derive_id("misp-attribute", owner, kind, value))
    if kind in COIN_OBJECTS:
        coin = MISPObject("coin-address", standalone=False)
        coin.uuid = uuid
        coin.comment = comment
        address = coin.add_attribute(
            "address-crypto",
            value=value,
            uuid=_uuid(derive_id("misp-attribute", owner, kind, value, "address")),
            to_ids=indicator,
            category="Financial fraud",
            comment=comment,
        )
        symbol = coin.add_attribute(
            "symbol",
            value=COIN_OBJECTS[kind],
            uuid=_uuid(derive_id("misp-attribute", owner, kind, value, "symbol")),
            category="Financial fraud",
        )
        assert address is not None and symbol is not None  # both relations are in the coin-address template
        address.add_tag(TLP_TAGS[tlp])
        event.add_object(coin)
        return address
    if kind not in MISP_TYPES:
        return None
    misp_type, category = MISP_TYPES[kind]
    attribute = event.add_attribute(
        misp_type,
        value,
        uuid=uuid,
        category=category,
        to_ids=indicator,
        comment=comment,
        disable_correlation=not indicator,
    )
    assert isinstance(attribute, MISPAttribute)  # one value gives one attribute
    attribute.add_tag(TLP_TAGS[tlp])
    return attribute


def _named_actors(store: KnowledgeStore, findings: Sequence[Finding], tlp_max: TLP) -> list[str]:
    """Names of actors the report names (not those it denies) whose records are visible under the ceiling."""
    named = [f for f in findings if f.role == "entity" and f.kind == "intrusion-set" and not f.reason.endswith(NEGATED)]
    ids = {i for f in named for i in f.object_ids}
    visible = {o.id for o in store.objects(ids=ids) if tlp_allows(o.tlp, tlp_max)} if ids else set()
    return list(dict.fromkeys(f.value for f in named if visible.intersection(f.object_ids)))


def _tag_actors(event: MISPEvent, store: KnowledgeStore, names: Iterable[str], tlp_max: TLP) -> None:
    """Galaxy cluster tags for names MISP's galaxies hold as a cluster's own name; a threat-actor attribute else."""
    for name in names:
        primary = [e for e in store.lookup(name_key(name)) if e.primary and e.object_type is ObjectType.INTRUSION_SET]
        records = store.objects(ids={e.object_id for e in primary}) if primary else []
        tags = [_galaxy_tag(o) for o in records if tlp_allows(o.tlp, tlp_max)]
        tags = [t for t in tags if t is not None]
        for tag in tags:
            event.add_tag(tag)
        if not tags:
            event.add_attribute(
                "threat-actor",
                name,
                uuid=_uuid(derive_id("misp-attribute", event.uuid, "threat-actor", name)),
                category="Attribution",
                to_ids=False,
                comment="named in the source; no MISP galaxy cluster has this name",
            )


def _galaxy_tag(obj: KBObject) -> str | None:
    if obj.source == "misp-galaxy:threat-actor":
        return f'misp-galaxy:threat-actor="{obj.name}"'
    if obj.source == "misp-galaxy:mitre-intrusion-set" and obj.attrs.get("external_id"):
        return f'misp-galaxy:mitre-intrusion-set="{obj.name} - {obj.attrs["external_id"]}"'
    return None


def _report_techniques(store: KnowledgeStore, findings: Sequence[Finding], tlp_max: TLP) -> list[KBObject]:
    """ATT&CK records of techniques the report names by id or the tagger finds above its threshold."""
    ids = {i for f in findings if f.role == "technique" and f.reason.partition(":")[0] in _TECHNIQUE_TIERS
           for i in f.object_ids}  # fmt: skip
    return [o for o in (store.objects(ids=ids) if ids else []) if tlp_allows(o.tlp, tlp_max)]


def _tag_techniques(event: MISPEvent, techniques: Iterable[KBObject]) -> None:
    for t in sorted(techniques, key=lambda o: o.external_id or ""):
        if t.external_id:
            event.add_tag(f'misp-galaxy:mitre-attack-pattern="{t.name} - {t.external_id}"')


def _add_attribution(event: MISPEvent, levels: Levels, owner: str) -> None:
    """The attribution as an event report, and the leading candidates as attributes with their probability."""
    result = levels.attribution
    report = event.add_event_report("heistwatch attribution", "```\n" + render_attribution(levels) + "\n```\n")
    report.uuid = _uuid(derive_id("misp-event-report", owner, "attribution"))
    if result.abstained:
        return
    for candidate in result.candidates[:_CANDIDATES]:
        attribute = event.add_attribute(
            "threat-actor",
            candidate.name,
            uuid=_uuid(derive_id("misp-attribute", owner, "candidate", candidate.actor_id)),
            category="Attribution",
            to_ids=False,
            comment=(
                f"heistwatch attribution: {candidate.actor_id}, probability {candidate.probability:.1%}"
                f" ({candidate.words.words}); analytic confidence {result.confidence}"
            ),
        )
        assert isinstance(attribute, MISPAttribute)
        attribute.add_tag(f'estimative-language:likelihood-probability="{candidate.words.value}"')
        attribute.add_tag(f'heistwatch:probability="{candidate.probability:.4f}"')


def event_summary(event: MISPEvent) -> dict[str, Any]:
    """Counts for the CLI: attributes, objects, indicators for IDS, tags."""
    attributes = list(event.attributes) + [a for o in event.objects for a in o.attributes]
    return {
        "uuid": event.uuid,
        "info": event.info,
        "attributes": len(event.attributes),
        "objects": len(event.objects),
        "to_ids": sum(bool(a.to_ids) for a in attributes),
        "tags": sorted(t.name for t in event.tags),
    }
