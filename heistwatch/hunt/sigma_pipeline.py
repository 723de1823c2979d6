"""Which Sigma log sources heistwatch can run locally, and how Sigma's field names map onto the exchange's records.

Three kinds of log are known: web proxy (Sigma category `proxy`), DNS (`dns`, Sysmon's `dns_query`) and process
creation (`process_creation`). A file's kind is told by the fields its first records hold. Each Sigma field has a
list of candidate record keys (heistwatch's own names, Sigma's, ECS and Zeek spellings); the first one the logs hold
wins, and the choice becomes a pySigma processing pipeline. A few fields are derived when the logs lack them: the
parts of a proxy URL (`c-uri-query`, `c-uri-stem`, `c-uri-extension`, `cs-host`) and Sysmon's `Hashes` string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import FieldMappingTransformation

# URL parts with plain string functions: RE2 extraction with capture groups cost ten times more per record.
_BASE = "split_part({url}, '?', 1)"
_REST = f"substr({_BASE}, strpos({_BASE}, '://') + 3)"
_URL_PATH = (
    f"CASE WHEN {{url}} IS NULL THEN NULL WHEN NOT contains({_BASE}, '://') THEN {_BASE}"
    f" WHEN strpos({_REST}, '/') > 0 THEN substr({_REST}, strpos({_REST}, '/')) ELSE '' END"
)
_SEGMENT = f"split_part({_URL_PATH}, '/', -1)"
_AUTHORITY = "split_part(split_part(substr({url}, strpos({url}, '://') + 3), '/', 1), '?', 1)"


@dataclass(frozen=True)
class Derived:
    """A field computed in SQL from record keys: `template` names each input as {placeholder}."""

    template: str
    inputs: Mapping[str, tuple[str, ...]]
    any_input: bool = False  # True: available when any input is present (absent ones are NULL)


@dataclass(frozen=True)
class LogKind:
    """One kind of log: the Sigma categories it serves, its field candidates, derived fields, identifying keys."""

    name: str
    categories: frozenset[str]
    fields: Mapping[str, tuple[str, ...]]
    markers: frozenset[str]
    derived: Mapping[str, Derived] = field(default_factory=dict)

    def candidates(self, sigma_field: str) -> tuple[str, ...]:
        """Record keys that may hold a Sigma field, best first: the mapping's, then its own and snake_case names."""
        names = (*self.fields.get(sigma_field, ()), sigma_field, _snake(sigma_field), sigma_field.lower())
        return tuple(dict.fromkeys(names))


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).replace("-", "_").lower()


_URL_KEYS = ("c-uri", "url", "request_url", "url.full", "url.original", "cs-uri", "uri")

PROXY = LogKind(
    name="proxy",
    categories=frozenset({"proxy"}),
    fields={
        "c-uri": _URL_KEYS,
        "cs-uri": ("cs-uri", *_URL_KEYS),
        "c-uri-query": ("c-uri-query", "url.query", "query_string"),
        "c-uri-stem": ("c-uri-stem", "url.path", "path"),
        "c-uri-extension": ("c-uri-extension", "url.extension", "extension"),
        "cs-host": ("cs-host", "host", "hostname", "url.domain", "destination.domain", "server_name"),
        "c-useragent": ("c-useragent", "user_agent", "useragent", "http.user_agent", "user_agent.original", "ua"),
        "cs-method": ("cs-method", "method", "http_method", "request_method", "http.request.method"),
        "cs-cookie": ("cs-cookie", "cookie", "http.cookie"),
        "cs-referrer": ("cs-referrer", "referrer", "referer", "http.request.referrer"),
        "sc-status": ("sc-status", "status", "status_code", "http.response.status_code"),
        "c-ip": ("c-ip", "src_ip", "client_ip", "source.ip", "id.orig_h"),
        "dst_ip": ("dst_ip", "server_ip", "destination.ip", "id.resp_h"),
        "cs-bytes": ("cs-bytes", "bytes_out", "request_body_len"),
        "sc-bytes": ("sc-bytes", "bytes", "bytes_in", "response_body_len"),
    },
    markers=frozenset(
        {"url", "uri", "c-uri", "cs-uri", "cs-host", "user_agent", "c-useragent", "method", "cs-method", "url.full"}
    ),
    derived={
        "c-uri-query": Derived(
            "CASE WHEN strpos({url}, '?') > 0 THEN substr({url}, strpos({url}, '?') + 1) WHEN {url} IS NOT NULL THEN ''"
            " END",
            {"url": _URL_KEYS},
        ),
        "c-uri-stem": Derived(_URL_PATH, {"url": _URL_KEYS}),
        "c-uri-extension": Derived(
            f"CASE WHEN contains({_SEGMENT}, '.') THEN split_part({_SEGMENT}, '.', -1) WHEN {{url}} IS NOT NULL THEN ''"
            " END",
            {"url": _URL_KEYS},
        ),
        "cs-host": Derived(
            f"CASE WHEN contains({{url}}, '://')"
            f" THEN nullif(split_part(split_part({_AUTHORITY}, '@', -1), ':', 1), '') END",
            {"url": _URL_KEYS},
        ),
    },
)

