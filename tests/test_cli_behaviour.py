"""How the command behaves around the work: terminal status line, being killed, entry points."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import memsleuth, program, watch_args


def test_status_line_on_a_terminal(tmp_path: Path) -> None:
    main, secondary = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "memsleuth",
            "watch",
            "-i",
            "50ms",
            "-o",
            str(tmp_path / "t.msl"),
            "--",
            sys.executable,
            program("workload.py"),
            "leak",
            "2",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=secondary,
    )
    os.close(secondary)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the other side closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(main)
    assert proc.wait(timeout=60) == 0
    text = seen.decode(errors="replace")
    assert "\r\x1b[K  watching" in text  # redrawn in place
    assert "rss" in text
    assert "peak" in text
    assert "trend +" in text  # the leak shows in the live trend
    assert "verdict: GROWING" in text


def test_no_status_line_when_not_a_terminal(tmp_path: Path) -> None:
    result = memsleuth(
        "watch",
        "-i",
        "50ms",
        "-o",
        str(tmp_path / "n.msl"),
        "--",
        sys.executable,
        program("workload.py"),
        "stable",
        "1",
    )
    assert result.returncode == 0, result.stderr
    assert "\x1b[K" not in result.stderr


def children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def test_watch_killed_with_sigkill_leaves_a_readable_capture(tmp_path: Path) -> None:
    capture = tmp_path / "k.msl"
    watcher = subprocess.Popen(
        [sys.executable, "-m", "memsleuth", *watch_args(capture, "workload.py", "leak", "30")],
        stderr=subprocess.DEVNULL,
    )
    time.sleep(3.0)  # a few once-a-second flushes
    targets = children_of(watcher.pid)
    watcher.send_signal(signal.SIGKILL)
    watcher.wait()
    for pid in targets:
        os.kill(pid, signal.SIGKILL)
    result = memsleuth("report", "summary", str(capture))
    assert result.returncode == 0, result.stderr
    assert "cut short" in result.stderr
    assert "verdict: GROWING" in result.stdout
    data = memsleuth("report", "summary", "--json", str(capture)).json()
    assert data["end"]["cut_short"]
    assert data["end"]["samples"] >= 20


def test_console_script_and_version() -> None:
    script = Path(sys.executable).parent / "memsleuth"
    assert script.exists(), "pip install must put a `memsleuth` command next to python"
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    import memsleuth as m

    assert out.stdout.strip() == f"memsleuth {m.__version__}"


def test_help_teaches() -> None:
    result = memsleuth("watch", "--help")
    assert result.returncode == 0
    for words in ("--interval", "--duration", "-p, --pid", "Examples:", "verdict"):
        assert words in result.stdout, words


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_finishes_the_capture_and_says_the_command_runs_on(
    tmp_path: Path, sig: signal.Signals
) -> None:
    capture = tmp_path / "i.msl"
    log = tmp_path / "stderr.txt"
    with log.open("w") as err:
        # stderr to a file: the command left running inherits it and would hold a pipe open
        watcher = subprocess.Popen(
            [sys.executable, "-m", "memsleuth", *watch_args(capture, "workload.py", "leak", "30")],
            stderr=err,
        )
    time.sleep(2.0)
    targets = children_of(watcher.pid)
    watcher.send_signal(sig)  # only memsleuth: as from `kill`, not a terminal's Ctrl-C
    try:
        assert watcher.wait(timeout=30) == 130
        stderr = log.read_text()
        assert "ended: interrupted" in stderr
        assert "verdict: GROWING" in stderr
        assert "is still running; memsleuth stopped watching it" in stderr
        assert "Traceback" not in stderr
        data = memsleuth("report", "summary", "--json", str(capture)).json()
        assert data["end"]["reason"] == "interrupted"
        assert not data["end"]["cut_short"]
    finally:
        for pid in targets:
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(("command", "code"), [(["true"], 0), (["sh", "-c", "exit 7"], 7)])
def test_a_program_that_ends_at_once_is_watched_the_same_way_every_time(
    tmp_path: Path, command: list[str], code: int
) -> None:
    """It used to depend on a race: the program could be gone before memsleuth opened it, or
    before its first sample, or not. Now it never has a sample: memsleuth says so, writes no
    capture and exits with the program's code."""
    for i in range(30):
        capture = tmp_path / f"t{i}.msl"
        result = memsleuth("watch", "-q", "-o", str(capture), "--", *command)
        assert result.returncode == code, result.stderr
        assert "error" not in result.stderr
        assert "exited" in result.stderr
        assert "before its first sample" in result.stderr
        assert not capture.exists()


def test_the_first_sample_is_of_the_running_program(tmp_path: Path) -> None:
    """Not of the page or two a program holds between exec and its dynamic loader ("4.0 KiB at
    start")."""
    for i in range(5):
        capture = tmp_path / f"p{i}.msl"
        result = memsleuth(*watch_args(capture, "workload.py", "stable", "0.5", interval="20ms"))
        assert result.returncode == 0, result.stderr
        data = memsleuth("report", "timeline", "--json", str(capture)).json()
        first = data["timeline"]["total"][0]
        assert first["rss"] >= 1 << 20, first


def test_a_process_that_calls_exec_is_still_watched(tmp_path: Path) -> None:
    """`sh -c '...; exec python ...'` (and pyenv's shims) replace the root process' program; the
    root is still there and its new program is what gets measured."""
    capture = tmp_path / "exec.msl"
    script = f"sleep 0.3; exec {sys.executable} {program('workload.py')} stable 1"
    result = memsleuth("watch", "-q", "-i", "50ms", "-o", str(capture), "--", "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    data = memsleuth("report", "timeline", "--json", str(capture)).json()
    root = data["timeline"]["pid"]
    points = next(p for p in data["timeline"]["processes"] if p["pid"] == root)["points"]
    # the shell alone is a few MiB at most; the interpreter it became is more
    assert max(p["rss"] for p in points) >= 6 << 20, points[-1]
    assert points[-1]["t"] >= 0.8, [p["t"] for p in points]
