"""Detection rule packs from the knowledge base: YARA (file hashes) and Sigma (domains, IPs, URLs), per actor.

YARA rules match files by MD5/SHA-1/SHA-256 with the `hash` module. Sigma rules follow the SigmaHQ taxonomy:
domains as `dns_query` (`QueryName`, the domain or any subdomain), IPs and CIDR blocks as `network_connection`
(`DestinationIp`), URLs as `proxy` (`c-uri`, the URL or the URL with any query when it has none). A pack is
split so that no rule holds more than `max_values` values. Indicators tied to no actor go under "unattributed".
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import yaml

from heistwatch.kb.store import KnowledgeStore
from heistwatch.model import TLP, Indicator, derive_id
from heistwatch.share.feeds import FeedEntry, actor_records, select_indicators

UNATTRIBUTED = "unattributed"
DEFAULT_MAX_VALUES = 200
YARA_KINDS = ("md5", "sha1", "sha256")
_IDENT = re.compile(r"[^a-z0-9]+")
_YARA_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_SIGMA_SPECIAL = re.compile(r"([*?\\])")


@dataclass(frozen=True)
class RulePack:
    """A rule file's text and how many rules and values it holds."""

    text: str
    rules: int
    values: int


def group_by_actor(entries: Iterable[FeedEntry]) -> dict[str, list[Indicator]]:
    """Actor name -> its indicators, in name order; an indicator tied to several actors is in each group."""
    groups: defaultdict[str, list[Indicator]] = defaultdict(list)
    for entry in entries:
        for actor in entry.actors or (UNATTRIBUTED,):
            groups[actor].append(entry.indicator)
    return dict(sorted(groups.items()))


def rule_groups(
    store: KnowledgeStore, *, actor: str | None = None, report: str | None = None, tlp_max: TLP = TLP.RED
) -> dict[str, list[Indicator]]:
    """The indicators to write rules for, per actor; with `actor`, only that actor's group."""
    groups = group_by_actor(select_indicators(store, actor=actor, report=report, tlp_max=tlp_max))
    if actor is None:
        return groups
    names = {r.name for r in actor_records(store, actor, tlp_max)}
    return {name: indicators for name, indicators in groups.items() if name in names}


def _chunks(items: Sequence[Indicator], size: int) -> list[Sequence[Indicator]]:
    return [items[n : n + size] for n in range(0, len(items), size)]


def _slug(actor: str) -> str:
    """An identifier part for the actor: readable ASCII plus a short digest, so distinct names never collide."""
    readable = _IDENT.sub("_", actor.lower()).strip("_")[:40] or "actor"
    return f"{readable}_{hashlib.sha1(actor.encode()).hexdigest()[:6]}"


def _most_restricted(indicators: Iterable[Indicator]) -> TLP:
    return max((i.tlp for i in indicators), key=list(TLP).index, default=TLP.CLEAR)


def _references(indicators: Iterable[Indicator]) -> list[str]:
    return sorted({i.reference for i in indicators if i.reference})


# -- YARA -----------------------------------------------------------------------------------------


def yara_pack(
    groups: dict[str, list[Indicator]], *, date: datetime.date, max_values: int = DEFAULT_MAX_VALUES
) -> RulePack:
    """YARA rules matching each actor's file hashes (`import "hash"`), at most `max_values` hashes a rule."""
    if max_values < 1:
        raise ValueError("max_values must be at least 1")
    rules: list[str] = []
    values = 0
    for actor, indicators in groups.items():
        for kind in YARA_KINDS:
            hashes = sorted({i.value: i for i in indicators if i.kind == kind}.values(), key=lambda i: i.value)
            chunks = _chunks(hashes, max_values)
            for n, chunk in enumerate(chunks, 1):
                rules.append(_yara_rule(actor, kind, chunk, n, len(chunks), date))
                values += len(chunk)
    header = f"// heistwatch YARA pack: {len(rules)} rules, {values} file hashes, generated {date.isoformat()}\n"
    body = "\n".join(rules)
    return RulePack(header + ('import "hash"\n\n' + body if rules else ""), len(rules), values)


def _yara_string(text: str) -> str:
    escaped = "".join(_YARA_ESCAPES.get(c, f"\\x{ord(c):02x}" if ord(c) < 0x20 or ord(c) == 0x7F else c) for c in text)
    return f'"{escaped}"'


def _yara_rule(actor: str, kind: str, chunk: Sequence[Indicator], n: int, total: int, date: datetime.date) -> str:
    meta = {
        "actor": actor,
        "description": f"Files whose {kind.upper()} the knowledge base ties to {actor} ({n}/{total})",
        "source": ", ".join(sorted({i.source for i in chunk})),
        "reference": ", ".join(_references(chunk)),
        "date": date.isoformat(),
        "tlp": _most_restricted(chunk).label,
        "author": "heistwatch",
    }
    lines = [f"rule heistwatch_{_slug(actor)}_{kind}_{n} {{", "  meta:"]
    lines += [f"    {key} = {_yara_string(value)}" for key, value in meta.items() if value]
    lines += ["  condition:"]
    checks = [f'hash.{kind}(0, filesize) == "{i.value}"' for i in chunk]
    lines += ["    " + " or\n    ".join(checks), "}", ""]
    return "\n".join(lines)


