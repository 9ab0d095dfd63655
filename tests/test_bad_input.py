"""Every bad input gives one clear error line, a non-zero exit, and no panic or traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import FIXTURES, memsleuth

GOLDEN = FIXTURES / "v1.0" / "leak.msl"


def test_pid_that_does_not_exist() -> None:
    line = memsleuth("watch", "-p", "4194303").assert_clean_failure()
    assert "no process with PID 4194303" in line


def test_pid_that_has_exited() -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    line = memsleuth("watch", "-p", str(child.pid)).assert_clean_failure()
    assert f"no process with PID {child.pid}" in line


def test_pid_of_another_user_without_permission(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        # not root: any root-owned process is foreign
        line = memsleuth("watch", "-p", "1", "-o", str(tmp_path / "x.msl")).assert_clean_failure()
        assert "no permission" in line
        return
    # root: drop to `nobody` inside a child that has already loaded memsleuth, and watch a
    # root-owned process from there
    target = subprocess.Popen(["sleep", "30"])
    try:
        code = (
            "import os, sys\n"
            "from memsleuth import _native\n"
            "os.chdir('/tmp'); os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
            f"sys.exit(_native.cli_main(['memsleuth', 'watch', '-p', '{target.pid}']))\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        from conftest import Result

        line = Result(proc).assert_clean_failure()
        assert f"no permission to read the memory of PID {target.pid}" in line
        assert "run memsleuth as that user or as root" in line
    finally:
        target.kill()
        target.wait()


def test_command_not_found(tmp_path: Path) -> None:
    line = memsleuth(
        "watch", "-o", str(tmp_path / "x.msl"), "--", "no-such-program-xyz"
    ).assert_clean_failure()
    assert "command not found: `no-such-program-xyz`" in line


def test_unwritable_output_path(tmp_path: Path) -> None:
    out = tmp_path / "no" / "such" / "dir" / "x.msl"
    line = memsleuth("watch", "-o", str(out), "--", "true").assert_clean_failure()
    assert "cannot write capture" in line
    assert "No such file or directory" in line
    assert "-o" in line


def test_nothing_to_watch() -> None:
    line = memsleuth("watch").assert_clean_failure()
    assert "nothing to watch" in line


def test_unknown_option_and_bad_duration() -> None:
    result = memsleuth("watch", "--frobnicate")
    line = result.assert_clean_failure()
    assert result.returncode == 2
    assert "--frobnicate" in line
    line = memsleuth("watch", "--interval", "fast", "--", "true").assert_clean_failure()
    assert "not a duration" in line


def test_missing_capture() -> None:
    line = memsleuth("report", "summary", "/nonexistent/x.msl").assert_clean_failure()
    assert "does not exist" in line


def test_foreign_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.msl"
    bad.write_bytes(b"PK\x03\x04 this is a zip file, not a capture")
    line = memsleuth("report", "summary", str(bad)).assert_clean_failure()
    assert "not a memsleuth capture" in line
    empty = tmp_path / "empty.msl"
    empty.write_bytes(b"")
    assert "empty file" in memsleuth("report", "summary", str(empty)).assert_clean_failure()


def test_future_major_version(tmp_path: Path) -> None:
    data = bytearray(GOLDEN.read_bytes())
    data[8] = 2
    future = tmp_path / "future.msl"
    future.write_bytes(bytes(data))
    line = memsleuth("report", "summary", str(future)).assert_clean_failure()
    assert "format 2.0" in line


def test_truncated_capture_reports_what_it_has_and_fails(tmp_path: Path) -> None:
    data = GOLDEN.read_bytes()
    cut = tmp_path / "cut.msl"
    cut.write_bytes(data[: len(data) * 2 // 3])
    result = memsleuth("report", "summary", str(cut))
    line = result.assert_clean_failure()
    assert "truncated at byte" in line
    assert "verdict:" in result.stdout  # everything before the break is still reported
    assert "cut short" in result.stdout


def test_corrupt_capture_names_the_offset(tmp_path: Path) -> None:
    data = bytearray(GOLDEN.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "corrupt.msl"
    bad.write_bytes(bytes(data))
    line = memsleuth("report", "summary", str(bad)).assert_clean_failure()
    assert "corrupt at byte" in line


def test_unwritable_report_output(tmp_path: Path) -> None:
    shutil.copy(GOLDEN, tmp_path / "g.msl")
    line = memsleuth(
        "report", "timeline", str(tmp_path / "g.msl"), "-o", str(tmp_path / "missing" / "t.svg")
    ).assert_clean_failure()
    assert "cannot write" in line
    line = memsleuth(
        "report", "timeline", str(tmp_path / "g.msl"), "-o", str(tmp_path / "t.gif")
    ).assert_clean_failure()
    assert ".svg, .png or .html" in line


def test_python_without_the_extension(tmp_path: Path) -> None:
    """A memsleuth package whose compiled extension does not load in this interpreter (a wheel
    for another Python, a broken install) says so in one line, not a traceback."""
    import importlib.util

    spec = importlib.util.find_spec("memsleuth")
    assert spec is not None
    assert spec.origin is not None
    installed = Path(spec.origin).parent
    shutil.copytree(installed, tmp_path / "memsleuth", ignore=shutil.ignore_patterns("*.so"))
    script = tmp_path / "app.py"
    script.write_text("print('hi')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for args in (["run", str(script)], ["watch", "--", "true"]):
        result = memsleuth(*args, env=env, cwd=tmp_path)
        line = result.assert_clean_failure()
        assert "native extension cannot be loaded" in line
        assert "pip install memsleuth" in line
