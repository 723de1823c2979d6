"""Indicator feeds (CSV, JSON) streamed row by row, and the selection every export shares.

An indicator is tied to an actor by an `indicates` relationship in the knowledge base, or by an ingested
report that gives the indicator and names the actor (a name the report denies does not count). A TLP
ceiling drops every indicator, actor and link marked above it, so nothing above it reaches an export.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import orjson

from heistwatch.errors import NotFoundError
from heistwatch.ingest.analyze import NEGATED
from heistwatch.kb.store import KnowledgeStore
from heistwatch.model import TLP, Finding, Indicator, KBObject, ObjectType, Report, name_key

FEED_FIELDS = ("kind", "value", "first_seen", "last_seen", "confidence", "actors", "tlp", "source", "reference")
_TLP_RANK = {t: n for n, t in enumerate(TLP)}
# Which of an actor's per-source records names it in a feed: ATT&CK first, then the MISP galaxy.
_NAMING_ORDER = ("mitre-attack", "misp-galaxy:threat-actor")


WITHHELD = "[withheld: the sentence names a value above the TLP ceiling]"
_BLACKOUT = "\u2588"


def tlp_allows(tlp: TLP, ceiling: TLP) -> bool:
    """Whether something marked `tlp` may leave through an export capped at `ceiling`."""
    return _TLP_RANK[tlp] <= _TLP_RANK[ceiling]


def withheld_indicators(indicators: Iterable[Indicator], ceiling: TLP) -> list[Indicator]:
    """The indicators an export capped at `ceiling` must not show, not even inside another one's sentence."""
    return [i for i in indicators if not tlp_allows(i.tlp, ceiling)]


def report_text_within(store: KnowledgeStore, report: Report, text: str, ceiling: TLP) -> str:
    """A report's text with the values it gives above `ceiling` blacked out."""
    own = (i for i in store.indicators() if i.source == report.source)
    hidden = {(i.kind, i.value) for i in withheld_indicators(own, ceiling)}
    return redact_text(text, store.findings(report.id), hidden) if hidden else text


def redact_text(text: str, findings: Iterable[Finding], hidden: Collection[tuple[str, str]]) -> str:
    """The text with every span of a hidden (kind, value) blacked out; same length, so every offset still holds."""
    spans = sorted((f.start, f.end) for f in findings if (f.kind, f.value) in hidden)
    parts: list[str] = []
    pos = 0
    for start, end in spans:
        start = max(start, pos)
        if end > start:
            parts += [text[pos:start], _BLACKOUT * (end - start)]
            pos = end
    return "".join([*parts, text[pos:]])


@dataclass(frozen=True)
class FeedEntry:
    """One indicator as exported, with the names of the actors the knowledge base ties to it."""

    indicator: Indicator
    actors: tuple[str, ...]


def find_report(store: KnowledgeStore, report: str) -> Report:
    """The ingested report with this id or document SHA-256; NotFoundError if there is none."""
    found = next((r for r in store.reports() if report in (r.id, r.sha256)), None)
    if found is None:
        raise NotFoundError(f"no ingested report {report}")
    return found


def actor_records(store: KnowledgeStore, name: str, tlp_max: TLP = TLP.RED) -> list[KBObject]:
    """The actor records a name selects: those whose own name it is, else those listing it as an alias.

    Aliases are claims, not merges: "APT38" selects ATT&CK's and Tidal's APT38, not the galaxy's Lazarus
    entry that lists APT38 among its synonyms. NotFoundError when no visible record carries the name.
    """
    entries = [e for e in store.lookup(name_key(name)) if e.object_type is ObjectType.INTRUSION_SET]
    primary = {e.object_id for e in entries if e.primary}
    ids = primary or {e.object_id for e in entries}
    records = [o for o in store.objects(ids=ids) if tlp_allows(o.tlp, tlp_max)] if ids else []
    if not records:
        raise NotFoundError(f"no actor named {name}")
    return records


