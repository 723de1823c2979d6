"""Lure scoring: each message gets the case's lure patterns as reasons with points, and a score out of 100.

The case (DESIGN.md): exchange staff approached by recruiters and fake trading firms, then sent LNK shortcuts,
scripts, macro documents or trojanised apps, often inside password-protected archives whose password is in the
message. Rules, each firing at most once per message with its strongest points:
- themes: recruiter / job offer and trading-firm / investment approaches, from keyword sets in several phrasings
  (two different phrasings needed, so one "opportunity" in a newsletter is not a theme);
- sender: Reply-To on another registrable domain than From, free mail writing for a company, disposable
  addresses, domains the caller knows to be newly seen, failed SPF / DKIM / DMARC;
- attachments, and every file inside attached zip archives (names are visible even when encrypted): dangerous
  types (.lnk .vbs .js .hta .chm .scr .exe, disk images, installers), double extensions (`CV.pdf.lnk`), a
  right-to-left override in the name, content that is not what the name says, Office documents with VBA macros
  (olevba), encrypted archives, and the archive's password given in the message (tried, to look inside);
- links: IP-literal hosts, file-sharing services, URL shorteners, punycode hosts, script or executable
  downloads, and anchors whose visible text shows another host than they lead to;
- the knowledge base: sender addresses and domains, Received hosts and IPs, link URLs and hosts, macro IOCs,
  attachment names and hashes matched with `IndicatorSet` (exact semantics).
An optional `scan_attachment(name, data)` hook (a file scanner: YARA, similarity) adds a reason per result.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from functools import cache
from pathlib import Path

import pyzipper
from oletools.olevba import VBA_Parser

from heistwatch.errors import InputError
from heistwatch.hunt.mail import Mail, MailProblem, read_mail, visible_host
from heistwatch.hunt.matcher import IndicatorSet, Match, normalize_host, parse_ip
from heistwatch.ingest.classify import WEBMAIL, registrable_domain, warninglist_folder
from heistwatch.model.sightings import Sighting

ScanHook = Callable[[str, bytes], list[str]]
MAX_DEPTH = 3
MAX_MEMBERS = 1000
MAX_MEMBER_BYTES = 50 << 20
MAX_ARCHIVE_BYTES = 200 << 20
MAX_RATIO = 200
HIGH, MEDIUM = 60, 30

RECRUITER = (
    r"\bjob (?:offer|opportunit(?:y|ies)|description|opening|posting|vacanc(?:y|ies))s?\b",
    r"\b(?:career|employment) (?:opportunit(?:y|ies)|offer)\b",
    r"\brecruit(?:er|ers|ing|ment)\b|\bhead-?hunt(?:er|ing)\b",
    r"\btalent (?:acquisition|partner|sourcing|team)\b",
    r"\b(?:we are|we're|currently|actively) hiring\b",
    r"\b(?:open|vacant) (?:role|position)s?\b|\bvacanc(?:y|ies)\b",
    r"\b(?:salary|compensation|remuneration|pay) (?:package|range|expectations?|details?|band)\b",
    r"\b(?:your|the attached|my) (?:cv|resume|résumé|curriculum vitae)\b",
    r"\byour (?:linkedin )?profile\b",
    r"\binterview(?:s|ing)?\b",
    r"\b(?:senior|lead|principal|staff) (?:engineer|developer|architect|devops)\b",
)
TRADING = (
    r"\b(?:trading|investment|hedge|proprietary|crypto|venture) (?:firm|fund|company|house|desk)\b",
    r"\botc\b|\bover-the-counter\b",
    r"\bmarket[- ]mak(?:er|ers|ing)\b",
    r"\bliquidity (?:provider|provision|partner)s?\b",
    r"\barbitrage\b",
    r"\b(?:quant|quantitative|algorithmic|high-frequency) trading\b",
    r"\b(?:partnership|cooperation|collaboration|business) (?:proposal|offer|opportunit(?:y|ies))\b",
    r"\bterms (?:of|and) (?:cooperation|partnership)\b",
    r"\b(?:token|coin) listing\b|\blisting (?:fee|proposal)\b",
    r"\b(?:fund|asset|portfolio|wealth) manag(?:er|ers|ement)\b",
    r"\b(?:investment|investing) (?:opportunit(?:y|ies)|proposal|plan)\b",
    r"\b(?:returns?|profits?|yield) of (?:up to )?\d+(?:\.\d+)?\s?%",
)
THEMES = {
    "recruiter": tuple(re.compile(p, re.IGNORECASE) for p in RECRUITER),
    "trading-firm": tuple(re.compile(p, re.IGNORECASE) for p in TRADING),
}
_ORG_CUE = re.compile(
    r"\b(?:capital|ventures?|partners|group|trading|invest\w*|fund|holdings?|ltd|llc|inc|gmbh|corp\w*|labs?"
    r"|exchange|recruit\w*|talent|hr|consulting|securities|assets?|markets?|finance|technolog(?:y|ies))\b|[|@]",
    re.IGNORECASE,
)
_PASSWORD = re.compile(
    r"\b(?:password|passcode|passwd|pwd|pw|pass|unzip code|extraction code)\b\s*(?:is\b|:|=|-)?\s*[:\-]?\s*"
    r"[\"'“«]?([^\s\"'”»<>]{3,64})",
    re.IGNORECASE,
)
# Extension -> (rule, points, what it is)
DANGEROUS = {
    **dict.fromkeys(("lnk",), ("dangerous-file", 40, "Windows shortcut (LNK)")),
    **dict.fromkeys(("vbs", "vbe"), ("dangerous-file", 40, "VBScript")),
    **dict.fromkeys(("js", "jse"), ("dangerous-file", 40, "JScript")),
    **dict.fromkeys(("wsf", "wsh"), ("dangerous-file", 40, "Windows Script File")),
    **dict.fromkeys(("ps1", "psm1"), ("dangerous-file", 40, "PowerShell script")),
    **dict.fromkeys(("bat", "cmd"), ("dangerous-file", 40, "batch script")),
    **dict.fromkeys(("hta",), ("dangerous-file", 40, "HTML application")),
    **dict.fromkeys(("chm",), ("dangerous-file", 40, "compiled HTML help")),
    **dict.fromkeys(("scr", "exe", "com", "pif", "cpl", "dll", "xll"), ("dangerous-file", 40, "Windows executable")),
    **dict.fromkeys(("jar",), ("dangerous-file", 40, "Java archive")),
    **dict.fromkeys(("url",), ("dangerous-file", 30, "Internet shortcut")),
    **dict.fromkeys(("command", "scpt", "applescript"), ("dangerous-file", 40, "macOS script")),
    **dict.fromkeys(("iso", "img", "vhd", "vhdx", "dmg"), ("disk-image", 30, "disk image")),
    **dict.fromkeys(("msi", "pkg", "mpkg"), ("installer", 30, "installer package")),
}
_DOC_EXTS = "pdf|docx?|xlsx?|pptx?|txt|rtf|odt|jpe?g|png|gif|csv|html?|zip|rar"
_DOUBLE = re.compile(rf"\.(?:{_DOC_EXTS})[\s_.]*\.([a-z0-9]{{2,11}})$", re.IGNORECASE)
_APP_BUNDLE = re.compile(r"\.app/Contents/MacOS/[^/]+$")
_RTLO = "\u202e"
_OLE, _ZIP = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"PK\x03\x04"
# What a damaged or hostile archive raises (pyzipper has its own zip errors, not the standard library's)
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    pyzipper.BadZipFile,
    pyzipper.LargeZipFile,
    zlib.error,
    ValueError,
    EOFError,
    OSError,
    NotImplementedError,
    struct.error,
)


def _words(text: str) -> frozenset[str]:
    """The whitespace-separated words of a literal list."""
    return frozenset(text.split())


# Content signature -> (what it is, extensions it may carry, points when it carries another)
MAGIC = (
    (b"MZ", "Windows executable", _words("exe dll scr com cpl sys ocx drv efi xll pif"), 30),
    (b"L\x00\x00\x00\x01\x14\x02\x00", "Windows shortcut", _words("lnk"), 30),
    (b"ITSF", "compiled HTML help", _words("chm"), 30),
    (_OLE, "OLE compound file", _words("doc dot xls xlt ppt pps msg msi pub vsd docx xlsx pptx mpp"), 15),
    (_ZIP, "zip archive", _words("zip docx docm xlsx xlsm pptx pptm jar apk odt ods odp epub xpi ipa dotx"), 15),
    (b"%PDF", "PDF", _words("pdf ai"), 15),
    (b"{\\rtf", "RTF", _words("rtf doc"), 15),
)
FILE_SHARING = _words(
    """
    mega.nz mega.io dropbox.com dropboxusercontent.com drive.google.com docs.google.com onedrive.live.com 1drv.ms
    sharepoint.com wetransfer.com we.tl mediafire.com sendspace.com anonfiles.com anonfile.com transfer.sh
    filetransfer.io gofile.io pixeldrain.com disk.yandex.ru disk.yandex.com yadi.sk box.com app.box.com file.io
    cdn.discordapp.com zippyshare.com 4shared.com catbox.moe files.catbox.moe limewire.com swisstransfer.com
    """
)
# Click-tracking and link-rewriting services: their links show the real target's address as text by design.
LINK_REWRITERS = _words(
    """
    sendgrid.net list-manage.com mandrillapp.com mailgun.org hubspotlinks.com mcusercontent.com sparkpostmail.com
    rs6.net exct.net mktoweb.com safelinks.protection.outlook.com urldefense.com urldefense.proofpoint.com
    mimecast.com linkprotect.cudasvc.com
    """
)
# Points per rule; a rule fires at most once per message, with its strongest points.
POINTS = {
    "theme": 15,
    "reply-to-mismatch": 15,
    "freemail-company": 15,
    "disposable-sender": 20,
    "new-domain": 20,
    "dmarc-fail": 15,
    "spf-fail": 10,
    "dkim-fail": 5,
    "double-extension": 20,
    "rtlo-name": 30,
    "vba-macros": 35,
    "macro-autoexec": 10,
    "macro-suspicious": 10,
    "encrypted-archive": 25,
    "password-in-message": 10,
    "archive-limits": 10,
    "ip-link": 20,
    "file-sharing-link": 15,
    "shortener-link": 5,
    "punycode-link": 10,
    "deceptive-link": 25,
    "executable-link": 20,
    "scanner": 40,
    "kb-indicator": 50,
}


@dataclass(frozen=True)
class Reason:
    """Why a message looks like a lure: the rule, its points and what in the message fired it."""

    rule: str
    points: int
    detail: str


@dataclass(frozen=True)
class IndicatorHit:
    """A knowledge-base indicator matched in a message: ids, kind, value, what was observed and in which field."""

    indicator_ids: tuple[str, ...]
    kind: str
    value: str
    observed: str
    field: str


@dataclass(frozen=True)
class LureFinding:
    """One message scored: where it is, who sent it, the score out of 100, and the reasons and indicator hits."""

    file: str
    index: int
    message_id: str | None
    date: str | None
    subject: str
    sender: str
    score: int
    themes: tuple[str, ...]
    reasons: tuple[Reason, ...]
    hits: tuple[IndicatorHit, ...] = ()

    @property
    def level(self) -> str:
        """high (>= 60), medium (>= 30), low (> 0) or none."""
        return "high" if self.score >= HIGH else "medium" if self.score >= MEDIUM else "low" if self.score else "none"


@dataclass(frozen=True)
class MailHuntReport:
    """Findings at or above the minimum score (or with an indicator hit), highest first; problems; counts."""

    findings: tuple[LureFinding, ...]
    problems: tuple[MailProblem, ...]
    messages: int
    files: int


@dataclass(frozen=True)
class _File:
    """An attachment or a file inside one: its path for display, base name, bytes (None when not readable)."""

    path: str
    name: str
    data: bytes | None


@dataclass
class _Reasons:
    """Reasons collected for one message, one per rule, keeping the strongest points and every detail."""

    by_rule: dict[str, tuple[int, list[str]]] = field(default_factory=dict)

    def add(self, rule: str, detail: str, points: int | None = None) -> None:
        value = POINTS[rule] if points is None else points
        best, details = self.by_rule.get(rule, (value, []))
        if detail not in details:
            details.append(detail)
        self.by_rule[rule] = (max(best, value), details)

    def reasons(self) -> tuple[Reason, ...]:
        out = [Reason(rule, points, _join(details)) for rule, (points, details) in self.by_rule.items()]
        return tuple(sorted(out, key=lambda r: (-r.points, r.rule)))


def _join(details: list[str]) -> str:
    return "; ".join(details[:4]) + (f"; and {len(details) - 4} more" if len(details) > 4 else "")


def hunt_mail(
    paths: Iterable[Path],
    indicators: IndicatorSet | None = None,
    *,
    min_score: int = 1,
    new_domains: Collection[str] = (),
    scan_attachment: ScanHook | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> MailHuntReport:
    """Read every message in the files and folders, score it, and keep what reaches `min_score` or hits the KB."""
    findings: list[LureFinding] = []
    problems: list[MailProblem] = []
    messages = 0
    files: set[str] = set()
    new = _domain_set(new_domains)
    for item in read_mail(paths, on_bytes=on_bytes):
        files.add(item.file)
        if isinstance(item, MailProblem):
            problems.append(item)
            continue
        messages += 1
        finding = score_mail(item, indicators, new_domains=new, scan_attachment=scan_attachment)
        if finding.score >= min_score or finding.hits:
            findings.append(finding)
    findings.sort(key=lambda f: (-f.score, f.file, f.index))
    return MailHuntReport(tuple(findings), tuple(problems), messages, len(files))


def score_mail(
    mail: Mail,
    indicators: IndicatorSet | None = None,
    *,
    new_domains: Collection[str] = (),
    scan_attachment: ScanHook | None = None,
) -> LureFinding:
    """One message's lure score, reasons and knowledge-base hits."""
    reasons = _Reasons()
    new = _domain_set(new_domains)
    files = [f for attachment in mail.attachments for f in _expand(attachment.name, attachment.data, reasons, mail)]
    themes = _themes(mail, files, reasons)
    _sender(mail, themes, new, reasons)
    macro_iocs = [ioc for f in files for ioc in _file_reasons(f, reasons, scan_attachment)]
    _links(mail, new, reasons)
    hits = _indicator_hits(mail, files, macro_iocs, indicators) if indicators is not None else []
    if hits:
        reasons.add("kb-indicator", ", ".join(f"{h.kind} {h.value} ({h.field})" for h in hits))
    found = reasons.reasons()
    return LureFinding(
        file=mail.file,
        index=mail.index,
        message_id=mail.message_id,
        date=mail.date,
        subject=mail.subject,
        sender=mail.from_address,
        score=min(100, sum(r.points for r in found)),
        themes=themes,
        reasons=found,
        hits=tuple(hits),
    )


