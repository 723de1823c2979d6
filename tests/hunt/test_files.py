"""File hunting: archives within limits, bombs and loops as problems, YARA-X rules, hash indicators, the CLI."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import py7zr
import pytest
from click.testing import CliRunner

import heistwatch.cli.hunt_files  # noqa: F401  (registers `hunt files`)
from heistwatch.cli.main import cli
from heistwatch.errors import InputError
from heistwatch.hunt import files, yara_scan
from heistwatch.hunt.files import FileHunter, Item, Limits, hunt_files, iter_contents, walk_paths
from heistwatch.hunt.logs import Problem
from heistwatch.hunt.yara_scan import compile_rules
from heistwatch.model import make_indicator

RULES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "rules" / "yara"
# The byte pattern of signature-base's APT_NK_Lazarus_RC4_Loop (wildcards filled in), behind an MZ header.
RC4_LOOP = bytes.fromhex(
    "41 FE 80 00 01 00 00 45 0F B6 00 00 01 00 00 48 FF C0 43 0F B6 00 00 41 00 80 01 01 00 00 41 0F B6 00 01 01 00 00"
)
OWN_RULE = """
rule Heist_Test_Marker : test lure {
  meta:
    author = "heistwatch tests"
    reference = "https://example.org/rule"
    license = "Detection Rule License 1.1"
  strings:
    $a = "HEISTWATCH-MARKER"
  condition:
    $a
}
"""


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def _tgz(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _contents(path: Path, limits: Limits | None = None) -> tuple[dict[str, bytes], list[Problem]]:
    items: dict[str, bytes] = {}
    problems: list[Problem] = []
    for entry in iter_contents(path, limits or Limits()):
        if isinstance(entry, Item):
            items[entry.location] = entry.data
        else:
            problems.append(entry)
    return items, problems


def _rule_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules" / "own.yar"
    path.parent.mkdir()
    path.write_text(OWN_RULE)
    return path


def test_archives_are_opened_recursively_with_member_paths(tmp_path: Path) -> None:
    inner = _zip({"inner/b.exe": b"payload-b"})
    seven = io.BytesIO()
    with py7zr.SevenZipFile(seven, "w") as archive:
        archive.writestr(b"payload-7z", "dir/c.dll")
    path = tmp_path / "a.zip"
    path.write_bytes(
        _zip({"a.zip": inner, "t.tgz": _tgz({"x/y.bin": b"payload-y"}), "s.7z": seven.getvalue(), "n.gz": b""})
    )
    (tmp_path / "d.txt.gz").write_bytes(gzip.compress(b"payload-d"))
    items, problems = _contents(path)
    assert items[f"{path}!a.zip!inner/b.exe"] == b"payload-b"
    assert items[f"{path}!t.tgz!x/y.bin"] == b"payload-y"
    assert items[f"{path}!s.7z!dir/c.dll"] == b"payload-7z"
    assert problems == []
    assert _contents(tmp_path / "d.txt.gz")[0][f"{tmp_path / 'd.txt.gz'}!d.txt"] == b"payload-d"


def test_zip_bomb_stops_at_the_size_limits_and_the_scan_goes_on(tmp_path: Path) -> None:
    zeros = b"\0" * (4 << 20)
    path = tmp_path / "bomb.zip"
    path.write_bytes(_zip({f"z{i}.bin": zeros for i in range(4)} | {"ok.txt": b"fine"}))
    assert path.stat().st_size < 100_000
    items, problems = _contents(path, Limits(max_bytes=1 << 20, max_total=8 << 20))
    assert set(items) == {str(path), f"{path}!ok.txt"}
    assert len(problems) == 4 and all("over the 1,048,576-byte limit" in p.problem for p in problems)
    items, problems = _contents(path, Limits(max_bytes=8 << 20, max_total=9 << 20))
    assert len([n for n in items if n.endswith(".bin")]) == 2
    assert sum("unpacking limit" in p.problem for p in problems) == 2


def test_member_that_lies_about_its_size_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "big.gz"
    path.write_bytes(gzip.compress(b"A" * (3 << 20)))  # gzip declares no size up front
    items, problems = _contents(path, Limits(max_bytes=1 << 20))
    assert list(items) == [str(path)]
    assert ["decompression bomb" in p.problem for p in problems] == [True]


def test_nesting_depth_and_member_count_limits(tmp_path: Path) -> None:
    data = b"deepest"
    for level in range(6):
        data = _zip({f"level{level}.zip" if level else "core.txt": data})
    path = tmp_path / "deep.zip"
    path.write_bytes(data)
    items, problems = _contents(path, Limits(max_depth=3))
    assert max(name.count("!") for name in items) == 3
    assert len(problems) == 1 and "nested deeper than 3 levels" in problems[0].problem
    deepest = str(path) + "".join(f"!level{level}.zip" for level in range(5, 0, -1)) + "!core.txt"
    assert _contents(path, Limits(max_depth=10))[0][deepest] == b"deepest"
    many = tmp_path / "many.zip"
    many.write_bytes(_zip({f"f{i}.txt": b"x" for i in range(20)}))
    items, problems = _contents(many, Limits(max_members=5))
    assert len(items) == 6 and len(problems) == 15 and "member limit" in problems[0].problem


def test_a_file_over_the_size_limit_or_gone_is_a_problem(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 2000)
    items, problems = _contents(big, Limits(max_bytes=1000))
    assert items == {} and [p.problem for p in problems] == ["2,000 bytes is over the 1,000-byte limit; not scanned"]
    items, problems = _contents(tmp_path / "gone.bin")
    assert items == {} and problems[0].problem.startswith("cannot read")


def test_damaged_archives_are_problems(tmp_path: Path) -> None:
    broken = tmp_path / "broken.zip"
    broken.write_bytes(_zip({"a.txt": b"a" * 1000})[:-30])
    truncated = tmp_path / "cut.gz"
    truncated.write_bytes(gzip.compress(os.urandom(5000))[:-100])
    for path in (broken, truncated):
        items, problems = _contents(path)
        assert list(items) == [str(path)]
        assert len(problems) == 1 and problems[0].file == str(path)


def test_symlink_loop_and_unreadable_entries_are_reported_once(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / "f.txt").write_text("f")
    (tmp_path / "d" / "e" / "up").symlink_to(tmp_path / "d")
    (tmp_path / "d" / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "d" / "same.txt").symlink_to(tmp_path / "d" / "e" / "f.txt")
    entries = list(walk_paths([tmp_path / "d"]))
    files = [e for e in entries if isinstance(e, Path)]
    problems = [e for e in entries if isinstance(e, Problem)]
    assert len(files) == 1 and files[0].name in {"f.txt", "same.txt"}
    assert sorted(p.problem.split(":")[0] for p in problems) == ["cannot read", "symlink loop"]


def test_own_rules_match_inside_archives_and_keep_metadata(tmp_path: Path) -> None:
    folder = tmp_path / "scan"
    folder.mkdir()
    (folder / "mail.zip").write_bytes(_zip({"Job offer.lnk": b"xx HEISTWATCH-MARKER xx"}))
    (folder / "clean.txt").write_bytes(b"nothing to see")
    report = hunt_files([folder], rules=compile_rules([_rule_file(tmp_path)]), workers=1)
    assert [(f.file, f.kind, f.name) for f in report.findings] == [
        (f"{folder / 'mail.zip'}!Job offer.lnk", "yara", "Heist_Test_Marker")
    ]
    rule = report.findings[0].rule
    assert rule is not None and rule.tags == ("test", "lure") and rule.namespace == "own"
    assert rule.author == "heistwatch tests" and rule.meta_value("license") == "Detection Rule License 1.1"
    assert report.files == 3 and report.problem_count == 0


def test_rules_see_the_file_name_externals_of_archive_members(tmp_path: Path) -> None:
    rules = tmp_path / "names.yar"
    rules.write_text(
        'rule Named { condition: filename == "Invoice.PDF.EXE" and extension == ".exe" and filetype == "EXE"'
        ' and filepath endswith "!docs/Invoice.PDF.EXE" }\n'
        'rule Dotfile { condition: filename == ".bashrc" and extension == "" }\n'
    )
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "mail.zip").write_bytes(_zip({"docs/Invoice.PDF.EXE": b"MZ\0\0", "home/.bashrc": b"PS1="}))
    report = hunt_files([tmp_path / "scan"], rules=compile_rules([rules]), fuzzy=False, workers=1)
    assert sorted((f.file.rsplit("!", 1)[-1], f.name) for f in report.findings) == [
        ("docs/Invoice.PDF.EXE", "Named"),
        ("home/.bashrc", "Dotfile"),
    ]


@pytest.mark.parametrize("name", ["a.tar.gz", "B.EXE", ".bashrc", "a.", "noext", "..", "a..b", ".a.b", ""])
def test_extension_is_the_paths_suffix(name: str) -> None:
    assert yara_scan._suffix(name) == PurePosixPath(name).suffix


def test_without_sha256_only_files_with_findings_are_hashed(tmp_path: Path) -> None:
    folder = tmp_path / "scan"
    folder.mkdir()
    marked, clean, known = b"xx HEISTWATCH-MARKER xx", b"nothing to see", b"known bytes " * 20
    for name, data in (("marked.doc", marked), ("clean.txt", clean), ("known.bin", known)):
        (folder / name).write_bytes(data)
    rules = compile_rules([_rule_file(tmp_path)])
    report = hunt_files([folder], rules=rules, fuzzy=False, sha256=False, workers=1)
    hashes = {Path(s.file).name: s.sha256 for s in report.scanned}
    assert hashes == {"clean.txt": None, "known.bin": None, "marked.doc": hashlib.sha256(marked).hexdigest()}
    assert [(Path(f.file).name, f.sha256) for f in report.findings] == [("marked.doc", hashes["marked.doc"])]
    by_sha = make_indicator("sha256", hashlib.sha256(known).hexdigest(), source="t")
    hunted = hunt_files([folder], rules=rules, indicators=[by_sha], fuzzy=False, sha256=False, workers=1)
    assert all(
        s.sha256 == hashlib.sha256((folder / Path(s.file).name).read_bytes()).hexdigest() for s in hunted.scanned
    )
    assert sorted((Path(f.file).name, f.kind) for f in hunted.findings) == [
        ("known.bin", "indicator"),
        ("marked.doc", "yara"),
    ]


def test_compile_error_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yar"
    bad.write_text("rule ok { condition: true }\n\nrule broken {\n  condition: $missing\n}\n")
    with pytest.raises(InputError) as caught:
        compile_rules([bad])
    assert caught.value.where == f"{bad}:4"
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no \.yar or \.yara"):
        compile_rules([tmp_path / "empty"])


@pytest.mark.skipif(not RULES.is_dir(), reason="../shared/data/rules/yara is absent")
def test_shared_rule_set_compiles_and_matches_a_crafted_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = compile_rules([RULES])
    assert sum(1 for _ in rules) >= 100
    crafted = tmp_path / "implant.exe"
    crafted.write_bytes(b"MZ" + b"\0" * 500 + RC4_LOOP + b"\0" * 500)
    (tmp_path / "benign.exe").write_bytes(b"MZ" + b"\0" * 2000)
    monkeypatch.setattr(files, "BATCH_FILES", 1)  # two tasks: one for the worker process, one for this process
    with FileHunter(rules=rules, workers=2) as hunter:
        hunter.start()  # the worker process loads the serialized rules itself
        report = hunter.hunt([tmp_path])
    assert report.processes == 2
    assert [(Path(f.file).name, f.name) for f in report.findings] == [("implant.exe", "APT_NK_Lazarus_RC4_Loop")]
    assert report.findings[0].rule is not None and report.findings[0].rule.author == "f-secure"


def test_hash_indicators_become_sightings(tmp_path: Path) -> None:
    data, other = b"dropper bytes " * 50, b"loader bytes " * 50
    (tmp_path / "drop.zip").write_bytes(_zip({"d.vbs": data}))
    (tmp_path / "loader.dll").write_bytes(other)
    by_sha = make_indicator("sha256", hashlib.sha256(data).hexdigest().upper(), source="t")
    by_md5 = make_indicator("md5", hashlib.md5(other).hexdigest(), source="t")
    report = hunt_files([tmp_path], indicators=[by_sha, by_md5], workers=1)
    assert sorted((f.file, f.kind, f.name) for f in report.findings) == [
        (f"{tmp_path / 'drop.zip'}!d.vbs", "indicator", by_sha.value),
        (str(tmp_path / "loader.dll"), "indicator", by_md5.value),
    ]
    sightings = {f.sighting.indicator_id: f.sighting for f in report.findings if f.sighting is not None}
    assert sightings[by_sha.id].kind == "sha256" and sightings[by_md5.id].field == "md5"
    assert all(s.md5 and s.sha1 is None for s in report.scanned)


def test_cli_text_and_json(tmp_path: Path) -> None:
    folder = tmp_path / "scan"
    folder.mkdir()
    (folder / "a.zip").write_bytes(_zip({"lure.doc": b"HEISTWATCH-MARKER " * 10}))
    (folder / "loop").symlink_to(folder)
    rule = _rule_file(tmp_path)
    runner = CliRunner()
    base = ["--kb", str(tmp_path / "none.sqlite"), "hunt", "files", str(folder), "--rules", str(rule)]
    text = runner.invoke(cli, [*base, "--workers", "1"])
    assert text.exit_code == 3, text.output
    assert f"{folder / 'a.zip'}!lure.doc: YARA own:Heist_Test_Marker [test, lure] by heistwatch tests" in text.output
    assert "symlink loop" in text.output and "1 findings in 2 files" in text.output
    out = runner.invoke(cli, [*base, "--json", "--ssdeep"])
    data = json.loads(out.stdout)
    assert [f["rule"]["author"] for f in data["findings"]] == ["heistwatch tests"]
    assert ["license", "Detection Rule License 1.1"] in data["findings"][0]["rule"]["meta"]
    assert data["problem_count"] == 1 and data["files"] == 2 and data["processes"] == 1  # too small for a worker
    assert all(s["ssdeep"] for s in data["scanned"]) and len(data["scanned"][0]["sha256"]) == 64
    (folder / "clean.txt").write_bytes(b"nothing to see")
    lean = json.loads(runner.invoke(cli, [*base, "--json", "--no-sha256"]).stdout)
    assert {Path(s["file"]).name: s["sha256"] is None for s in lean["scanned"]} == {
        "a.zip": True,
        "a.zip!lure.doc": False,
        "clean.txt": True,
    }
    assert len(lean["findings"][0]["sha256"]) == 64
