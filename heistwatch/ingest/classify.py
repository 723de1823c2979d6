"""Indicator or mention: built-in rules plus MISP warning lists, each decision with a short reason.

A mention is an observable that is present but does not indicate compromise: a reference link, a vendor or news
site, an abused legitimate service (the URL on it may still be an indicator, the host is not), a resolver or a
private address, a system binary named in narrative. The warning lists ship with `pymispwarninglists` and are
read from its data folder (never fetched), a handful of lists once per process.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import re
from bisect import bisect_left, bisect_right
from functools import cache, lru_cache
from pathlib import Path

import tldextract

from heistwatch.ingest.text import Document, Link

INDICATOR, MENTION = "indicator", "mention"


def _words(text: str) -> frozenset[str]:
    """The whitespace-separated words of a literal list."""
    return frozenset(text.split())


# Hosts of security vendors, researchers and references, matched on the registrable domain.
VENDOR_DOMAINS = _words(
    """
    welivesecurity.com eset.com eset.sk esetstatic.com avast.io avast.com jpcert.or.jp paloaltonetworks.com
    prodaft.com mitre.org misp-project.org virusbulletin.com securelist.com kaspersky.com microsoft.com
    virustotal.com exploit-db.com github.com githubusercontent.com github.io malpedia.caad.fkie.fraunhofer.de
    fireeye.com mandiant.com crowdstrike.com symantec.com broadcom.com trendmicro.com sophos.com
    talosintelligence.com cisco.com us-cert.gov cisa.gov ecrypt.eu.org openxmlformats.org xmlsoap.org w3.org
    schemas.microsoft.com adobe.com google.com man7.org snort.org emergingthreats.net proofpoint.com
    checkpoint.com bleepingcomputer.com zdnet.com twitter.com x.com linkedin.com wikipedia.org nist.gov
    cve.org abuse.ch urlhaus.abuse.ch
    """
)
# Legitimate services that attackers abuse: a URL on them can be an indicator, the host itself is not.
ABUSED_SERVICES = _words(
    """
    mega.nz mega.io gitlab.com github.com bitbucket.org cdn.discordapp.com discord.com discordapp.com 2no.co
    iplogger.org iplogger.com iplogger.co iplogger.ru grabify.link anonfiles.com anonfile.com sendspace.com
    mediafire.com dropbox.com dl.dropboxusercontent.com drive.google.com docs.google.com onedrive.live.com
    1drv.ms disk.yandex.ru yadi.sk pastebin.com paste.ee transfer.sh filetransfer.io wetransfer.com t.me
    telegram.org telegram.me steamcommunity.com usrfiles.com od.lk bit.ly tinyurl.com goo.gl is.gd cutt.ly
    raw.githubusercontent.com script.google.com dropboxusercontent.com ngrok.io ipinfo.io api.ipify.org ip-
    api.com checkip.amazonaws.com icanhazip.com
    """
)
WEBMAIL = _words(
    """
    gmail.com googlemail.com yahoo.com outlook.com hotmail.com live.com mail.ru yandex.ru yandex.com seznam.cz
    protonmail.com proton.me onionmail.org aol.com gmx.com gmx.de tutanota.com icloud.com qq.com 163.com
    126.com naver.com
    """
)
SYSTEM_BINARIES = _words(
    """
    cmd.exe powershell.exe pwsh.exe rundll32.exe regsvr32.exe reg.exe svchost.exe explorer.exe lsass.exe
    csrss.exe winlogon.exe services.exe taskhost.exe taskhostw.exe conhost.exe wmic.exe mshta.exe cscript.exe
    wscript.exe schtasks.exe certutil.exe bitsadmin.exe msiexec.exe net.exe net1.exe netsh.exe sc.exe
    tasklist.exe taskkill.exe whoami.exe ipconfig.exe systeminfo.exe vssadmin.exe wevtutil.exe bcdedit.exe
    iexplore.exe firefox.exe chrome.exe msedge.exe notepad.exe calc.exe winword.exe excel.exe outlook.exe
    kernel32.dll ntdll.dll user32.dll advapi32.dll crypt32.dll ws2_32.dll wininet.dll shell32.dll ole32.dll
    msvcrt.dll colorcpl.exe presentationhost.exe dllhost.exe spoolsv.exe smss.exe lsm.exe userinit.exe mmc.exe
    at.exe ping.exe curl.exe wget.exe bash.exe sh.exe
    regedit.exe winhttp.dll tabcal.exe fixmapi.exe
    """
)
RESOLVERS = _words(
    """
    8.8.8.8 8.8.4.4 1.1.1.1 1.0.0.1 9.9.9.9 149.112.112.112 208.67.222.222 208.67.220.220
    """
)
# Warning lists consulted, by folder name in the MISP warninglists data.
HOST_LISTS = ("alexa", "tranco10k", "security-provider-blogpost", "lots-project", "url-shortener", "whats-my-ip")
IP_LISTS = ("public-dns-v4",)
# a whole 64, 40 or 32 hex-digit run (tried in that order), its first 32 digits matched once
_HASH_NEARBY = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{32}(?:[0-9A-Fa-f]{8}(?:[0-9A-Fa-f]{24})?)?(?![0-9A-Fa-f])")
_SENTENCE = re.compile(r"[A-Za-z]{2,}(?:[ ,;:]+[A-Za-z()'\"-]{2,}){5,}")
_LIST_LINE = re.compile(r"^[\s*\-\u2022|`>#.\d)]*$")
_LINE_WINDOW = 300  # context is read at most this far either side, so very long lines stay linear
# certificate serial numbers are not indicators (thumbprints, the certificate's SHA-1, are)
_SERIAL = re.compile("serial", re.IGNORECASE)
# the non-ASCII characters `_SERIAL` matches (long s, dotted I, dotless i) and the ASCII letter each stands for
_SERIAL_LOOKALIKES = {"\u017f": ord("s"), "\u0130": ord("i"), "\u0131": ord("i")}
_SERIAL_BYTES = re.compile(b"serial")
_SERIAL_LABEL = re.compile(r"(?i)serial(?:\s*(?:number|no\.?|#))?\s*[:=]?\s*[`'\"|]*\s*$")
_MESSAGE_ID = re.compile(r"(?i)message-id|in-reply-to|references:")
_UUID_LIKE = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}")
_PATH_START = re.compile(r"[/?#]")
_DIGITS_AND_DOTS = re.compile(r"[\d.]+")
_HASH_KINDS = frozenset(("md5", "sha1", "sha256"))
_DEFANGED = re.compile(r"\[\.\]|\(\.\)|\[dot\]|hxxp|\[:\]|\{\.\}", re.IGNORECASE)


def _serial_positions(text: str, lowered: bytes) -> list[int]:
    """Where `_SERIAL` matches in `text`, found in `lowered` (its lower-cased `_ascii` copy: no other ASCII
    character lower-cases into a letter of "serial") with the non-ASCII look-alikes put back as their letters."""
    if text.isascii():
        return [m.start() for m in _SERIAL_BYTES.finditer(lowered)]
    patched = bytearray(lowered)
    for char, letter in _SERIAL_LOOKALIKES.items():
        at = text.find(char)
        while at != -1:
            patched[at] = letter
            at = text.find(char, at + 1)
    return [m.start() for m in _SERIAL_BYTES.finditer(patched)]


class Context:
    """Where a span sits in its document: table column, link, line."""

    def __init__(self, doc: Document, lowered: bytes | None = None) -> None:
        """`lowered`: the document's text lower-cased in ASCII (others as `?`), when the caller has it."""
        self.doc = doc
        if lowered is None:
            lowered = doc.text.encode("ascii", "replace").lower()
        self.serials = _serial_positions(doc.text, lowered)
        # hashes are checked for serial labels only when "serial" is spelled in ASCII somewhere
        self.has_serials = any(lowered.startswith(b"serial", at) for at in self.serials)
        self.cells = sorted(doc.cells)
        self.cell_starts = [cell.start for cell in self.cells]
        self.cell_ends = [cell.end for cell in self.cells]
        self.links = sorted(doc.links)
        self.link_starts = [link.start for link in self.links]

    def header(self, start: int, end: int) -> str | None:
        """The column header of the table cell that holds [start, end), if any."""
        i = bisect_right(self.cell_starts, start) - 1
        if i >= 0 and self.cell_ends[i] >= end:
            return self.cells[i].header
        return None

    def link_at(self, start: int, end: int) -> Link | None:
        """The link that holds [start, end), if any."""
        i = bisect_right(self.link_starts, start) - 1
        return self.links[i] if i >= 0 and self.links[i].end >= end else None

    def link_href(self, start: int, end: int) -> str | None:
        """The target of the link that holds [start, end), if any."""
        link = self.link_at(start, end)
        return link.href if link else None

    def line(self, start: int, end: int) -> tuple[str, str]:
        """The text of the line before and after the span."""
        text = self.doc.text
        floor, ceiling = max(0, start - _LINE_WINDOW), min(len(text), end + _LINE_WINDOW)
        lo = text.rfind("\n", floor, start)
        hi = text.find("\n", end, ceiling)
        return text[floor if lo == -1 else lo + 1 : start], text[end : ceiling if hi == -1 else hi]


