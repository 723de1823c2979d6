"""The end-to-end demo investigation on the embedded store (grows stage by stage).

Today: build the knowledge base from the packaged open data, resolve the case's names across sources,
and write the resolutions (text and JSON) and the case's STIX 2.1 bundle, checked by stix2-validator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from stix2validator import ValidationOptions, validate_parsed_json

from heistwatch.kb import BuildReport, Resolver, SQLiteStore, build_knowledge_base
from heistwatch.share.stix import export_bundle
from heistwatch.share.text import render_resolution

# The names vendors use for the case's cluster and its relatives (DESIGN.md).
CASE_NAMES = (
    "CryptoCore",
    "CryptoMimic",
    "Dangerous Password",
    "Leery Turtle",
    "SnatchCrypto",
    "BlueNoroff",
    "APT38",
    "Sapphire Sleet",
    "TraderTraitor",
    "AppleJeus",
    "Lazarus Group",
    "Andariel",
)


@dataclass(frozen=True)
class DemoResult:
    """Where the demo wrote its outputs and what it found."""

    out: Path
    build: BuildReport
    files: dict[str, Path]
    disagreements: dict[str, list[str]]
    stix_valid: bool
    stix_errors: list[str]


def run_demo(out: Path) -> DemoResult:
    """Run the investigation into `out` (created if needed)."""
    out.mkdir(parents=True, exist_ok=True)
    build = build_knowledge_base(out / "kb.sqlite")
    store = SQLiteStore(build.path)
    try:
        resolver = Resolver(store)
        names = {s.key: s.name for s in store.sources()}
        resolutions = [resolver.resolve(name) for name in CASE_NAMES]
        files = {
            "knowledge base": build.path,
            "names (text)": out / "case-names.txt",
            "names (JSON)": out / "case-names.json",
            "STIX bundle": out / "case.stix.json",
        }
        files["names (text)"].write_text(
            "\n\n".join(render_resolution(r, names) for r in resolutions) + "\n", encoding="utf-8"
        )
        files["names (JSON)"].write_text(
            json.dumps([r.to_dict() for r in resolutions], indent=2) + "\n", encoding="utf-8"
        )
        case_ids = {m["id"] for r in resolutions for m in r.matches}
        case_ids |= {end for c in store.claims(about=case_ids) for end in (c.subject_id, c.object_id)}
        bundle = export_bundle(store, ids=case_ids)
        files["STIX bundle"].write_text(json.dumps(bundle, indent=1) + "\n", encoding="utf-8")
        result = validate_parsed_json(bundle, ValidationOptions(version="2.1"))
        errors = [str(e) for e in result.errors]
        return DemoResult(
            out=out,
            build=build,
            files=files,
            disagreements={r.query: r.disagreements for r in resolutions},
            stix_valid=bool(result.is_valid),
            stix_errors=errors,
        )
    finally:
        store.close()
