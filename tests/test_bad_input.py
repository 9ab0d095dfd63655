"""Every bad input gives one clear error line, the right exit code, and no panic or traceback.

Most cases are rows of one table: the command line, its exit code (2: what was asked is wrong;
1: the work failed) and words its one error line must hold. Paths in a row are templates filled
by the `paths` fixture.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, Result, memsleuth

GOLDEN = FIXTURES / "v1.0" / "leak.msl"  # from `watch`: memory samples only
RUN_GOLDEN = FIXTURES / "v1.1" / "leak-run.msl"  # from `run`: allocations
OBJECTS_GOLDEN = FIXTURES / "v1.2" / "objects-run.msl"  # from `run`: censuses too

USAGE = 2
FAILED = 1

ABSURD = ["1e99", "1e20", "1e300", "inf"]

ROWS: list[tuple[list[str], int, str]] = [
    # ---- run
    (["run"], USAGE, "nothing to run; give a script or -m MODULE"),
    (["run", "{tmp}/nope.py"], FAILED, "script {tmp}/nope.py does not exist"),
    (["run", "{tmp}/dir"], FAILED, "is a directory without a __main__.py"),
    (["run", "-m", "no_such_module_xyz"], FAILED, "no module named 'no_such_module_xyz'"),
    (["run", "-m"], USAGE, "-m/--module needs a value (e.g. -m json.tool)"),
    (["run", "-o", "{tmp}/no/dir/x.msl", "{app}"], FAILED, "cannot create the capture"),
    (["run", "-o", "{tmp}/dir", "{app}"], FAILED, "directory"),
    (["run", "--frobnicate", "{app}"], USAGE, "unexpected argument '--frobnicate'"),
    (["run", "--sample", "lots", "{app}"], USAGE, "`lots` is not a size"),
    (["run", "--sample", "0", "{app}"], USAGE, "--sample 0: must be a positive size"),
    (["run", "--sample", "-1", "{app}"], USAGE, "--sample -1: must not be negative"),
    (
        ["run", "--stack-depth", "0", "{app}"],
        USAGE,
        "--stack-depth 0: not a number of frames from 1 to 256; give e.g. --stack-depth 64 (the"
        " default is 128)",
    ),
    (["run", "--stack-depth", "-1", "{app}"], USAGE, "--stack-depth -1: must not be negative"),
    *[
        (["run", "--census", n, "{app}"], USAGE, f"--census {n}: more than a year; give at most")
        for n in ABSURD
    ],
    (["run", "--census", "-1", "{app}"], USAGE, "--census -1: must not be negative"),
    (["run", "--census", "nan", "{app}"], USAGE, "--census nan: not a number"),
    (["run", "--census", "soon", "{app}"], USAGE, "--census soon: not a number of seconds"),
    # `python` is memsleuth's own interpreter already
    (["run", "python", "app.py"], USAGE, "drop `python`: `memsleuth run` runs the program"),
    (["run", "--", "python3", "app.py", "-x"], USAGE, "use `memsleuth run app.py -x`"),
    (["run", "/usr/bin/python3.11", "-m", "json.tool"], USAGE, "use `memsleuth run -m json.tool`"),
    # ---- watch
    (["watch"], USAGE, "nothing to watch; give a PID with -p, or a command after `--`"),
    (["watch", "--frobnicate"], USAGE, "unexpected argument '--frobnicate'"),
    (["watch", "-p", "4194303"], FAILED, "no process with PID 4194303"),
    (["watch", "-p", "-1"], USAGE, "--pid -1: not a process ID; give a positive whole number"),
    (["watch", "-p", "0"], USAGE, "--pid 0: not a process ID; PIDs start at 1"),
    (["watch", "-p", "abc"], USAGE, "--pid abc: not a process ID"),
    (["watch", "-p", "99999999999"], USAGE, "--pid 99999999999: not a process ID"),
    (["watch", "-p", "1", "--", "true"], USAGE, "'--pid <PID>' cannot be used with"),
    (["watch", "--interval", "fast", "--", "true"], USAGE, "`fast` is not a duration"),
    (["watch", "--interval", "0", "--", "true"], USAGE, "--interval 0: too short"),
    (["watch", "--interval", "-1", "--", "true"], USAGE, "--interval -1: must be positive"),
    (["watch", "-i", "-1s", "--", "true"], USAGE, "--interval -1s: must be positive"),
    (["watch", "-i", "--", "true"], USAGE, "-i/--interval needs a value (e.g. -i 100ms)"),
    (["watch", "-d", "--", "true"], USAGE, "-d/--duration needs a value (e.g. -d 30s)"),
    (["watch", "--duration", "-5m", "-p", "1"], USAGE, "--duration -5m: must be positive"),
    *[
        (["watch", opt, n, "--", "true"], USAGE, f"{opt} {n}: longer than a year; give at most 1y")
        for opt in ("--interval", "--duration")
        for n in [*ABSURD, "18446744073709551615s", "2y"]
    ],
    (["watch", "-o", "{tmp}/no/such/dir/x.msl", "--", "true"], FAILED, "No such file or directory"),
    (["watch", "-o", "{tmp}/dir", "--", "true"], FAILED, "cannot write capture {tmp}/dir"),
    (["watch", "-q", "-o", "/dev/full", "--", "sleep", "1"], FAILED, "No space left on device"),
    # watch cannot read a device back for its verdict; the line names it once
    (
        ["watch", "-q", "-i", "20ms", "-o", "/dev/null", "--", "sleep", "0.3"],
        FAILED,
        "error: /dev/null is not a regular file (a character device)",
    ),
    (["watch", "-o", "{out}", "--", "no-such-program-xyz"], FAILED, "command not found"),
    (["watch", "-o", "{out}", "--", "{tmp}/dir"], FAILED, "permission denied"),
    # ---- report
    (["report"], USAGE, "`memsleuth report` needs one of: summary, timeline, verdict, leaks"),
    (["report", "frobnicate", "{watched}"], USAGE, "unrecognized subcommand 'frobnicate'"),
    (["report", "summary"], USAGE, "`memsleuth report summary` needs <FILE>"),
    (["report", "leaks"], USAGE, "`memsleuth report leaks` needs <FILE>"),
    (["report", "diff", "{ran}"], USAGE, "`memsleuth report diff` needs <B>"),
    (["report", "summary", "/nonexistent/x.msl"], FAILED, "does not exist"),
    (["report", "summary", "{tmp}/dir"], FAILED, "error: {tmp}/dir is not a regular file"),
    (["report", "leaks", "{tmp}/dir"], FAILED, "directory"),
    (["report", "gc", "{tmp}/dir"], FAILED, "directory"),
    (["report", "summary", "{tmp}/zip.msl"], FAILED, "not a memsleuth capture"),
    (["report", "leaks", "{tmp}/zip.msl"], FAILED, "not a memsleuth capture"),
    (["report", "summary", "{tmp}/empty.msl"], FAILED, "empty file"),
    (["report", "summary", "{tmp}/future.msl"], FAILED, "format 2.0"),
    (["report", "summary", "{tmp}/corrupt.msl"], FAILED, "corrupt at byte"),
    (["report", "leaks", "{watched}"], FAILED, "holds no allocation events"),
    (["report", "peak", "{watched}"], FAILED, "record allocations with `memsleuth run app.py`"),
    (["report", "growth", "{watched}"], FAILED, "holds no object census"),
    (["report", "pymalloc", "{watched}"], FAILED, "holds no pymalloc snapshots"),
    (["report", "gc", "{watched}"], FAILED, "record them with `memsleuth run app.py`"),
    (["report", "diff", "{ran}", "{tmp}/zip.msl"], FAILED, "not a memsleuth capture"),
    (["report", "leaks", "{ran}", "--at", "1000"], USAGE, "is past the end of the capture (length"),
    (["report", "leaks", "{ran}", "--at", "soon"], USAGE, "`soon` is not a time"),
    (["report", "leaks", "{ran}", "--at", "-1"], USAGE, "--at -1: must not be negative"),
    (["report", "leaks", "{ran}", "--top", "-1"], USAGE, "--top -1: must not be negative"),
    (["report", "leaks", "{ran}", "--windows", "-3"], USAGE, "--windows -3: must not be negative"),
    (["report", "tree", "{ran}", "--depth", "-1"], USAGE, "--depth -1: must not be negative"),
    (["report", "diff", "{ran}", "{ran}", "--fail-over", "lots"], USAGE, "`lots` is not a size"),
    (["report", "growth", "{objects}", "--from", "#0"], USAGE, "censuses are numbered from #1"),
    (["report", "timeline", "{watched}", "-o", "{tmp}/missing/t.svg"], FAILED, "cannot write"),
    (
        ["report", "timeline", "{watched}", "-o", "{tmp}/t.gif"],
        USAGE,
        ".gif is not a picture format memsleuth writes; name the output .svg, .png or .html",
    ),
    (
        ["report", "timeline", "{watched}", "-o", "/dev/full"],
        FAILED,
        "cannot write /dev/full: No space left on device",
    ),
    (
        ["report", "timeline", "{watched}", "-o", "{tmp}/t.svg", "--html"],
        USAGE,
        "--html contradicts",
    ),
    (["report", "timeline", "{watched}", "--json", "-o", "{out}"], USAGE, "cannot be used with"),
    (["report", "export", "{ran}", "--format", "xml"], USAGE, "give one of json, collapsed, pprof"),
    (["report", "export", "{ran}", "--format", "pprof"], FAILED, "pprof output is binary"),
    (["report", "export", "{ran}", "--format", "json", "-o", "/dev/full"], FAILED, "/dev/full"),
    (["report", "leaks", "{ran}", "--at"], USAGE, "--at needs a value (e.g. --at 12.5)"),
]

# ---- report, on tests/fixtures/hostile/: a capture that cannot be read, or is damaged, fails
# every report with 1 (the work failed), never 2 (what was asked is wrong), and the line says
# where the damage is
HOSTILE_READS: list[tuple[str, str]] = [
    ("empty.msl", "empty file"),
    ("foreign.msl", "not a memsleuth capture"),
    ("future-major-version.msl", "capture format 2.2 is not readable"),
    ("preamble-only.msl", "truncated at byte 16"),
    ("bad-checksum.msl", "corrupt at byte 153"),
    ("chunk-after-trailer.msl", "data after the end of the capture at byte 686"),
    ("garbage-chunk-marker.msl", "corrupt at byte 153"),
    ("record-length-huge.msl", "corrupt at byte 166"),
    ("truncated-mid-chunk.msl", "truncated at byte 137995"),
]
HOSTILE_REPORTS: list[list[str]] = [
    ["summary", "{f}"],
    ["timeline", "{f}", "-o", "{tmp}/t.svg"],
    ["leaks", "{f}"],
    ["leaks", "{f}", "--at", "1000"],
    ["peak", "{f}"],
    ["table", "{f}"],
    ["tree", "{f}"],
    ["flamegraph", "{f}", "-o", "{tmp}/f.html"],
    ["export", "{f}", "--format", "collapsed"],
    ["growth", "{f}"],
    ["pymalloc", "{f}"],
    ["gc", "{f}"],
    ["diff", "{ran}", "{f}"],
]
ROWS += [
    (["report", *(a.replace("{f}", "{hostile}/" + name) for a in report)], FAILED, words)
    for name, words in HOSTILE_READS
    for report in HOSTILE_REPORTS
]


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, str]:
    """The files the rows name, made fresh for each row."""
    (tmp_path / "dir").mkdir()
    (tmp_path / "app.py").write_text("print('hi')\n")
    (tmp_path / "zip.msl").write_bytes(b"PK\x03\x04 this is a zip file, not a capture")
    (tmp_path / "empty.msl").write_bytes(b"")
    data = bytearray(GOLDEN.read_bytes())
    data[8] = 2  # major version
    (tmp_path / "future.msl").write_bytes(bytes(data))
    data = bytearray(GOLDEN.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "corrupt.msl").write_bytes(bytes(data))
    for name, golden in (("watched", GOLDEN), ("ran", RUN_GOLDEN), ("objects", OBJECTS_GOLDEN)):
        shutil.copy(golden, tmp_path / f"{name}.msl")
    return {
        "tmp": str(tmp_path),
        "app": str(tmp_path / "app.py"),
        "out": str(tmp_path / "out.msl"),
        "watched": str(tmp_path / "watched.msl"),
        "ran": str(tmp_path / "ran.msl"),
        "objects": str(tmp_path / "objects.msl"),
        "hostile": str(FIXTURES / "hostile"),
    }


@pytest.mark.parametrize(("argv", "code", "words"), ROWS, ids=[" ".join(r[0]) for r in ROWS])
def test_bad_input(paths: dict[str, str], argv: list[str], code: int, words: str) -> None:
    result = memsleuth(*(a.format(**paths) for a in argv), cwd=paths["tmp"])
    line = result.assert_clean_failure()
    assert result.returncode == code, result.stderr
    assert words.format(**paths) in line


def test_truncated_capture_reports_what_it_has_and_fails(tmp_path: Path) -> None:
    data = GOLDEN.read_bytes()
    cut = tmp_path / "cut.msl"
    cut.write_bytes(data[: len(data) * 2 // 3])
    result = memsleuth("report", "summary", str(cut))
    line = result.assert_clean_failure()
    assert "truncated at byte" in line
    assert "verdict:" in result.stdout  # everything before the break is still reported
    assert "cut short" in result.stdout


def test_pid_that_has_exited() -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    line = memsleuth("watch", "-p", str(child.pid)).assert_clean_failure()
    assert f"no process with PID {child.pid}" in line


def as_nobody(argv: list[str]) -> Result:
    """Runs the command line as user `nobody`, from a child that has loaded memsleuth as root."""
    code = (
        "import os, sys\n"
        "from memsleuth import _native\n"
        "os.chdir('/tmp'); os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        f"sys.exit(_native.cli_main(['memsleuth', *{argv!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return Result(proc)


def test_pid_of_another_user_without_permission(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        # not root: any root-owned process is foreign
        line = memsleuth("watch", "-p", "1", "-o", str(tmp_path / "x.msl")).assert_clean_failure()
        assert "no permission to read the USS and PSS of PID 1" in line
        assert "--basic watches its RSS" in line
        assert "run memsleuth as that user or as root" in line
        return
    # root: drop to `nobody` and watch a root-owned process from there
    target = subprocess.Popen(["sleep", "30"])
    try:
        line = as_nobody(["watch", "-p", str(target.pid)]).assert_clean_failure()
        assert f"no permission to read the USS and PSS of PID {target.pid}" in line
        assert "--basic watches its RSS, VMS, swap and peak" in line
        assert "run memsleuth as that user or as root" in line
        # and --basic does watch it
        out = f"/tmp/memsleuth-basic-{os.getpid()}.msl"
        result = as_nobody(
            ["watch", "-q", "--basic", "-p", str(target.pid), "-d", "0.3", "-o", out]
        )
        assert result.returncode == 0, result.stderr
        assert "verdict:" in result.stderr
        os.unlink(out)
    finally:
        target.kill()
        target.wait()


def test_root_refused_by_the_kernel_is_pointed_at_basic(tmp_path: Path) -> None:
    """Where even root may not walk a process' page tables (ptrace rules), running as root is
    no advice: --basic is."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    try:
        Path("/proc/1/smaps_rollup").read_bytes()
        pytest.skip("this kernel lets root read PID 1's smaps_rollup")
    except PermissionError:
        pass
    line = memsleuth("watch", "-p", "1", "-o", str(tmp_path / "x.msl")).assert_clean_failure()
    assert "--basic watches its RSS" in line
    assert "as root" not in line


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "summary", "{watched}"],
        ["report", "leaks", "{ran}", "--json"],
        ["report", "timeline", "{watched}", "--json"],
        ["watch", "-q", "--json", "-i", "20ms", "--", "sleep", "0.3"],
    ],
)
def test_report_to_a_full_disk_fails(paths: dict[str, str], argv: list[str]) -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "memsleuth", *(a.format(**paths) for a in argv)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=paths["tmp"],
        )
    result = Result(subprocess.CompletedProcess(proc.args, proc.returncode, "", proc.stderr))
    line = result.assert_clean_failure()
    assert result.returncode == FAILED
    assert "cannot write to standard output: No space left on device" in line


@pytest.mark.parametrize(
    "argv", [["report", "summary", "{watched}"], ["report", "leaks", "{ran}", "--json"]]
)
def test_report_into_a_closed_pipe_is_quiet(paths: dict[str, str], argv: list[str]) -> None:
    """`memsleuth report ... | head -1` is no failure: a reader that has gone away is not one."""
    read, write = os.pipe()
    os.close(read)  # gone before the first byte: every write meets a closed pipe
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "memsleuth", *(a.format(**paths) for a in argv)],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


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