# -- Sigma ----------------------------------------------------------------------------------------

# kind -> (log source, detection field)
_SIGMA_SOURCES = {
    "domain": ({"category": "dns_query", "product": "windows"}, "QueryName"),
    "ipv4": ({"category": "network_connection", "product": "windows"}, "DestinationIp"),
    "ipv6": ({"category": "network_connection", "product": "windows"}, "DestinationIp"),
    "url": ({"category": "proxy"}, "c-uri"),
}
_SIGMA_TITLES = {"dns_query": "DNS query for", "network_connection": "network connection to", "proxy": "web request to"}


def sigma_escape(value: str) -> str:
    """A value as a Sigma string that matches it literally (`*`, `?` and `\\` are wildcards or escapes)."""
    return _SIGMA_SPECIAL.sub(r"\\\1", value)


def _sigma_values(indicator: Indicator) -> list[tuple[str, str]]:
    """(field modifier, literal value) pairs that together match one indicator with the hunt's semantics."""
    if indicator.kind == "domain":
        return [("", indicator.value), ("|endswith", "." + indicator.value)]
    if indicator.kind == "url":
        plain = [("", indicator.value)]
        return plain if "?" in indicator.value else [*plain, ("|startswith", indicator.value + "?")]
    return [("|cidr", indicator.value)] if "/" in indicator.value else [("", indicator.value)]


def _sigma_chunks(indicators: Sequence[Indicator], max_values: int) -> list[list[Indicator]]:
    """Consecutive runs of indicators whose detection values stay within `max_values`."""
    chunks: list[list[Indicator]] = [[]]
    used = 0
    for indicator in indicators:
        size = len(_sigma_values(indicator))
        if chunks[-1] and used + size > max_values:
            chunks.append([])
            used = 0
        chunks[-1].append(indicator)
        used += size
    return [c for c in chunks if c]


def sigma_pack(
    groups: dict[str, list[Indicator]], *, date: datetime.date, max_values: int = DEFAULT_MAX_VALUES
) -> RulePack:
    """Sigma rules (one YAML document each) for each actor's domains, IPs and URLs, at most `max_values` values."""
    if max_values < 2:
        raise ValueError("max_values must be at least 2 (a domain matches as itself and as a parent)")
    documents: list[str] = []
    values = 0
    for actor, indicators in groups.items():
        by_source: defaultdict[str, list[Indicator]] = defaultdict(list)
        for i in sorted({(i.kind, i.value): i for i in indicators}.values(), key=lambda i: (i.kind, i.value)):
            if i.kind in _SIGMA_SOURCES:
                by_source[_SIGMA_SOURCES[i.kind][0]["category"]].append(i)
        for category, members in sorted(by_source.items()):
            chunks = _sigma_chunks(members, max_values)
            for n, chunk in enumerate(chunks, 1):
                rule = _sigma_rule(actor, category, chunk, n, len(chunks), date)
                values += sum(len(_sigma_values(i)) for i in chunk)
                documents.append(yaml.safe_dump(rule, sort_keys=False, allow_unicode=True, width=1000))
    return RulePack("---\n".join(documents), len(documents), values)


def _sigma_rule(
    actor: str, category: str, chunk: Sequence[Indicator], n: int, total: int, date: datetime.date
) -> dict[str, object]:
    logsource, field = next(s for s in _SIGMA_SOURCES.values() if s[0]["category"] == category)
    selections: defaultdict[str, list[str]] = defaultdict(list)
    for indicator in chunk:
        for modifier, value in _sigma_values(indicator):
            selections[field + modifier].append(sigma_escape(value))
    detection: dict[str, object] = {
        f"selection_{m}": {key: values} for m, (key, values) in enumerate(sorted(selections.items()), 1)
    }
    detection["condition"] = "1 of selection_*"
    tlp = _most_restricted(chunk)
    rule: dict[str, object] = {
        "title": f"{actor}: {_SIGMA_TITLES[category]} known infrastructure ({n}/{total})",
        "id": derive_id("sigma-rule", actor, category, str(n)).partition("--")[2],
        "status": "experimental",
        "description": (
            f"Indicators the heistwatch knowledge base ties to {actor}"
            f" (sources: {', '.join(sorted({i.source for i in chunk}))})."
        ),
        "references": _references(chunk),
        "author": "heistwatch",
        "date": date.isoformat(),
        "tags": ["detection.emerging-threats", f"tlp.{tlp.value.replace('+', '-')}"],
        "logsource": logsource,
        "detection": detection,
        "falsepositives": ["Shared hosting or sinkholed infrastructure"],
        "level": "high",
    }
    if not rule["references"]:
        del rule["references"]
    return rule