@cache
def _extractor() -> tldextract.TLDExtract:
    """The public suffix list from tldextract's bundled snapshot; never fetched."""
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@cache
def _split(host: str) -> tuple[str, str]:
    """(registrable name, public suffix) of a host; empty strings when it has none."""
    parts = _extractor()(host)
    return parts.domain, parts.suffix


def is_public_suffix(host: str) -> bool:
    """Whether the host ends in a public suffix and has a registrable name before it."""
    name, suffix = _split(host)
    return bool(name and suffix)


def registrable_domain(host: str) -> str | None:
    """The registrable domain of a host (`a.b.example.co.uk` -> `example.co.uk`), if it has one."""
    name, suffix = _split(host)
    return f"{name}.{suffix}" if name and suffix else None


def warninglist_folder() -> Path:
    """The folder of MISP warning lists shipped inside pymispwarninglists, found without importing the package
    (its import loads jsonschema's format grammars, which costs seconds at every start)."""
    spec = importlib.util.find_spec("pymispwarninglists")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("pymispwarninglists is not installed")
    return Path(spec.origin).parent / "data" / "misp-warninglists" / "lists"


@cache
def _warninglists() -> tuple[dict[str, str], dict[str, str]]:
    """Host -> list name and IP -> list name, from the chosen MISP warning lists."""
    root = warninglist_folder()
    return _load(root, HOST_LISTS, hosts=True), _load(root, IP_LISTS, hosts=False)


