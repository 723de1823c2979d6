"""Indicator kinds: how each value is normalized and written as a STIX pattern.

Most kinds are observables matched by a STIX pattern. Two are detection rules the exchange hunted with: a YARA
rule (value `namespace:rule`) and a Sigma rule (value: its id); their pattern is the rule's text and their STIX
`pattern_type` is "yara" or "sigma", as STIX 2.1 allows. A `tlsh` indicator is a known sample's TLSH digest.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from heistwatch.model.objects import Indicator, derive_id
from heistwatch.model.tlp import TLP

_HEX = {"md5": 32, "sha1": 40, "sha256": 64}
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def _domain(value: str) -> str:
    host = value.strip().rstrip(".").lower().encode("idna").decode("ascii")
    labels = host.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError("not a domain name")
    return host


def _ip(value: str) -> str:
    return (
        str(ipaddress.ip_network(value.strip(), strict=False))
        if "/" in value
        else str(ipaddress.ip_address(value.strip()))
    )


def _url(value: str) -> str:
    parts = urlsplit(value.strip())
    if not parts.scheme or not parts.hostname:
        raise ValueError("not an absolute URL")
    netloc = _domain(parts.hostname) if not parts.hostname.replace(".", "").isdigit() else parts.hostname
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))


def _email(value: str) -> str:
    local, sep, domain = value.strip().rpartition("@")
    if not sep or not local:
        raise ValueError("not an e-mail address")
    return f"{local}@{_domain(domain)}"


def _hash(kind: str) -> Callable[[str], str]:
    def normalize(value: str) -> str:
        digest = value.strip().lower()
        if len(digest) != _HEX[kind] or not re.fullmatch(r"[0-9a-f]+", digest):
            raise ValueError(f"not a {kind.upper()} digest")
        return digest

    return normalize


def _eth(value: str) -> str:
    address = value.strip().lower()
    if not re.fullmatch(r"0x[0-9a-f]{40}", address):
        raise ValueError("not an Ethereum address")
    return address


_BTC = re.compile(r"bc1[02-9ac-hj-np-z]{11,71}|[13][1-9A-HJ-NP-Za-km-z]{25,34}")


def _btc(value: str) -> str:
    address = value.strip()
    if address.lower().startswith("bc1"):
        address = address.lower()  # bech32 is case-insensitive; base58 is not
    if not _BTC.fullmatch(address):
        raise ValueError("not a Bitcoin address")
    return address


_TLSH = re.compile(r"(?:T1)?([0-9A-F]{70})")
_YARA = re.compile(r"[^\s:]{1,128}:[A-Za-z_][A-Za-z0-9_]{0,127}")


def _tlsh(value: str) -> str:
    match = _TLSH.fullmatch(value.strip().upper())
    if not match:
        raise ValueError("not a TLSH digest (T1 and 70 hex digits)")
    return f"T1{match.group(1)}"


def _yara(value: str) -> str:
    name = value.strip()
    if not _YARA.fullmatch(name):
        raise ValueError("not a YARA rule name written namespace:rule")
    return name  # YARA identifiers are case-sensitive


def _sigma(value: str) -> str:
    rule_id = value.strip()
    if not rule_id or any(c.isspace() for c in rule_id):
        raise ValueError("not a Sigma rule id")
    return rule_id.lower()  # Sigma ids are UUIDs, compared without case


def _stripped(value: str) -> str:
    text = value.strip()
    if not text:
        raise ValueError("empty value")
    return text


# kind -> (normalize, STIX pattern path)
KINDS: dict[str, tuple[Callable[[str], str], str]] = {
    "domain": (_domain, "domain-name:value"),
    "ipv4": (_ip, "ipv4-addr:value"),
    "ipv6": (_ip, "ipv6-addr:value"),
    "url": (_url, "url:value"),
    "email": (_email, "email-addr:value"),
    "md5": (_hash("md5"), "file:hashes.MD5"),
    "sha1": (_hash("sha1"), "file:hashes.'SHA-1'"),
    "sha256": (_hash("sha256"), "file:hashes.'SHA-256'"),
    "filename": (_stripped, "file:name"),
    "btc": (_btc, "x-crypto-wallet:value"),
    "eth": (_eth, "x-crypto-wallet:value"),
    "registry": (_stripped, "windows-registry-key:key"),
    "tlsh": (_tlsh, "file:hashes.TLSH"),
    "yara": (_yara, ""),
    "sigma": (_sigma, ""),
}
# Rule kinds: the pattern is the rule's own text, in the STIX pattern language of that name.
RULE_KINDS = frozenset({"yara", "sigma"})


def normalize_indicator(kind: str, value: str) -> str:
    """The canonical spelling of `value` as an indicator of `kind`; ValueError names the problem."""
    if kind not in KINDS:
        raise ValueError(f"unknown indicator kind {kind!r} (known: {', '.join(sorted(KINDS))})")
    return KINDS[kind][0](value)


def pattern_type(kind: str) -> str:
    """The STIX 2.1 `pattern_type` of an indicator of `kind`: "yara" or "sigma" for rules, else "stix"."""
    return kind if kind in RULE_KINDS else "stix"


def stix_pattern(kind: str, value: str) -> str:
    """The STIX 2.1 pattern that matches a normalized indicator value (rule kinds have their text instead)."""
    if kind in RULE_KINDS:
        raise ValueError(f"a {kind} indicator's pattern is its rule text, not derived from its value")
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"[{KINDS[kind][1]} = '{escaped}']"


def make_indicator(
    kind: str,
    value: str,
    *,
    source: str,
    tlp: TLP = TLP.CLEAR,
    confidence: int | None = None,
    first_seen: str | None = None,
    last_seen: str | None = None,
    reference: str | None = None,
    description: str = "",
    rule_text: str | None = None,
) -> Indicator:
    """An indicator with a normalized value, its pattern and a deterministic id (source, kind, value).

    Rule kinds ("yara", "sigma") need `rule_text`, which becomes the pattern; other kinds refuse it.
    """
    normalized = normalize_indicator(kind, value)
    if (kind in RULE_KINDS) != (rule_text is not None):
        raise ValueError(f"rule_text is {'required' if kind in RULE_KINDS else 'only for rule kinds'} ({kind})")
    return Indicator(
        id=derive_id("indicator", source, kind, normalized),
        kind=kind,
        value=normalized,
        source=source,
        pattern=rule_text if rule_text is not None else stix_pattern(kind, normalized),
        first_seen=first_seen,
        last_seen=last_seen,
        confidence=confidence,
        reference=reference,
        description=description,
        tlp=tlp,
    )
