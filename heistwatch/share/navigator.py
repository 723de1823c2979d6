"""ATT&CK Navigator layers (layer format 4.5): an actor's techniques, and an attribution's candidate overlap."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from heistwatch.attribute.knowledge import Levels
from heistwatch.attribute.model import Profile

LAYER_VERSION = "4.5"
NAVIGATOR_VERSION = "5.1.0"
_OVERLAP_COLOURS = ["#ffffff", "#ffe766", "#ff9f43", "#e8453c"]


def _layer(name: str, description: str, attack_version: str, techniques: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "versions": {"attack": attack_version.split(".")[0], "navigator": NAVIGATOR_VERSION, "layer": LAYER_VERSION},
        "domain": "enterprise-attack",
        "description": description,
        "techniques": techniques,
        "hideDisabled": False,
    }


def _techniques(items: Sequence[str]) -> list[str]:
    return sorted(i for i in items if i.startswith("T"))


def actor_layer(profile: Profile, attack_version: str) -> dict[str, Any]:
    """The techniques an actor's profile holds, scored 1."""
    techniques = [{"techniqueID": t, "score": 1, "enabled": True} for t in _techniques(list(profile.items))]
    layer = _layer(
        f"{profile.name} ({profile.actor_id})", "Techniques ATT&CK links to the group.", attack_version, techniques
    )
    layer["gradient"] = {"colors": ["#ffffff", "#e8453c"], "minValue": 0, "maxValue": 1}
    return layer


def overlap_layer(levels: Levels, profiles: Sequence[Profile], attack_version: str, top: int = 3) -> dict[str, Any]:
    """Seen techniques and the leading candidates' techniques; the score counts who has each (evidence counts 1)."""
    by_id = {p.actor_id: p for p in profiles}
    leaders = [(by_id[c.actor_id], c) for c in levels.attribution.candidates[:top] if c.actor_id in by_id]
    seen = set(_techniques([e.item_id for e in levels.evidence]))
    holders: dict[str, list[str]] = {t: ["evidence"] for t in seen}
    for profile, _ in leaders:
        for technique in _techniques(list(profile.items)):
            holders.setdefault(technique, []).append(profile.name)
    techniques = [
        {
            "techniqueID": t,
            "score": len(who),
            "comment": ("seen; " if t in seen else "not seen; ")
            + "held by "
            + ", ".join(w for w in who if w != "evidence"),
            "enabled": True,
            "metadata": [{"name": "held by", "value": ", ".join(who)}],
        }
        for t, who in sorted(holders.items())
    ]
    names = ", ".join(f"{p.name} {c.probability:.0%}" for p, c in leaders)
    layer = _layer(
        "Attribution: candidate overlap",
        f"Observed techniques against the leading candidates ({names}).",
        attack_version,
        techniques,
    )
    layer["gradient"] = {"colors": _OVERLAP_COLOURS, "minValue": 0, "maxValue": len(leaders) + 1}
    return layer
