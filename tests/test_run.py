"""`memsleuth run` end to end: real programs with known leaks, on a real interpreter."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import PROGRAMS, memsleuth, program

ALLOCS = PROGRAMS / "allocs.py"


def line_of(marker: str) -> int:
    """Line number of the `# MARKER` comment in tests/programs/allocs.py."""
    for number, text in enumerate(ALLOCS.read_text().splitlines(), start=1):
        if text.rstrip().endswith(f"# {marker}"):
            return number
    raise AssertionError(f"no line marked {marker}")


def leaks(capture: Path, *flags: str) -> dict[str, Any]:
    result = memsleuth("report", "leaks", str(capture), "--json", "--top", "0", *flags)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = result.json()
    return report


def site_key(site: dict[str, Any]) -> tuple[str, int]:
    return Path(site["file"]).name, site["line"]


def sites(report: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = report["sites"]
    return result


def test_run_names_the_leaking_line_first(tmp_path: Path) -> None:
    out = tmp_path / "leak.msl"
    result = memsleuth("run", "-o", str(out), program("allocs.py"), "leak", "4000")
    assert result.returncode == 0, result.stderr
    leak_line = line_of("LEAK-MAIN")
    # the summary at exit points at the line, on stderr (the program's stdout is its own)
    assert f"allocs.py:{leak_line}" in result.stderr, result.stderr
    assert "allocs.py" not in result.stdout
    first = next(ln for ln in result.stderr.splitlines() if "allocs.py:" in ln)
    assert f"allocs.py:{leak_line}" in first, result.stderr
    html = re.search(r"(\S+\.html)", result.stderr)
    assert html is not None, result.stderr
    assert Path(html.group(1)).exists()
    report = leaks(out)
    top = sites(report)[0]
    assert site_key(top) == ("allocs.py", leak_line)
    # 4000 bytearrays of 1 KiB: object + buffer per block pair
    assert 4000 * 1024 <= top["bytes"] <= 4000 * 1200
    assert top["blocks"] >= 4000
    # the churned temporaries were freed: nothing from churn() survives in quantity
    churn = [s for s in sites(report) if s["function"] == "churn"]
    assert sum(s["bytes"] for s in churn) < 64 * 1024
    # memsleuth's own runner frames are not part of the program's stacks
    names = [f["function"] for f in top["top_stacks"][0]["frames"]]
    assert names == ["<module>", "main", "leak"], names


def test_run_behaves_like_python(tmp_path: Path) -> None:
    out = tmp_path / "argv.msl"
    script = tmp_path / "show.py"
    script.write_text(
        "import sys\nprint(__name__, sys.argv, sys.path[0])\nprint(sys.stdin.read().upper())\n"
        "sys.exit(7)\n"
    )
    result = memsleuth("run", "--no-report", "-o", str(out), str(script), "a", "--flag", input="hi")
    assert result.returncode == 7, result.stderr
    assert result.stdout.splitlines() == [
        f"__main__ ['{script}', 'a', '--flag'] {tmp_path}",
        "HI",
    ]
    assert out.exists()


def test_run_module(tmp_path: Path) -> None:
    pkg = tmp_path / "leakpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(
        "import sys\nKEEP = []\nfor i in range(3000):\n    KEEP.append(str(i) * 100)  # HERE\n"
        "print(sys.argv[1:])\n"
    )
    out = tmp_path / "mod.msl"
    result = memsleuth("run", "-o", str(out), "-m", "leakpkg", "x", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['x']"
    top = sites(leaks(out))[0]
    assert site_key(top) == ("__main__.py", 4)


def test_bounded_cache_is_not_a_leak_but_a_steady_leak_is(tmp_path: Path) -> None:
    out = tmp_path / "cache.msl"
    result = memsleuth("run", "-o", str(out), program("allocs.py"), "cache")
    assert result.returncode == 0, result.stderr
    report = leaks(out)
    fill = [s for s in sites(report) if site_key(s) == ("allocs.py", line_of("CACHE-FILL"))]
    assert fill, [site_key(s) for s in sites(report)[:5]]
    # the cache holds its 2000 entries at the end, but it stopped growing long before
    assert fill[0]["bytes"] >= 2000 * 512
    assert fill[0]["verdict"]["kind"] != "growing", fill[0]["verdict"]
    assert report["growing"] == 0, [
        (site_key(s), s.get("verdict", {}).get("kind")) for s in sites(report)[:5]
    ]

    out = tmp_path / "steady.msl"
    result = memsleuth("run", "-o", str(out), program("allocs.py"), "steady", "1.5")
    assert result.returncode == 0, result.stderr
    report = leaks(out)
    assert report["growing"] >= 1
    top = sites(report)[0]
    assert site_key(top) == ("allocs.py", line_of("LEAK-STEADY"))
    assert top["verdict"]["kind"] == "growing"


def test_threads_leaking_in_parallel_show_both_sites(tmp_path: Path) -> None:
    out = tmp_path / "threads.msl"
    result = memsleuth("run", "-o", str(out), program("allocs.py"), "threads")
    assert result.returncode == 0, result.stderr
    found = {site_key(s) for s in sites(leaks(out))[:4]}
    assert ("allocs.py", line_of("LEAK-A")) in found, found
    assert ("allocs.py", line_of("LEAK-B2")) in found, found


def test_forking_script_keeps_the_parent_capture_intact(tmp_path: Path) -> None:
    out = tmp_path / "fork.msl"
    result = memsleuth("run", "-o", str(out), program("allocs.py"), "fork")
    assert result.returncode == 0, result.stderr
    assert "child exit 2" in result.stdout
    report = leaks(out)
    assert not report["capture"]["end"]["cut_short"], report["capture"]["end"]
    top = sites(report)[0]
    assert site_key(top) == ("allocs.py", line_of("LEAK-MAIN"))
    # the parent's 4000 leaked blocks, not the child's 5000 pages of junk
    assert top["bytes"] < 4000 * 1200
    assert all(s["function"] != "fork" or s["bytes"] < 100_000 for s in sites(report))


def test_script_that_raises_gives_a_finished_capture(tmp_path: Path) -> None:
    out = tmp_path / "raise.msl"
    result = memsleuth("run", "-o", str(out), program("allocs.py"), "raise")
    assert result.returncode == 1
    assert "RuntimeError: the program failed" in result.stderr
    traceback = result.stderr.split("\nmemsleuth: ")[0]
    assert "RuntimeError" in traceback
    assert "runpy" not in traceback, traceback
    assert "_run.py" not in traceback, traceback
    report = leaks(out)
    assert site_key(sites(report)[0]) == ("allocs.py", line_of("LEAK-MAIN"))


def test_killed_script_leaves_a_readable_capture_that_says_so(tmp_path: Path) -> None:
    out = tmp_path / "kill.msl"
    result = memsleuth("run", "-o", str(out), program("allocs.py"), "kill")
    assert result.returncode in (-9, 137), result.stderr
    text = memsleuth("report", "leaks", str(out))
    assert text.returncode == 0, text.stderr
    assert "cut short" in (text.stdout + text.stderr)
    report = leaks(out)
    assert report["capture"]["end"]["cut_short"]
    assert site_key(sites(report)[0]) == ("allocs.py", line_of("LEAK-MAIN"))


@pytest.mark.parametrize("mib", [48])
def test_sampled_mode_estimates_leaked_bytes_within_ten_percent(tmp_path: Path, mib: int) -> None:
    full = tmp_path / "full.msl"
    sampled = tmp_path / "sampled.msl"
    args = [program("allocs.py"), "big", str(mib)]
    assert memsleuth("run", "--no-report", "-o", str(full), *args).returncode == 0
    result = memsleuth("run", "--no-report", "--sample", "32KiB", "-o", str(sampled), *args)
    assert result.returncode == 0, result.stderr
    truth = {site_key(s): s["bytes"] for s in sites(leaks(full))}
    total = sum(truth.values())
    estimate = {site_key(s): s["bytes"] for s in sites(leaks(sampled))}
    big_sites = [k for k, v in truth.items() if v > total / 100]
    assert ("allocs.py", line_of("LEAK-BIG")) in big_sites
    for key in big_sites:
        assert key in estimate, (key, sorted(estimate)[:10])
        assert abs(estimate[key] - truth[key]) <= 0.10 * truth[key], (
            key,
            estimate[key],
            truth[key],
        )
    assert leaks(sampled)["capture"]["sample_bytes"] == 32 * 1024


def test_relative_capture_path_survives_a_chdir(tmp_path: Path) -> None:
    """A relative -o, and the default name, mean the directory `run` started in, whatever the
    program does with its own current directory; so does the HTML report next to it."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = tmp_path / "wander.py"
    script.write_text(
        f"import os\nos.chdir({str(elsewhere)!r})\nKEEP = [bytearray(1000) for _ in range(500)]\n"
    )
    result = memsleuth("run", "-o", "here.msl", str(script), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "here.msl").exists()
    assert (tmp_path / "here-leaks.html").exists()
    assert "wander.py:3" in result.stderr
    # named as given, which the user's shell, still in tmp_path, understands
    assert "capture:     here.msl\n" in result.stderr, result.stderr
    assert "flame graph: here-leaks.html\n" in result.stderr, result.stderr
    result = memsleuth("run", str(script), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.glob("memsleuth-wander-*.msl")), sorted(tmp_path.iterdir())
    assert list(tmp_path.glob("memsleuth-wander-*-leaks.html")), sorted(tmp_path.iterdir())
    assert not list(elsewhere.iterdir())


