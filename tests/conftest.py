"""Shared fixtures: a small hand-made batch, and one knowledge base built from the packaged data per session."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from heistwatch.kb import SQLiteStore, build_knowledge_base
from heistwatch.kb.build import BuildReport
from heistwatch.model import (
    TLP,
    Claim,
    Finding,
    ImportBatch,
    KBObject,
    Likelihood,
    ObjectType,
    Relation,
    Relationship,
    Report,
    ReportBatch,
    Source,
    derive_id,
    make_indicator,
)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Compiled caches (hunt logs) go to a folder of the test session, never to the user's ~/.cache."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if before is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = before


def sample_batch() -> ImportBatch:
    """Two sources, an actor with aliases, a campaign, a technique, malware, a country, claims and links."""
    vendor = Source(key="vendor-a", name="Vendor A", version="2", date="2021-03-01", url="https://vendor-a.example")
    pub = Source(key="publisher-b", name="Publisher B")
    actor = KBObject(
        id=derive_id("intrusion-set", "t", "cryptocore"),
        type=ObjectType.INTRUSION_SET,
        name="CryptoCore",
        source="vendor-a",
        aliases=("Dangerous Password", "Leery Turtle"),
        description="Targets exchanges.",
        external_id="VA-1",
        reference="https://vendor-a.example/cryptocore",
        confidence=70,
        attrs={"country": "KP", "sectors": ["finance"]},
    )
    umbrella = KBObject(
        id=derive_id("intrusion-set", "t", "lazarus"),
        type=ObjectType.INTRUSION_SET,
        name="Lazarus Group",
        source="publisher-b",
        tlp=TLP.GREEN,
    )
    technique = KBObject(
        id=derive_id("attack-pattern", "t", "T1566.001"),
        type=ObjectType.ATTACK_PATTERN,
        name="Spearphishing Attachment",
        source="vendor-a",
        external_id="T1566.001",
        attrs={"tactics": ["initial-access"], "parent": "T1566"},
    )
    malware = KBObject(
        id=derive_id("malware", "t", "cageychameleon"),
        type=ObjectType.MALWARE,
        name="CageyChameleon",
        source="vendor-a",
        tlp=TLP.AMBER_STRICT,
    )
    country = KBObject(
        id=derive_id("location", "t", "kp"),
        type=ObjectType.LOCATION,
        name="KP",
        source="publisher-b",
        attrs={"country": "KP"},
    )
    claims = (
        Claim(
            id=derive_id("relationship", "t", "c1"),
            subject_id=actor.id,
            relation=Relation.ATTRIBUTED_TO,
            object_id=umbrella.id,
            source="publisher-b",
            likelihood=Likelihood.LIKELY,
            said="medium-high likelihood",
            date="2021-03",
            reference="https://publisher-b.example/r",
            title="Report",
            note="Malware overlap.",
        ),
        Claim(
            id=derive_id("relationship", "t", "c2"),
            subject_id=umbrella.id,
            relation=Relation.ATTRIBUTED_TO,
            object_id=country.id,
            source="publisher-b",
            likelihood=Likelihood.ALMOST_CERTAIN,
            tlp=TLP.RED,
        ),
    )
    indicator = make_indicator(
        "domain",
        "Evil.Example.",
        source="vendor-a",
        confidence=80,
        first_seen="2020-01-01T00:00:00.000Z",
        reference="https://vendor-a.example/iocs",
    )
    relationships = (
        Relationship(
            id=derive_id("relationship", "t", "r1"),
            type="uses",
            source_ref=actor.id,
            target_ref=technique.id,
            source="vendor-a",
            confidence=90,
            description="LNK lures.",
        ),
        Relationship(
            id=derive_id("relationship", "t", "r2"),
            type="uses",
            source_ref=actor.id,
            target_ref=malware.id,
            source="vendor-a",
        ),
        Relationship(
            id=derive_id("relationship", "t", "r3"),
            type="indicates",
            source_ref=indicator.id,
            target_ref=actor.id,
            source="vendor-a",
            reference="https://vendor-a.example/iocs",
        ),
    )
    return ImportBatch(
        sources=(vendor, pub),
        objects=(actor, umbrella, technique, malware, country),
        claims=claims,
        relationships=relationships,
        indicators=(indicator,),
    )


@pytest.fixture(scope="session")
def built_kb(tmp_path_factory: pytest.TempPathFactory) -> BuildReport:
    """The knowledge base built from the packaged open data and claims pack, once per test session."""
    return build_knowledge_base(tmp_path_factory.mktemp("kb") / "kb.sqlite")


@pytest.fixture
def kb_store(built_kb: BuildReport) -> Iterator[SQLiteStore]:
    store = SQLiteStore(built_kb.path)
    yield store
    store.close()


@pytest.fixture
def kb_copy(built_kb: BuildReport, tmp_path: Path) -> Path:
    """A private copy of the built knowledge base, for tests that write to it."""
    return Path(shutil.copy(built_kb.path, tmp_path / "kb.sqlite"))


@pytest.fixture
def tmp_kb(tmp_path: Path) -> Path:
    return tmp_path / "kb.sqlite"


def report_batch(ingested: str, values: tuple[str, ...]) -> ReportBatch:
    """A one-report batch with a domain indicator and finding per value."""
    source = Source(key="report-abc", name="A report")
    report = Report(
        id=derive_id("report", "abc"),
        sha256="abc",
        name="r.txt",
        title="A report",
        format="txt",
        chars=99,
        ingested=ingested,
        source=source.key,
    )
    indicators = tuple(make_indicator("domain", v, source=source.key) for v in values)
    findings = tuple(
        Finding(
            id=derive_id("finding", "abc", v),
            report_id=report.id,
            kind="domain",
            value=v,
            role="indicator",
            reason="narrative",
            start=i * 10,
            end=i * 10 + 5,
            sentence_start=0,
            sentence_end=50,
            object_ids=("x--1",),
            score=0.5,
        )
        for i, v in enumerate(values)
    )
    return ReportBatch(source=source, report=report, findings=findings, indicators=indicators)