def _themes(mail: Mail, files: list[_File], reasons: _Reasons) -> tuple[str, ...]:
    """The approach themes two or more different phrasings of which appear in the subject, body or file names."""
    text = "\n".join([mail.subject, mail.from_name, mail.text, *(f.name for f in files)])
    found = []
    for theme, patterns in THEMES.items():
        phrases = [m.group(0) for p in patterns if (m := p.search(text))]
        if len(phrases) >= 2:
            found.append(theme)
            points = min(25, POINTS["theme"] + 5 * (len(phrases) - 2))
            reasons.add("theme", f"{theme} approach: " + ", ".join(repr(p) for p in phrases[:5]), points)
    return tuple(found)


def _sender(mail: Mail, themes: tuple[str, ...], new: frozenset[str], reasons: _Reasons) -> None:
    """Reasons from the sender's addresses, domains and authentication results."""
    sender = mail.from_domain
    if sender and mail.reply_to_domain and _registrable(sender) != _registrable(mail.reply_to_domain):
        reasons.add("reply-to-mismatch", f"replies go to {mail.reply_to} instead of {mail.from_address}")
    if sender in _freemail() and (_ORG_CUE.search(mail.from_name) or themes):
        claim = f"as {mail.from_name!r}" if _ORG_CUE.search(mail.from_name) else f"a {'/'.join(themes)} approach"
        reasons.add("freemail-company", f"free-mail sender {mail.from_address} writes {claim}"[:200])
    for name, domain in (("From", sender), ("Reply-To", mail.reply_to_domain)):
        if domain and _in_domains(domain, _disposable()):
            reasons.add("disposable-sender", f"{name} {domain} is a disposable-mail domain")
    for name, domain in (
        ("From", sender),
        ("Reply-To", mail.reply_to_domain),
        ("Return-Path", mail.return_path_domain),
    ):
        if domain and _in_domains(domain, new):
            reasons.add("new-domain", f"{name} domain {domain} is newly seen")
    verdicts = mail.auth
    if verdicts.get("dmarc") == "fail":
        reasons.add("dmarc-fail", "DMARC fail")
    if verdicts.get("spf") in ("fail", "softfail"):
        reasons.add("spf-fail", f"SPF {verdicts['spf']}")
    if verdicts.get("dkim") == "fail":
        reasons.add("dkim-fail", "DKIM fail")