def _load(root: Path, folders: tuple[str, ...], hosts: bool) -> dict[str, str]:
    """value -> list name for the lists in `folders` (exact hosts, or single addresses)."""
    table: dict[str, str] = {}
    for folder in folders:
        path = root / folder / "list.json"
        if not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        for entry in data.get("list", []):
            value = str(entry).lower().lstrip(".")
            value = value.removesuffix("/32") if not hosts else value
            table.setdefault(value, data.get("name", folder))
    return table


@cache
def host_reason(host: str) -> str | None:
    """Why a host is not an indicator by itself, or None when nothing says so."""
    registrable = registrable_domain(host) or host
    if host in ABUSED_SERVICES or registrable in ABUSED_SERVICES:
        return "abused-service"
    if host in VENDOR_DOMAINS or registrable in VENDOR_DOMAINS:
        return "vendor-site"
    if host in WEBMAIL:
        return "webmail"
    hosts = _warninglists()[0]
    listed = hosts.get(host) or hosts.get(host.removeprefix("www."))
    return f"warninglist:{listed}" if listed else None


@cache
def ip_reason(value: str) -> str | None:
    """Why an address is not an indicator, or None."""
    try:
        address = ipaddress.ip_network(value, strict=False).network_address
    except ValueError:
        return "invalid-address"
    if address.is_multicast:
        return "multicast-range"
    if address.is_private or address.is_loopback or address.is_link_local or address.is_reserved:
        return "private-range"
    if address.is_unspecified:
        return "unspecified-address"
    if value in RESOLVERS:
        return "resolver"
    listed = _warninglists()[1].get(value)
    return f"warninglist:{listed}" if listed else None


def _url_host(url: str) -> str:
    """The lower-case host of a URL written with or without a scheme."""
    rest = url.split("://", 1)[-1]
    host = _PATH_START.split(rest, maxsplit=1)[0].rsplit("@", 1)[-1]
    return host.rsplit(":", 1)[0].strip("[]").lower() if host.count(":") == 1 else host.strip("[]").lower()


def _url_reason(value: str, ctx: Context, start: int, end: int) -> str | None:
    """Why a URL is a mention: a reference or listed host, a private address, a labelled link."""
    host = _url_host(value)
    if _DIGITS_AND_DOTS.fullmatch(host):
        return ip_reason(host)
    reason = host_reason(host)
    if reason == "vendor-site":
        return "reference-link"
    listed = reason and reason.startswith("warninglist") and "LOTS" not in reason
    if listed and not _defanged(ctx.doc.text[start:end]):
        return reason
    return "reference-link" if _labelled_link(ctx, start, end, host) else None


def _labelled_link(ctx: Context, start: int, end: int, host: str) -> bool:
    """Whether the span is the target of a link whose label is words, not the address itself."""
    link = ctx.link_at(start, end)
    if link is None or _defanged(ctx.doc.text[start:end]):
        return False
    span = ctx.doc.text[link.start : min(link.end, link.start + _LINE_WINDOW)]
    label = span[span.find("[") + 1 : span.find("]")] if "[" in span and "]" in span else span
    return bool(label.strip()) and host not in label.lower()


