"""Frozen inputs and outputs of attribution: vocabulary items, actor profiles, evidence, and the ranked answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from heistwatch.model.likelihood import Likelihood


@dataclass(frozen=True)
class Item:
    """One vocabulary entry an actor can be seen using: a technique, a piece of software, later other kinds."""

    id: str
    kind: str
    parent: str | None = None
    tactics: tuple[str, ...] = ()
    software_techniques: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    """What a candidate actor is known to use: item id -> strength (> 0 = held; n = n supporting sources).

    The calibrated "cites" feature weighs log(strength), so strengths at or below 1 all count as one source.
    """

    actor_id: str
    name: str
    items: Mapping[str, float]
    country: str | None = None
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Evidence:
    """One observed item; `origin` groups evidence copied from one source so it counts once."""

    item_id: str
    kind: str
    source: str
    reliability: float = 1.0
    origin: str | None = None


@dataclass(frozen=True)
class Contribution:
    """One item's share of a candidate's log-likelihood ratio against the background (natural log)."""

    item_id: str
    weight: float


@dataclass(frozen=True)
class Explanation:
    """Competing-hypotheses view of one candidate: what raised, lowered, and was expected but not seen."""

    raises: tuple[Contribution, ...]
    lowers: tuple[Contribution, ...]
    expected_not_seen: tuple[Contribution, ...]
    same_origin: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Candidate:
    """One ranked hypothesis: an actor, its calibrated probability and log-likelihood ratio."""

    actor_id: str
    name: str
    probability: float
    log_lr: float
    words: Likelihood
    explanation: Explanation | None = None


@dataclass(frozen=True)
class Attribution:
    """The answer: top candidates ranked, every actor's probability, the unknown-actor share, and confidence.

    `countries` sums actor probabilities by country; actors without one and the unknown actor count for none.
    """

    candidates: tuple[Candidate, ...]
    probabilities: Mapping[str, float]
    unknown_probability: float
    confidence: str
    abstained: bool
    reason: str | None
    countries: Mapping[str, float] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()
