"""Build the knowledge base from the packaged open data and the claims pack, atomically."""

from __future__ import annotations

import contextlib
import gc
import os
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from importlib.abc import Traversable
from pathlib import Path

from heistwatch.errors import StoreError
from heistwatch.kb.seed.attack import load_attack
from heistwatch.kb.seed.claims import load_claims, packaged_claims
from heistwatch.kb.seed.misp import load_misp_galaxies
from heistwatch.kb.sqlite import SQLiteStore
from heistwatch.model import Claim, ImportBatch, Indicator, Relationship, ReportBatch

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildReport:
    """What a build wrote and how long it took."""

    path: Path
    seconds: float
    records: dict[str, int]
    unresolved_links: int


def build_knowledge_base(
    path: Path, *, claims_files: Iterable[Traversable | Path] | None = None, progress: Progress | None = None
) -> BuildReport:
    """Build into a temporary file beside `path`, then swap it in; a failed build leaves `path` as it was."""
    started = time.perf_counter()
    say = progress or (lambda _message: None)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.building")
    _remove(temporary)
    records: dict[str, int] = {}
    try:
        with _collector_paused():
            unresolved = _build(temporary, claims_files, say, records)
            _carry_reports(path, temporary, records)
        _checkpoint(path)
        os.replace(temporary, path)
    except BaseException:
        _remove(temporary)
        raise
    return BuildReport(path=path, seconds=time.perf_counter() - started, records=records, unresolved_links=unresolved)


def _build(
    temporary: Path, claims_files: Iterable[Traversable | Path] | None, say: Progress, records: dict[str, int]
) -> int:
    """Load every seed into a new file; returns how many galaxy links pointed at clusters not loaded."""
    store = SQLiteStore(temporary, bulk=True)
    try:
        say("loading MITRE ATT&CK")
        attack = load_attack()
        _write(store, "mitre-attack", attack, records)
        say("loading MISP galaxy clusters")
        galaxy = load_misp_galaxies({o.id for o in attack.objects})
        _write(store, "misp-galaxy", galaxy.batch, records)
        say("loading the claims pack")
        claims = load_claims(
            packaged_claims() if claims_files is None else claims_files,
            pack_version=metadata.version("heistwatch"),
        )
        _write(store, "claims-pack", claims, records)
    finally:
        store.close()
    return galaxy.unresolved_links


def _carry_reports(old: Path, new: Path, records: dict[str, int]) -> None:
    """Copy the reports (with findings and indicators), other sources' records and the sightings being replaced."""
    if not old.exists():
        return
    try:
        previous = SQLiteStore(old)
    except StoreError:
        records["reports-unreadable"] = 1  # a damaged file is rebuilt from scratch; nothing to carry over
        return
    rebuilt = SQLiteStore(new, bulk=True)
    try:
        sources = {s.key: s for s in previous.sources()}
        by_source: defaultdict[str, list[Indicator]] = defaultdict(list)
        for indicator in previous.indicators():
            by_source[indicator.source].append(indicator)
        for report in previous.reports():
            findings = tuple(previous.findings(report.id))
            batch = ReportBatch(sources[report.source], report, findings, tuple(by_source[report.source]))
            rebuilt.import_report(batch)
            records["reports-kept"] = records.get("reports-kept", 0) + 1
        carried = sorted(set(sources) - {s.key for s in rebuilt.sources()})
        if carried:  # read the claims and relationships once, not once per source
            claims: defaultdict[str, list[Claim]] = defaultdict(list)
            for claim in previous.claims():
                claims[claim.source].append(claim)
            relationships: defaultdict[str, list[Relationship]] = defaultdict(list)
            for rel in previous.relationships():
                relationships[rel.source].append(rel)
        for key in carried:
            objects = tuple(previous.objects(source=key))
            own = (tuple(claims[key]), tuple(relationships[key]), tuple(by_source[key]))
            _carry_source(rebuilt, ImportBatch((sources[key],), objects, *own), records)
    except sqlite3.DatabaseError:
        records["reports-unreadable"] = 1
    finally:
        previous.close()
        rebuilt.close()
    _carry_sightings(old, new, records)


def _carry_source(rebuilt: SQLiteStore, batch: ImportBatch, records: dict[str, int]) -> None:
    """Copy what one source the build does not load gave (a STIX import, a hunt's rules): all of it, or none."""
    try:
        rebuilt.import_batch(batch)
    except StoreError:  # it points at records the new build no longer has
        records["sources-dropped"] = records.get("sources-dropped", 0) + 1
        return
    records["sources-kept"] = records.get("sources-kept", 0) + 1


def _carry_sightings(old: Path, new: Path, records: dict[str, int]) -> None:
    """Copy the recorded hunt sightings as they are, record times included."""
    db = sqlite3.connect(new)
    try:
        db.execute("ATTACH DATABASE ? AS old", (str(old),))
        if db.execute("SELECT 1 FROM old.sqlite_master WHERE name = 'sightings'").fetchone():
            with db:
                kept = db.execute("INSERT OR IGNORE INTO sightings SELECT * FROM old.sightings").rowcount
            if kept:
                records["sightings-kept"] = kept
    except sqlite3.DatabaseError:
        records["sightings-unreadable"] = 1
    finally:
        db.close()


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: a build allocates ~100k small acyclic records and GC passes cost ~30%."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _write(store: SQLiteStore, label: str, batch: ImportBatch, records: dict[str, int]) -> None:
    store.import_batch(batch)
    records[label] = len(batch)


def _checkpoint(path: Path) -> None:
    """Fold an existing file's write-ahead log into it, so no stale -wal file outlives the swap."""
    if path.exists():
        db = sqlite3.connect(path)
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError:
            pass  # a damaged file has no log worth folding; it is about to be replaced
        finally:
            db.close()
    for suffix in ("-wal", "-shm"):
        _remove(path.with_name(path.name + suffix))


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
