"""Cases: investigation reports (`CaseReport` JSON, as `heistwatch demo` writes report.json) kept by the server.

They live in a `cases` table of the server's state file, beside its users, audit log and source levels: a case
is primary data an analyst posted (unlike the catalog, a cache rebuilt from the knowledge base), so it belongs
with the other things a backup of that one file must hold, written in a transaction like them.
A case's id is derived from its content, so posting the same report again is the same case; it keeps the most
restricted marking it was ever given.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from heistwatch.api.markings import most_restrictive
from heistwatch.errors import InputError, NotFoundError
from heistwatch.model import TLP
from heistwatch.share.report import CaseReport

_REPORT = TypeAdapter(CaseReport)
_MAX_PROBLEMS = 5


@dataclass(frozen=True)
class CaseSummary:
    """A stored case without its report: id, title, marking, who posted it and when."""

    id: str
    title: str
    tlp: TLP
    posted_by: str
    posted: str
    generated: str


@dataclass(frozen=True)
class Case:
    """A stored case and its report."""

    summary: CaseSummary
    report: CaseReport


def parse_case_report(data: Any, where: str) -> CaseReport:
    """A `CaseReport` from its `to_dict()` form; InputError naming the first wrong fields otherwise."""
    try:
        return _REPORT.validate_python(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'top'}: {e['msg']}" for e in exc.errors()]
        more = f" (and {len(problems) - _MAX_PROBLEMS} more)" if len(problems) > _MAX_PROBLEMS else ""
        raise InputError(where, "not an investigation report: " + "; ".join(problems[:_MAX_PROBLEMS]) + more) from exc


def case_id(report: CaseReport) -> str:
    """The case's id: from the SHA-256 of its canonical JSON, so the same report is the same case."""
    canonical = json.dumps(report.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "case--" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


class CaseStore:
    """The cases table in the server's state file."""

    def __init__(self, path: Path) -> None:
        """Open (creating if needed) the cases table in the state file at `path`."""
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS cases (id TEXT PRIMARY KEY, title TEXT NOT NULL, tlp TEXT NOT NULL,"
                " posted_by TEXT NOT NULL, posted TEXT NOT NULL, generated TEXT NOT NULL, report TEXT NOT NULL)"
            )

    def put(self, report: CaseReport, tlp: TLP, user: str, now: datetime.datetime) -> tuple[CaseSummary, bool]:
        """Store a case (or raise the marking of the same one stored before); the summary, and whether it is new."""
        cid = case_id(report)
        text = json.dumps(report.to_dict(), ensure_ascii=False)
        posted = now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT tlp FROM cases WHERE id = ?", (cid,)).fetchone()
                if row is None:
                    self._db.execute(
                        "INSERT INTO cases VALUES (?,?,?,?,?,?,?)",
                        (cid, report.title, tlp.value, user, posted, report.generated, text),
                    )
                else:
                    kept = most_restrictive((TLP(row[0]), tlp))
                    self._db.execute("UPDATE cases SET tlp = ? WHERE id = ?", (kept.value, cid))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.summary(cid), row is None

    def summaries(self) -> list[CaseSummary]:
        """Every case, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, title, tlp, posted_by, posted, generated FROM cases ORDER BY posted DESC, id"
            ).fetchall()
        return [_summary(row) for row in rows]

    def summary(self, cid: str) -> CaseSummary:
        """One case without its report; NotFoundError if there is none."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, title, tlp, posted_by, posted, generated FROM cases WHERE id = ?", (cid,)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"case {cid}")
        return _summary(row)

    def get(self, cid: str) -> Case:
        """One case with its report; NotFoundError if there is none."""
        summary = self.summary(cid)
        with self._lock:
            (text,) = self._db.execute("SELECT report FROM cases WHERE id = ?", (cid,)).fetchone()
        return Case(summary, parse_case_report(json.loads(text), f"stored case {cid}"))

    def close(self) -> None:
        """Close the state file."""
        self._db.close()


def _summary(row: tuple[Any, ...]) -> CaseSummary:
    cid, title, tlp, user, posted, generated = row
    return CaseSummary(cid, title, TLP(tlp), user, posted, generated)