class ActorLinks:
    """Which actors the knowledge base ties to each indicator, seen through a TLP ceiling."""

    def __init__(self, store: KnowledgeStore, tlp_max: TLP = TLP.RED) -> None:
        """Read the `indicates` links and the actors each ingested report names."""
        self.by_indicator: defaultdict[str, dict[str, str]] = defaultdict(dict)  # indicator id -> {actor id: name}
        self.by_source: defaultdict[str, dict[str, str]] = defaultdict(dict)  # report source -> {actor id: name}
        links = [r for r in store.relationships(type="indicates") if tlp_allows(r.tlp, tlp_max)]
        reports = {r.id: r.source for r in store.reports()}
        named = {r: [f for f in store.findings(r) if _names_actor(f.kind, f.role, f.reason)] for r in reports}
        wanted = {r.target_ref for r in links} | {i for fs in named.values() for f in fs for i in f.object_ids}
        actors = {
            o.id: o
            for o in (store.objects(ids=wanted) if wanted else [])
            if o.type is ObjectType.INTRUSION_SET and tlp_allows(o.tlp, tlp_max)
        }
        for link in links:
            if link.target_ref in actors:
                self.by_indicator[link.source_ref][link.target_ref] = actors[link.target_ref].name
        for report_id, findings in named.items():
            for f in findings:
                records = [actors[i] for i in f.object_ids if i in actors]
                if records:
                    label = min(records, key=_naming_rank).name
                    self.by_source[reports[report_id]].update({r.id: label for r in records})

    def actors(self, indicator: Indicator) -> dict[str, str]:
        """Actor id -> display name, for every actor tied to the indicator."""
        return {**self.by_source.get(indicator.source, {}), **self.by_indicator.get(indicator.id, {})}


def _names_actor(kind: str, role: str, reason: str) -> bool:
    return role == "entity" and kind == ObjectType.INTRUSION_SET.value and not reason.endswith(NEGATED)


def _naming_rank(obj: KBObject) -> tuple[int, str]:
    rank = _NAMING_ORDER.index(obj.source) if obj.source in _NAMING_ORDER else len(_NAMING_ORDER)
    return rank, obj.id


def select_indicators(
    store: KnowledgeStore, *, actor: str | None = None, report: str | None = None, tlp_max: TLP = TLP.RED
) -> Iterator[FeedEntry]:
    """Indicators (all, an actor's, or one report's) at or below `tlp_max`, each with its actors.

    Unknown actors and reports raise NotFoundError here, before the first entry is read.
    """
    links = ActorLinks(store, tlp_max)
    source = find_report(store, report).source if report is not None else None
    actor_ids = {o.id for o in actor_records(store, actor, tlp_max)} if actor is not None else None
    return _entries(store.indicators(), links, source, actor_ids, tlp_max)


def _entries(
    indicators: Iterable[Indicator], links: ActorLinks, source: str | None, actor_ids: set[str] | None, tlp_max: TLP
) -> Iterator[FeedEntry]:
    for indicator in indicators:
        if not tlp_allows(indicator.tlp, tlp_max) or (source is not None and indicator.source != source):
            continue
        actors = links.actors(indicator)
        if actor_ids is not None and actor_ids.isdisjoint(actors):
            continue
        yield FeedEntry(indicator, tuple(sorted(set(actors.values()))))


def _row(entry: FeedEntry) -> dict[str, Any]:
    i = entry.indicator
    return {
        "kind": i.kind,
        "value": i.value,
        "first_seen": i.first_seen,
        "last_seen": i.last_seen,
        "confidence": i.confidence,
        "actors": list(entry.actors),
        "tlp": i.tlp.label,
        "source": i.source,
        "reference": i.reference,
    }


def write_csv_feed(entries: Iterable[FeedEntry], out: TextIO) -> int:
    """Write a CSV feed (header `FEED_FIELDS`, actors joined with "; ") one row at a time; returns the rows."""
    writer = csv.writer(out)  # RFC 4180 line ends: any field holding \r or \n is quoted
    writer.writerow(FEED_FIELDS)
    count = 0
    for entry in entries:
        i = entry.indicator
        confidence = "" if i.confidence is None else i.confidence
        actors = "; ".join(entry.actors)
        writer.writerow(
            (i.kind, i.value, i.first_seen or "", i.last_seen or "", confidence, actors, i.tlp.label, i.source,
             i.reference or "")
        )  # fmt: skip
        count += 1
    return count


def write_json_feed(entries: Iterable[FeedEntry], out: TextIO) -> int:
    """Write `{"fields": [...], "indicators": [...]}` one indicator per line, never as one string; returns the count."""
    out.write('{"fields": ' + orjson.dumps(FEED_FIELDS).decode() + ', "indicators": [')
    count = 0
    for entry in entries:
        out.write(("\n" if count == 0 else ",\n") + orjson.dumps(_row(entry)).decode())
        count += 1
    out.write("\n]}\n")
    return count
