"""File hunts across processes: tasks of equal size, workers kept between hunts, a dead worker, walk order."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
import yara_x
from click.testing import CliRunner

import heistwatch.cli.hunt_files  # noqa: F401  (registers `hunt files`)
from heistwatch.cli.main import cli
from heistwatch.hunt import files
from heistwatch.hunt.files import FileHunter, hunt_files, plan_tasks
from heistwatch.hunt.yara_scan import compile_rules

MARKER_RULE = 'rule Heist_Marker { strings: $a = "HEISTWATCH-MARKER" condition: $a }'


@pytest.fixture
def rules(tmp_path: Path) -> yara_x.Rules:
    path = tmp_path / "rules" / "marker.yar"
    path.parent.mkdir()
    path.write_text(MARKER_RULE)
    return compile_rules([path])


def _folder(tmp_path: Path, count: int) -> Path:
    """`count` files of 1-64 KB; every third holds the marker."""
    rng = random.Random(7)
    folder = tmp_path / "scan"
    folder.mkdir()
    for number in range(count):
        data = rng.randbytes(rng.randint(1 << 10, 64 << 10))
        if number % 3 == 0:
            data += b" HEISTWATCH-MARKER "
        (folder / f"f{number:03d}.bin").write_bytes(data)
    return folder


def test_tasks_hold_every_file_once_in_about_equal_parts_largest_first() -> None:
    rng = random.Random(1)
    sizes = [rng.randint(1, 8 << 20) for _ in range(300)] + [200 << 20]
    tasks = plan_tasks(sizes, workers=2)
    assert sorted(n for task in tasks for n in task) == list(range(len(sizes)))
    target = min(files.BATCH_BYTES, sum(sizes) // (2 * files.TASKS_PER_WORKER))
    assert tasks[0] == [300]  # larger than any task: alone, and first
    assert all(sum(sizes[n] for n in task) <= target for task in tasks if len(task) > 1)
    assert all(len(task) <= files.BATCH_FILES for task in tasks)
    firsts = [sizes[task[0]] for task in tasks]
    assert firsts == sorted(firsts, reverse=True)
    assert plan_tasks([10] * 200, workers=2) == [
        list(range(64)),
        list(range(64, 128)),
        list(range(128, 192)),
        list(range(192, 200)),
    ]
    assert plan_tasks([], workers=2) == []


def test_started_workers_share_the_hunt_and_keep_walk_order(
    tmp_path: Path, rules: yara_x.Rules, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "MIN_TASK_BYTES", 64 << 10)  # about 20 tasks
    folder = _folder(tmp_path, 40)
    alone = hunt_files([folder], rules=rules, fuzzy=False, workers=1)
    assert alone.processes == 1 and len(alone.findings) == 14
    with FileHunter(rules=rules, fuzzy=False, workers=2) as hunter:
        hunter.start()
        pids = hunter.worker_pids
        assert len(pids) == 1 and pids[0] != os.getpid()
        for _ in range(2):  # the same worker process, rules loaded once, serves both hunts
            shared = hunter.hunt([folder])
            assert shared.processes == 2
            assert shared.findings == alone.findings and shared.scanned == alone.scanned
            assert hunter.worker_pids == pids


def test_small_hunts_do_not_start_workers_and_progress_counts_bytes(tmp_path: Path, rules: yara_x.Rules) -> None:
    folder = _folder(tmp_path, 6)
    seen: list[tuple[int, int]] = []
    with FileHunter(rules=rules, fuzzy=False, workers=2) as hunter:
        report = hunter.hunt([folder], progress=lambda done, total: seen.append((done, total)))
        assert hunter.worker_pids == [] and report.processes == 1
    total = sum(p.stat().st_size for p in folder.iterdir())
    assert seen[-1] == (total, total) and [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_a_dead_worker_loses_only_its_tasks_and_the_hunt_goes_on(
    tmp_path: Path, rules: yara_x.Rules, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "MIN_TASK_BYTES", 64 << 10)
    folder = _folder(tmp_path, 30)
    with FileHunter(rules=rules, fuzzy=False, workers=2) as hunter:
        hunter.start()
        os.kill(hunter.worker_pids[0], signal.SIGKILL)
        time.sleep(0.5)
        report = hunter.hunt([folder])
        lost = [p for p in report.problems if "worker process" in p.problem]
        assert report.files + len(lost) == 30 and report.problem_count == len(lost)
        assert hunter.worker_pids == []
        again = hunter.hunt([folder])
    assert again.files == 30 and again.problem_count == 0 and again.processes == 1


def test_the_tasks_of_a_worker_that_dies_scanning_become_problems(tmp_path: Path, rules: yara_x.Rules) -> None:
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)  # reading it blocks the worker until it is killed
    task = [(0, str(fifo))]
    with FileHunter(rules=rules, fuzzy=False, workers=2) as hunter:
        hunter.start()
        worker = hunter._pool[0]
        worker.send(task)
        os.kill(worker.pid, signal.SIGKILL)
        [(returned, result)] = list(worker.receive(block=True))
    assert returned == task and result.scanned == []
    assert [(p.file, "stopped (crashed or was killed)" in p.problem) for _, p in result.problems] == [(str(fifo), True)]


def test_cli_refuses_fewer_than_one_worker(tmp_path: Path) -> None:
    args = ["--kb", str(tmp_path / "none.sqlite"), "hunt", "files", str(tmp_path), "--workers", "0", "--no-record"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "--workers" in result.output
