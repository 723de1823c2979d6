"""Log readers and the log hunt: formats, compression, bad input, resuming, and readers that never crash."""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import json
from pathlib import Path
from unittest import mock

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heistwatch import hunt
from heistwatch.errors import InputError
from heistwatch.hunt import IndicatorSet, hunt_logs, logs, logs_hunt
from heistwatch.hunt.logs import LineParser, read_blocks

ROWS = [
    {"ts": "2026-01-01T00:00:01Z", "host": "A.EVIL.COM.", "dst_ip": "11.2.3.45"},
    {"ts": "2026-01-01T00:00:02Z", "url": "https://google.com/search?q=evil.com", "src_ip": "1.2.3.4"},
    {"ts": "2026-01-01T00:00:03Z", "host": "notevil.com", "md5": "D41D8CD98F00B204E9800998ECF8427E"},
    {
        "ts": "2026-01-01T00:00:04Z",
        "host": "evil.com.cdn-x.net",
        "wallet": "0xAbCdEf0000000000000000000000000000000001",
    },
]
ZEEK = (
    "#separator \\x09\n#fields\tts\tuid\tid.orig_h\tid.resp_h\thost\turi\n"
    "#types\ttime\tstring\taddr\taddr\tstring\tstring\n"
    "1700000000.5\tC1\t10.0.0.1\t1.2.3.4\tbad.org\t/payload?x=1\n"
    "1700000009.5\tC2\t10.0.0.1\t9.9.9.9\twww.evil.com\t/\n"
)


@pytest.fixture
def iset() -> IndicatorSet:
    return IndicatorSet.from_values(
        [
            ("i-dom", "domain", "evil.com"),
            ("i-ip", "ipv4", "1.2.3.0/24"),
            ("i-md5", "md5", "d41d8cd98f00b204e9800998ecf8427e"),
            ("i-eth", "eth", "0xabcdef0000000000000000000000000000000001"),
            ("i-url", "url", "http://bad.org/payload"),
        ]
    )


