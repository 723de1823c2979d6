"""The attribution engine: evidence in, ranked and explained hypotheses out (pure and deterministic)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from heistwatch.attribute.calibrate import probabilities
from heistwatch.attribute.explain import explain, same_origin
from heistwatch.attribute.model import Attribution, Candidate, Evidence
from heistwatch.attribute.score import Model, Scores, score
from heistwatch.attribute.words import analytic_confidence, likelihood_of


class ActorProbabilities(Mapping[str, float]):
    """Read-only actor id -> probability view over the posterior array (built in O(1) per attribution)."""

    def __init__(self, index: Mapping[str, int], values: np.ndarray) -> None:
        self._index = index
        self._values = values

    def __getitem__(self, actor_id: str) -> float:
        return float(self._values[self._index[actor_id]])

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return f"ActorProbabilities({dict(self)!r})"


def attribute(evidence: Sequence[Evidence], model: Model, top: int = 10, explain_top: int = 1) -> Attribution:
    """Rank every candidate and the unknown actor; keep the `top` best, explaining the first `explain_top`."""
    scores = score(evidence, model)
    actors, unknown = probabilities(scores.log_lr, model.calibration)
    abstained, reason = _abstain(scores, actors, model.calibration.floor)
    return Attribution(
        candidates=_candidates(
            model, scores, actors, top, same_origin(evidence) if explain_top > 0 else None, explain_top
        ),
        probabilities=ActorProbabilities(model.actor_index, actors),
        unknown_probability=unknown,
        confidence="low" if abstained else analytic_confidence(float(scores.weights.sum()), scores.origins),
        abstained=abstained,
        reason=reason,
        countries=_by_country(model, actors),
        ignored=scores.ignored,
    )


def _candidates(
    model: Model,
    scores: Scores,
    actors: np.ndarray,
    top: int,
    shared: dict[str, tuple[str, ...]] | None,
    explain_top: int,
) -> tuple[Candidate, ...]:
    """The `top` candidates, most probable first (ties by actor order), the first `explain_top` explained."""
    order = np.argsort(-actors, kind="stable")[: max(top, 0)]
    ranked = zip(order.tolist(), actors[order].tolist(), scores.log_lr[order].tolist(), strict=True)
    return tuple(
        Candidate(
            actor_id=model.actor_ids[a],
            name=model.names[a],
            probability=p,
            log_lr=lr,
            words=likelihood_of(p),
            explanation=explain(model, scores, a, shared) if shared is not None and rank < explain_top else None,
        )
        for rank, (a, p, lr) in enumerate(ranked)
    )


def _abstain(scores: Scores, actors: np.ndarray, floor: float) -> tuple[bool, str | None]:
    """Whether to withhold a judgement, and why."""
    if not len(scores.rows):
        ignored = f" ({len(scores.ignored)} unknown item ids ignored)" if scores.ignored else ""
        return True, f"insufficient evidence: no usable evidence items{ignored}"
    if not len(actors) or float(actors.max()) < floor:
        return True, f"insufficient evidence: no candidate reaches probability {floor:.2f}"
    return False, None


def _by_country(model: Model, actors: np.ndarray) -> dict[str, float]:
    """Actor probabilities summed by country, largest first (actors without a country are left out)."""
    sums = np.bincount(model.country_of, weights=actors, minlength=len(model.country_names) + 1)
    order = np.lexsort((np.arange(len(model.country_names)), -sums[:-1]))
    return {model.country_names[n]: float(sums[n]) for n in order}


def aggregate(attribution: Attribution | Mapping[str, float], labels: Mapping[str, str]) -> dict[str, float]:
    """Probabilities summed per label (country, group, umbrella) over the actors `labels` maps; others are left out."""
    probs = attribution.probabilities if isinstance(attribution, Attribution) else attribution
    totals: dict[str, float] = {}
    for actor_id, probability in probs.items():
        label = labels.get(actor_id)
        if label is not None:
            totals[label] = totals.get(label, 0.0) + probability
    return dict(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))
