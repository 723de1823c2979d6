"""IOC extraction benchmark: precision, recall, F1 per type, lenient and strict, against three anchor tools.

Scores heistwatch's extractor (predictions = findings with role "indicator") and, on the same extracted text in
the same run, iocextract, ioc-finder and iocsearcher, on a folder in the ioc-corpus format (docs/ + labels/).
Both sides are normalized the same way (see the corpus README). Throughput is measured on extracted text
(PDF parsing is text extraction, not indicator extraction), on the corpus and on a >= 5 MB concatenation.
heistwatch's MB/s is per CPU-second of this process (the goal is "on one core"; the extractor is single-threaded,
and CPU time is what a busy, shared machine distorts least), with wall-clock MB/s printed beside it.
Run: .venv/bin/python benchmarks/ioc_extraction.py [--corpus DIR] [--json] [--repeats 3] [--no-anchors]
(--no-anchors scores and times heistwatch alone, for quick iterations; the anchors do not change its figures.)
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from heistwatch.ingest import Document, document_from_string, extract_indicators, extract_text
from heistwatch.ingest.extract import KINDS

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ioc-corpus"
TYPES = list(KINDS)
DPRK_TAGS = {"lazarus", "dprk"}
Pairs = set[tuple[str, str]]
Extractor = Callable[[str], Iterable[tuple[str, str]]]
_HIVES = {
    "hkey_local_machine": "hklm",
    "hkey_current_user": "hkcu",
    "hkey_classes_root": "hkcr",
    "hkey_users": "hku",
    "hkey_current_config": "hkcc",
}
_TRAILING = ".,;:!?'\"()[]{}<>*»«`"
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


def _url(value: str) -> tuple[str, str]:
    """(type, value) of a URL after the README's normalisation; a URL without a path becomes its host."""
    value = value.strip().split("<", 1)[0]
    value = re.sub(r"(?i)^https?://", "", value)
    host, sep, rest = re.split(r"(?=[/?#])", value, maxsplit=1)[0], "", ""
    if len(value) > len(host):
        sep, rest = value[len(host)], value[len(host) + 1 :]
    host = host.lower()
    full = (host + sep + rest).rstrip(_TRAILING).rstrip("/").rstrip(_TRAILING)
    if "/" not in full and "?" not in full and "#" not in full and "://" not in full:
        bare = full.rsplit(":", 1)[0] if _IPV4.match(full) else full
        return ("ipv4" if _IPV4.fullmatch(bare) else "domain"), bare
    return "url", full


def normalize(kind: str, value: str) -> tuple[str, str]:
    """(type, value) as compared by the scorer."""
    value = value.strip()
    if kind == "url":
        return _url(value)
    if kind == "filename":
        return kind, re.split(r"[\\/]", value)[-1].lower()
    if kind == "registry":
        key = value.lower().replace("\\\\", "\\").rstrip("\\")
        head, sep, rest = key.partition("\\")
        return kind, _HIVES.get(head, head) + sep + rest
    if kind == "ipv4":
        return kind, value.split(":")[0]
    if kind in ("cve", "attack_technique"):
        return kind, value.upper()
    if kind == "btc" and not value.lower().startswith("bc1"):
        return kind, value
    return kind, value.lower().rstrip(".")


def _pairs(groups: dict[str, list[str]]) -> Pairs:
    """Normalized (type, value) pairs of a label group."""
    return {normalize(kind, value) for kind, values in groups.items() for value in values}


# --- extractors -------------------------------------------------------------------------------------------------


def heistwatch_pairs(doc: Document) -> Pairs:
    """Normalized predictions of heistwatch: findings with role indicator."""
    return {normalize(f.kind, f.value) for f in extract_indicators(doc) if f.role == "indicator"}


def _iocextract(text: str) -> Iterable[tuple[str, str]]:
    """iocextract with refanging on, per type."""
    import iocextract

    yield from (("url", v) for v in iocextract.extract_urls(text, refang=True, strip=True))
    yield from (("ipv4", v) for v in iocextract.extract_ipv4s(text, refang=True))
    yield from (("ipv6", v) for v in iocextract.extract_ipv6s(text))
    yield from (("email", v) for v in iocextract.extract_emails(text, refang=True))
    yield from (("md5", v) for v in iocextract.extract_md5_hashes(text))
    yield from (("sha1", v) for v in iocextract.extract_sha1_hashes(text))
    yield from (("sha256", v) for v in iocextract.extract_sha256_hashes(text))


