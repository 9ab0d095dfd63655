"""Reports on captures of a hostile program, on a real interpreter: names a program gives its code
and types (`compile()` with an escape sequence for a file name, `__code__.replace(co_name=...)`,
`__qualname__`) never reach the terminal raw; a report never writes over the capture it reads;
`memsleuth.summary()` refuses what is not a regular file instead of blocking on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import memsleuth

# An OSC sequence that sets the terminal's title, a screen clear, NUL and backspace.
EVIL_FILE = "\x1b]0;pwned\x07\x1b[2Jevil.py"
EVIL_FUNCTION = "grow\x1b]0;t\x07\x00\x08"
EVIL_TYPE = "\x1b[31mEvil\x08"

PROGRAM = f"""
import sys, time

class Evil:
    def __init__(self, i):
        self.i = i
        self.pad = bytearray(300)

Evil.__qualname__ = {EVIL_TYPE!r}

SOURCE = '''
def grow(store, n):
    for i in range(n):
        store.append(Evil(i))
'''
namespace = {{"Evil": Evil}}
exec(compile(SOURCE, {EVIL_FILE!r}, "exec"), namespace)
grow = namespace["grow"]
# 3.11+ name a frame by its qualified name, older versions by co_name
names = {{"co_name": {EVIL_FUNCTION!r}}}
if sys.version_info >= (3, 11):
    names["co_qualname"] = {EVIL_FUNCTION!r}
grow.__code__ = grow.__code__.replace(**names)

STORE = []
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    grow(STORE, 100)
    time.sleep(0.02)
"""

CONTROLS = (b"\x1b", b"\x00", b"\x08", b"\x07")


def run_bytes(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """The command line, with its output as bytes: a control character must be seen as sent."""
    return subprocess.run(
        [sys.executable, "-m", "memsleuth", *args],
        capture_output=True,
        timeout=timeout,
    )


def assert_no_controls(what: str, data: bytes) -> None:
    found = [c for c in CONTROLS if c in data]
    assert not found, f"{what} printed raw {found!r}:\n{data.decode(errors='replace')}"


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hostile")
    script = d / "hostile.py"
    script.write_text(PROGRAM)
    out: dict[str, Path] = {}
    for name, seconds in [("long", "2.0"), ("short", "0.6")]:
        capture = d / f"{name}.msl"
        result = run_bytes(
            "run", "--census", "0.25", "-o", str(capture), str(script), seconds, "\x1b[5marg"
        )
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        if name == "long":
            # the exit summary of `run` itself
            assert_no_controls("run", result.stdout + result.stderr)
            assert b"\\x1b" in result.stderr, result.stderr.decode(errors="replace")
        out[name] = capture
    return out


TEXT_REPORTS = [
    ["summary"],
    ["leaks"],
    ["leaks", "--top", "0"],
    ["peak"],
    ["table"],
    ["tree", "--depth", "0"],
    ["growth", "--top", "0"],
    ["gc"],
    ["pymalloc"],
    ["export", "--format", "collapsed", "--of", "all"],
]


@pytest.mark.parametrize("kind", TEXT_REPORTS, ids=lambda k: "-".join(k))
def test_text_reports_spell_out_control_characters(
    captures: dict[str, Path], kind: list[str]
) -> None:
    result = run_bytes("report", kind[0], str(captures["long"]), *kind[1:])
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert_no_controls(" ".join(kind), result.stdout + result.stderr)


def test_the_hostile_names_are_shown_spelled_out(captures: dict[str, Path]) -> None:
    leaks = run_bytes("report", "leaks", "--top", "0", str(captures["long"])).stdout.decode()
    assert "\\x1b]0;pwned\\x07\\x1b[2Jevil.py" in leaks, leaks
    assert "grow\\x1b]0;t\\x07\\x00\\x08()" in leaks, leaks
    growth = run_bytes("report", "growth", "--top", "0", str(captures["long"])).stdout.decode()
    assert "\\x1b[31mEvil\\x08" in growth, growth
    diff = run_bytes("report", "diff", str(captures["short"]), str(captures["long"]))
    assert diff.returncode == 0, diff.stderr.decode(errors="replace")
    assert_no_controls("diff", diff.stdout + diff.stderr)
    assert b"grow\\x1b]0;t\\x07" in diff.stdout, diff.stdout.decode()


def test_json_keeps_the_exact_names(captures: dict[str, Path]) -> None:
    result = run_bytes("report", "leaks", "--json", "--top", "0", str(captures["long"]))
    assert_no_controls("leaks --json", result.stdout)
    sites = json.loads(result.stdout)["sites"]
    assert any(s["function"] == EVIL_FUNCTION and s["file"] == EVIL_FILE for s in sites), sites


def test_pictures_and_pages_spell_out_control_characters(
    captures: dict[str, Path], tmp_path: Path
) -> None:
    capture = captures["long"]
    pages = {
        "flamegraph": (["flamegraph", str(capture), "-o", str(tmp_path / "f.html")], "f.html"),
        "timeline html": (
            ["timeline", str(capture), "--html", "-o", str(tmp_path / "t.html")],
            "t.html",
        ),
        "timeline svg": (["timeline", str(capture), "-o", str(tmp_path / "t.svg")], "t.svg"),
    }
    for what, (args, name) in pages.items():
        result = run_bytes("report", *args)
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        data = (tmp_path / name).read_bytes()
        assert_no_controls(what, data)
    assert b"\\x1b" in (tmp_path / "f.html").read_bytes()


def test_a_report_never_writes_over_its_capture(captures: dict[str, Path], tmp_path: Path) -> None:
    capture = captures["long"]
    before = capture.read_bytes()
    # a picture name that is the capture under another name (timeline refuses a .msl name
    # before it gets this far)
    picture = tmp_path / "link.svg"
    picture.symlink_to(capture)
    for args in (
        ["flamegraph", str(capture), "-o", str(capture)],
        ["export", str(capture), "--format", "pprof", "-o", str(capture)],
        ["timeline", str(capture), "-o", os.path.relpath(picture)],
    ):
        line = memsleuth("report", *args).assert_clean_failure()
        assert "the capture this report reads" in line, line
        assert capture.read_bytes() == before, args


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_summary_refuses_what_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        path = tmp_path / "f.msl"
        os.mkfifo(path)
        words = "(a FIFO)"
    elif kind == "directory":
        path = tmp_path / "d.msl"
        path.mkdir()
        words = "(a directory)"
    else:
        path = Path("/dev/zero")
        words = "(a character device)"
    code = (
        "import sys, memsleuth\n"
        "try:\n"
        f"    memsleuth.summary({str(path)!r})\n"
        "except memsleuth.CaptureError as e:\n"
        "    print(e)\n"
        "    sys.exit(3)\n"
    )
    # a FIFO used to block summary() forever: in a child, so a hang fails instead of hanging
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 3, result.stdout + result.stderr
    # the path once, at the start: the error names it itself
    assert result.stdout.startswith(f"{path} is not a regular file {words}"), result.stdout
    assert result.stdout.count(str(path)) == 1, result.stdout
    cli = memsleuth("report", "summary", str(path), timeout=60).assert_clean_failure()
    assert cli.startswith(f"memsleuth: error: {path} is not a regular file {words}"), cli
    assert cli.count(str(path)) == 1, cli
