"""Users and their API tokens: roles, TLP clearance, tokens hashed at rest in a small SQLite file.

A token is `hw_<key>_<secret>`: the key finds the user's row, the secret is checked against its SHA-256 in
constant time. A fast hash is enough here because the secret is 32 random bytes: there is nothing to guess,
unlike a password, so a slow password hash would only slow every request.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from heistwatch.api.markings import PARTNER_CEILING, level, may_read
from heistwatch.errors import InputError, NotFoundError
from heistwatch.model import TLP

_TOKEN = re.compile(r"hw_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class Role(enum.Enum):
    """What a user may do; each role includes the ones before it."""

    READER = "reader"  # read and export what their clearance allows
    ANALYST = "analyst"  # and write: ingest reports, import STIX
    ADMIN = "admin"  # and read the audit log, set source levels

    def includes(self, other: Role) -> bool:
        """Whether this role may do what `other` may."""
        order = list(Role)
        return order.index(self) >= order.index(other)


@dataclass(frozen=True)
class User:
    """Someone the server answers: a role, a TLP clearance, and their organisation (None: ours)."""

    name: str
    role: Role
    clearance: TLP
    partner: str | None = None

    @property
    def internal(self) -> bool:
        """Whether the user belongs to the organisation that runs the server."""
        return self.partner is None

    def may_read(self, tlp: TLP) -> bool:
        """Whether the user may read a record marked `tlp`."""
        return may_read(tlp, self.clearance, internal=self.internal)


# Who a server without any token answers on loopback: the machine's own operator, who can read the file anyway.
LOCAL_OPERATOR = User(name="local", role=Role.ADMIN, clearance=TLP.RED)


class TokenStore:
    """Users and the hashes of their tokens, in the server's state file."""

    def __init__(self, path: Path) -> None:
        """Open (creating if needed) the users table in the state file at `path`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE,"
                " secret_sha256 TEXT NOT NULL, role TEXT NOT NULL, clearance TEXT NOT NULL, partner TEXT,"
                " created TEXT NOT NULL)"
            )

    def add(
        self,
        name: str,
        role: Role,
        clearance: TLP = TLP.GREEN,
        *,
        partner: str | None = None,
        now: datetime.datetime | None = None,
    ) -> str:
        """Create a user and return their token; only its hash is kept, so this is the one time it is seen."""
        if not _NAME.fullmatch(name):
            raise InputError("user name", f"{name!r}: use 1-64 letters, digits, '.', '_', '@' or '-'")
        if partner is not None and level(clearance) > level(PARTNER_CEILING):
            raise InputError(
                "clearance", f"{clearance.label} stays inside the organisation; a partner's user gets at most AMBER"
            )
        key, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        moment = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        row = (name, key, _digest(secret), role.value, clearance.value, partner, moment)
        try:
            with self._lock:
                self._db.execute("INSERT INTO users VALUES (?,?,?,?,?,?,?)", row)
        except sqlite3.IntegrityError as exc:
            raise InputError("user name", f"{name!r} already has a token; revoke it first") from exc
        return f"hw_{key}_{secret}"

    def revoke(self, name: str) -> None:
        """Remove a user and so their token."""
        with self._lock:
            gone = self._db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount
        if not gone:
            raise NotFoundError(f"user {name}")

    def users(self) -> list[User]:
        """Every user, by name."""
        with self._lock:
            rows = self._db.execute("SELECT name, role, clearance, partner FROM users ORDER BY name").fetchall()
        return [User(name, Role(role), TLP(clearance), partner) for name, role, clearance, partner in rows]

    def authenticate(self, token: str) -> User | None:
        """The user a token belongs to, or None."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        key, secret = match.groups()
        with self._lock:
            row = self._db.execute(
                "SELECT name, secret_sha256, role, clearance, partner FROM users WHERE key = ?", (key,)
            ).fetchone()
        if row is None or not hmac.compare_digest(row[1], _digest(secret)):
            return None
        return User(row[0], Role(row[2]), TLP(row[3]), row[4])

    def close(self) -> None:
        """Close the state file."""
        self._db.close()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()
