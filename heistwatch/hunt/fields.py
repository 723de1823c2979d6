"""Which record fields hold which kind of observable, with defaults per log format."""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

ROLES: tuple[str, ...] = ("hosts", "urls", "ips", "hashes", "emails", "wallets", "files", "registry")

_JSON_HOSTS = (
    "host",
    "hostname",
    "domain",
    "query",
    "qname",
    "server_name",
    "sni",
    "dns.question.name",
    "destination.domain",
    "url.domain",
)
_JSON_IPS = (
    "ip",
    "src_ip",
    "dst_ip",
    "source_ip",
    "dest_ip",
    "client_ip",
    "server_ip",
    "remote_ip",
    "src",
    "dst",
    "source.ip",
    "destination.ip",
    "id.orig_h",
    "id.resp_h",
)
_JSON_HASHES = (
    "md5",
    "sha1",
    "sha256",
    "hash",
    "file_hash",
    "process.hash.md5",
    "process.hash.sha256",
    "file.hash.sha256",
)
_JSON_EMAILS = ("email", "from", "to", "cc", "sender", "recipient", "reply_to", "mailfrom", "rcptto")
_JSON_WALLETS = ("wallet", "address", "to_address", "from_address", "destination_address", "source_address")


@dataclass(frozen=True)
class FieldMap:
    """Field names per observable role; dotted names reach into nested JSON objects when no key has the name."""

    hosts: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    hashes: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    wallets: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    registry: tuple[str, ...] = ()
    host_uri: tuple[tuple[str, str], ...] = ()
    time: tuple[str, ...] = ()

    def roles(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(role, field names) for every role that names at least one field."""
        return tuple((f.name, getattr(self, f.name)) for f in fields(self) if f.name in ROLES and getattr(self, f.name))

    @cached_property
    def by_name(self) -> dict[str, tuple[str, ...]]:
        """Field name to the roles it holds, for one pass over a record's keys."""
        out: dict[str, tuple[str, ...]] = {}
        for role, names in self.roles():
            for name in names:
                out[name] = (*out.get(name, ()), role)
        return out

    @cached_property
    def nested(self) -> tuple[tuple[str, tuple[str, ...], str], ...]:
        """(dotted name, its parts, role) for the names that may reach into nested objects."""
        return tuple(
            (name, tuple(name.split(".")), role) for role, names in self.roles() for name in names if "." in name
        )


JSON_FIELDS = FieldMap(
    hosts=_JSON_HOSTS,
    urls=("url", "request_url", "url.full", "referrer", "referer"),
    ips=_JSON_IPS,
    hashes=_JSON_HASHES,
    emails=_JSON_EMAILS,
    wallets=_JSON_WALLETS,
    files=("filename", "file_name", "process_name", "image", "file.name"),
    registry=("registry_key", "registry.path"),
    host_uri=(("host", "uri"), ("host", "path")),
    time=("ts", "timestamp", "@timestamp", "time", "date", "datetime"),
)

ZEEK_FIELDS = FieldMap(
    hosts=("query", "host", "server_name"),
    urls=("referrer",),
    ips=("id.orig_h", "id.resp_h", "answers"),
    hashes=("md5", "sha1", "sha256"),
    emails=("mailfrom", "rcptto", "from", "to", "cc", "reply_to"),
    files=("filename",),
    host_uri=(("host", "uri"),),
    time=("ts",),
)

DEFAULT_FIELDS: dict[str, FieldMap] = {
    "jsonl": JSON_FIELDS,
    "csv": JSON_FIELDS,
    "zeek": ZEEK_FIELDS,
    "text": FieldMap(),
}
