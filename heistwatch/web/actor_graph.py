"""The neighbourhood of one actor: the actors and campaigns sources tie to it, its malware and tools, and indicators.

Built from the knowledge base's claims (alias and attribution claims, campaigns attributed to the actor), `uses`
and `indicates` relationships, and the reports that name the actor, as one user may see them. The second ring
(what the actor's campaigns use, what indicates its malware) is included, capped so a group with hundreds of
links still draws. Drawn with Plotly as a network: positions from networkx's spring layout, seeded, so the
same graph always draws the same way.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

import networkx as nx  # type: ignore[import-untyped]
import plotly.graph_objects as go  # type: ignore[import-untyped]

from heistwatch.model import KBObject, ObjectType
from heistwatch.share.feeds import ActorLinks
from heistwatch.web.view import ReaderView

NODE_KINDS = ("actor", "campaign", "malware", "tool", "indicator")
_COLOURS = {
    "actor": "#b91c1c",
    "campaign": "#c2410c",
    "malware": "#7c3aed",
    "tool": "#0369a1",
    "indicator": "#0f766e",
}
_KIND_OF = {
    ObjectType.INTRUSION_SET: "actor",
    ObjectType.CAMPAIGN: "campaign",
    ObjectType.MALWARE: "malware",
    ObjectType.TOOL: "tool",
}
MAX_PER_RING = 60  # links kept per node of the first ring, and in all for the second


@dataclass(frozen=True)
class Node:
    """A record on the graph: its id, kind, name, source, effective marking and the page that shows it."""

    id: str
    kind: str
    name: str
    source: str
    tlp: str
    url: str


@dataclass(frozen=True)
class Edge:
    """A claim or relationship between two nodes, and the source that makes it."""

    source: str
    target: str
    relation: str
    by: str
    likelihood: str | None = None


@dataclass(frozen=True)
class ActorGraph:
    """The nodes and edges around one actor, and how many links were left out to keep it readable."""

    center: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    left_out: int


def actor_graph(view: ReaderView, actor_id: str) -> ActorGraph:
    """The actor's neighbourhood as `view`'s user may see it; an empty graph if they may not see the actor."""
    center = view.get(actor_id)
    if center is None:
        return ActorGraph(actor_id, (), (), 0)
    nodes: dict[str, Node] = {center.id: _node(center)}
    edges: list[Edge] = []
    left_out = 0

    def keep(objects: Iterable[KBObject]) -> set[str]:
        kept = set()
        for obj in objects:
            kind = _KIND_OF.get(obj.type)
            if kind is not None:
                nodes.setdefault(obj.id, _node(obj))
                kept.add(obj.id)
        return kept

    claims = view.claims(about=[actor_id])
    others = keep(view.objects(ids={c.object_id for c in claims} | {c.subject_id for c in claims}))
    for c in claims[:MAX_PER_RING]:
        if c.subject_id in others | {actor_id} and c.object_id in others | {actor_id}:
            edges.append(Edge(c.subject_id, c.object_id, c.relation.value, c.source, _likelihood(c.likelihood)))
    left_out += max(0, len(claims) - MAX_PER_RING)

    uses = view.relationships(from_ids=[actor_id], type="uses")
    used = keep(view.objects(ids={r.target_ref for r in uses}))
    shown = [r for r in uses if r.target_ref in used]
    edges += [Edge(r.source_ref, r.target_ref, "uses", r.source) for r in shown[:MAX_PER_RING]]
    left_out += max(0, len(shown) - MAX_PER_RING)

    campaigns = {n.id for n in nodes.values() if n.kind == "campaign"}
    ring = campaigns | {n.id for n in nodes.values() if n.kind in ("malware", "tool")}
    second = view.relationships(from_ids=campaigns, type="uses") if campaigns else []
    targets = keep(view.objects(ids={r.target_ref for r in second})) if second else set()
    indicates = view.relationships(to_ids=[actor_id, *ring], type="indicates")
    indicators = {i.id: i for i in view.indicators_by_id({r.source_ref for r in indicates})}
    sources, keys = _named_by_reports(view, actor_id)
    named = {i.id: i for i in view.indicators_by_value(keys) if i.source in sources and i.id not in indicators}
    indicators.update(named)
    outer = [Edge(r.source_ref, r.target_ref, "uses", r.source) for r in second if r.target_ref in targets]
    outer += [
        Edge(r.source_ref, r.target_ref, "indicates", r.source)
        for r in indicates
        if r.source_ref in indicators and r.target_ref in nodes
    ]
    outer += [Edge(i.id, actor_id, "given by a report naming", i.source) for i in named.values()]
    edges += outer[:MAX_PER_RING]
    left_out += max(0, len(outer) - MAX_PER_RING)
    for i in indicators.values():
        url = f"/ui/indicators?q={quote(i.value)}"
        nodes.setdefault(i.id, Node(i.id, "indicator", f"{i.kind} {i.value}", i.source, i.tlp.value, url))
    linked = {e.source for e in edges} | {e.target for e in edges} | {actor_id}
    return ActorGraph(actor_id, tuple(n for n in nodes.values() if n.id in linked), tuple(edges), left_out)


def _named_by_reports(view: ReaderView, actor_id: str) -> tuple[set[str], list[tuple[str, str]]]:
    """The sources of the readable reports that name the actor, and the (kind, value)s those reports give."""
    links = ActorLinks(view)
    reports = [r for r in view.reports() if actor_id in links.by_source.get(r.source, {})]
    keys = [(f.kind, f.value) for r in reports for f in view.findings(r.id) if f.role == "indicator"]
    return {r.source for r in reports}, keys


def _node(obj: KBObject) -> Node:
    kind = _KIND_OF[obj.type]
    url = f"/ui/actors/{obj.id}" if kind == "actor" else ""
    return Node(obj.id, kind, obj.name, obj.source, obj.tlp.value, url)


def _likelihood(value: object) -> str | None:
    return getattr(value, "value", None)


def graph_figure(graph: ActorGraph) -> go.Figure:
    """The graph as an interactive Plotly network: hover for details, click an actor or indicator to open it."""
    g = nx.Graph()
    g.add_nodes_from(n.id for n in graph.nodes)
    g.add_edges_from((e.source, e.target) for e in graph.edges)
    fixed = {graph.center: (0.0, 0.0)} if graph.center in g else None
    pos = nx.spring_layout(g, seed=7, pos=fixed, fixed=list(fixed) if fixed else None) if len(g) else {}
    figure = go.Figure()
    xs: list[float | None] = []
    ys: list[float | None] = []
    for e in graph.edges:
        xs += [pos[e.source][0], pos[e.target][0], None]
        ys += [pos[e.source][1], pos[e.target][1], None]
    figure.add_trace(
        go.Scatter(x=xs, y=ys, mode="lines", line={"width": 1, "color": "#94a3b8"}, hoverinfo="skip", showlegend=False)
    )
    figure.add_trace(
        go.Scatter(
            x=[(pos[e.source][0] + pos[e.target][0]) / 2 for e in graph.edges],
            y=[(pos[e.source][1] + pos[e.target][1]) / 2 for e in graph.edges],
            mode="markers",
            marker={"size": 6, "color": "#cbd5e1"},
            hovertext=[_esc(_edge_text(e)) for e in graph.edges],
            hoverinfo="text",
            name="claims and links",
        )
    )
    for kind in NODE_KINDS:
        members = [n for n in graph.nodes if n.kind == kind]
        if not members:
            continue
        figure.add_trace(
            go.Scatter(
                x=[pos[n.id][0] for n in members],
                y=[pos[n.id][1] for n in members],
                mode="markers+text",
                name=kind,
                text=[_esc(_short(n.name)) for n in members],
                textposition="top center",
                hovertext=[_esc(f"{n.name} · {n.kind} · {n.source} · TLP:{n.tlp.upper()}") for n in members],
                hoverinfo="text",
                customdata=[n.url for n in members],
                marker={
                    "size": [22 if n.id == graph.center else 13 for n in members],
                    "color": _COLOURS[kind],
                    "line": {"width": 1, "color": "white"},
                },
            )
        )
    figure.update_layout(
        height=640,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"visible": False},
        yaxis={"visible": False},
        legend={"orientation": "h", "y": 1.0, "yanchor": "bottom"},
        plot_bgcolor="#f8fafc",
        hovermode="closest",
    )
    return figure


def _edge_text(edge: Edge) -> str:
    said = f" ({edge.likelihood})" if edge.likelihood else ""
    return f"{edge.relation}{said} · per {edge.by}"


def _short(name: str) -> str:
    return name if len(name) <= 28 else name[:27] + "…"


def _esc(text: str) -> str:
    """Plotly reads chart text as a small subset of HTML: every value is escaped first."""
    return html.escape(text, quote=False)
