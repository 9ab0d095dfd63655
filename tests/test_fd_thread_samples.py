"""Open file descriptors and threads, sampled with memory (format 1.3), on real programs: a
program that opens 200 files and starts 20 waiting threads must show both rises in its capture,
under `watch` (read from outside: threads from /proc/<pid>/status) and under `run` (the process
reads itself)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import FIXTURES, memsleuth, program, watch_args

FILES, THREADS = 200, 20

Points = list[dict[str, Any]]


def root_points(capture: Path) -> Points:
    """The root process' points from `report timeline --json`."""
    result = memsleuth("report", "timeline", "--json", str(capture))
    assert result.returncode == 0, result.stderr
    processes = result.json()["timeline"]["processes"]
    points: Points = next(p for p in processes if p["root"])["points"]
    return points


def counts(points: Points, metric: str) -> list[int]:
    values = [p[metric] for p in points]
    assert all(isinstance(v, int) for v in values), values
    return values


def wait_until(
    what: str, done: Callable[[], bool], proc: subprocess.Popen[str], seen: Callable[[], object]
) -> None:
    """Waits for `done()`; fails after a minute (a guard against hanging, not a measure of
    speed) or when memsleuth ends first, saying what `seen()` saw."""
    deadline = time.monotonic() + 60
    while not done():
        assert proc.poll() is None, f"memsleuth ended while waiting for {what}: {seen()}"
        assert time.monotonic() < deadline, f"no {what} within a minute: {seen()}"
        time.sleep(0.05)


def live_points(capture: Path) -> Points:
    """The root's points flushed so far (none before the first flush)."""
    if not capture.exists():
        return []
    result = memsleuth("report", "timeline", "--json", str(capture))
    if result.returncode != 0:
        return []
    processes = result.json()["timeline"]["processes"]
    return next((p["points"] for p in processes if p["root"]), [])


@pytest.mark.parametrize("command", ["watch", "run"])
def test_files_and_threads_a_program_keeps_rise_in_its_capture(
    tmp_path: Path, command: str
) -> None:
    capture, cues = tmp_path / "kept.msl", tmp_path / "cues"
    cues.mkdir()
    script = ["fds_threads.py", str(FILES), str(THREADS), str(cues)]
    if command == "watch":
        argv = watch_args(capture, *script, interval="20ms")
    else:
        argv = ["run", "--no-report", "-o", str(capture), program(script[0]), *script[1:]]
    proc = subprocess.Popen(
        [sys.executable, "-m", "memsleuth", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # samples of the idle program. Not the first samples: a starting program can hold more
        # (descriptors of the exec, of its imports), and under `run` the program may be running
        # before memsleuth's first reading. A flush writes every sample taken before it, so once
        # the program is idle, the samples of the second flush seen after that were taken idle
        wait_until("idle program", (cues / "idle").exists, proc, lambda: sorted(cues.iterdir()))
        flushed = [len(live_points(capture))]

        def flushed_again() -> bool:
            n = len(live_points(capture))
            if n > flushed[-1]:
                flushed.append(n)
            return len(flushed) >= 3

        def seen() -> object:
            points = live_points(capture)
            return {"flushed": flushed, "samples": len(points), "last": points[-5:]}

        wait_until("two flushes of the idle program", flushed_again, proc, seen)
        idle_points = live_points(capture)[flushed[1] :]
        idle_fds = min(counts(idle_points, "fds"))
        idle_threads = min(counts(idle_points, "threads"))
        (cues / "start").touch()

        def kept_seen() -> bool:
            return any(
                (p["fds"] or 0) >= idle_fds + FILES
                and (p["threads"] or 0) >= idle_threads + THREADS
                for p in live_points(capture)
            )

        wait_until("sample with the files and threads", kept_seen, proc, seen)
    finally:
        # both cues, so the program ends now whatever step failed
        (cues / "start").touch()
        (cues / "go").touch()
        try:
            _, stderr = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, stderr
    # the finished capture says the same: both counts rose over the run
    points = root_points(capture)
    fds, threads = counts(points, "fds"), counts(points, "threads")
    assert max(fds) - min(fds) >= FILES, fds
    assert fds.index(max(fds)) > fds.index(min(fds)), fds
    assert max(threads) - min(threads) >= THREADS, threads
    assert threads.index(max(threads)) > threads.index(min(threads)), threads
    summary = memsleuth("report", "summary", str(capture))
    assert summary.returncode == 0, summary.stderr
    assert "open fds " in summary.stdout, summary.stdout
    assert "; threads " in summary.stdout, summary.stdout


def test_golden_1_3_capture_gives_the_series() -> None:
    points = root_points(FIXTURES / "v1.3" / "fds-threads.msl")
    assert counts(points, "fds") == [7, 107, 207, 307, 407]
    assert counts(points, "threads") == [1, 11, 21, 31, 41]


def test_captures_before_1_3_have_no_counts() -> None:
    points = root_points(FIXTURES / "v1.0" / "leak.msl")
    assert points
    assert all(p["fds"] is None and p["threads"] is None for p in points)
