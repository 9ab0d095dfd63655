"""`memsleuth watch` on real Python processes whose memory has a known shape."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import memsleuth, program, watch_args


def watch_workload(tmp_path: Path, kind: str, seconds: float) -> tuple[dict, dict]:
    capture = tmp_path / f"{kind}.msl"
    truth = tmp_path / f"{kind}.json"
    result = memsleuth(*watch_args(capture, "workload.py", kind, str(seconds), str(truth)))
    assert result.returncode == 0, result.stderr
    assert "verdict:" in result.stderr
    summary = memsleuth("report", "summary", "--json", str(capture))
    assert summary.returncode == 0, summary.stderr
    return summary.json(), json.loads(truth.read_text())


def test_steady_leak_is_growing_at_the_true_rate(tmp_path: Path) -> None:
    report, truth = watch_workload(tmp_path, "leak", 5)
    verdict = report["verdict"]
    assert verdict["kind"] == "growing", verdict
    assert verdict["rate"] == pytest.approx(truth["rate"], rel=0.20)
    assert verdict["rate_low"] <= verdict["rate"] <= verdict["rate_high"]
    assert report["end"]["reason"] == "target_exited"
    assert report["end"]["target_exit"] == {"code": 0}
    assert not report["end"]["cut_short"]


def test_bounded_cache_is_a_plateau_not_a_leak(tmp_path: Path) -> None:
    report, _ = watch_workload(tmp_path, "plateau", 7)
    assert report["verdict"]["kind"] == "plateau", report["verdict"]
    # it did grow by the size of the cache (~30 MiB) before levelling off
    assert report["peak"] - report["first"] > 20 * 2**20


def test_allocate_free_cycles_are_not_growing(tmp_path: Path) -> None:
    report, _ = watch_workload(tmp_path, "sawtooth", 5)
    assert report["verdict"]["kind"] in ("sawtooth", "stable"), report["verdict"]


def test_flat_program_is_stable(tmp_path: Path) -> None:
    report, _ = watch_workload(tmp_path, "stable", 4)
    assert report["verdict"]["kind"] == "stable", report["verdict"]


@pytest.mark.parametrize("start_method", ["spawn", "fork"])
def test_leaking_multiprocessing_child_is_blamed(tmp_path: Path, start_method: str) -> None:
    capture = tmp_path / "tree.msl"
    result = memsleuth(*watch_args(capture, "multiproc_leak.py", "4", start_method))
    assert result.returncode == 0, result.stderr
    report = memsleuth("report", "summary", "--json", str(capture)).json()
    procs = {p["pid"]: p for p in report["processes"]}
    root = next(p for p in procs.values() if p["root"])
    assert root["verdict"]["kind"] != "growing", root
    growing = [p for p in procs.values() if p["verdict"]["kind"] == "growing"]
    assert len(growing) == 1, procs
    child = growing[0]
    assert not child["root"]
    assert child["verdict"]["rate"] == pytest.approx(256 * 1024 / 0.02, rel=0.3)
    # the headline says the run leaks, and in which process
    assert report["verdict"]["kind"] == "growing"
    assert report["verdict_pid"] in (None, child["pid"])
    assert f"pid {child['pid']}" in result.stderr
    # the text summary names the culprit
    assert "growth comes from: pid" in result.stderr


def test_target_killed_with_sigkill_still_gives_a_complete_capture(tmp_path: Path) -> None:
    capture = tmp_path / "killed.msl"
    code = (
        "import os, signal, time\n"
        "kept = []\n"
        "for i in range(60):\n"
        "    kept.append(bytes([i % 250 + 1]) * 262144); time.sleep(0.02)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = memsleuth(
        "watch", "-q", "-i", "50ms", "-o", str(capture), "--", sys.executable, "-c", code
    )
    assert result.returncode == 128 + 9, result.stderr
    assert "killed by signal 9 (SIGKILL)" in result.stderr
    report = memsleuth("report", "summary", "--json", str(capture)).json()
    assert report["end"]["target_exit"] == {"signal": 9}
    assert not report["end"]["cut_short"]
    assert report["verdict"]["kind"] == "growing"


def test_watch_by_pid_for_a_duration(tmp_path: Path) -> None:
    import subprocess

    child = subprocess.Popen([sys.executable, program("workload.py"), "leak", "30"])
    try:
        capture = tmp_path / "pid.msl"
        result = memsleuth(
            "watch",
            "-q",
            "-p",
            str(child.pid),
            "-i",
            "50ms",
            "--duration",
            "2.5s",
            "-o",
            str(capture),
            "--json",
        )
        assert result.returncode == 0, result.stderr
        report = result.json()
        assert report["pid"] == child.pid
        assert report["end"]["reason"] == "duration"
        assert report["verdict"]["kind"] == "growing"
        assert child.poll() is None, "watch must not stop the program it watches"
    finally:
        child.kill()
        child.wait()


def test_check_flag_fails_a_leaking_run(tmp_path: Path) -> None:
    check = ("--check",)
    result = memsleuth(*watch_args(tmp_path / "c.msl", "workload.py", "leak", "3", flags=check))
    assert result.returncode == 3, result.stderr
    result = memsleuth(*watch_args(tmp_path / "s.msl", "workload.py", "stable", "3", flags=check))
    assert result.returncode == 0, result.stderr
