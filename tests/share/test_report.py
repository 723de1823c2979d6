"""The investigation report: one document (JSON shape, ordered timeline, flows that add up) and its offline page."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

from heistwatch.attribute.evidence import findings_evidence
from heistwatch.attribute.knowledge import Attributor
from heistwatch.attribute.model import Evidence
from heistwatch.ingest.analyze import Analyzer
from heistwatch.ingest.text import document_from_string
from heistwatch.kb import BuildReport, Resolver, SQLiteStore
from heistwatch.model import Sighting
from heistwatch.share.report import CASH_OUT, REPORTED, CaseReport, build_case_report, format_amount
from heistwatch.share.report_html import render_report_html, sankey_flow
from heistwatch.trace import Seed, trace_case
from heistwatch.trace.case import CaseResult
from tests.trace.conftest import eth, graph_of

SCRIPT = "<script>alert(1)</script>"
LURE = "2026-03-02 09:14 (UTC+9): first LinkedIn message from a recruiter signing as " + SCRIPT + "."
REPORT_TEXT = f"""Incident at a test exchange

Timeline

{LURE}

2026-03-16 10:02: a Run key was added under HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\Upd
for persistence.

2026-03-16 10:03: PowerShell downloaded a second stage from hxxps://evil-docs[.]online/a.php on the engineer's host.

The backdoor sent the results to its command-and-control server over HTTPS.
"""
T0 = int(datetime(2026, 3, 20, 2, 41, tzinfo=UTC).timestamp())
NO_DECIMALS = {("eth", "ETH"): 0}  # the hand-made ledger counts whole units


def _case() -> CaseResult:
    """A theft into wallet `a` (then topped up with clean coins), fanned out to three wallets, paid to two services."""
    transfers = [
        eth("t0", T0, "hot", "a", 1_000),
        eth("c0", T0 + 5, "alice", "a", 500),
        eth("f1", T0 + 10, "a", "b1", 300),
        eth("f2", T0 + 20, "a", "b2", 300),
        eth("f3", T0 + 30, "a", "b3", 400),
        eth("d1", T0 + 100, "b1", "svc1", 300),
        eth("d2", T0 + 200, "b2", "svc2", 300),
        eth("d3", T0 + 300, "b3", "svc1", 400),
    ]
    return trace_case(graph_of(transfers, services=("svc1", "svc2")), [Seed("t0")])


def _sightings() -> list[Sighting]:
    return [
        Sighting(
            "indicator--1", "domain", "evil-docs.online", "EVIL-DOCS.ONLINE.", "logs/dns.jsonl", 42, "query",
            '{"query": "EVIL-DOCS.ONLINE.", "note": "' + SCRIPT + '"}',
            "2026-03-16T01:03:00Z", "2026-03-17T05:00:00Z", 3,
        ),
        Sighting(
            "indicator--2", "ipv4", "45.138.16.212", "45.138.16.212", "logs/proxy.jsonl", 7, "dst_ip", "{}", "yesterday"
        ),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def made(built_kb: BuildReport) -> Iterator[tuple[CaseReport, CaseResult]]:
    """A report built by the real ingest, attribution, resolution and trace code on a tiny case."""
    store = SQLiteStore(built_kb.path)
    try:
        analysis = Analyzer(store).analyze(document_from_string(REPORT_TEXT, "txt", "incident.txt"))
        evidence = findings_evidence(analysis.batch.findings, store, analysis.batch.report)
        evidence += [Evidence("T1566.003", "technique", "responders"), Evidence("T1547.001", "technique", "edr")]
        levels = Attributor(store).attribute(evidence, top=5)
        case = _case()
        report = build_case_report(
            "Test case",
            store,
            analysis=analysis,
            levels=levels,
            sightings=_sightings(),
            case=case,
            resolutions=[Resolver(store).resolve("CryptoCore")],
            decimals=NO_DECIMALS,
            now=datetime(2026, 4, 1, tzinfo=UTC),
        )
        yield report, case
    finally:
        store.close()


@pytest.fixture(scope="module")
def page(made: tuple[CaseReport, CaseResult]) -> str:
    return render_report_html(made[0])


class _Page(HTMLParser):
    """Every start tag with its attributes, and the text of each script block."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs)
            self.scripts.append((self._script, ""))

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None