def _links(mail: Mail, new: frozenset[str], reasons: _Reasons) -> None:
    """Reasons from the message's links."""
    for link in mail.links:
        host = link.host
        if parse_ip(host) is not None:
            reasons.add("ip-link", f"link to an IP address: {link.url}"[:200])
        elif _in_domains(host, FILE_SHARING):
            reasons.add("file-sharing-link", f"link to a file-sharing service: {link.url}"[:200])
        elif _in_domains(host, _shorteners()):
            reasons.add("shortener-link", f"shortened link hides its target: {link.url}"[:200])
        if any(label.startswith("xn--") for label in host.split(".")):
            reasons.add("punycode-link", f"link to an internationalized (punycode) host: {host}")
        if _in_domains(host, new):
            reasons.add("new-domain", f"link host {host} is newly seen")
        path = link.url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
        extension = path.rpartition(".")[2].lower() if "." in path.rpartition("/")[2] else ""
        if extension in DANGEROUS:
            reasons.add("executable-link", f"link downloads a file of type {DANGEROUS[extension][2]}: {link.url}"[:200])
        shown = visible_host(link.text) if link.text else None
        if shown and _registrable(shown) != _registrable(host) and not _in_domains(host, LINK_REWRITERS):
            reasons.add("deceptive-link", f"link shows {shown} but goes to {host}")


