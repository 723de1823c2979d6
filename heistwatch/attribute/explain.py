"""Analysis-of-competing-hypotheses explanation of one candidate: what raised, lowered, and was missing."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from heistwatch.attribute.model import Contribution, Evidence, Explanation
from heistwatch.attribute.score import Model, Scores, origin_key


def same_origin(evidence: Sequence[Evidence]) -> dict[str, tuple[str, ...]]:
    """Origins shared by more than one evidence entry, with their item ids (such entries count once)."""
    groups: dict[str, list[str]] = {}
    for item in evidence:
        groups.setdefault(origin_key(item), []).append(item.item_id)
    return {key: tuple(sorted(set(ids))) for key, ids in sorted(groups.items()) if len(ids) > 1}


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
    """The actor's profile items with the highest weight that the evidence lacks."""
    held = model.direct[:, actor].copy()
    held[scores.rows] = False
    rows = np.flatnonzero(held)
    top = rows[np.argsort(-model.log_lr[rows, actor], kind="stable")[:limit]]
    return tuple(Contribution(model.item_ids[r], float(model.log_lr[r, actor])) for r in top)