def _parsed(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


def _figures(page: str) -> list[dict[str, Any]]:
    blocks = [text for attrs, text in _parsed(page).scripts if attrs.get("class") == "plotly-figure"]
    return [json.loads(text) for text in blocks]


def test_document_is_plain_json_with_every_section(made: tuple[CaseReport, CaseResult]) -> None:
    data = json.loads(json.dumps(made[0].to_dict()))
    assert set(data) == {
        "title", "generated", "report_title", "timeline", "attribution", "claims", "hunt", "flow", "sources", "rules",
        "problems",
    }  # fmt: skip
    assert data["generated"] == "2026-04-01T00:00:00Z"
    assert {"lanes", "events", "techniques"} <= set(data["timeline"])
    assert data["attribution"]["candidates"][0]["words"] in {c["words"] for c in data["attribution"]["candidates"]}
    assert data["claims"][0]["name"] == "CryptoCore" and data["claims"][0]["by_source"]
    assert data["hunt"][0]["location"] == "logs/dns.jsonl:42"
    flow = data["flow"]
    assert flow["policies"] == ["fifo", "haircut", "poison"]
    route = flow["assets"][0]["routes"][0]
    assert isinstance(route["amount"], str) and route["stages"] == ["fan-out"]
    assert all(isinstance(v, str) for row in flow["freeze"] for v in row["amounts"].values())


def test_timeline_runs_in_time_order_from_first_lure_to_last_cash_out(made: tuple[CaseReport, CaseResult]) -> None:
    events = made[0].timeline.events
    starts = [datetime.fromisoformat(e.start) for e in events]
    assert starts == sorted(starts)
    assert events[0].start == "2026-03-02T00:14:00Z"  # 09:14 at UTC+9
    assert events[0].lane == REPORTED and "LinkedIn" in events[0].title
    assert events[-1].lane == CASH_OUT and events[-1].title.startswith("last cash-out at svc-svc1")
    assert {"Persistence", "Hunt: sightings", "Trace: theft", "Trace: fan-out"} <= set(made[0].timeline.lanes)
    assert made[0].timeline.span == (events[0].start, events[-1].start)
    sighting = next(e for e in events if e.stage == "hunt")
    assert (sighting.start, sighting.end, sighting.where) == (
        "2026-03-16T01:03:00Z",
        "2026-03-17T05:00:00Z",
        "logs/dns.jsonl:42",
    )


def test_a_sighting_without_a_readable_time_is_reported_with_its_location(made: tuple[CaseReport, CaseResult]) -> None:
    report = made[0]
    assert [p for p in report.problems if p.startswith("logs/proxy.jsonl:7:")]
    assert len(report.hunt) == 2  # still listed among the findings, only left off the time axis
    assert not [e for e in report.timeline.events if e.where == "logs/proxy.jsonl:7"]


def test_sankey_flows_add_up_to_the_traced_amounts_under_every_policy(made: tuple[CaseReport, CaseResult]) -> None:
    report, case = made
    assert report.flow is not None
    flow = report.flow.assets[0]
    for result in (case.result, *case.compared):
        arrived: dict[str, int] = defaultdict(int)
        for arrival in result.arrivals:
            arrived[f"{arrival.label.service} ({arrival.label.category})"] += arrival.amount
        sankey = sankey_flow(flow, str(result.policy))
        into: dict[str, int] = defaultdict(int)
        for _, b, amount in sankey.links:
            into[sankey.labels[b]] += amount
        assert {k: into[k] for k in arrived} == dict(arrived)
        out_of_theft = sum(v for a, _, v in sankey.links if sankey.labels[a].endswith("(theft)"))
        assert out_of_theft == sum(arrived.values())
    # FIFO pays the stolen 1,000 out first; haircut taints every payment of `a` at 1,000 / 1,500
    amounts = {r.service: r.amounts for r in report.flow.freeze}
    assert amounts["svc-svc1"] == {"fifo": 700, "haircut": 700 * 2 // 3, "poison": 700}
    assert amounts["svc-svc2"] == {"fifo": 300, "haircut": 200, "poison": 300}


def test_freeze_table_matches_the_alerts(made: tuple[CaseReport, CaseResult]) -> None:
    report, case = made
    assert report.flow is not None
    rows = {(r.address, r.asset): r for r in report.flow.freeze}
    for alert in case.alerts:
        row = rows[(alert.address, alert.asset)]
        assert row.amounts == alert.amounts and row.first_tx == alert.first_tx and row.hops == alert.hops


def test_page_loads_nothing_from_the_network(page: str) -> None:
    parsed = _parsed(page)
    links = [v or "" for _, attrs in parsed.tags for k, v in attrs.items() if k in ("src", "href", "srcset", "action")]
    assert links and all(link.startswith("#") for link in links)
    assert not [t for t, attrs in parsed.tags if t == "link"]
    assert page.count(get_plotlyjs()) == 1  # the whole bundle inline, once
    assert "cdn.plot.ly" not in page.replace(get_plotlyjs(), "")


def test_values_are_escaped_in_tables_and_charts(page: str) -> None:
    assert SCRIPT not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the report's sentence and the hunt's log line
    timeline = next(f for f in _figures(page) if f["data"][0]["type"] == "scatter")
    hover = " ".join(t for trace in timeline["data"] for t in trace.get("hovertext") or [])
    assert "&lt;script&gt;" in hover and "<script>" not in hover


def test_page_parses_and_holds_the_three_kinds_of_chart(page: str, made: tuple[CaseReport, CaseResult]) -> None:
    parsed = _parsed(page)
    ids = {attrs.get("id") for _, attrs in parsed.tags}
    targets = [attrs.get("data-target") for attrs, _ in parsed.scripts if attrs.get("class") == "plotly-figure"]
    assert targets and set(targets) <= ids
    figures = _figures(page)
    kinds = {trace["type"] for figure in figures for trace in figure["data"]}
    assert kinds == {"scatter", "bar", "sankey"}
    sankey = next(f for f in figures if f["data"][0]["type"] == "sankey")
    fifo = next(t for t in sankey["data"] if t["name"] == "fifo")
    labels, links = fifo["node"]["label"], fifo["link"]
    into: dict[str, float] = defaultdict(float)
    for target, value in zip(links["target"], links["value"], strict=True):
        into[labels[target]] += value
    assert into["svc-svc1 (exchange)"] == 700 and into["svc-svc2 (exchange)"] == 300
    assert [b["label"] for b in sankey["layout"]["updatemenus"][0]["buttons"]] == [
        "fifo policy", "haircut policy", "poison policy"
    ]  # fmt: skip


def test_a_report_with_only_some_parts_still_renders(kb_store: SQLiteStore) -> None:
    report = build_case_report("Names only", kb_store, resolutions=[Resolver(kb_store).resolve("APT38")])
    page = render_report_html(report)
    assert report.flow is None and report.attribution is None and not report.timeline.events
    assert "No trace in this case." in page and "APT38" in page
    assert _figures(page) == []


@pytest.mark.parametrize(
    ("amount", "decimals", "asset", "shown"),
    [
        (41_250_000_000, 8, "BTC", "412.5 BTC"),
        (5_300 * 10**18, 18, "ETH", "5,300 ETH"),
        (1, 18, "ETH", "<0.000001 ETH"),
        (1_234, None, "XYZ", "1,234 XYZ base units"),
    ],
)
def test_amounts_read_as_people_write_them(amount: int, decimals: int | None, asset: str, shown: str) -> None:
    assert format_amount(amount, decimals, asset) == shown
