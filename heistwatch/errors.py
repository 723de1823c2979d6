"""Errors raised by heistwatch; callers catch at the level they need.

HeistwatchError
├── InputError            bad input: names the input, where in it, and the problem
│   ├── ClaimsFileError   a malformed claims pack file (path, line)
│   └── StixImportError   a malformed STIX bundle (path, object id)
├── StoreError            the knowledge base cannot be opened or written
└── NotFoundError         a name or id the knowledge base does not know
"""

from __future__ import annotations


class HeistwatchError(Exception):
    """Base of every error heistwatch raises on purpose."""


class InputError(HeistwatchError):
    """Bad input: `where` says which input and where in it, `problem` what is wrong."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


class ClaimsFileError(InputError):
    """A claims pack file that does not follow the claims format."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        super().__init__(f"{path}:{line}" if line else path, problem)
        self.path = path
        self.line = line


class StixImportError(InputError):
    """A STIX bundle, or one object in it, that cannot be imported."""

    def __init__(self, path: str, object_id: str | None, problem: str) -> None:
        super().__init__(f"{path} [{object_id}]" if object_id else path, problem)
        self.path = path
        self.object_id = object_id


class StoreError(HeistwatchError):
    """The knowledge base cannot be opened, migrated or written."""


class NotFoundError(HeistwatchError):
    """A name or id that the knowledge base does not know."""

    def __init__(self, what: str) -> None:
        super().__init__(f"not in the knowledge base: {what!r}")
        self.what = what
