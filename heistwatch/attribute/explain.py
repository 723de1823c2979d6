"""Analysis-of-competing-hypotheses explanation of one candidate: what raised, lowered, and was missing."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from heistwatch.attribute.model import Contribution, Evidence, Explanation
from heistwatch.attribute.score import Model, Scores, origin_key


def same_origin(evidence: Sequence[Evidence]) -> dict[str, tuple[str, ...]]:
    """Origins from which the same item id came in several evidence entries, with those ids (each counts once)."""
    seen: set[tuple[str, str]] = set()
    repeated: dict[str, set[str]] = {}
    for item in evidence:
        key = (origin_key(item), item.item_id)
        if key in seen:
            repeated.setdefault(key[0], set()).add(item.item_id)
        seen.add(key)
    return {origin: tuple(sorted(ids)) for origin, ids in sorted(repeated.items())}


def explain(
    model: Model, scores: Scores, actor: int, shared: dict[str, tuple[str, ...]], limit: int = 10
) -> Explanation:
    """Contributions of the evidence to one actor's log-likelihood ratio and the strongest profile items not seen."""
    contributions = scores.weights * model.log_lr[scores.rows, actor]
    order = np.argsort(-contributions, kind="stable")
    raises = [n for n in order[:limit] if contributions[n] > 0]
    lowers = [n for n in order[::-1][:limit] if contributions[n] < 0]
    return Explanation(
        raises=tuple(Contribution(model.item_ids[scores.rows[n]], float(contributions[n])) for n in raises),
        lowers=tuple(Contribution(model.item_ids[scores.rows[n]], float(contributions[n])) for n in lowers),
        expected_not_seen=_expected(model, scores, actor, limit // 2),
        same_origin=shared,
    )


def _expected(model: Model, scores: Scores, actor: int, limit: int) -> tuple[Contribution, ...]:
    """The actor's profile items the evidence lacks: behaviour (techniques, software) first, then by weight."""
    seen = set(scores.rows.tolist())
    top = [r for r in model.expected[actor][: limit + len(seen)] if r not in seen][:limit]
    return tuple(Contribution(model.item_ids[r], float(model.log_lr[r, actor])) for r in top)