def _defanged(raw: str) -> bool:
    """Whether the text as written is defanged (the author marked it as dangerous)."""
    return bool(_DEFANGED.search(raw))


def _domain_reason(value: str, ctx: Context, start: int, end: int, hint: str) -> str | None:
    """Why a domain is a mention: an e-mail's domain, a listed host, a reference link's host."""
    if hint == "email-domain":
        return "email-domain"
    reason = host_reason(value)
    if reason and not (reason.startswith("warninglist") and _defanged(ctx.doc.text[start:end])):
        return reason
    return "reference-link" if hint == "url-host" and _labelled_link(ctx, start, end, value) else None


def _narrative(ctx: Context, start: int, end: int, header: str | None) -> bool:
    """Whether the span (in a table column `header`, if any) sits in a prose sentence rather than a table, list or
    code line of artefacts."""
    if header is not None:
        return False
    before, after = ctx.line(start, end)
    return bool(_SENTENCE.search(before + " x " + after)) and not _LIST_LINE.match(before)


def _filename_reason(value: str, ctx: Context, start: int, end: int, header: str | None) -> str | None:
    """Why a file name is a mention: a link target, or a system binary named in prose."""
    if ctx.link_href(start, end) is not None and value in ctx.doc.text[start:end]:
        href = ctx.link_href(start, end) or ""
        if href.endswith(value) or value in href:
            return "reference-link"
    if value.lower() in SYSTEM_BINARIES and not _beside_hash(ctx, start, end):
        return "system-binary-in-narrative" if _narrative(ctx, start, end, header) else "system-binary"
    return None


def _beside_hash(ctx: Context, start: int, end: int) -> bool:
    """Whether a hash sits on the same or the next line: the name is then a sample's, not the system's."""
    text = ctx.doc.text
    first = text.find("\n", end, end + _LINE_WINDOW)
    second = text.find("\n", first + 1, first + 1 + _LINE_WINDOW) if first != -1 else -1
    lo = text.rfind("\n", max(0, start - _LINE_WINDOW), start) + 1
    hi = second if second != -1 else min(len(text), end + 2 * _LINE_WINDOW)
    return bool(_HASH_NEARBY.search(text, lo, hi))


def _hash_reason(ctx: Context, start: int, end: int, header: str | None) -> str | None:
    """Why a hash (in a table column `header`, if any) is a mention: it is a certificate serial number."""
    if header is not None and _serial_header(header):
        return "certificate-serial"
    if _serial_nearby(ctx, start) and _SERIAL_LABEL.search(ctx.line(start, end)[0][-40:]):
        return "certificate-serial"
    return None


@lru_cache(maxsize=1024)
def _serial_header(header: str) -> bool:
    """Whether a column header names serial numbers."""
    return bool(_SERIAL.search(header))


def _serial_nearby(ctx: Context, start: int) -> bool:
    """Whether `serial` occurs in the 40 characters before `start`."""
    floor = max(0, start - 40)
    i = bisect_left(ctx.serials, floor)
    return i < len(ctx.serials) and ctx.serials[i] + 6 <= start


def _email_reason(value: str, ctx: Context, start: int, end: int) -> str | None:
    """Why an e-mail address is a mention: a Message-ID, a redacted mailbox, a vendor contact."""
    before, _ = ctx.line(start, end)
    if _MESSAGE_ID.search(before) or _UUID_LIKE.fullmatch(value.split("@")[0]):
        return "message-id"
    if "**" in value:
        return "redacted"
    domain = value.rsplit("@", 1)[-1]
    return "vendor-contact" if host_reason(domain) == "vendor-site" else None


def classify(kind: str, value: str, ctx: Context, start: int, end: int, hint: str = "") -> tuple[str, str]:
    """(role, reason) for one observable of `kind` at [start, end) of the document."""
    reason: str | None
    header = ctx.header(start, end) if ctx.cells else None
    if kind == "domain":
        reason = _domain_reason(value, ctx, start, end, hint)
    elif kind in _HASH_KINDS:
        reason = _hash_reason(ctx, start, end, header) if ctx.has_serials else None
    elif kind == "filename":
        reason = _filename_reason(value, ctx, start, end, header)
    elif kind in ("ipv4", "ipv6"):
        reason = ip_reason(value)
    elif kind == "url":
        reason = _url_reason(value, ctx, start, end)
    elif kind == "email":
        reason = _email_reason(value, ctx, start, end)
    else:
        reason = None
    if reason:
        return MENTION, reason
    return INDICATOR, f"table:{header}" if header else (hint or "pattern")
