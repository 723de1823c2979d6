"""A small on-disk cache of compiled artefacts: checked on read, written atomically, bounded to the newest few.

Each entry is one file `<key>.<suffix>` holding a header line, the SHA-256 of the payload and the payload. A file
whose header or digest does not check out (truncated, corrupt, written by something else) is deleted and read as a
miss, so the caller rebuilds it; nothing read from the cache is used unchecked. Reading an entry refreshes its time,
and every write removes all but the `keep` most recently used entries of the same suffix.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from pathlib import Path

_MAGIC = b"heistwatch-cache 1\n"
_DIGEST_BYTES = 32
_KEY = re.compile(r"[0-9a-f]{16,128}")
_STALE_SECONDS = 3600


class DiskCache:
    """Entries of one kind (`suffix`) in a folder, at most `keep` of them."""

    def __init__(self, folder: Path, suffix: str, keep: int = 4) -> None:
        self.folder = folder
        self.suffix = suffix
        self.keep = keep

    def _path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"cache keys are hex digests, not {key!r}")
        return self.folder / f"{key}.{self.suffix}"

    def get(self, key: str) -> bytes | None:
        """The payload stored under `key`, or None when there is none or it fails its check (then it is removed)."""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        head = len(_MAGIC) + _DIGEST_BYTES
        payload = data[head:]
        if data[: len(_MAGIC)] != _MAGIC or hashlib.sha256(payload).digest() != data[len(_MAGIC) : head]:
            self.discard(key)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)
        return payload

    def put(self, key: str, payload: bytes) -> None:
        """Store `payload` under `key` (replacing any entry atomically), then drop the least recently used extras.

        A cache that cannot be written (read-only or full disk) is skipped: it only saves time.
        """
        path = self._path(key)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.folder)
        except OSError:
            return
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(_MAGIC + hashlib.sha256(payload).digest())
                out.write(payload)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            return
        self._prune()

    def discard(self, key: str) -> None:
        """Remove the entry under `key`, if any."""
        with contextlib.suppress(OSError):
            self._path(key).unlink()

    def _prune(self) -> None:
        """Keep the `keep` most recently used entries of this suffix; remove temporary files a crash left behind."""
        for path in self.folder.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < time.time() - _STALE_SECONDS:
                    path.unlink()
        entries = []
        for path in self.folder.glob(f"*.{self.suffix}"):
            with contextlib.suppress(OSError):
                entries.append((path.stat().st_mtime_ns, path))
        for _, path in sorted(entries, reverse=True)[self.keep :]:
            with contextlib.suppress(OSError):
                path.unlink()