_QUERY_KEYS = ("query", "qname", "QueryName", "dns.question.name", "question")
DNS = LogKind(
    name="dns",
    categories=frozenset({"dns", "dns_query"}),
    fields={
        "query": _QUERY_KEYS,
        "QueryName": _QUERY_KEYS,
        "answer": ("answer", "answers", "QueryResults", "dns.answers.data"),
        "QueryResults": ("QueryResults", "answer", "answers", "dns.answers.data"),
        "record_type": ("record_type", "qtype_name", "qtype", "QueryType", "dns.question.type"),
        "Image": ("Image", "image", "process.executable", "process"),
        "src_ip": ("src_ip", "client_ip", "source.ip", "id.orig_h"),
    },
    markers=frozenset(set(_QUERY_KEYS) | {"qtype", "qtype_name", "record_type", "answers", "rcode"}),
)

_HASH_INPUTS = {
    "sha1": ("sha1", "process.hash.sha1", "file.hash.sha1"),
    "md5": ("md5", "process.hash.md5", "file.hash.md5"),
    "sha256": ("sha256", "process.hash.sha256", "file.hash.sha256"),
    "imphash": ("imphash", "process.pe.imphash"),
}
PROCESS = LogKind(
    name="process_creation",
    categories=frozenset({"process_creation"}),
    fields={
        "Image": ("Image", "image", "process.executable", "process_path", "exe", "process"),
        "CommandLine": ("CommandLine", "command_line", "cmdline", "commandline", "process.command_line"),
        "ParentImage": ("ParentImage", "parent_image", "process.parent.executable", "parent_process"),
        "ParentCommandLine": ("ParentCommandLine", "parent_command_line", "process.parent.command_line"),
        "OriginalFileName": ("OriginalFileName", "original_file_name", "process.pe.original_file_name"),
        "CurrentDirectory": ("CurrentDirectory", "current_directory", "process.working_directory"),
        "User": ("User", "user", "username", "user.name"),
        "Hashes": ("Hashes", "hashes"),
        **{name.upper() if name != "imphash" else "Imphash": keys for name, keys in _HASH_INPUTS.items()},
    },
    markers=frozenset(
        {"Image", "image", "CommandLine", "command_line", "ParentImage", "parent_image", "process"}
        | {"process.executable", "process.command_line", "cmdline"}
    ),
    derived={
        "Hashes": Derived(
            "nullif(concat_ws(',', 'SHA1=' || upper({sha1}), 'MD5=' || upper({md5}), 'SHA256=' || upper({sha256}),"
            " 'IMPHASH=' || upper({imphash})), '')",
            _HASH_INPUTS,
            any_input=True,
        )
    },
)

LOG_KINDS: tuple[LogKind, ...] = (PROXY, DNS, PROCESS)


def kind_for_logsource(category: str | None) -> LogKind | None:
    """The log kind that serves a Sigma log source category, if heistwatch knows one."""
    return next((kind for kind in LOG_KINDS if category in kind.categories), None)


def detect_kind(keys: Iterable[str]) -> LogKind | None:
    """The kind whose identifying keys the records hold most of (None when they hold none)."""
    present = set(keys)
    scores = [(len(kind.markers & present), -n, kind) for n, kind in enumerate(LOG_KINDS)]
    best = max(scores, key=lambda s: (s[0], s[1]))
    return best[2] if best[0] else None


def map_fields(kind: LogKind, keys: Iterable[str]) -> dict[str, str]:
    """Sigma field -> the record key that holds it, for the fields of `kind` whose candidates the records hold."""
    present = set(keys)
    mapping: dict[str, str] = {}
    for sigma_field in kind.fields:
        found = next((key for key in kind.candidates(sigma_field) if key in present), None)
        if found is not None and found != sigma_field:
            mapping[sigma_field] = found
    return mapping


def build_pipeline(kind: LogKind, keys: Iterable[str]) -> ProcessingPipeline:
    """The pySigma pipeline that renames Sigma fields to the record keys of logs of `kind`."""
    conditions = [LogsourceCondition(category=category) for category in sorted(kind.categories)]
    mapping: dict[str | None, str | list[str]] = {k: v for k, v in map_fields(kind, keys).items()}
    item = ProcessingItem(
        identifier=f"heistwatch_{kind.name}_fields",
        transformation=FieldMappingTransformation(mapping),
        rule_conditions=conditions,  # type: ignore[arg-type]
        rule_condition_linking=any,
    )
    return ProcessingPipeline(name=f"heistwatch {kind.name} logs", priority=20, items=[item])
