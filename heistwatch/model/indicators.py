"""Indicator kinds: how each value is normalized and written as a STIX pattern."""

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
}


def normalize_indicator(kind: str, value: str) -> str:
    """The canonical spelling of `value` as an indicator of `kind`; ValueError names the problem."""
    if kind not in KINDS:
        raise ValueError(f"unknown indicator kind {kind!r} (known: {', '.join(sorted(KINDS))})")
    return KINDS[kind][0](value)


def stix_pattern(kind: str, value: str) -> str:
    """The STIX 2.1 pattern that matches a normalized indicator value."""
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
) -> Indicator:
    """An indicator with a normalized value, its pattern and a deterministic id (source, kind, value)."""
    normalized = normalize_indicator(kind, value)
    return Indicator(
        id=derive_id("indicator", source, kind, normalized),
        kind=kind,
        value=normalized,
        source=source,
        pattern=stix_pattern(kind, normalized),
        first_seen=first_seen,
        last_seen=last_seen,
        confidence=confidence,
        reference=reference,
        description=description,
        tlp=tlp,
    )
