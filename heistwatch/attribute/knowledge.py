"""Attribution against the knowledge base: ATT&CK groups as candidates; answers per group, umbrella, country."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from heistwatch.attribute.calibrate import Calibration
from heistwatch.attribute.engine import aggregate, attribute
from heistwatch.attribute.model import Attribution, Evidence
from heistwatch.attribute.profiles import KnowledgeProfiles, knowledge_profiles
from heistwatch.attribute.score import Model, build_model
from heistwatch.kb.store import KnowledgeStore


@dataclass(frozen=True)
class Levels:
    """The answer at each level: ATT&CK group, umbrella (a group's parent where sources give one), country."""

    attribution: Attribution
    groups: dict[str, float]
    umbrellas: dict[str, float]
    countries: dict[str, float]
    evidence: tuple[Evidence, ...]
    item_names: dict[str, str]


class Attributor:
    """Profiles and the scoring model built once from a knowledge base; attribute many evidence sets."""

    def __init__(self, store: KnowledgeStore, calibration: Calibration | None = None) -> None:
        """Build every ATT&CK group's profile from `store` and compile the model (a second or two)."""
        self.profiles: KnowledgeProfiles = knowledge_profiles(store)
        self.model: Model = build_model(self.profiles.items, self.profiles.profiles, calibration)
        self._labels = {p.actor_id: f"{p.name} ({p.actor_id})" for p in self.profiles.profiles}
        self._umbrellas = {a: self.profiles.umbrellas.get(a, label) for a, label in self._labels.items()}

    def attribute(self, evidence: Sequence[Evidence], *, top: int = 10, explain_top: int = 3) -> Levels:
        """Ranked, explained candidates and the group / umbrella / country probabilities."""
        result = attribute(evidence, self.model, top=top, explain_top=explain_top)
        return Levels(
            attribution=result,
            groups=aggregate(result, self._labels),
            umbrellas=aggregate(result, self._umbrellas),
            countries=dict(result.countries),
            evidence=tuple(evidence),
            item_names=self.profiles.item_names,
        )
