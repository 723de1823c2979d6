"""The scoring model: each candidate's log-likelihood ratio against the background ("unknown / new actor").

The ratio is a weighted sum of per item features (see `heistwatch.attribute.features`): a Jelinek-Mercer smoothed
likelihood ratio against the item's background frequency (a ubiquitous technique says little, a rare tool says a
lot), rarity-weighted matches, an IDF-cosine term, citation strength, and lower-weight back-off to sub-technique
relatives, software links, tactics and items that co-occur in profiles. The weights come from the calibration;
everything is folded into one items x actors matrix at build time, so scoring an evidence set is one gather and a sum.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from heistwatch.attribute.calibrate import Calibration, load_calibration
from heistwatch.attribute.features import Matrix, Vocabulary, combine, covering, feature_stack
from heistwatch.attribute.model import Evidence, Item, Profile
from heistwatch.errors import InputError

BEHAVIOUR = frozenset({"technique", "software"})
"""Item kinds listed first among an actor's items expected but not seen."""


@dataclass(frozen=True, eq=False)
class Model:
    """Profiles and vocabulary compiled once into arrays; build with `build_model`."""

    actor_ids: tuple[str, ...]
    names: tuple[str, ...]
    countries: tuple[str | None, ...]
    item_ids: tuple[str, ...]
    index: Mapping[str, int]
    log_lr: Matrix
    direct: npt.NDArray[np.bool_]
    calibration: Calibration
    country_names: tuple[str, ...]
    country_of: npt.NDArray[np.intp]
    actor_index: Mapping[str, int]
    expected: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Scores:
    """Each actor's log-likelihood ratio for one evidence set, with the evidence rows and weights used."""

    log_lr: Matrix
    rows: npt.NDArray[np.intp]
    weights: Matrix
    ignored: tuple[str, ...]
    origins: int


def build_model(
    vocabulary: Vocabulary | Sequence[Item], profiles: Sequence[Profile], calibration: Calibration | None = None
) -> Model:
    """Compile profiles over the vocabulary with a calibration (default: the packaged one)."""
    calibration = calibration or load_calibration()
    _check_unique(profiles)
    vocab = covering(vocabulary, profiles)
    stack = feature_stack(vocab, profiles, calibration.lam, calibration.background_prior)
    log_lr = np.ascontiguousarray(combine(stack, calibration.vector()))
    countries = tuple(sorted({p.country for p in profiles if p.country}))
    return Model(
        actor_ids=tuple(p.actor_id for p in profiles),
        names=tuple(p.name for p in profiles),
        countries=tuple(p.country for p in profiles),
        item_ids=vocab.item_ids,
        index=vocab.index,
        log_lr=log_lr,
        direct=stack.direct,
        calibration=calibration,
        country_names=countries,
        country_of=_country_index(profiles, countries),
        actor_index={p.actor_id: n for n, p in enumerate(profiles)},
        expected=_expected_order(vocab, log_lr, stack.direct),
    )


def _expected_order(vocab: Vocabulary, log_lr: Matrix, direct: npt.NDArray[np.bool_]) -> tuple[tuple[int, ...], ...]:
    """Each actor's held item rows, behaviour (techniques, software) first, then by weight, largest first."""
    other = np.array([kind not in BEHAVIOUR for kind in vocab.kinds], dtype=np.bool_)
    order = []
    for actor in range(direct.shape[1]):
        rows = np.flatnonzero(direct[:, actor])
        order.append(tuple(rows[np.lexsort((-log_lr[rows, actor], other[rows]))].tolist()))
    return tuple(order)


def _check_unique(profiles: Sequence[Profile]) -> None:
    """Refuse profiles that repeat an actor id (their probabilities could not be told apart)."""
    seen: set[str] = set()
    for profile in profiles:
        if profile.actor_id in seen:
            raise InputError(f"profile {profile.actor_id}", "actor id given twice; merge the profiles first")
        seen.add(profile.actor_id)


def _country_index(profiles: Sequence[Profile], names: Sequence[str]) -> npt.NDArray[np.intp]:
    """Each actor's position in `names` (sorted countries); actors without a country get the extra last slot."""
    slot = {name: n for n, name in enumerate(names)}
    return np.array([slot[p.country] if p.country else len(names) for p in profiles], dtype=np.intp)


def origin_key(item: Evidence) -> str:
    """The key under which copies of one piece of evidence count once: its origin, else its source."""
    return item.origin if item.origin is not None else f"source:{item.source}"


def _clip(reliability: float) -> float:
    """Reliability clipped to 0..1 (a non-number counts as 0)."""
    return min(max(float(reliability), 0.0), 1.0) if math.isfinite(reliability) else 0.0


def item_weights(
    evidence: Sequence[Evidence], index: Mapping[str, int]
) -> tuple[dict[int, float], tuple[str, ...], int]:
    """Weight per known item (strongest reliability per origin, noisy-OR across origins), ignored ids, origins."""
    best: dict[tuple[int, str], float] = {}
    ignored: set[str] = set()
    for item in evidence:
        row = index.get(item.item_id)
        if row is None:
            ignored.add(item.item_id)
            continue
        key = (row, origin_key(item))
        reliability = item.reliability if 0.0 <= item.reliability <= 1.0 else _clip(item.reliability)
        if reliability > best.get(key, -1.0):
            best[key] = reliability
    missed: dict[int, float] = {}
    for (row, _), reliability in best.items():
        missed[row] = missed.get(row, 1.0) * (1.0 - reliability)
    weights = {row: 1.0 - m for row, m in missed.items() if m < 1.0}
    return weights, tuple(sorted(ignored)), len({origin for _, origin in best})


def score(evidence: Sequence[Evidence], model: Model) -> Scores:
    """Each candidate's log-likelihood ratio against the background, given the evidence."""
    weights, ignored, origins = item_weights(evidence, model.index)
    rows = np.array(sorted(weights), dtype=np.intp)
    values = np.array([weights[r] for r in rows.tolist()], dtype=np.float64)
    return Scores(log_lr=values @ model.log_lr[rows], rows=rows, weights=values, ignored=ignored, origins=origins)
