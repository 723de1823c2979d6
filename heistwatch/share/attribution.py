"""An attribution as text for analysts and as plain JSON: candidates, levels, and the evidence for and against."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from heistwatch.attribute.knowledge import Levels
from heistwatch.attribute.model import Candidate, Contribution

_SHOWN = 3  # levels entries shown in text


def attribution_dict(levels: Levels) -> dict[str, Any]:
    """JSON-ready form of an attribution at every level, with each top candidate's explanation."""
    result = levels.attribution
    return {
        "abstained": result.abstained,
        "reason": result.reason,
        "confidence": result.confidence,
        "unknown_actor_probability": result.unknown_probability,
        "candidates": [_candidate(c, levels.item_names) for c in result.candidates],
        "levels": {"group": levels.groups, "umbrella": levels.umbrellas, "country": levels.countries},
        "evidence": [vars(e) for e in levels.evidence],
        "ignored": list(result.ignored),
    }


def _candidate(candidate: Candidate, names: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "actor_id": candidate.actor_id,
        "name": candidate.name,
        "probability": candidate.probability,
        "words": candidate.words.words,
        "log_lr": candidate.log_lr,
    }
    if candidate.explanation is not None:
        ex = candidate.explanation
        data["explanation"] = {
            "raises": [_contribution(c, names) for c in ex.raises],
            "lowers": [_contribution(c, names) for c in ex.lowers],
            "expected_not_seen": [_contribution(c, names) for c in ex.expected_not_seen],
            "same_origin": {k: list(v) for k, v in ex.same_origin.items()},
        }
    return data


def _contribution(c: Contribution, names: dict[str, str]) -> dict[str, Any]:
    return {"item": c.item_id, "name": item_name(c.item_id, names), "weight": round(c.weight, 4)}


def item_name(item_id: str, names: Mapping[str, str]) -> str:
    """An evidence item's display name: its known name, else the id without its kind prefix."""
    return names.get(item_id) or item_id.partition(":")[2] or item_id


def render_attribution(levels: Levels) -> str:
    """The ranked candidates with ICD 203 words, the levels, and why the leaders lead."""
    result = levels.attribution
    lines = []
    if result.abstained:
        lines.append(f"No judgement: {result.reason}.")
    lines.append(
        f"Analytic confidence: {result.confidence}; unknown / new actor: {result.unknown_probability:.1%}"
        f" ({len(levels.evidence)} evidence items, {len(result.ignored)} not in any profile)"
    )
    lines.append("")
    for rank, c in enumerate(result.candidates, 1):
        lines.append(
            f"{rank:>2}. {c.name} ({c.actor_id})  {c.probability:6.1%}  {c.words.words}  log-LR {c.log_lr:+.2f}"
        )
    for level, values in (("group", levels.groups), ("umbrella", levels.umbrellas), ("country", levels.countries)):
        shown = list(values.items())[:_SHOWN]
        lines.append(f"{level:>9}: " + "; ".join(f"{label} {p:.1%}" for label, p in shown))
    for c in result.candidates:
        if c.explanation is not None:
            lines += ["", f"Why {c.name}:", *_why(c, levels.item_names)]
    return "\n".join(lines)


def _why(candidate: Candidate, names: dict[str, str]) -> list[str]:
    assert candidate.explanation is not None
    ex = candidate.explanation

    def listed(items: tuple[Contribution, ...]) -> str:
        return ", ".join(f"{item_name(c.item_id, names)} ({c.weight:+.2f})" for c in items) or "nothing"

    lines = [
        f"  raises:   {listed(ex.raises)}",
        f"  lowers:   {listed(ex.lowers)}",
        f"  expected, not seen: {listed(ex.expected_not_seen)}",
    ]
    lines += [f"  counted once (same origin {origin}): {', '.join(items)}" for origin, items in ex.same_origin.items()]
    return lines