_FINDER = {
    "urls": "url",
    "domains": "domain",
    "ipv4s": "ipv4",
    "ipv6s": "ipv6",
    "email_addresses": "email",
    "md5s": "md5",
    "sha1s": "sha1",
    "sha256s": "sha256",
    "cves": "cve",
    "bitcoin_addresses": "btc",
    "ethereum_addresses": "eth",
    "registry_key_paths": "registry",
    "file_paths": "filename",
}


def _ioc_finder(text: str) -> Iterable[tuple[str, str]]:
    """ioc-finder's find_iocs with its defaults (URLs without scheme, domains from URLs)."""
    from ioc_finder import find_iocs

    found = find_iocs(text)
    for key, kind in _FINDER.items():
        values = found.get(key) or []
        yield from ((kind, v) for v in values if isinstance(v, str))
    techniques = found.get("attack_techniques") or {}
    if isinstance(techniques, dict):
        for values in techniques.values():
            yield from (("attack_technique", v) for v in values)


_SEARCHER = {
    "url": "url",
    "fqdn": "domain",
    "onionAddress": "domain",
    "ip4": "ipv4",
    "ip4Net": "ipv4",
    "ip6": "ipv6",
    "email": "email",
    "md5": "md5",
    "sha1": "sha1",
    "sha256": "sha256",
    "cve": "cve",
    "bitcoin": "btc",
    "ethereum": "eth",
    "registry": "registry",
    "ttp": "attack_technique",
}


def _make_iocsearcher() -> Extractor:
    """iocsearcher's Searcher, built once."""
    from iocsearcher.searcher import Searcher

    searcher = Searcher()

    def run(text: str) -> Iterable[tuple[str, str]]:
        """The typed IOCs iocsearcher finds in `text`."""
        for ioc in searcher.search_data(text):
            kind = _SEARCHER.get(ioc.name)
            if kind and not (kind == "attack_technique" and not str(ioc.value).upper().startswith("T")):
                yield kind, str(ioc.value)

    return run


def anchors() -> dict[str, Extractor]:
    """The anchor tools that are installed (pip install -e .[bench]), by name."""
    found: dict[str, Extractor] = {}
    for name, make in (
        ("iocextract", lambda: _iocextract),
        ("ioc-finder", lambda: _ioc_finder),
        ("iocsearcher", _make_iocsearcher),
    ):
        try:
            found[name] = make()
        except ImportError:
            print(f"anchor {name} not installed; skipped", file=sys.stderr)
    return found


# --- scoring ----------------------------------------------------------------------------------------------------


class Tally:
    """True positives, false positives (lenient and strict) and false negatives per type."""

    def __init__(self) -> None:
        self.tp: Counter[str] = Counter()
        self.fp: Counter[str] = Counter()
        self.fp_strict: Counter[str] = Counter()
        self.fn: Counter[str] = Counter()
        self.errors: list[tuple[str, str, str, str]] = []

    def add(self, doc_id: str, predicted: Pairs, truth: Pairs, benign: Pairs) -> None:
        """Count one document's predictions against its labels."""
        for kind, value in predicted:
            if (kind, value) in truth:
                self.tp[kind] += 1
                continue
            self.fp_strict[kind] += 1
            if (kind, value) not in benign:
                self.fp[kind] += 1
                self.errors.append(("FP", doc_id, kind, value))
        for kind, value in truth - predicted:
            self.fn[kind] += 1
            self.errors.append(("FN", doc_id, kind, value))

    def scores(self, kinds: Iterable[str] | None = None) -> dict[str, float]:
        """Precision, recall, F1 and strict precision over `kinds` (all types by default)."""
        chosen = list(kinds) if kinds is not None else TYPES
        tp = sum(self.tp[k] for k in chosen)
        fp = sum(self.fp[k] for k in chosen)
        fps = sum(self.fp_strict[k] for k in chosen)
        fn = sum(self.fn[k] for k in chosen)
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        strict = tp / (tp + fps) if tp + fps else 1.0
        return {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "strict_precision": round(strict, 4),
        }

    def per_type(self) -> dict[str, dict[str, float]]:
        """Scores for each type that occurs in labels or predictions."""
        return {k: self.scores([k]) for k in TYPES if self.tp[k] + self.fp_strict[k] + self.fn[k]}


def load_corpus(folder: Path) -> list[tuple[dict[str, Any], Document]]:
    """(label, extracted document) for every labelled document in an ioc-corpus folder."""
    items = []
    for label_path in sorted((folder / "labels").glob("*.json")):
        label = json.loads(label_path.read_text(encoding="utf-8"))
        items.append((label, extract_text(folder / label["file"])))
    return items


def _mb_per_s(fn: Callable[[], object], size: int, repeats: int) -> tuple[float, float]:
    """Median MB per CPU-second and per wall-clock second over `repeats` runs of `fn` over `size` bytes of text."""
    cpu, wall = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return round(size / 1e6 / statistics.median(cpu), 2), round(size / 1e6 / statistics.median(wall), 2)


