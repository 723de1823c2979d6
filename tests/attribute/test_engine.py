"""The attribution engine on small hand-made profiles: invariants, bad input, and a common phishing chain."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heistwatch.attribute import (
    DEFAULT_CALIBRATION,
    Evidence,
    Item,
    Model,
    Profile,
    aggregate,
    attribute,
    build_model,
    likelihood_of,
)
from heistwatch.attribute.score import score
from heistwatch.errors import InputError
from heistwatch.model.likelihood import Likelihood

COMMON = ["T1566.001", "T1204.002", "T1059.001", "T1105"]
ITEMS = [
    Item("T1566", "technique", tactics=("initial-access",)),
    Item("T1566.001", "technique", parent="T1566", tactics=("initial-access",)),
    Item("T1566.002", "technique", parent="T1566", tactics=("initial-access",)),
    Item("T1204", "technique", tactics=("execution",)),
    Item("T1204.002", "technique", parent="T1204", tactics=("execution",)),
    Item("T1059", "technique", tactics=("execution",)),
    Item("T1059.001", "technique", parent="T1059", tactics=("execution",)),
    Item("T1105", "technique", tactics=("command-and-control",)),
    Item("T1003", "technique", tactics=("credential-access",)),
    Item("T1003.001", "technique", parent="T1003", tactics=("credential-access",)),
    Item("T1486", "technique", tactics=("impact",)),
    Item("S0001", "software", software_techniques=("T1003.001",)),
    Item("S0002", "software", software_techniques=("T1486", "T1105")),
    Item("S0003", "software", software_techniques=("T1059.001",)),
]
IDS = [item.id for item in ITEMS]


def _profiles() -> list[Profile]:
    """Twelve actors that all use the common phishing chain, each with one or two rarer items of its own."""
    own = [["S0001", "T1003.001"], ["S0002", "T1486"], ["S0003"], ["T1566.002"], [], ["T1003"]] * 2
    countries = ["KP", "RU", "CN", "IR", None, "KP"] * 2
    return [
        Profile(f"G{n:04d}", f"Actor {n}", {i: 1.0 for i in [*COMMON, *extra]}, countries[n])
        for n, extra in enumerate(own)
    ] + [Profile("G0099", "Empty", {}, "KP")]


MODEL = build_model(ITEMS, _profiles(), DEFAULT_CALIBRATION)


def _evidence(ids: list[str], origin: str | None = None) -> list[Evidence]:
    """Evidence of full reliability for the ids."""
    return [Evidence(i, "software" if i.startswith("S") else "technique", "test", 1.0, origin) for i in ids]


def test_common_phishing_chain_is_not_a_confident_answer() -> None:
    result = attribute(_evidence(COMMON), MODEL)
    assert max(result.probabilities.values()) <= 0.3
    assert result.abstained and result.reason and "insufficient" in result.reason
    assert result.confidence == "low"


def test_rare_software_points_at_its_users() -> None:
    result = attribute(_evidence([*COMMON, "S0002", "T1486"]), MODEL)
    assert {c.actor_id for c in result.candidates[:2]} == {"G0001", "G0007"}
    assert result.countries["RU"] > 0.5
    top = result.candidates[0].explanation
    assert top is not None and top.raises[0].item_id in {"S0002", "T1486"}


def test_empty_evidence_abstains() -> None:
    result = attribute([], MODEL)
    assert result.abstained and result.confidence == "low"
    assert math.isclose(sum(result.probabilities.values()) + result.unknown_probability, 1.0)


def test_unknown_ids_are_reported_not_fatal() -> None:
    result = attribute(_evidence(["T9999", "S9999", "T1486"]), MODEL)
    assert result.ignored == ("S9999", "T9999")


def test_only_unknown_ids_abstain() -> None:
    result = attribute(_evidence(["T9999"]), MODEL)
    assert result.abstained and result.reason and "1 unknown" in result.reason


def test_empty_profile_is_never_favoured() -> None:
    result = attribute(_evidence(["T1003.001", "S0001"]), MODEL)
    assert result.probabilities["G0099"] < min(result.probabilities[a] for a in ("G0000", "G0006"))


def test_bad_reliability_counts_as_nothing() -> None:
    bad = [Evidence("S0002", "software", "x", float("nan")), Evidence("T1486", "technique", "x", -3.0)]
    assert attribute(bad, MODEL).abstained


def test_same_origin_counts_once() -> None:
    copied = _evidence(["S0002"], origin="vendor report") * 3
    once = score(_evidence(["S0002"]), MODEL).log_lr
    assert (score(copied, MODEL).log_lr == once).all()
    result = attribute([*copied, *_evidence(["T1486"], origin="vendor report")], MODEL)
    explanation = result.candidates[0].explanation
    assert explanation is not None and explanation.same_origin == {"vendor report": ("S0002",)}


def test_distinct_items_of_one_origin_are_not_listed_as_copies() -> None:
    result = attribute(_evidence(["S0002", "T1486"], origin="vendor report"), MODEL)
    explanation = result.candidates[0].explanation
    assert explanation is not None and explanation.same_origin == {}


def test_expected_not_seen_lists_behaviour_first() -> None:
    extra = {"name:ransom crew": 9.0, "sector:finance": 9.0, "victim:acme": 9.0}
    profiles = [Profile("G1", "One", {"S0002": 1.0, "T1486": 1.0, "T1105": 1.0, **extra}), *_profiles()[1:]]
    model = build_model(ITEMS, profiles, DEFAULT_CALIBRATION)
    result = attribute(_evidence(["S0002"]), model, top=20, explain_top=20)
    explanation = next(c.explanation for c in result.candidates if c.actor_id == "G1")
    assert explanation is not None
    kinds = ["other" if ":" in c.item_id else "behaviour" for c in explanation.expected_not_seen]
    assert kinds[:2] == ["behaviour", "behaviour"] and "behaviour" not in kinds[2:]


def test_contradictory_evidence_gives_a_defined_answer() -> None:
    result = attribute(_evidence(["S0001", "S0002", "S0003", "T1566.002"]), MODEL)
    assert math.isclose(sum(result.probabilities.values()) + result.unknown_probability, 1.0)
    assert result.candidates[0].probability < 0.95


def test_model_without_actors() -> None:
    empty = build_model(ITEMS, [], DEFAULT_CALIBRATION)
    result = attribute(_evidence(["T1486"]), empty)
    assert result.abstained and result.candidates == () and math.isclose(result.unknown_probability, 1.0)


def test_aggregate_sums_by_label() -> None:
    result = attribute(_evidence(["S0002"]), MODEL)
    groups = aggregate(result, {"G0001": "umbrella", "G0007": "umbrella"})
    assert math.isclose(groups["umbrella"], result.probabilities["G0001"] + result.probabilities["G0007"])


def test_words_follow_icd_203() -> None:
    assert likelihood_of(0.005) is Likelihood.ALMOST_NO_CHANCE
    assert likelihood_of(0.5) is Likelihood.ROUGHLY_EVEN_CHANCE
    assert likelihood_of(0.9) is Likelihood.VERY_LIKELY
    assert likelihood_of(0.999) is Likelihood.ALMOST_CERTAIN


evidence_ids = st.lists(st.sampled_from([*IDS, "T9999"]), max_size=8)
reliability = st.floats(min_value=0.0, max_value=1.0)


@settings(max_examples=60, deadline=None)
@given(ids=evidence_ids, weights=st.lists(reliability, min_size=8, max_size=8))
def test_probabilities_sum_to_one(ids: list[str], weights: list[float]) -> None:
    evidence = [Evidence(i, "technique", f"s{n}", w) for n, (i, w) in enumerate(zip(ids, weights, strict=False))]
    result = attribute(evidence, MODEL)
    assert math.isclose(sum(result.probabilities.values()) + result.unknown_probability, 1.0, rel_tol=1e-9)
    assert all(0.0 <= p <= 1.0 for p in result.probabilities.values())


@settings(max_examples=60, deadline=None)
@given(ids=evidence_ids, actor=st.integers(min_value=0, max_value=12), pick=st.integers(min_value=0))
def test_adding_a_profile_item_never_lowers_that_actor(ids: list[str], actor: int, pick: int) -> None:
    held = [MODEL.item_ids[r] for r in range(len(MODEL.item_ids)) if MODEL.direct[r, actor]]
    if not held:
        return
    before = score(_evidence(ids), MODEL).log_lr[actor]
    after = score(_evidence([*ids, held[pick % len(held)]]), MODEL).log_lr[actor]
    assert after >= before - 1e-12


@settings(max_examples=30, deadline=None)
@given(ids=evidence_ids)
def test_deterministic(ids: list[str]) -> None:
    assert attribute(_evidence(ids), MODEL) == attribute(_evidence(list(ids)), _rebuilt())


def _rebuilt() -> Model:
    """The same model built again from the same inputs."""
    return build_model(list(reversed(ITEMS)), _profiles(), DEFAULT_CALIBRATION)


def test_repeated_actor_id_is_refused() -> None:
    twice = [Profile("G1", "One", {"T1105": 1.0}), Profile("G1", "Again", {})]
    with pytest.raises(InputError, match="G1"):
        build_model(ITEMS, twice, DEFAULT_CALIBRATION)
