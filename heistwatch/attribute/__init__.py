"""Attribution engine: score candidate actors and an unknown actor from evidence, calibrated and explained.

Build a `Model` once with `build_model(items, profiles)`, then call `attribute(evidence, model)` as often as needed.
"""

from heistwatch.attribute.calibrate import DEFAULT_CALIBRATION, Calibration, load_calibration, save_calibration
from heistwatch.attribute.engine import aggregate, attribute
from heistwatch.attribute.features import FEATURES, Vocabulary, compile_vocabulary
from heistwatch.attribute.model import Attribution, Candidate, Contribution, Evidence, Explanation, Item, Profile
from heistwatch.attribute.score import Model, build_model
from heistwatch.attribute.words import likelihood_of

__all__ = [
    "Attribution",
    "Calibration",
    "Candidate",
    "Contribution",
    "DEFAULT_CALIBRATION",
    "Evidence",
    "Explanation",
    "FEATURES",
    "Item",
    "Model",
    "Profile",
    "Vocabulary",
    "aggregate",
    "attribute",
    "build_model",
    "compile_vocabulary",
    "likelihood_of",
    "load_calibration",
    "save_calibration",
]
