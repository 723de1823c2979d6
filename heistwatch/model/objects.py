"""The knowledge base's records: sources, objects, names, claims, relationships, indicators.

Every record carries its provenance (the source that says it, a reference) and a confidence. Objects are
kept per source: ATT&CK's "APT38" and the MISP galaxy's "Lazarus Group" entry are separate records, and
how sources relate names to each other lives in claims, never in merged records.
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from heistwatch.model.likelihood import Likelihood
from heistwatch.model.tlp import TLP

# Namespace of every deterministic id heistwatch derives (uuid5 over a stable description of the thing).
HEISTWATCH_NAMESPACE = uuid.UUID("6f0a3a36-4d2b-5b2e-9d0e-3f6c1a9e8b71")


def derive_id(stix_type: str, *parts: str) -> str:
    """A deterministic STIX-style id: the same parts always give the same id (UUIDv5, RFC 4122)."""
    # The same bytes as uuid.uuid5 without building a UUID object: a knowledge-base build derives ~20k ids.
    digest = bytearray(hashlib.sha1(HEISTWATCH_NAMESPACE.bytes + chr(31).join(parts).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{stix_type}--{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class ObjectType(enum.Enum):
    """Kinds of knowledge-base object; values are their STIX 2.1 type names."""

    INTRUSION_SET = "intrusion-set"
    CAMPAIGN = "campaign"
    MALWARE = "malware"
    TOOL = "tool"
    ATTACK_PATTERN = "attack-pattern"
    TACTIC = "x-mitre-tactic"
    LOCATION = "location"


class Relation(enum.Enum):
    """What a claim says about how two names relate, from strongest to weakest."""

    SAME_AS = "same-as"
    SUBGROUP_OF = "subgroup-of"
    ATTRIBUTED_TO = "attributed-to"
    OVERLAPS = "overlaps"
    RELATED_TO = "related-to"


@dataclass(frozen=True)
class Source:
    """Who says something: a data set at a version, or a publisher of reports."""

    key: str
    name: str
    version: str | None = None
    date: str | None = None
    url: str | None = None
    package: str | None = None


@dataclass(frozen=True)
class KBObject:
    """An actor, campaign, malware family, tool, technique, tactic or location as one source records it."""

    id: str
    type: ObjectType
    name: str
    source: str
    aliases: tuple[str, ...] = ()
    description: str = ""
    external_id: str | None = None
    reference: str | None = None
    confidence: int | None = None
    tlp: TLP = TLP.CLEAR
    attrs: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Claim:
    """Source `source` says `subject` `relation` `object`, with a likelihood, on a date, in a reference."""

    id: str
    subject_id: str
    relation: Relation
    object_id: str
    source: str
    likelihood: Likelihood | None = None
    said: str | None = None
    date: str | None = None
    reference: str | None = None
    title: str | None = None
    note: str | None = None
    tlp: TLP = TLP.CLEAR

    @property
    def confidence(self) -> int | None:
        """The claim's likelihood on the STIX confidence scale."""
        return self.likelihood.stix_confidence if self.likelihood else None


@dataclass(frozen=True)
class Relationship:
    """A behavioural link: an actor uses a technique, malware targets a sector, an indicator indicates."""

    id: str
    type: str
    source_ref: str
    target_ref: str
    source: str
    reference: str | None = None
    confidence: int | None = None
    description: str = ""
    tlp: TLP = TLP.CLEAR


@dataclass(frozen=True)
class Indicator:
    """A typed, normalized observable value that points at malicious activity."""

    id: str
    kind: str
    value: str
    source: str
    pattern: str
    first_seen: str | None = None
    last_seen: str | None = None
    confidence: int | None = None
    reference: str | None = None
    description: str = ""
    tlp: TLP = TLP.CLEAR


@dataclass(frozen=True)
class NameEntry:
    """One name of one object, as the dictionary for resolution and ingest holds it."""

    key: str
    name: str
    object_id: str
    object_type: ObjectType
    source: str
    primary: bool


@dataclass(frozen=True)
class ImportBatch:
    """Everything one import writes, in one transaction."""

    sources: tuple[Source, ...] = ()
    objects: tuple[KBObject, ...] = ()
    claims: tuple[Claim, ...] = ()
    relationships: tuple[Relationship, ...] = ()
    indicators: tuple[Indicator, ...] = ()

    def __len__(self) -> int:
        return len(self.objects) + len(self.claims) + len(self.relationships) + len(self.indicators)


@dataclass(frozen=True)
class SourceStats:
    """How many records of each kind one source contributed."""

    source: Source
    objects: Mapping[str, int]
    claims: int
    relationships: int
    indicators: int
