"""ATT&CK Navigator layers load in MITRE's own layer model (mitreattack-python)."""

from __future__ import annotations

from mitreattack.navlayers import Layer

from heistwatch.attribute.knowledge import Levels
from heistwatch.attribute.model import Attribution, Candidate, Evidence, Profile
from heistwatch.model import Likelihood
from heistwatch.share.navigator import actor_layer, overlap_layer

LAZARUS = Profile("G0032", "Lazarus Group", {"T1566.001": 1.0, "T1059.001": 1.0, "S0584": 1.0}, country="KP")
APT38 = Profile("G0082", "APT38", {"T1059.001": 1.0, "T1105": 1.0}, country="KP")


def _levels() -> Levels:
    candidates = tuple(
        Candidate(p.actor_id, p.name, prob, 1.0, Likelihood.LIKELY) for p, prob in ((LAZARUS, 0.7), (APT38, 0.2))
    )
    attribution = Attribution(candidates, {"G0032": 0.7, "G0082": 0.2}, 0.1, "moderate", False, None)
    evidence = (Evidence("T1059.001", "technique", "edr"), Evidence("T1204.002", "technique", "edr"))
    return Levels(attribution, {}, {}, {}, evidence, {})


def _loads(layer: dict[str, object]) -> dict[str, object]:
    loaded = Layer()
    loaded.from_dict(layer)
    return dict(loaded.to_dict())


def test_overlap_layer_counts_who_holds_each_technique() -> None:
    layer = overlap_layer(_levels(), [LAZARUS, APT38], "18.1")
    scores = {t["techniqueID"]: t["score"] for t in layer["techniques"]}
    assert scores == {"T1059.001": 3, "T1105": 1, "T1204.002": 1, "T1566.001": 1}
    assert _loads(layer)["name"] == "Attribution: candidate overlap"
    assert layer["versions"]["attack"] == "18"


def test_actor_layer_has_only_techniques() -> None:
    layer = actor_layer(LAZARUS, "18.1")
    assert [t["techniqueID"] for t in layer["techniques"]] == ["T1059.001", "T1566.001"]
    assert len(_loads(layer)["techniques"]) == 2  # type: ignore[arg-type]