def evaluate(folder: Path, repeats: int, with_anchors: bool = True) -> dict[str, Any]:
    """Score every tool on the corpus, overall and on the DPRK subset, and time heistwatch."""
    corpus = load_corpus(folder)
    size = sum(len(doc.text.encode("utf-8")) for _, doc in corpus)
    tools: dict[str, Callable[[Document], Pairs]] = {"heistwatch": heistwatch_pairs}
    for name, fn in (anchors() if with_anchors else {}).items():
        tools[name] = lambda doc, fn=fn: {normalize(k, v) for k, v in fn(doc.text)}  # type: ignore[misc]
    tallies = {name: (Tally(), Tally()) for name in tools}
    speed: dict[str, float] = {}
    for name, tool in tools.items():
        all_tally, dprk_tally = tallies[name]
        start = time.perf_counter()
        for label, doc in corpus:
            predicted = tool(doc)
            truth, benign = _pairs(label["iocs"]), _pairs(label.get("benign", {}))
            all_tally.add(label["doc_id"], predicted, truth, benign)
            if DPRK_TAGS & set(label.get("tags", [])):
                dprk_tally.add(label["doc_id"], predicted, truth, benign)
        speed[name] = round(size / 1e6 / (time.perf_counter() - start), 2)
    speed["heistwatch"], wall = _mb_per_s(lambda: [extract_indicators(d) for _, d in corpus], size, repeats)
    big = _concatenation([doc.text for _, doc in corpus])
    big_speed, big_wall = _mb_per_s(lambda: extract_indicators(big), len(big.text.encode("utf-8")), repeats)
    return {
        "tallies": tallies,
        "speed": speed,
        "wall": wall,
        "big_speed": big_speed,
        "big_wall": big_wall,
        "size": size,
        "big": len(big.text),
    }


def _concatenation(texts: list[str], minimum: int = 5_000_000) -> Document:
    """All texts, repeated until at least `minimum` characters, as one plain-text document."""
    joined = "\n\n".join(texts)
    return document_from_string(joined * (minimum // max(1, len(joined)) + 1), "txt", "concatenation")


def _row(name: str, scores: dict[str, float]) -> str:
    """One table row of scores."""
    keys = ("precision", "recall", "f1", "strict_precision")
    return f"{name:<18}" + "".join(f"{scores[k]:>10.3f}" for k in keys)


def render(result: dict[str, Any]) -> str:
    """The human-readable report."""
    lines = [f"corpus: {result['size'] / 1e6:.2f} MB of extracted text; concatenation {result['big'] / 1e6:.2f} MB"]
    header = f"{'':<18}{'P':>10}{'R':>10}{'F1':>10}{'strict P':>10}"
    for name, (tally, dprk) in result["tallies"].items():
        lines += ["", f"== {name}  ({result['speed'][name]} MB/s on the corpus)", header]
        lines += [_row(kind, scores) for kind, scores in tally.per_type().items()]
        lines += [_row("OVERALL", tally.scores()), _row("DPRK subset", dprk.scores())]
    best = max((s for n, s in result["speed"].items() if n != "heistwatch"), default=0.0)
    lines += [
        "",
        f"heistwatch: {result['speed']['heistwatch']} MB per CPU-second on the corpus ({result['wall']} MB/s wall),"
        f" {result['big_speed']} on the concatenation ({result['big_wall']} wall), medians; best anchor {best} MB/s",
    ]
    return "\n".join(lines)


def as_json(result: dict[str, Any]) -> dict[str, Any]:
    """The --json report."""
    entries = {
        name: {"overall": tally.scores(), "per_type": tally.per_type(), "mb_per_s": result["speed"][name]}
        for name, (tally, _) in result["tallies"].items()
    }
    heistwatch = entries.pop("heistwatch")
    heistwatch.update(
        mb_per_s_wall=result["wall"], big_mb_per_s=result["big_speed"], big_mb_per_s_wall=result["big_wall"]
    )
    return {"heistwatch": heistwatch, "anchors": entries}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-anchors", action="store_true", help="score heistwatch only")
    parser.add_argument("--errors", type=Path, help="write heistwatch's FP/FN list to this file")
    args = parser.parse_args(argv)
    result = evaluate(args.corpus, args.repeats, not args.no_anchors)
    if args.errors:
        errors = sorted(result["tallies"]["heistwatch"][0].errors)
        args.errors.write_text("\n".join("\t".join(e) for e in errors) + "\n", encoding="utf-8")
    print(json.dumps(as_json(result), indent=2) if args.json else render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