def jsonl(rows: list[dict[str, str]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def found(report: logs_hunt.HuntReport) -> list[tuple[str, str, int, int]]:
    return sorted((s.indicator_id, Path(s.file).name, s.line, s.count) for s in report.sightings)


@pytest.mark.parametrize("prefilter", [True, False])
def test_jsonl_plain_gzip_zstd(tmp_path: Path, iset: IndicatorSet, prefilter: bool) -> None:
    data = jsonl(ROWS)
    (tmp_path / "a.jsonl").write_bytes(data)
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(data))
    (tmp_path / "c.zst").write_bytes(zstandard.ZstdCompressor().compress(data))
    paths = sorted(tmp_path.iterdir())
    report = hunt_logs(paths, iset, workers=2, prefilter=prefilter)
    for name in ("a.jsonl", "b.jsonl.gz", "c.zst"):
        assert [f for f in found(report) if f[1] == name] == [
            ("i-dom", name, 1, 1),
            ("i-eth", name, 4, 1),
            ("i-ip", name, 2, 1),
            ("i-md5", name, 3, 1),
        ]
    assert report.lines == 12 and report.problem_count == 0


def test_zeek_http_and_csv(tmp_path: Path, iset: IndicatorSet) -> None:
    (tmp_path / "http.log").write_text(ZEEK)
    (tmp_path / "proxy.csv").write_text('ts,host,dst_ip\n2026-01-01,"x.evil.com",8.8.8.8\n2026-01-02,ok.org,1.2.3.9\n')
    report = hunt_logs(sorted(tmp_path.iterdir()), iset, workers=1)
    assert found(report) == [
        ("i-dom", "http.log", 5, 1),
        ("i-dom", "proxy.csv", 2, 1),
        ("i-ip", "http.log", 4, 1),
        ("i-ip", "proxy.csv", 3, 1),
        ("i-url", "http.log", 4, 1),
    ]
    (url,) = [s for s in report.sightings if s.indicator_id == "i-url"]
    assert (url.field, url.first_seen, url.value) == ("uri", "1700000000.5", "http://bad.org/payload")


def test_counts_and_time_span_aggregate(tmp_path: Path, iset: IndicatorSet) -> None:
    rows = [{"ts": f"2026-01-0{d}", "host": "evil.com"} for d in (3, 1, 2)]
    (tmp_path / "a.jsonl").write_bytes(jsonl(rows))
    (sighting,) = hunt_logs([tmp_path / "a.jsonl"], iset).sightings
    assert (sighting.count, sighting.first_seen, sighting.last_seen, sighting.line) == (
        3,
        "2026-01-01",
        "2026-01-03",
        1,
    )


def test_bad_input_is_reported_and_the_hunt_goes_on(tmp_path: Path, iset: IndicatorSet) -> None:
    data = jsonl(ROWS[:1]) + b'{not json evil.com\n\xff\xfe{"host": "evil.com"}\n[1, "evil.com"]\n' + jsonl(ROWS[:1])
    (tmp_path / "a.jsonl").write_bytes(data)
    (tmp_path / "broken.gz").write_bytes(gzip.compress(jsonl(ROWS * 50))[:300])
    report = hunt_logs(sorted(tmp_path.iterdir()), iset, workers=2)
    problems = {(Path(p.file).name, p.line) for p in report.problems}
    assert {("a.jsonl", 2), ("a.jsonl", 3), ("a.jsonl", 4)} <= problems
    assert any(name == "broken.gz" for name, _ in problems)
    assert ("i-dom", "a.jsonl", 1, 2) in found(report)


def test_gigantic_line_is_skipped(tmp_path: Path, iset: IndicatorSet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "MAX_LINE_BYTES", 100)
    monkeypatch.setattr(logs, "BLOCK_BYTES", 64)
    big = b'{"host": "evil.com", "pad": "' + b"x" * 500 + b'"}\n'
    (tmp_path / "a.jsonl").write_bytes(jsonl(ROWS[:1]) + big + jsonl(ROWS[:1]))
    report = hunt_logs([tmp_path / "a.jsonl"], iset, workers=1)
    assert [(p.line, "longer" in p.problem) for p in report.problems] == [(2, True)]
    assert found(report) == [("i-dom", "a.jsonl", 1, 2)]


def test_split_ranges_number_lines_like_one_pass(
    tmp_path: Path, iset: IndicatorSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [{"host": "evil.com" if i % 37 == 0 else "ok.org", "n": "x" * (i % 13)} for i in range(400)]
    (tmp_path / "a.jsonl").write_bytes(jsonl(rows))
    whole = hunt_logs([tmp_path / "a.jsonl"], iset, workers=1)
    monkeypatch.setattr(logs_hunt, "SPLIT_BYTES", 1000)
    monkeypatch.setattr(logs_hunt, "MIN_SPLIT_BYTES", 1000)
    split = hunt_logs([tmp_path / "a.jsonl"], iset, workers=2)
    assert found(split) == found(whole) == [("i-dom", "a.jsonl", 1, 11)]
    assert split.lines == whole.lines == 400


def test_resume_skips_finished_tasks(tmp_path: Path, iset: IndicatorSet) -> None:
    (tmp_path / "a.jsonl").write_bytes(jsonl(ROWS))
    state = tmp_path / "state.json"
    first = hunt_logs([tmp_path / "a.jsonl"], iset, state_path=state)
    again = hunt_logs([tmp_path / "a.jsonl"], iset, state_path=state)
    assert again.resumed_tasks == 1 and found(again) == found(first)
    assert json.loads(state.read_text())["version"] == 1
    other = IndicatorSet.from_values([("i-other", "domain", "other.example")])
    with pytest.raises(InputError, match="other indicators or options"):
        hunt_logs([tmp_path / "a.jsonl"], other, state_path=state)
    with pytest.raises(InputError, match="other indicators or options"):
        hunt_logs([tmp_path / "a.jsonl"], iset, state_path=state, prefilter=False)
    state.write_text("{}")
    with pytest.raises(InputError, match="not a hunt state file"):
        hunt_logs([tmp_path / "a.jsonl"], iset, state_path=state)


def test_progress_reports_bytes(tmp_path: Path, iset: IndicatorSet) -> None:
    (tmp_path / "a.jsonl").write_bytes(jsonl(ROWS))
    (tmp_path / "b.jsonl").write_bytes(jsonl(ROWS))
    seen: list[tuple[int, int]] = []
    hunt_logs(sorted(tmp_path.iterdir()), iset, progress=lambda done, total: seen.append((done, total)))
    size = len(jsonl(ROWS))
    assert sorted(seen) == [(size, 2 * size), (2 * size, 2 * size)]


def test_free_text_fallback_uses_the_extractor(tmp_path: Path, iset: IndicatorSet) -> None:
    (tmp_path / "a.jsonl").write_bytes(jsonl([{"msg": "beacon to hxxp://x.evil[.]com/a"}]))
    assert found(hunt_logs([tmp_path / "a.jsonl"], iset)) == []
    assert found(hunt_logs([tmp_path / "a.jsonl"], iset, scan_text=True, prefilter=False)) == [
        ("i-dom", "a.jsonl", 1, 1)
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000), fmt=st.sampled_from(logs.FORMATS))
def test_readers_never_crash_on_arbitrary_bytes(data: bytes, fmt: str) -> None:
    parser = LineParser(fmt, data[:200])
    for block in read_blocks(io.BytesIO(data), None):
        for raw in (block or b"").split(b"\n"):
            with contextlib.suppress(ValueError):
                parser.parse(raw.decode("utf-8", "replace"))


def test_text_format_scans_free_text(tmp_path: Path, iset: IndicatorSet) -> None:
    (tmp_path / "syslog").write_text("Nov 26 sshd: from 1.2.3.77 port 22\nNov 26 curl notevil.com 11.2.3.45\n")
    report = hunt_logs([tmp_path / "syslog"], iset, log_format="text")
    assert [(s.indicator_id, s.line, s.field) for s in report.sightings] == [("i-ip", 1, "(line)")]


def test_missing_file_and_unknown_format_are_input_errors(tmp_path: Path, iset: IndicatorSet) -> None:
    with pytest.raises(InputError, match="cannot read"):
        hunt_logs([tmp_path / "absent.jsonl"], iset)
    with pytest.raises(InputError, match="unknown log format"):
        hunt_logs([], iset, log_format="evtx")


def test_public_api_is_sorted_and_importable() -> None:
    assert hunt.__all__ == sorted(hunt.__all__)
    assert all(hasattr(hunt, name) for name in hunt.__all__)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(min_size=0, max_size=30).map(lambda b: b.replace(b"\n", b"x")), min_size=1, max_size=12),
    st.booleans(),
    st.lists(st.integers(min_value=1, max_value=400), max_size=4),
)
def test_byte_ranges_read_every_line_once(lines: list[bytes], final_newline: bool, cuts: list[int]) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline else b"")
    bounds = sorted({0, *(c for c in cuts if c < len(data)), len(data)})
    seen: list[bytes] = []
    with mock.patch.object(logs, "BLOCK_BYTES", 7):
        for start, end in itertools.pairwise(bounds):
            stream = io.BytesIO(data)
            offset = start
            if start:
                stream.seek(start - 1)
                offset += len(stream.readline()) - 1
            for block in logs.read_blocks(stream, end - offset):
                assert block is not None
                seen += _lines(block)
    assert seen == _lines(data)


def _lines(data: bytes) -> list[bytes]:
    """The lines of `data`; a final newline ends the last line rather than starting an empty one."""
    return data.split(b"\n")[:-1] if data.endswith(b"\n") or not data else data.split(b"\n")