def _expand(name: str, data: bytes, reasons: _Reasons, mail: Mail, depth: int = 0) -> Iterator[_File]:
    """The file itself and, for a zip archive (not an Office document), every file inside it, to `MAX_DEPTH`."""
    yield _File(name, _base_name(name), data)
    if depth >= MAX_DEPTH or not data.startswith(_ZIP) or _is_office_zip(data):
        return
    try:
        archive = pyzipper.AESZipFile(io.BytesIO(data))
        members = archive.infolist()
    except _ZIP_ERRORS as exc:
        reasons.add("archive-limits", f"{name}: unreadable archive ({exc})", 0)
        return
    with archive:
        if len(members) > MAX_MEMBERS:
            reasons.add("archive-limits", f"{name}: {len(members)} members, the first {MAX_MEMBERS} read")
        budget = MAX_ARCHIVE_BYTES
        for info in members[:MAX_MEMBERS]:
            if info.filename.endswith("/") or not info.filename:
                continue
            path = f"{name}/{info.filename}"
            encrypted = bool(info.flag_bits & 0x1)
            if encrypted:
                reasons.add("encrypted-archive", f"{name} is password-protected: mail filters cannot see inside")
            content = _read_member(archive, info, path, budget, mail.text if encrypted else "", reasons)
            budget -= len(content or b"")
            if content is None:
                yield _File(path, _base_name(info.filename), None)
            else:
                yield from _expand(path, content, reasons, mail, depth + 1)


