"""An actor's techniques as an ATT&CK-style matrix: one column per tactic in kill-chain order, heat by how many.

A technique sits under each tactic ATT&CK files it under, so one technique can appear in two columns; the heat
of a column is its share of the busiest column, which is what the page colours by.
"""

from __future__ import annotations

from dataclasses import dataclass

from heistwatch.model import ObjectType
from heistwatch.web.view import ReaderView

NO_TACTIC = "(no tactic)"


@dataclass(frozen=True)
class MatrixCell:
    """A technique the actor uses: its ATT&CK id, name, whether it is a sub-technique, and who says so."""

    technique_id: str
    name: str
    subtechnique: bool
    source: str


@dataclass(frozen=True)
class TacticColumn:
    """One tactic, its techniques used by the actor, and its heat (0 to 1)."""

    tactic: str
    shortname: str
    cells: tuple[MatrixCell, ...]
    heat: float


def technique_matrix(view: ReaderView, actor_id: str) -> tuple[TacticColumn, ...]:
    """The techniques the actor record uses, as the view's user may see them, by tactic in kill-chain order."""
    uses = view.relationships(from_ids=[actor_id], type="uses")
    techniques = [o for o in view.objects(ids={r.target_ref for r in uses}) if o.type is ObjectType.ATTACK_PATTERN]
    said_by = {r.target_ref: r.source for r in uses}
    tactics = view.objects(type=ObjectType.TACTIC)
    names = {str(t.attrs.get("shortname")): t.name for t in tactics}
    order = {str(t.attrs.get("shortname")): int(t.attrs.get("order", 99)) for t in tactics}
    columns: dict[str, list[MatrixCell]] = {}
    for t in techniques:
        cell = MatrixCell(t.external_id or t.name, t.name, "." in (t.external_id or ""), said_by[t.id])
        for short in t.attrs.get("tactics") or [NO_TACTIC]:
            columns.setdefault(str(short), []).append(cell)
    busiest = max((len(c) for c in columns.values()), default=1)
    return tuple(
        TacticColumn(
            names.get(short, short), short, tuple(sorted(cells, key=lambda c: c.technique_id)), len(cells) / busiest
        )
        for short, cells in sorted(columns.items(), key=lambda kv: (order.get(kv[0], 99), kv[0]))
    )
