"""Exact-semantics matching of observed values against a compiled set of indicators.

Semantics, per kind (observed values are normalized the same way as indicators before any lookup):
- domain: the host itself or any subdomain, label-wise: `evil.com` matches `EVIL.com.` and `a.b.evil.com`, never
  `notevil.com` or `evil.com.cdn-x.net`. Hosts are lower-cased, a trailing dot and a port are dropped and
  internationalized names are compared in their punycode (IDNA) form. Lookup walks the host's label suffixes
  (`a.b.evil.com`, `b.evil.com`, `evil.com`, `com`) through one hash table: a reversed-label trie in effect, with
  at most one probe per label whatever the number of indicators.
- url: scheme and host lower-case, default port dropped, empty path is `/`, fragment and user info dropped;
  `http` and `https` spellings of one URL are the same URL (proxies log one, reports the other). Query strings:
  an indicator URL with no query matches that URL with any query (or none); an indicator with a query matches
  only that exact query string. Paths are compared exactly (case-sensitive, no prefix matching). A URL's host is
  also matched as a domain or address, so a URL on a listed domain is a domain sighting.
- ipv4 / ipv6: an address matches an exact indicator or any CIDR block containing it (IPv4-mapped IPv6 addresses
  count as IPv4). Blocks are flattened into sorted disjoint integer intervals searched with bisect.
- md5 / sha1 / sha256 / eth / registry / filename / email: exact, case-insensitive (a checksummed Ethereum
  address matches its lower-case indicator; file names compare by base name).
- btc: exact; bech32 (`bc1...`) case-insensitive, base58 case-sensitive.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from heistwatch.hunt.fields import FieldMap
from heistwatch.model.objects import Indicator

_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}
_HEX_KINDS = {32: "md5", 40: "sha1", 64: "sha256"}
_EMAIL = re.compile(r"[^\s<>,;\"'()\[\]]+@[^\s<>,;\"'()\[\]]+")
_CANDIDATES = re.compile(
    r"[a-z][a-z0-9+.-]*://[^\s\"'<>]+"
    r"|[^\s<>,;\"'()\[\]]+@[a-z0-9.-]+"
    r"|\b0x[0-9a-f]{40}\b|\b[0-9a-f]{64}\b|\b[0-9a-f]{40}\b|\b[0-9a-f]{32}\b"
    r"|\bbc1[0-9a-z]{11,71}\b|\b[13][1-9a-km-z]{25,34}\b"
    r"|\b[0-9a-f]*:[0-9a-f:.]*:[0-9a-f.]*\b"
    r"|[a-z0-9_-][a-z0-9_.-]*\.[a-z0-9_-]+",
    re.IGNORECASE,
)
Ids = tuple[str, ...]
_EMPTY: dict[str, Ids] = {}
SetState = tuple[
    dict[str, dict[str, Ids]],
    dict[str, str],
    dict[int, tuple[list[int], list[int], list[tuple[str, ...]]]],
    list[str],
    int,
]


@dataclass(frozen=True, slots=True)
class Match:
    """An indicator (kind and the value it is compiled under) matched by an observed value."""

    kind: str
    value: str
    observed: str


class _Intervals:
    """Disjoint sorted integer intervals, each owned by the CIDR blocks (indicator values) that cover it."""

    def __init__(self, blocks: Iterable[tuple[int, int, str]]) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.owners: list[tuple[str, ...]] = []
        self._flatten(sorted(set(blocks), key=lambda b: (b[0], -b[1], b[2])))

    def _flatten(self, blocks: list[tuple[int, int, str]]) -> None:
        """Cut laminar (nested or disjoint) blocks into elementary intervals with a stack of open blocks."""
        stack: list[tuple[int, str]] = []
        cursor = 0
        for start, end, value in blocks:
            cursor = self._close(stack, cursor, start)
            if stack and cursor < start:
                self._emit(cursor, start - 1, stack)
            stack.append((end, value))
            cursor = start
        self._close(stack, cursor, None)

    def _close(self, stack: list[tuple[int, str]], cursor: int, limit: int | None) -> int:
        """Emit and pop every open block that ends before `limit` (all of them when None); the new cursor."""
        while stack and (limit is None or stack[-1][0] < limit):
            end = stack[-1][0]
            if cursor <= end:
                self._emit(cursor, end, stack)
            cursor = end + 1
            stack.pop()
        return cursor

    def _emit(self, start: int, end: int, stack: list[tuple[int, str]]) -> None:
        self.starts.append(start)
        self.ends.append(end)
        self.owners.append(tuple(value for _, value in stack))

    def find(self, point: int) -> tuple[str, ...]:
        """The values of every block containing `point`."""
        i = bisect_right(self.starts, point) - 1
        return self.owners[i] if i >= 0 and point <= self.ends[i] else ()


def normalize_host(value: str) -> str | None:
    """A host as compared: lower-case, no trailing dot or port, punycode; None if it cannot be a host name."""
    host = value.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else None
    if host.count(":") == 1:
        host = host.partition(":")[0]
    host = host.rstrip(".")
    if host.isascii():
        return host or None
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def normalize_url(value: str) -> tuple[str, str, str] | None:
    """(URL with query, URL without query, host) as compared, or None when `value` is not an absolute URL."""
    scheme, sep, rest = value.strip().partition("://")
    if not sep or not scheme.isalnum():
        return None
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    netloc, tail = rest[:end].rpartition("@")[2], rest[end:].partition("#")[0]
    raw_host, port = _host_port(netloc)
    host = normalize_host(raw_host) if raw_host else None
    if host is None or not (port.isdigit() or not port):
        return None
    scheme = scheme.lower()
    netloc = f"[{host}]" if ":" in host else host
    if port and _DEFAULT_PORTS.get(scheme) != int(port):
        netloc = f"{netloc}:{int(port)}"
    path, _, query = tail.partition("?")
    base = f"{'//' if scheme in ('http', 'https') else scheme + '://'}{netloc}{path or '/'}"
    return (f"{base}?{query}" if query else base), base, host


def _host_port(netloc: str) -> tuple[str, str]:
    """(host, port text) of a URL authority without user info; IPv6 hosts lose their brackets."""
    if netloc.startswith("["):
        host, _, after = netloc[1:].partition("]")
        return host, after.removeprefix(":")
    host, _, port = netloc.partition(":") if netloc.count(":") == 1 else (netloc, "", "")
    return host, port


def parse_ip(value: str) -> tuple[int, int] | None:
    """(4 or 6, the address as an integer) for an IP address string, IPv4-mapped IPv6 as IPv4; else None."""
    text = value.strip()
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except OSError:
        pass
    if ":" not in text:
        return None
    text = text.strip("[]").partition("%")[0]
    try:
        number = int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
    except OSError:
        return None
    return (4, number & 0xFFFFFFFF) if number >> 32 == 0xFFFF else (6, number)


def _block(value: str) -> tuple[int, int, int] | None:
    """(version, first, last) address of an exact or CIDR indicator value."""
    address, _, bits = value.partition("/")
    parsed = parse_ip(address)
    if parsed is None:
        return None
    version, start = parsed
    width = 32 if version == 4 else 128
    prefix = int(bits) - (96 if version == 4 and ":" in address else 0) if bits else width
    if not 0 <= prefix <= width:
        return None
    size = 1 << (width - prefix)
    return version, start, start + size - 1


def _wallet_key(value: str) -> tuple[str, str]:
    """(kind, compared spelling) of a wallet address."""
    text = value.strip()
    if text[:2].lower() == "0x":
        return "eth", text.lower()
    return "btc", text.lower() if text[:3].lower() == "bc1" else text


def _match_key(kind: str, value: str) -> str | None:
    """The spelling an indicator value is compiled under, or None when it cannot match anything."""
    if kind == "domain":
        return normalize_host(value)
    if kind == "url":
        parsed = normalize_url(value)
        return parsed[0] if parsed else None
    if kind in ("btc", "eth"):
        return _wallet_key(value)[1]
    if kind == "filename":
        return re.split(r"[\\/]", value.strip())[-1].lower()
    return value.strip().lower()


class IndicatorSet:
    """Indicators compiled once for fast lookups; build with `from_indicators` or `from_values`."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, Ids]] = {}
        self._spelling: dict[str, str] = {}
        self._nets: dict[int, _Intervals] = {}
        self._roles: frozenset[str] = frozenset()
        self.size = 0

    @classmethod
    def from_indicators(cls, indicators: Iterable[Indicator]) -> IndicatorSet:
        """The set compiled from KB indicators (an iterator is fine: nothing but id, kind and value is kept)."""
        return cls.from_values((i.id, i.kind, i.value) for i in indicators)

    @classmethod
    def from_values(cls, rows: Iterable[tuple[str, str, str]]) -> IndicatorSet:
        """The set compiled from (indicator id, kind, normalized value) rows."""
        self = cls()
        for ident, kind, value in rows:
            self._add(ident, kind, value)
        for version in (4, 6):
            self._nets[version] = _Intervals(self._blocks(f"ipv{version}", version))
        self._roles = frozenset(role for kind, role in _KIND_ROLE.items() if self._tables.get(kind))
        if self._roles & {"hosts", "ips"}:  # hosts of URLs and e-mails, and hosts written as addresses
            self._roles |= {"urls", "emails", "hosts", "ips"}
        return self

    def state(self) -> SetState:
        """The compiled tables as plain built-in values (what `marshal` can store), for `from_state`."""
        nets = {version: (n.starts, n.ends, n.owners) for version, n in self._nets.items()}
        return self._tables, self._spelling, nets, sorted(self._roles), self.size

    @classmethod
    def from_state(cls, state: SetState) -> IndicatorSet:
        """The set whose `state()` this is; ValueError when `state` does not have that shape."""
        try:
            tables, spelling, nets, roles, size = state
        except (TypeError, ValueError):
            raise ValueError("not the state of an indicator set") from None
        if not (isinstance(tables, dict) and isinstance(spelling, dict) and isinstance(nets, dict)):
            raise ValueError("not the state of an indicator set")
        self = cls()
        self._tables, self._spelling, self.size, self._roles = tables, spelling, int(size), frozenset(roles)
        for version, (starts, ends, owners) in nets.items():
            intervals = self._nets[version] = _Intervals(())
            intervals.starts, intervals.ends, intervals.owners = starts, ends, owners
        return self

    def _add(self, ident: str, kind: str, value: str) -> None:
        if kind not in _KIND_ROLE:  # rules (yara, sigma) and TLSH digests are not values a log line holds
            return
        key = _match_key(kind, value)
        if key is not None and kind in ("ipv4", "ipv6"):
            block = _block(key)
            key, kind = (key, f"ipv{block[0]}") if block else (None, kind)
            if block and block[0] == 4 and ":" in str(key):  # IPv4-mapped IPv6: keyed as the IPv4 logs write
                prefix = 32 - (block[2] - block[1]).bit_length()
                key = str(ipaddress.IPv4Address(block[1])) + (f"/{prefix}" if prefix < 32 else "")
        if key is None:
            return
        table = self._tables.setdefault(kind, {})
        table[key] = (*table.get(key, ()), ident)
        if key != value:
            self._spelling[ident] = value
        self.size += 1

    def _blocks(self, kind: str, version: int) -> Iterator[tuple[int, int, str]]:
        for key in self._tables.get(kind, {}):
            block = _block(key)
            if block is not None and block[0] == version:
                yield block[1], block[2], key

    def kinds(self) -> frozenset[str]:
        """The kinds that hold at least one indicator."""
        return frozenset(kind for kind, table in self._tables.items() if table)

    def keys(self, kind: str) -> Iterator[str]:
        """The compiled spellings of one kind."""
        return iter(self._tables.get(kind, {}))

    def ids(self, kind: str, value: str) -> Ids:
        """The ids of the indicators compiled under (kind, value)."""
        return self._tables.get(kind, {}).get(value, ())

    def original(self, ident: str, value: str) -> str:
        """The indicator's own value when the compiled spelling differs from it."""
        return self._spelling.get(ident, value)

    def match_value(self, kind: str, value: str) -> list[Match]:
        """Indicators matched by one observed value read as `kind` (domain, url, ipv4, md5, ...)."""
        role = _KIND_ROLE.get(kind)
        return self.match_role(role, value) if role else []

    def match_role(self, role: str, value: str) -> list[Match]:
        """Indicators matched by one observed value found in a field of `role` (see FieldMap)."""
        return _ROLE_MATCHERS[role](self, value)

    def match_record(self, record: Mapping[str, object], fields: FieldMap) -> list[tuple[str, Match]]:
        """(field name, match) for every indicator a parsed record's mapped fields match, once per indicator."""
        found: dict[tuple[str, str], tuple[str, Match]] = {}
        by_name = fields.by_name
        for name, value in record.items():
            roles = by_name.get(name)
            if roles is not None and value:
                for role in roles:
                    self._match_field(role, name, value, found)
        for name, parts, role in fields.nested:
            if parts[0] in record and name not in record:
                self._match_field(role, name, _nested(record, parts), found)
        for host_name, uri_name in fields.host_uri:
            self._match_host_uri(record, host_name, uri_name, found)
        return list(found.values())

    def _match_field(
        self, role: str, name: str, value: object, found: dict[tuple[str, str], tuple[str, Match]]
    ) -> None:
        """Match one field's string, or each string in its list."""
        if role not in self._roles:
            return
        for text in (value,) if isinstance(value, str) else value if isinstance(value, list) else ():
            if isinstance(text, str):
                for match in _ROLE_MATCHERS[role](self, text):
                    found.setdefault((match.kind, match.value), (name, match))

    def _match_host_uri(
        self,
        record: Mapping[str, object],
        host_name: str,
        uri_name: str,
        found: dict[tuple[str, str], tuple[str, Match]],
    ) -> None:
        """Match the URL rebuilt from a host field and a path field (Zeek http, many proxies)."""
        host, uri = record.get(host_name), record.get(uri_name)
        if isinstance(host, str) and isinstance(uri, str) and uri.startswith("/") and "url" in self._tables:
            for match in self._url_only(f"http://{host}{uri}"):
                found.setdefault((match.kind, match.value), (uri_name, match))

    def match_line(self, line: str) -> list[Match]:
        """Indicators matched by the URL, e-mail, host, address, hash and wallet shapes in one free-text line."""
        found: dict[tuple[str, str], Match] = {}
        for token in _CANDIDATES.findall(line):
            for match in self.match_role(_shape_role(token), token.rstrip(".,;:")):
                found.setdefault((match.kind, match.value), match)
        return list(found.values())

    def _host(self, value: str) -> list[Match]:
        if value[:1].isdigit() or ":" in value:
            ip = self._ip(value)
            if ip:
                return ip
        host = normalize_host(value)
        return self._domain(host, value) if host else []

    def _domain(self, host: str, observed: str) -> list[Match]:
        table = self._tables.get("domain")
        if not table:
            return []
        out = []
        while True:
            if host in table:
                out.append(Match("domain", host, observed))
            dot = host.find(".")
            if dot < 0:
                return out
            host = host[dot + 1 :]

    def _ip(self, value: str) -> list[Match]:
        text = value.strip()
        if text.startswith("[") or text.count(":") == 1:
            text = text[1 : text.find("]")] if text.startswith("[") else text.partition(":")[0]
        parsed = parse_ip(text)
        if parsed is None:
            return []
        nets = self._nets.get(parsed[0])
        kind = f"ipv{parsed[0]}"
        return [Match(kind, key, value) for key in nets.find(parsed[1])] if nets else []

    def _url_only(self, value: str) -> list[Match]:
        table = self._tables.get("url")
        parsed = normalize_url(value) if table else None
        if not table or parsed is None:
            return []
        full, base, _ = parsed
        return [Match("url", key, value) for key in dict.fromkeys((full, base)) if key in table]

    def _url(self, value: str) -> list[Match]:
        parsed = normalize_url(value)
        if parsed is None:
            return []
        return self._url_only(value) + self._host(parsed[2])

    def _hash(self, value: str) -> list[Match]:
        digest = value.strip().lower()
        kind = _HEX_KINDS.get(len(digest))
        return [Match(kind, digest, value)] if kind and digest in self._tables.get(kind, _EMPTY) else []

    def _emails(self, value: str) -> list[Match]:
        out = []
        for address in _EMAIL.findall(value):
            key = address.lower()
            if key in self._tables.get("email", _EMPTY):
                out.append(Match("email", key, address))
            out.extend(self._domain(normalize_host(key.rpartition("@")[2]) or "", address))
        return out

    def _wallet(self, value: str) -> list[Match]:
        kind, key = _wallet_key(value)
        return [Match(kind, key, value)] if key in self._tables.get(kind, _EMPTY) else []

    def _exact(self, kind: str, value: str) -> list[Match]:
        key = _match_key(kind, value)
        return [Match(kind, key, value)] if key is not None and key in self._tables.get(kind, _EMPTY) else []


