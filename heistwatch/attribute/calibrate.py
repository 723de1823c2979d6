"""Calibration: the fitted feature weights and priors that turn feature sums into probabilities.

The weights are fitted by maximum likelihood (a conditional logit over all candidates, L2-penalised), which makes
the scores calibrated log-odds between candidates; the unknown actor is the average actor (log-ratio 0) and takes
a fixed prior share `unknown_prior`; one temperature, fitted out-of-fold, rescales the scores.
`benchmarks/attribution.py --fit` writes them to the package data
file `heistwatch/data/attribution-calibration.json`. Without that file the engine uses `DEFAULT_CALIBRATION`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import optimize

from heistwatch.attribute.features import FEATURES
from heistwatch.errors import InputError

Matrix = npt.NDArray[np.float64]
PACKAGED = "attribution-calibration.json"


@dataclass(frozen=True)
class Calibration:
    """Feature weights, smoothing, unknown-actor prior and abstention floor, with a note of what they came from."""

    weights: Mapping[str, float]
    lam: float = 0.5
    background_prior: float = 0.01
    unknown_prior: float = 0.05
    floor: float = 0.3
    temperature: float = 1.0
    fitted_on: Mapping[str, str | int | float] = field(default_factory=dict)

    def vector(self) -> list[float]:
        """The weights in `FEATURES` order (absent features weigh 0)."""
        return [float(self.weights.get(name, 0.0)) for name in FEATURES]


DEFAULT_CALIBRATION = Calibration(
    weights={"nb": 0.5},
    fitted_on={"source": "built-in default: smoothed likelihood ratio at temperature 2, not fitted"},
)
"""Used when no calibration file is packaged: the plain smoothed likelihood ratio, halved (temperature 2)."""


def load_calibration(path: Path | None = None) -> Calibration:
    """Read a calibration file; with no path, the packaged one, or `DEFAULT_CALIBRATION` if none is packaged."""
    if path is None:
        packaged = resources.files("heistwatch") / "data" / PACKAGED
        if not packaged.is_file():
            return DEFAULT_CALIBRATION
        return _parse(packaged.read_text(encoding="utf-8"), PACKAGED)
    try:
        return _parse(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise InputError(str(path), f"cannot read calibration file: {exc}") from exc


def _parse(text: str, where: str) -> Calibration:
    """A calibration from its JSON text."""
    try:
        data = json.loads(text)
        unknown = set(data["weights"]) - set(FEATURES)
        if unknown:
            raise ValueError(f"unknown features {sorted(unknown)}")
        return Calibration(**data)
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(where, f"not a calibration file ({exc}); refit with benchmarks/attribution.py --fit") from exc


def save_calibration(calibration: Calibration, path: Path) -> None:
    """Write a calibration as sorted, indented JSON."""
    path.write_text(json.dumps(asdict(calibration), indent=1, sort_keys=True) + "\n", encoding="utf-8")


def probabilities(log_lr: Matrix, calibration: Calibration) -> tuple[Matrix, float]:
    """Posterior over the actors and the unknown actor (log-ratio 0) at the calibration's temperature and prior."""
    prior = min(max(calibration.unknown_prior, 1e-9), 1 - 1e-9)
    logits = log_lr / calibration.temperature + math.log((1.0 - prior) / max(len(log_lr), 1))
    unknown = math.log(prior)
    top = max(float(logits.max()), unknown) if len(logits) else unknown
    exp = np.exp(logits - top)
    rest = math.exp(unknown - top)
    total = float(exp.sum()) + rest
    return exp / total, rest / total


def _loss(weights: Matrix, samples: Sequence[tuple[Matrix, Sequence[int]]], l2: float) -> tuple[float, Matrix]:
    """Negative log softmax mass on the gold actors, with an L2 penalty, and its gradient."""
    total, grad = l2 * float(weights @ weights), 2 * l2 * weights
    for sums, gold in samples:
        logits = sums @ weights
        exp = np.exp(logits - logits.max())
        actors = exp / exp.sum()
        mass = max(float(actors[list(gold)].sum()), 1e-300)
        on_gold = np.zeros_like(actors)
        on_gold[list(gold)] = actors[list(gold)] / mass
        total -= np.log(mass)
        grad = grad - (on_gold - actors) @ sums
    return total, grad


def fit_weights(samples: Sequence[tuple[Matrix, Sequence[int]]], l2: float = 10.0) -> Matrix:
    """Feature weights maximising the softmax mass on the gold actors; `samples` = (actors x features, gold ids)."""
    result = optimize.minimize(_loss, np.zeros(len(FEATURES)), args=(samples, l2), jac=True, method="L-BFGS-B")
    return np.asarray(result.x, dtype=np.float64)


def fit_temperature(samples: Sequence[tuple[Matrix, Sequence[int]]], calibration: Calibration) -> float:
    """The temperature maximising the posterior mass on the gold actors (unknown actor included)."""

    def loss(log_t: float) -> float:
        at = replace(calibration, temperature=float(np.exp(log_t)))
        return -sum(float(np.log(max(probabilities(s, at)[0][list(g)].sum(), 1e-300))) for s, g in samples)

    return float(np.exp(optimize.minimize_scalar(loss, bounds=(-3.0, 3.0), method="bounded").x))
