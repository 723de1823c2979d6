"""The investigation report as one self-contained HTML file: Jinja2 page, Plotly charts, every script and style inline.

Plotly's JavaScript ships inside the `plotly` package and is written into the page once, so the file works opened
from disk with no network. Figures travel as JSON in `<script type="application/json">` blocks with `<`, `>` and
`&` written as JSON escapes, so no value can close the block; every text shown in a chart is HTML-escaped first,
because Plotly reads chart text as a small subset of HTML.
"""

from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import dataclass
from itertools import groupby, pairwise

import plotly.graph_objects as go  # type: ignore[import-untyped]
import plotly.io as pio  # type: ignore[import-untyped]
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

from heistwatch.share.report import AssetFlow, AttributionView, CaseReport, Timeline, format_amount

_STAGE_COLOURS = {"report": "#c2410c", "hunt": "#7c3aed", "trace": "#0369a1"}
_CATEGORY_COLOURS = {
    "exchange": "#2563eb",
    "otc": "#0d9488",
    "mixing_service": "#6b7280",
    "coinjoin": "#6b7280",
    "bridge": "#a16207",
}
_SOURCE_COLOUR, _STAGE_COLOUR, _OTHER_COLOUR = "#dc2626", "#ea580c", "#64748b"
_WORD_COLOURS = {
    "almost certain": "#7f1d1d",
    "very likely": "#b91c1c",
    "likely": "#ea580c",
    "roughly even chance": "#ca8a04",
    "unlikely": "#65a30d",
    "very unlikely": "#0d9488",
    "almost no chance": "#64748b",
}
_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


@dataclass(frozen=True)
class SankeyFlow:
    """One asset's flow under one policy as Sankey nodes and links; link amounts are exact base units."""

    labels: tuple[str, ...]
    colours: tuple[str, ...]
    links: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class Figure:
    """A chart for the page: where it goes, a caption, and its Plotly JSON (safe inside a script block)."""

    id: str
    caption: str
    json: Markup


def template_environment(folder: str) -> Environment:
    """Jinja templates from a folder of the package: autoescaped, strict about missing values, with the amount and
    percent filters the report and the web pages share."""
    environment = Environment(
        loader=PackageLoader("heistwatch", folder),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["amount"] = format_amount
    environment.filters["percent"] = lambda p: f"{p:.1%}"
    return environment


_environment = template_environment("data/report")


def render_report_html(report: CaseReport) -> str:
    """The whole report as one HTML page that needs nothing but a browser."""
    template = _environment.get_template("report.html.j2")
    return template.render(
        report=report,
        figures=report_figures(report),
        tactics=[(tactic, list(items)) for tactic, items in groupby(report.timeline.techniques, lambda t: t.tactic)],
        decimals={(f.chain, f.asset): f.decimals for f in report.flow.assets} if report.flow else {},
        plotly_js=Markup(get_plotlyjs().replace("</script", "<\\/script")),  # the package's bundle, once
    )


def report_figures(report: CaseReport) -> dict[str, list[Figure]]:
    """Every chart of the report, by section: timeline, attribution and fund flow (one Sankey per asset)."""
    figures: dict[str, list[Figure]] = {"timeline": [], "attribution": [], "flow": []}
    if report.timeline.events:
        figures["timeline"].append(
            _figure("fig-timeline", "Kill chain, first lure to last cash-out", _timeline(report.timeline))
        )
    if report.attribution and report.attribution.candidates:
        figures["attribution"].append(
            _figure("fig-probability", "Candidate actors", _probabilities(report.attribution))
        )
    for n, flow in enumerate(report.flow.assets if report.flow else ()):
        sankey = _sankey(flow, report.flow.policies if report.flow else ())
        if sankey is not None:
            caption = f"{flow.asset} on {flow.chain}: from the theft to the services reached"
            figures["flow"].append(_figure(f"fig-flow-{n}", caption, sankey))
    return figures


def sankey_flow(flow: AssetFlow, policy: str) -> SankeyFlow:
    """Nodes (sources, laundering stages by depth, services) and summed links of one asset's routes under `policy`.

    A stage is a node per depth, so a route that swaps, fans out and swaps again draws no cycle.
    """
    nodes: dict[tuple[str, ...], int] = {}
    labels: list[str] = []
    colours: list[str] = []
    sums: dict[tuple[int, int], int] = defaultdict(int)

    def node(key: tuple[str, ...], label: str, colour: str) -> int:
        if key not in nodes:
            nodes[key] = len(labels)
            labels.append(label)
            colours.append(colour)
        return nodes[key]

    for route in (r for r in flow.routes if r.policy == policy):
        path = [node(("source", route.source), f"{route.source} (theft)", _SOURCE_COLOUR)]
        path += [node(("stage", str(d), s), s, _STAGE_COLOUR) for d, s in enumerate(route.stages)]
        colour = _CATEGORY_COLOURS.get(route.category, _OTHER_COLOUR)
        path.append(node(("service", route.service), f"{route.service} ({route.category})", colour))
        for a, b in pairwise(path):
            sums[(a, b)] += route.amount
    return SankeyFlow(tuple(labels), tuple(colours), tuple((a, b, v) for (a, b), v in sums.items()))


def _figure(fig_id: str, caption: str, figure: go.Figure) -> Figure:
    text = pio.to_json(figure, validate=True, pretty=False)
    return Figure(fig_id, caption, Markup(str(text).translate(_JSON_ESCAPES)))


def _timeline(timeline: Timeline) -> go.Figure:
    """Events as points on kill-chain lanes, spans (sightings seen over time, laundering stages) as bars."""
    figure = go.Figure()
    for stage, colour in _STAGE_COLOURS.items():
        events = [e for e in timeline.events if e.stage == stage]
        if not events:
            continue
        hover = [
            "<br>".join(
                _esc(x) for x in (e.title, f"{e.start}" + (f" → {e.end}" if e.end else ""), e.detail, e.where) if x
            )
            for e in events
        ]
        spans = [e for e in events if e.end]
        xs: list[str | None] = [x for e in spans for x in (e.start, e.end, None)]
        ys: list[str | None] = [y for e in spans for y in (e.lane, e.lane, None)]
        if spans:
            figure.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    line={"width": 10, "color": colour},
                    opacity=0.45,
                    hoverinfo="skip",
                    showlegend=False,
                )
            )
        figure.add_trace(
            go.Scatter(
                x=[e.start for e in events],
                y=[e.lane for e in events],
                mode="markers",
                name=stage,
                marker={"size": 11, "color": colour, "line": {"width": 1, "color": "white"}},
                hovertext=hover,
                hoverinfo="text",
            )
        )
    figure.update_layout(
        height=140 + 42 * len(timeline.lanes),
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        yaxis={
            "categoryorder": "array",
            "categoryarray": list(timeline.lanes),
            "autorange": "reversed",
            "automargin": True,
        },
        xaxis={"type": "date", "rangeslider": {"visible": True}, "title": "time (UTC)"},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
        plot_bgcolor="#f8fafc",
    )
    return figure


