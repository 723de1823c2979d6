"""Per item and actor evidence features: smoothed likelihood ratio, rarity, citations, back-off and co-occurrence.

Every feature is an items x actors matrix, so a candidate's score for an evidence set is a weighted sum of rows;
the weights are fitted by `heistwatch.attribute.calibrate` and combined once into one matrix at build time,
centred so that the average actor (the "unknown / new actor" hypothesis) scores 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

from heistwatch.attribute.model import Item, Profile

Matrix = npt.NDArray[np.float64]

FEATURES = (
    "nb",
    "match",
    "match_idf",
    "cites",
    "family",
    "software_link",
    "software_reverse",
    "size",
    "tactic",
    "cosine",
    "cooccurrence",
)
"""Feature names, in the order of `FeatureStack.values`:

- nb: Jelinek-Mercer smoothed log-likelihood ratio of the actor against the item's background frequency
- match: 1 if the actor's profile holds the item
- match_idf: the same, weighted by rarity log((N + 1) / (df + 1))
- cites: log of the item's strength in the profile (e.g. number of supporting reports)
- family: rarity of the item if the actor holds a relative (parent, child, sibling) but not the item itself
- software_link: rarity of the technique if software the actor uses is linked to it, and it is not held itself
- software_reverse: share of the evidence software's techniques the actor holds, when it does not hold the software
- size: log(1 + profile size), added per evidence item (large profiles match more by chance)
- tactic: share of the item's tactics (kill-chain phases) where the actor holds some technique, when not held
- cosine: the item's term in the IDF-weighted cosine of evidence and profile, rarity^2 / the profile's IDF norm
- cooccurrence: log(1 + summed cosine similarity of the item to the actor's items over all profiles), when not held
"""


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """The item vocabulary compiled once: ids, kinds, and the back-off relations between items."""

    items: tuple[Item, ...]
    item_ids: tuple[str, ...]
    index: Mapping[str, int]
    kinds: tuple[str, ...]
    family: sparse.csr_array
    software: sparse.csr_array
    tactics: sparse.csr_array


@dataclass(frozen=True, eq=False)
class FeatureStack:
    """Feature values (features x items x actors) and which items each actor's profile holds (items x actors)."""

    values: Matrix
    direct: npt.NDArray[np.bool_]


def compile_vocabulary(items: Sequence[Item]) -> Vocabulary:
    """Index the items and their sub-technique, software->technique and tactic relations (later duplicates win)."""
    vocab = {item.id: item for item in items}
    ordered = [vocab[i] for i in sorted(vocab)]
    index = {item.id: n for n, item in enumerate(ordered)}
    software = {item.id: list(item.software_techniques) for item in ordered}
    return Vocabulary(
        items=tuple(ordered),
        item_ids=tuple(index),
        index=index,
        kinds=tuple(item.kind for item in ordered),
        family=_relation(ordered, index, _family(ordered)),
        software=_relation(ordered, index, software),
        tactics=_tactic_matrix(ordered),
    )


def covering(vocabulary: Vocabulary | Sequence[Item], profiles: Sequence[Profile]) -> Vocabulary:
    """The vocabulary, compiled if needed, with an "other" item for each profile item it does not know."""
    known = vocabulary.index if isinstance(vocabulary, Vocabulary) else {item.id for item in vocabulary}
    missing = sorted({i for p in profiles for i in p.items if i not in known})
    if isinstance(vocabulary, Vocabulary) and not missing:
        return vocabulary
    base = vocabulary.items if isinstance(vocabulary, Vocabulary) else tuple(vocabulary)
    return compile_vocabulary([*base, *(Item(i, "other") for i in missing)])


def _relation(items: Sequence[Item], index: Mapping[str, int], links: Mapping[str, Sequence[str]]) -> sparse.csr_array:
    """Sparse items x items 0/1 matrix with a 1 where `links[a]` names `b`."""
    pairs = {(index[i.id], index[o]) for i in items for o in links.get(i.id, ()) if o in index and o != i.id}
    rows, cols = zip(*sorted(pairs), strict=True) if pairs else ((), ())
    return sparse.csr_array((np.ones(len(pairs)), (rows, cols)), shape=(len(items), len(items)))


def _tactic_matrix(items: Sequence[Item]) -> sparse.csr_array:
    """Sparse items x tactics 0/1 matrix."""
    names = sorted({t for item in items for t in item.tactics})
    column = {name: n for n, name in enumerate(names)}
    pairs = [(row, column[t]) for row, item in enumerate(items) for t in set(item.tactics)]
    rows, cols = zip(*pairs, strict=True) if pairs else ((), ())
    return sparse.csr_array((np.ones(len(pairs)), (rows, cols)), shape=(len(items), len(names)))


def _family(items: Sequence[Item]) -> dict[str, list[str]]:
    """Each technique's relatives in the sub-technique tree: its parent, its children and its siblings."""
    children: dict[str, list[str]] = {}
    for item in items:
        if item.parent:
            children.setdefault(item.parent, []).append(item.id)
    family: dict[str, list[str]] = {}
    for item in items:
        if item.parent:
            family[item.id] = [item.parent, *children.get(item.parent, [])]
        elif item.id in children:
            family[item.id] = children[item.id]
    return family


def strength_matrix(profiles: Sequence[Profile], index: Mapping[str, int]) -> Matrix:
    """Actors x items matrix of profile strengths (negative or non-finite strengths count as absent)."""
    matrix = np.zeros((len(profiles), len(index)))
    for row, profile in enumerate(profiles):
        if profile.items:
            cols = [index[i] for i in profile.items]
            values = np.fromiter(profile.items.values(), dtype=np.float64, count=len(cols))
            matrix[row, cols] = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    return np.maximum(matrix, 0.0)


def feature_stack(
    vocab: Vocabulary,
    profiles: Sequence[Profile],
    lam: float,
    background_prior: float,
    rows: Sequence[int] | None = None,
) -> FeatureStack:
    """Every feature for every actor and item (or only the item `rows`); `lam`, `background_prior` smooth."""
    cols = np.arange(len(vocab.item_ids)) if rows is None else np.asarray(rows, dtype=np.intp)
    strength = strength_matrix(profiles, vocab.index)
    used = (strength > 0).astype(np.float64)
    frequency = used.sum(axis=0)
    sizes = used.sum(axis=1, keepdims=True)
    held = used[:, cols]
    absent = held == 0
    idf = np.log((len(profiles) + 1) / (frequency + 1))
    rarity = idf[cols]
    used_sparse = sparse.csr_array(used)
    values = [
        _smoothed_log_lr(held, frequency, cols, sizes, lam, background_prior),
        held,
        held * rarity,
        np.log(np.maximum(strength[:, cols], 1.0)) * held,
        ((used_sparse @ vocab.family[:, cols]).toarray() > 0) * absent * rarity,
        ((used_sparse @ vocab.software[:, cols]).toarray() > 0) * absent * rarity,
        _software_reverse(used_sparse, vocab, cols) * absent,
        np.broadcast_to(np.log1p(sizes), held.shape),
        _tactic_share(used_sparse, vocab, cols) * absent,
        held * rarity**2 / np.maximum(np.sqrt(used @ idf**2), 1e-12)[:, None],
        _cooccurrence(used_sparse, frequency, cols) * absent,
    ]
    stacked = np.empty((len(values), len(cols), len(profiles)))
    for n, value in enumerate(values):
        stacked[n] = value.T
    return FeatureStack(values=stacked, direct=np.ascontiguousarray(held.T > 0))


def _smoothed_log_lr(
    held: Matrix, frequency: Matrix, cols: npt.NDArray[np.intp], sizes: Matrix, lam: float, background_prior: float
) -> Matrix:
    """log((1 - lam) p_a(i) / bg(i) + lam), floored at 0 for held items so they never count against the actor."""
    background = (frequency[cols] + background_prior) / (frequency + background_prior).sum()
    share = np.divide(held, sizes, out=np.zeros_like(held), where=sizes > 0)
    log_lr = np.log((1 - lam) * share / background + lam)
    floored: Matrix = np.where(held > 0, np.maximum(log_lr, 0.0), log_lr)
    return floored


def _software_reverse(used: sparse.csr_array, vocab: Vocabulary, cols: npt.NDArray[np.intp]) -> Matrix:
    """Actors x items: for software items, the share of the software's linked techniques the actor holds."""
    links = vocab.software[cols]
    linked = np.asarray(links.sum(axis=1)).ravel()
    return np.asarray((used @ links.T).toarray() / np.maximum(linked, 1.0))


def _tactic_share(used: sparse.csr_array, vocab: Vocabulary, cols: npt.NDArray[np.intp]) -> Matrix:
    """Actors x items: share of the item's tactics in which the actor holds at least one technique."""
    covered = ((used @ vocab.tactics).toarray() > 0).astype(np.float64)
    tactics = vocab.tactics[cols]
    per_item = np.asarray(tactics.sum(axis=1)).ravel()
    return np.asarray((covered @ tactics.T.toarray()) / np.maximum(per_item, 1.0))


def _cooccurrence(used: sparse.csr_array, frequency: Matrix, cols: npt.NDArray[np.intp]) -> Matrix:
    """Actors x items: log(1 + sum over the actor's items j of co-occurrence(i, j) / sqrt(df_i df_j))."""
    scale = 1.0 / np.sqrt(np.maximum(frequency, 1.0))
    actors = (used @ sparse.diags_array(scale) @ used.T).toarray()
    shared = np.asarray(used[:, cols].T @ actors.T).T
    similarity: Matrix = np.log1p(shared * scale[cols])
    return similarity


def combine(stack: FeatureStack, weights: Sequence[float] | Matrix) -> Matrix:
    """Weighted sum of the features (items x actors), centred on the average actor (the unknown actor's 0).

    A held item's contribution is floored at 0, so evidence an actor is known to use never counts against it.
    """
    combined = np.tensordot(np.asarray(weights, dtype=np.float64), stack.values, axes=1)
    if not combined.shape[1]:
        return combined
    centred = combined - combined.mean(axis=1, keepdims=True)
    floored: Matrix = np.where(stack.direct, np.maximum(centred, 0.0), centred)
    return floored
