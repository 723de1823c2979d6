"""The web UI in Debian's Chromium (headless, driven by Playwright) against the real server on a local port.

Load a case through the upload form, open the fund-flow and actor graphs, search an indicator, download a STIX
export. Screenshots go to test-artifacts/screenshots/. These tests fail (never skip) when Chromium or Playwright
is missing: run scripts/install_chromium.sh first.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import stix2
import uvicorn
from stix2validator import ValidationOptions, validate_string

from heistwatch.api import create_app
from heistwatch.api.auth import Role, TokenStore
from heistwatch.model import TLP
from tests.web.conftest import build_web_kb, small_case

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

try:
    from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright
except ImportError:  # pragma: no cover - reported by the fixture as a failure
    sync_playwright = None  # type: ignore[assignment]


@dataclass
class Site:
    """The running server's address, the analyst's name and token, and a case file to load."""

    url: str
    user: str
    token: str
    case_file: Path
    errors: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """uvicorn serving the app on a free loopback port, with an analyst's token; stopped after the module."""
    root = tmp_path_factory.mktemp("site")
    kb = build_web_kb(root / "kb.sqlite")
    tokens = TokenStore(root / "tokens.sqlite")
    token = tokens.add("ana", Role.ANALYST, TLP.AMBER)
    tokens.close()
    case_file = root / "report.json"
    case_file.write_text(json.dumps(small_case(build_web_kb(root / "case-kb.sqlite")).to_dict()), "utf-8")
    port = _free_port()
    config = uvicorn.Config(create_app(kb, root / "tokens.sqlite"), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the server did not start")
        time.sleep(0.05)
    yield Site(f"http://127.0.0.1:{port}", "ana", token, case_file)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless; a failure (not a skip) when it or Playwright is missing."""
    if sync_playwright is None:
        pytest.fail("Playwright is not installed: pip install -e '.[dev]'")
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install_chromium.sh (Debian's chromium package)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    """A logged-in tab (Basic credentials: name and token) that records console errors and failed requests."""
    context = browser.new_context(
        base_url=site.url,
        http_credentials={"username": site.user, "password": site.token},
        accept_downloads=True,
        viewport={"width": 1400, "height": 1000},
    )
    tab = context.new_page()
    errors: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    tab.on("console", console)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert errors == [], errors  # no script error and no Content-Security-Policy violation


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_load_a_case_and_see_its_figures_and_fund_flow(page: Page, site: Site) -> None:
    page.goto("/ui/cases")
    page.set_input_files("#case-upload input[name=report]", str(site.case_file))
    page.click("#case-upload button[type=submit]")
    page.wait_for_url("**/ui/cases/case--*")
    assert page.locator("h1").inner_text().startswith("Case <img src=x onerror=alert(1)>")  # shown as text
    page.wait_for_selector("#fig-timeline.drawn")
    page.wait_for_selector("#fig-flow-0.drawn")
    assert page.locator("#fig-flow-0 .sankey-node").count() >= 4  # theft, fan-out, two services
    shot(page, "case")
    page.click("text=Fund-flow graph")
    page.wait_for_url("**/ui/graph?case=*")
    page.wait_for_selector("#case-flow .chart.drawn")
    labels = page.locator("#case-flow .sankey-node text").all_text_contents()
    assert any("svc-svc1" in t for t in labels) and any("svc-svc2" in t for t in labels)
    shot(page, "graph-fund-flow")
    page.goto("/ui/cases")
    assert page.locator("#cases tbody tr").count() == 1


def test_open_an_actors_graph_and_follow_a_node(page: Page) -> None:
    page.goto("/ui/actors")
    page.click("#actors >> text=CryptoCore")
    page.wait_for_selector("#technique-matrix")
    assert "T1566.001" in page.locator("#technique-matrix").inner_text()
    page.click("text=Graph")
    page.wait_for_selector("#fig-network.drawn")
    drawn = page.locator("#fig-network .scatterlayer text").all_text_contents()
    assert {"CryptoCore", "Lazarus Group", "domain evil.example"} <= set(drawn)
    assert "CageyChameleon" not in drawn  # AMBER+STRICT malware; the analyst is cleared for AMBER only
    shot(page, "graph-actor")
    point = page.locator("#fig-network .scatterlayer .trace.scatter .points path").nth(-1)
    point.click(force=True)  # the last node trace holds the indicator: a click opens its search
    page.wait_for_url("**/ui/indicators?q=evil.example")


def test_search_an_indicator(page: Page) -> None:
    page.goto("/ui")
    page.fill("header input[name=q]", "EXAMPLE")
    page.press("header input[name=q]", "Enter")
    page.wait_for_url("**/ui/indicators?q=EXAMPLE")
    values = set(page.locator("#indicators code.value").all_inner_texts())
    assert {"evil.example", "amber.example", "green.example", "clear.example"} <= values
    assert "red.example" not in values and "amber-strict.example" not in values
    page.select_option("#indicator-search select[name=kind]", "domain")
    page.fill("#indicator-search input[name=q]", "evil")
    page.click("#indicator-search button[type=submit]")
    page.wait_for_url("**kind=domain**")
    assert page.locator("#indicators code.value").all_inner_texts() == ["evil.example"]
    shot(page, "indicator-search")


def test_download_an_actors_stix_export(page: Page, tmp_path: Path) -> None:
    page.goto("/ui/actors?q=cryptocore")
    page.click("#actors >> text=CryptoCore")
    with page.expect_download() as info:
        page.click("#export-stix")
    download = info.value
    assert download.suggested_filename == "CryptoCore.stix.json"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    text = saved.read_text("utf-8")
    assert validate_string(text, ValidationOptions(strict=False)).is_valid
    bundle = stix2.parse(text, allow_custom=True)
    assert "CryptoCore" in {getattr(o, "name", None) for o in bundle.objects}
    shot(page, "actor")