def _read_member(
    archive: pyzipper.AESZipFile, info: zipfile.ZipInfo, path: str, budget: int, text: str, reasons: _Reasons
) -> bytes | None:
    """A member's bytes within the size limits; an encrypted one opened with a password the message gives."""
    ratio = info.file_size / max(1, info.compress_size)
    if info.file_size > min(MAX_MEMBER_BYTES, budget) or (info.file_size > 1 << 20 and ratio > MAX_RATIO):
        reasons.add("archive-limits", f"{path}: {info.file_size:,} bytes unpacked (ratio {ratio:.0f}), not read")
        return None
    passwords = [None] if not info.flag_bits & 0x1 else [p.encode() for p in message_passwords(text)]
    for password in passwords:
        try:
            content: bytes = archive.read(info, pwd=password)
        except (RuntimeError, *_ZIP_ERRORS):  # RuntimeError: a wrong password
            continue
        if password is not None:
            reasons.add("password-in-message", f"the message gives the password that opens {path}")
        return content
    if passwords and passwords != [None]:
        reasons.add("password-in-message", f"the message offers a password for {path} ({len(passwords)} tried)", 5)
    return None


def message_passwords(text: str) -> list[str]:
    """Candidate archive passwords written in a message ("password: x", "pwd = x", "the password is x")."""
    found = [m.group(1).rstrip(".,;:)]}!") for m in _PASSWORD.finditer(text)]
    return list(dict.fromkeys(p for p in found if len(p) >= 3))[:8]