ARGV_MODULE = "import sys\nprint(sys.argv[1:])\n"


@pytest.mark.parametrize(
    "program_args",
    [
        ["-x", "tests/"],  # pytest
        ["app:app", "--port", "8000"],  # uvicorn
        ["worker", "-l", "info"],  # celery
        ["-q", "-f", "--help", "-o", "x.msl", "--census", "5", "-m", "other", "--", "-"],
    ],
)
def test_everything_after_the_module_is_its_own(tmp_path: Path, program_args: list[str]) -> None:
    (tmp_path / "showargs.py").write_text(ARGV_MODULE)
    out = tmp_path / "m.msl"
    result = memsleuth(
        "run", "--no-report", "-o", str(out), "-m", "showargs", *program_args, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(program_args)
    assert out.exists()  # memsleuth's own -o, before the module, still counts
    assert not (tmp_path / "x.msl").exists()


def test_everything_after_the_script_is_its_own(tmp_path: Path) -> None:
    script = tmp_path / "showargs.py"
    script.write_text(ARGV_MODULE)
    program_args = ["--help", "-o", "x.msl", "-m", "json.tool", "--no-report"]
    for head in (["--no-report", "-o", "s.msl"], ["--no-report", "-o", "s.msl", "--"]):
        result = memsleuth("run", *head, str(script), *program_args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == str(program_args)
    assert (tmp_path / "s.msl").exists()
    assert not (tmp_path / "x.msl").exists()


def test_module_options_reach_real_modules(tmp_path: Path) -> None:
    """`python -m json.tool --help` and `python -m compileall -q -f DIR` work under run."""
    result = memsleuth("run", "--no-report", "-m", "json.tool", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m json.tool"), result.stdout
    assert "memsleuth" not in result.stdout
    src = tmp_path / "src"
    src.mkdir()
    (src / "mod.py").write_text("X = 1\n")
    result = memsleuth("run", "--no-report", "-m", "compileall", "-q", "-f", "src", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert list((src / "__pycache__").glob("mod.*.pyc"))
    assert result.stdout == ""  # -q reached compileall


def test_keyboard_interrupt_ends_the_run_as_under_python(tmp_path: Path) -> None:
    """A program that dies of Ctrl-C dies of SIGINT under run too (a shell then stops its
    script), after its atexit handlers, with python's traceback, and a finished capture."""
    script = tmp_path / "interrupted.py"
    script.write_text(
        "import atexit, os, signal, time\n"
        # Python leaves SIGINT ignored when it starts ignored (pytest-xdist's workers ignore it)
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "atexit.register(lambda: print('atexit ran', flush=True))\n"
        "KEEP = [bytearray(1000) for _ in range(500)]\n"
        "def serve():\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    while True:\n"
        "        time.sleep(0.01)\n"
        "serve()\n"
    )
    plain = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60
    )
    assert plain.returncode == -signal.SIGINT
    out = tmp_path / "ki.msl"
    result = memsleuth("run", "-o", str(out), str(script))
    assert result.returncode == plain.returncode, result.stderr
    assert result.stdout == plain.stdout == "atexit ran\n"
    traceback = result.stderr.split("\nmemsleuth: ")[0]
    # the line the handler ran at may differ from run to run; the traceback's shape may not
    shape = [ln for ln in traceback.splitlines() if not ln.startswith("    ")]
    plain_shape = [ln for ln in plain.stderr.splitlines() if not ln.startswith("    ")]
    assert [ln.split(", line ")[0] for ln in shape] == [
        ln.split(", line ")[0] for ln in plain_shape
    ], result.stderr
    assert shape[-1] == "KeyboardInterrupt", result.stderr
    assert "interrupted.py:4" in result.stderr  # the leak summary still came
    report = leaks(out)
    assert not report["capture"]["end"]["cut_short"], report["capture"]["end"]


@pytest.mark.parametrize("kind", ["truncated", "corrupt", "foreign", "watch"])
def test_report_leaks_on_bad_captures(tmp_path: Path, kind: str) -> None:
    good = tmp_path / "good.msl"
    assert (
        memsleuth(
            "run", "--no-report", "-o", str(good), program("allocs.py"), "leak", "500"
        ).returncode
        == 0
    )
    data = good.read_bytes()
    bad = tmp_path / "bad.msl"
    if kind == "truncated":
        bad.write_bytes(data[: len(data) - 50])
    elif kind == "corrupt":
        mid = len(data) // 2
        bad.write_bytes(data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1 :])
    elif kind == "foreign":
        bad.write_bytes(b"PK\x03\x04 not a capture at all" * 10)
    else:
        live = "import time; time.sleep(0.3)"  # long enough for a few samples
        r = memsleuth("watch", "-q", "-i", "20ms", "-o", str(bad), "--", sys.executable, "-c", live)
        assert r.returncode == 0, r.stderr
    result = memsleuth("report", "leaks", str(bad))
    line = result.assert_clean_failure()
    if kind == "foreign":
        assert "not a memsleuth capture" in line
    elif kind == "watch":
        assert "memsleuth run" in line
    else:
        assert "byte" in line
