"""The demo's file, mail, lookalike-domain and Sigma hunts on its generated data, scored against what was planted.

The rules are the demo's own (`heistwatch/data/demo/rules`: YARA for the dropper script and shortcut, Sigma for the
process chain), plus the SigmaHQ rules in `../shared/data/rules/sigma` beside the repository when they are there.
Every hunt's sightings (and the rule and lookalike indicators they point at) are stored in the knowledge base.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from heistwatch.hunt.domains import hunt_domains
from heistwatch.hunt.files import hunt_files
from heistwatch.hunt.findings import (
    HuntFindings,
    domain_findings,
    file_findings,
    mail_findings,
    record_findings,
    sigma_findings,
    yara_rule_texts,
)
from heistwatch.hunt.lookalike import LookalikeFinder
from heistwatch.hunt.lures import hunt_mail
from heistwatch.hunt.mail_corpus import make_demo_mail, score_against
from heistwatch.hunt.matcher import IndicatorSet
from heistwatch.hunt.sigma import SigmaReport, hunt_sigma, load_rules
from heistwatch.hunt.telemetry import Planted
from heistwatch.hunt.yara_scan import compile_rules
from heistwatch.kb.store import KnowledgeStore
from heistwatch.model import Indicator, Sighting

SHARED_SIGMA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "rules" / "sigma"
_HASH_KINDS = ("md5", "sha1", "sha256")


@dataclass(frozen=True)
class HuntScore:
    """One hunt against the planted truth: what was planted, found and missed, what else it flagged."""

    planted: tuple[str, ...]
    found: tuple[str, ...]
    missed: tuple[str, ...]
    false_alarms: tuple[str, ...]
    sightings: int


@dataclass(frozen=True)
class DemoHunts:
    """The four hunts' scores, every sighting they stored, and what else a reader should know (rules skipped)."""

    files: HuntScore
    mail: HuntScore
    domains: HuntScore
    sigma: HuntScore
    sightings: tuple[Sighting, ...]
    new_sightings: int
    notes: tuple[str, ...]


def demo_rules() -> Path:
    """The folder of the demo's packaged YARA and Sigma rules."""
    return Path(str(resources.files("heistwatch") / "data" / "demo" / "rules"))


def hunt_demo_extras(
    store: KnowledgeStore, out_folder: Path, truth: Planted, *, seed: int = 0, workers: int = 2
) -> DemoHunts:
    """Run the file, mail, domain and Sigma hunts on the demo's data, store their findings, score them."""
    if truth.files_folder is None or truth.process_log is None:
        raise ValueError("the truth holds no endpoint files or process log: use generate_telemetry's")
    indicators = store.indicators()
    files, found_files = _files(truth, [i for i in indicators if i.kind in _HASH_KINDS])
    mail, found_mail = _mail(out_folder / "mail", IndicatorSet.from_indicators(indicators), seed)
    domains, found_domains = _domains(out_folder, truth, workers)
    sigma, found_sigma, notes = _sigma(truth)
    everything = [found_files, found_mail, found_domains, found_sigma]
    merged = HuntFindings(
        sources=tuple(dict.fromkeys(s for f in everything for s in f.sources)),
        indicators=tuple(i for f in everything for i in f.indicators),
        sightings=tuple(s for f in everything for s in f.sightings),
    )
    new = record_findings(store, merged, datetime.now(UTC).isoformat(timespec="seconds"))
    return DemoHunts(files, mail, domains, sigma, merged.sightings, new, notes)


def _score(planted: Iterable[str], flagged: Iterable[str], sightings: int) -> HuntScore:
    truth, seen = sorted(set(planted)), sorted(set(flagged))
    return HuntScore(
        planted=tuple(truth),
        found=tuple(p for p in truth if p in seen),
        missed=tuple(p for p in truth if p not in seen),
        false_alarms=tuple(s for s in seen if s not in truth),
        sightings=sightings,
    )