def _is_office_zip(data: bytes) -> bool:
    """Whether a zip is an Office Open XML document (analysed as a document, not unpacked as an archive)."""
    return b"[Content_Types].xml" in data[:65536] or b"[Content_Types].xml" in data[-65536:]


def _base_name(name: str) -> str:
    return re.split(r"[\\/]", name.rstrip("/\\"))[-1]


def _file_reasons(item: _File, reasons: _Reasons, scan: ScanHook | None) -> list[str]:
    """Reasons from one file's name and content; returns the IOCs its macros hold."""
    name = item.name
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    if extension in DANGEROUS:
        rule, points, what = DANGEROUS[extension]
        reasons.add(rule, f"{item.path}: {what}", points)
    if _APP_BUNDLE.search(item.path):
        reasons.add("installer", f"{item.path} is inside a macOS application bundle", 30)
    double = _DOUBLE.search(name.replace(_RTLO, ""))
    if double and double.group(1).lower() in DANGEROUS:
        reasons.add("double-extension", f"{name} hides its real type behind a document extension")
    if _RTLO in name:
        reasons.add("rtlo-name", f"{name!r} uses a right-to-left override to disguise its extension")
    if item.data is None:
        return []
    _content_type(item, extension, reasons)
    if scan is not None:
        for result in scan(item.path, item.data):
            reasons.add("scanner", f"{item.path}: {result}")
    return _macros(item, reasons)


def _content_type(item: _File, extension: str, reasons: _Reasons) -> None:
    """A reason when the content's signature is not what the file's extension claims."""
    data = item.data or b""
    for magic, what, extensions, points in MAGIC:
        if data.startswith(magic) and extension not in extensions:
            named = f".{extension}" if extension else "no extension"
            reasons.add("type-mismatch", f"{item.path} is a {what} although named with {named}", points)
            return


def _macros(item: _File, reasons: _Reasons) -> list[str]:
    """Reasons for VBA macros in an Office document (OLE or Open XML), with olevba; returns their IOCs."""
    data = item.data or b""
    if not (data.startswith(_OLE) or (data.startswith(_ZIP) and _is_office_zip(data))):
        return []
    try:
        parser = VBA_Parser(item.name, data=data)
    except Exception as exc:  # olevba raises many kinds on hostile documents; the message is still scored
        reasons.add("vba-macros", f"{item.path}: macros not analysed ({type(exc).__name__})", 0)
        return []
    try:
        if not parser.detect_vba_macros():
            return []
        found: list[tuple[str, str, str]] = parser.analyze_macros() or []
    except Exception as exc:  # as above
        reasons.add("vba-macros", f"{item.path} holds a VBA project that olevba could not read ({exc})")
        return []
    finally:
        parser.close()
    reasons.add("vba-macros", f"{item.path} contains VBA macros")
    kinds: dict[str, list[str]] = {}
    for kind, keyword, _ in found:
        kinds.setdefault(kind, []).append(keyword)
    if "AutoExec" in kinds:
        reasons.add("macro-autoexec", f"{item.path} runs macros on open: " + ", ".join(kinds["AutoExec"][:5]))
    if "Suspicious" in kinds:
        reasons.add("macro-suspicious", f"{item.path} macros use " + ", ".join(kinds["Suspicious"][:6]))
    return kinds.get("IOC", [])