def _nested(record: Mapping[str, object], path: Iterable[str]) -> object:
    value: object = record
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


RoleMatcher = Callable[[IndicatorSet, str], list[Match]]


def _split(matcher: RoleMatcher) -> RoleMatcher:
    """A role matcher that also accepts comma-separated lists (Zeek sets, multi-valued CSV cells)."""

    def run(self: IndicatorSet, value: str) -> list[Match]:
        if "," not in value:
            return matcher(self, value)
        return [m for part in value.split(",") if part.strip() for m in matcher(self, part)]

    return run


def _shape_role(token: str) -> str:
    """The role a free-text token's shape suggests."""
    if "://" in token:
        return "urls"
    if "@" in token:
        return "emails"
    if "." in token or ":" in token:
        return "hosts"
    return "hashes" if len(token) in _HEX_KINDS else "wallets"


_ROLE_MATCHERS: dict[str, RoleMatcher] = {
    "hosts": _split(IndicatorSet._host),
    "urls": IndicatorSet._url,
    "ips": _split(IndicatorSet._ip),
    "hashes": _split(IndicatorSet._hash),
    "emails": IndicatorSet._emails,
    "wallets": _split(IndicatorSet._wallet),
    "files": lambda self, value: self._exact("filename", value),
    "registry": lambda self, value: self._exact("registry", value),
}
_KIND_ROLE = {
    "domain": "hosts",
    "url": "urls",
    "ipv4": "ips",
    "ipv6": "ips",
    "md5": "hashes",
    "sha1": "hashes",
    "sha256": "hashes",
    "email": "emails",
    "btc": "wallets",
    "eth": "wallets",
    "filename": "files",
    "registry": "registry",
}