def _probabilities(attribution: AttributionView) -> go.Figure:
    """Candidates and the unknown actor as bars, coloured and labelled by their ICD 203 words."""
    names = [f"{c.name} ({c.actor_id})" for c in attribution.candidates] + ["unknown / new actor"]
    values = [c.probability for c in attribution.candidates] + [attribution.unknown_probability]
    words = [c.words for c in attribution.candidates] + [""]
    figure = go.Figure(
        go.Bar(
            x=values,
            y=[_esc(n) for n in names],
            orientation="h",
            text=[f"{v:.1%} {w}".strip() for v, w in zip(values, words, strict=True)],
            textposition="auto",
            marker={"color": [_WORD_COLOURS.get(w, _OTHER_COLOUR) for w in words]},
            hovertemplate="%{y}: %{x:.1%}<extra></extra>",
        )
    )
    figure.update_layout(
        height=130 + 34 * len(names),
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"range": [0, 1], "tickformat": ".0%", "title": "probability"},
        yaxis={"autorange": "reversed", "automargin": True},
        plot_bgcolor="#f8fafc",
    )
    return figure


def _sankey(flow: AssetFlow, policies: tuple[str, ...]) -> go.Figure | None:
    """One Sankey trace per policy that has routes in this asset; buttons switch between them."""
    shown = [p for p in policies if any(r.policy == p for r in flow.routes)]
    if not shown:
        return None
    scale = 10 ** (flow.decimals or 0)
    figure = go.Figure()
    for n, policy in enumerate(shown):
        sankey = sankey_flow(flow, policy)
        figure.add_trace(
            go.Sankey(
                name=policy,
                visible=n == 0,
                valueformat=",.6~f",
                valuesuffix=f" {_esc(flow.asset)}",
                node={"label": [_esc(x) for x in sankey.labels], "color": list(sankey.colours), "pad": 14},
                link={
                    "source": [a for a, _, _ in sankey.links],
                    "target": [b for _, b, _ in sankey.links],
                    "value": [v / scale for _, _, v in sankey.links],
                    "customdata": [_esc(_link_text(sankey, link, flow)) for link in sankey.links],
                    "hovertemplate": "%{customdata}<extra></extra>",
                    "color": [_fade(sankey.colours[b]) for _, b, _ in sankey.links],
                },
            )
        )
    buttons = [
        {"label": f"{p} policy", "method": "update", "args": [{"visible": [q == p for q in shown]}]} for p in shown
    ]
    figure.update_layout(
        height=520,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        updatemenus=[
            {"type": "buttons", "direction": "right", "x": 0, "y": 1.08, "xanchor": "left", "buttons": buttons}
        ],
    )
    return figure


def _link_text(sankey: SankeyFlow, link: tuple[int, int, int], flow: AssetFlow) -> str:
    a, b, amount = link
    return f"{sankey.labels[a]} → {sankey.labels[b]}: {format_amount(amount, flow.decimals, flow.asset)}"


def _fade(colour: str) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},0.35)"


def _esc(text: str) -> str:
    return html.escape(text, quote=False)