def _indicator_hits(
    mail: Mail, files: list[_File], macro_iocs: list[str], indicators: IndicatorSet
) -> list[IndicatorHit]:
    """Knowledge-base indicators matched by the message's addresses, hosts, links, files and macro IOCs."""
    probes: list[tuple[str, str, str]] = [("emails", mail.from_address, "from")]
    if mail.reply_to:
        probes.append(("emails", mail.reply_to, "reply-to"))
    for name, domain in (("return-path", mail.return_path_domain), ("message-id", mail.message_id_domain)):
        if domain:
            probes.append(("hosts", domain, name))
    for hop in mail.hops:
        probes.extend(("ips", ip, "received") for ip in hop.ips)
        probes.extend(("hosts", host, "received") for host in (hop.helo, hop.rdns) if host and "." in host)
    probes.extend(("urls", link.url, "link") for link in mail.links)
    for item in files:
        probes.append(("files", item.name, f"attachment {item.path}"))
        if item.data is not None:
            digests = _digests(item.data)
            probes.extend(("hashes", digest, f"attachment {item.path}") for digest in digests)
    hits: dict[tuple[str, str], IndicatorHit] = {}
    for role, value, where in probes:
        for match in indicators.match_role(role, value):
            hits.setdefault((match.kind, match.value), _hit(indicators, match, value, where))
    for ioc in macro_iocs:
        for match in indicators.match_line(ioc):
            hits.setdefault((match.kind, match.value), _hit(indicators, match, ioc, "macro"))
    return list(hits.values())


def _digests(data: bytes) -> tuple[str, str, str]:
    return (
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
        hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    )


def _hit(indicators: IndicatorSet, match: Match, observed: str, where: str) -> IndicatorHit:
    """The hit, with the whole value observed (the link's URL, not only its host)."""
    ids = indicators.ids(match.kind, match.value)
    value = indicators.original(ids[0], match.value) if ids else match.value
    return IndicatorHit(ids, match.kind, value, observed, where)


def mail_sightings(report: MailHuntReport) -> list[Sighting]:
    """Each indicator hit as a sighting; `line` is the message's number in its file, `raw` its subject."""
    out = []
    for finding in report.findings:
        seen = _iso_date(finding.date)
        for hit in finding.hits:
            for ident in hit.indicator_ids:
                out.append(
                    Sighting(
                        indicator_id=ident,
                        kind=hit.kind,
                        value=hit.value,
                        observed=hit.observed,
                        file=finding.file,
                        line=finding.index,
                        field=hit.field,
                        raw=finding.subject,
                        first_seen=seen,
                        last_seen=seen,
                        hunt="mail",
                    )
                )
    return out


def _iso_date(value: str | None) -> str | None:
    """A Date header as ISO 8601, or None when it cannot be read."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).isoformat()
    except (TypeError, ValueError, IndexError):
        return None


def load_domains(path: Path) -> frozenset[str]:
    """Domains from a file, one a line (`#` comments, blank lines skipped); a line that is no host name is an error."""
    out = set()
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        host = normalize_host(text)
        if host is None or "." not in host or any(c in host for c in " /@"):
            raise InputError(f"{path}:{number}", f"not a domain name: {text!r}")
        out.add(host)
    return frozenset(out)


def _domain_set(domains: Collection[str]) -> frozenset[str]:
    if isinstance(domains, frozenset):
        return domains
    return frozenset(h for d in domains if (h := normalize_host(d)))


def _in_domains(host: str, domains: Collection[str]) -> bool:
    """Whether the host or one of its parent domains is in `domains`."""
    labels = host.split(".")
    return any(".".join(labels[i:]) in domains for i in range(len(labels)))


def _registrable(host: str) -> str:
    return registrable_domain(host) or host


@cache
def _freemail() -> frozenset[str]:
    """Free-mail domains: ingest's webmail list plus regional ones the case's targets use."""
    return WEBMAIL | {"yahoo.co.jp", "outlook.jp", "hotmail.co.uk", "zoho.com", "mail.com", "pm.me", "yahoo.co.uk"}


@cache
def _disposable() -> frozenset[str]:
    return _warninglist("disposable-email")


@cache
def _shorteners() -> frozenset[str]:
    return _warninglist("url-shortener")


def _warninglist(folder: str) -> frozenset[str]:
    """The hosts of one MISP warning list shipped with pymispwarninglists (never fetched)."""
    path = warninglist_folder() / folder / "list.json"
    if not path.is_file():
        return frozenset()
    data = json.loads(path.read_text(encoding="utf-8"))
    return frozenset(str(v).lower().strip(".") for v in data.get("list", []))
