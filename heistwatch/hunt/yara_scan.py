"""YARA-X rules the user gives: compiled once (one namespace per file), errors pointing at file and line.

Rules keep all their metadata: the Detection Rule License, under which most public rules are shared, requires the
rule's author to be shown with every alert, so `RuleMatch.author` and the full `meta` travel with each match.
Rules written for THOR/LOKI (e.g. signature-base) use the external variables `filename`, `filepath`,
`extension`, `filetype` and `owner`; they are defined here and set for each scanned file.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yara_x

from heistwatch.errors import InputError

RULE_SUFFIXES = (".yar", ".yara")
EXTERNALS = ("filename", "filepath", "extension", "filetype", "owner")
SCAN_TIMEOUT_S = 60
MetaValue = str | int | float | bool
_FILETYPES = (
    (b"MZ", "EXE"),
    (b"\x7fELF", "ELF"),
    (b"PK\x03\x04", "ZIP"),
    (b"%PDF", "PDF"),
    (b"\xd0\xcf\x11\xe0", "DOC"),
)


@dataclass(frozen=True)
class RuleMatch:
    """A rule that matched: its name, namespace (the rule file), tags, and every metadata pair as written."""

    rule: str
    namespace: str
    tags: tuple[str, ...]
    meta: tuple[tuple[str, MetaValue], ...]

    def meta_value(self, key: str) -> MetaValue | None:
        """The first metadata value under the key, if any."""
        return next((value for name, value in self.meta if name == key), None)

    @property
    def author(self) -> str:
        """The rule's author, shown with every alert as the Detection Rule License requires."""
        return str(self.meta_value("author") or "unknown author").strip()


def rule_files(paths: Iterable[Path]) -> list[Path]:
    """The rule files among the paths: files as given, folders searched recursively for .yar/.yara files."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in RULE_SUFFIXES and p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(str(path), "no such rule file or folder")
    return found


def compile_rules(paths: Iterable[Path]) -> yara_x.Rules:
    """Compile every rule file (one namespace per file); the first error raises with its file and line."""
    compiler = yara_x.Compiler()
    for name in EXTERNALS:
        compiler.define_global(name, "")
    files = rule_files(paths)
    if not files:
        raise InputError("rules", "no .yar or .yara files found")
    used: set[str] = set()
    for number, path in enumerate(files):
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(str(path), f"cannot read the rule file: {exc}") from None
        namespace = path.stem if path.stem not in used else f"{path.stem}_{number}"
        used.add(namespace)
        compiler.new_namespace(namespace)
        try:
            compiler.add_source(source, origin=str(path))
        except yara_x.CompileError as exc:
            raise _compile_error(path, compiler, exc) from None
    return compiler.build()


def _compile_error(path: Path, compiler: yara_x.Compiler, exc: Exception) -> InputError:
    """The compiler's last error as `file:line: title`."""
    errors = compiler.errors()
    last = errors[-1] if errors else {}
    line = last.get("line")
    where = f"{path}:{line}" if line else str(path)
    return InputError(where, str(last.get("title") or str(exc).splitlines()[0]))


def serialize_rules(rules: yara_x.Rules) -> bytes:
    """Compiled rules as bytes, to hand to worker processes that load them once each."""
    out = io.BytesIO()
    rules.serialize_into(out)
    return out.getvalue()


def deserialize_rules(data: bytes) -> yara_x.Rules:
    """Rules from `serialize_rules`."""
    return yara_x.Rules.deserialize_from(io.BytesIO(data))


class YaraScanner:
    """Scans data with compiled rules, setting the file-name externals for each file; one per process or thread."""

    def __init__(self, rules: yara_x.Rules, timeout_s: int = SCAN_TIMEOUT_S) -> None:
        self._scanner = yara_x.Scanner(rules)
        self._scanner.set_timeout(timeout_s)

    def scan(self, location: str, data: bytes) -> tuple[RuleMatch, ...]:
        """Rules matching the data; `location` (e.g. `a.zip!dir/b.exe`) gives the file name externals."""
        name = location.rsplit("!", 1)[-1].replace("\\", "/").rsplit("/", 1)[-1]
        self._scanner.set_global("filename", name)
        self._scanner.set_global("filepath", location)
        self._scanner.set_global("extension", _suffix(name).lower())
        self._scanner.set_global("filetype", next((kind for magic, kind in _FILETYPES if data.startswith(magic)), ""))
        results = self._scanner.scan(data)
        return tuple(
            RuleMatch(rule.identifier, rule.namespace, tuple(rule.tags), tuple(rule.metadata))
            for rule in results.matching_rules
        )


def _suffix(name: str) -> str:
    """The name's last suffix as `PurePosixPath.suffix` gives it (`.gz` of `a.tar.gz`; none for `.bashrc`, `a.`),
    without building a path for each scanned file."""
    dot = name.rfind(".")
    return name[dot:] if 0 < dot < len(name) - 1 else ""