def _files(truth: Planted, hashes: list[Indicator]) -> tuple[HuntScore, HuntFindings]:
    """The workstation's files with the demo's YARA rules and the knowledge base's file hashes."""
    assert truth.files_folder is not None
    rules = demo_rules()
    report = hunt_files([truth.files_folder], rules=compile_rules([rules]), indicators=hashes, fuzzy=False, workers=1)
    found = file_findings(report, yara_rule_texts([rules]))
    prefix = f"{truth.files_folder}/"
    flagged = [f.file.removeprefix(prefix) for f in report.findings]
    return _score(truth.dropper_files, flagged, len(found.sightings)), found


def _mail(folder: Path, indicators: IndicatorSet, seed: int) -> tuple[HuntScore, HuntFindings]:
    """A mailbox with the case's lures among ordinary mail, hunted with the knowledge base's indicators."""
    planted = make_demo_mail(random.Random(seed), folder)
    report = hunt_mail([folder], indicators)
    score = score_against(planted, report)
    found = mail_findings(report)
    flagged = [*score.found, *score.false_alarms]
    return _score(planted.lures, flagged, len(found.sightings)), found


def _domains(out_folder: Path, truth: Planted, workers: int) -> tuple[HuntScore, HuntFindings]:
    """Lookalikes of the exchange's brand in the DNS and proxy logs (every one, not only those new since last run)."""
    logs = [p for p in truth.logs if p != truth.process_log]
    report = hunt_domains(
        logs,
        LookalikeFinder((truth.brand,)),
        state_path=out_folder / "lookalike-state.json",
        report_all=True,
        workers=workers,
    )
    found = domain_findings(report)
    flagged = [s.lookalike.domain for s in report.sightings]
    return _score(truth.lookalikes, flagged, len(found.sightings)), found


def _sigma(truth: Planted) -> tuple[HuntScore, HuntFindings, tuple[str, ...]]:
    """The demo's Sigma rule (and SigmaHQ's, when present) on all three logs; the process chain is the truth."""
    assert truth.process_log is not None
    paths = [demo_rules(), *([SHARED_SIGMA] if SHARED_SIGMA.is_dir() else [])]
    rules = load_rules(paths)
    report = hunt_sigma(rules, list(truth.logs))
    found = sigma_findings(report)
    chain = [f"{truth.process_log.name}:{n}" for n in truth.process_chain]
    matched = {f"{Path(m.file).name}:{m.line}": m.rule.title for m in report.matches}
    planted_elsewhere = {f"{name}:{n}" for name, lines in truth.planted_lines.items() for n in lines}
    flagged = [where for where in matched if where in chain or where not in planted_elsewhere]
    score = _score(chain, flagged, len(found.sightings))
    alarms = tuple(f"{where} ({matched[where]})" for where in score.false_alarms)
    return (
        HuntScore(score.planted, score.found, score.missed, alarms, score.sightings),
        found,
        _sigma_notes(report, rules.problems, paths, matched, chain, planted_elsewhere),
    )


def _sigma_notes(
    report: SigmaReport,
    problems: Iterable[object],
    paths: list[Path],
    matched: dict[str, str],
    chain: list[str],
    planted: set[str],
) -> tuple[str, ...]:
    other = sorted(f"{where} ({title})" for where, title in matched.items() if where in planted and where not in chain)
    notes = [
        f"Sigma rules from {', '.join(str(p) for p in paths)}: {len(report.applied)} run, {len(report.skipped)}"
        f" skipped (log sources or fields these logs lack), {len(list(problems))} that did not load"
    ]
    if other:
        notes.append(f"Sigma also flagged other planted activity: {', '.join(other)}")
    return tuple(notes)


def summary_lines(result: DemoHunts) -> list[str]:
    """The hunts' results as lines of text for the demo's output."""
    lines = []
    for name, what, score in (
        ("files", "dropper files", result.files),
        ("mail", "lures", result.mail),
        ("domains", "lookalikes of the brand", result.domains),
        ("sigma", "process-chain events", result.sigma),
    ):
        lines.append(
            f"hunt {name}: {len(score.found)} of {len(score.planted)} planted {what} found, {len(score.missed)}"
            f" missed, {len(score.false_alarms)} false alarms; {score.sightings} sightings"
        )
        lines += [f"  missed: {m}" for m in score.missed] + [f"  false alarm: {a}" for a in score.false_alarms]
    lines.append(f"{len(result.sightings)} sightings stored in the knowledge base ({result.new_sightings} new)")
    return [*lines, *result.notes]
