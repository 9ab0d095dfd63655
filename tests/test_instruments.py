"""`memsleuth instruments`: the design map's table, with costs measured here. Timings are not
asserted (a shared machine's noise); that each measured instrument ran and gave figures is."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from conftest import memsleuth

MEASURED = {"rss", "python", "python_sampled", "objects", "native"}
ALL = MEASURED | {"pymalloc", "hunt", "attach"}


def test_every_instrument_has_a_row_and_the_measured_ones_have_costs() -> None:
    result = memsleuth("instruments", "--json", "--reps", "1", timeout=300)
    assert result.returncode == 0, result.stderr
    table = result.json()
    assert table["untracked_seconds"] > 0
    assert table["untracked_peak"] > 0
    rows = {r["instrument"]: r for r in table["rows"]}
    assert set(rows) == ALL
    for name in MEASURED:
        row = rows[name]
        assert row["available"]["state"] in ("yes", "with"), row
        assert row["time_ratio"] is not None, row
        assert row["time_ratio"] > 0, row
        assert row["extra_bytes"] is not None, row
    for name in ALL - MEASURED:
        assert rows[name]["time_ratio"] is None


def test_the_table_names_each_instrument_and_how_to_use_it() -> None:
    result = memsleuth("instruments", "--reps", "1", timeout=300)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for words in (
        "memsleuth watch -- python app.py",
        "memsleuth run --native app.py",
        "memsleuth attach PID",
        "every Python allocation, with its stack",
        "available here",
        "time cost",
    ):
        assert words in text, text
    assert "measuring each instrument" in result.stderr


def test_bad_reps_is_one_line() -> None:
    result = memsleuth("instruments", "--reps", "0")
    assert "--reps" in result.assert_clean_failure()


# `memsleuth instruments -- script.py`: what each instrument saw of one program.

LEAKY = """\
import time

KEPT = []


def handle(i):
    KEPT.append(bytearray(20000))  # LEAK
    return sum(range(50))


end = time.monotonic() + 2.0
i = 0
while time.monotonic() < end:
    handle(i)
    i += 1
    time.sleep(0.002)
"""

BOUNDED = """\
import time
from collections import OrderedDict

CACHE = OrderedDict()


def lookup(i):
    CACHE[i] = bytearray(20000)
    while len(CACHE) > 50:
        CACHE.popitem(last=False)


end = time.monotonic() + 2.0
i = 0
while time.monotonic() < end:
    lookup(i)
    i += 1
    time.sleep(0.002)
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def leak_line() -> int:
    return next(i for i, line in enumerate(LEAKY.splitlines(), 1) if "# LEAK" in line)


def seen_of(result: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    assert result.returncode == 0, result.stderr
    data = result.json()
    return {r["instrument"]: r for r in data["rows"]}, data["runs"]


def test_each_instrument_reports_what_it_saw_of_a_leaking_program(tmp_path: Path) -> None:
    script = write(tmp_path, "leaky.py", LEAKY)
    result = memsleuth("instruments", "--json", "--", str(script), timeout=600, cwd=tmp_path)
    rows, runs = seen_of(result)
    assert set(rows) == ALL
    # one untracked run, then each configuration as typed, each run to its end
    labels = [r["label"] for r in runs]
    assert labels[0] == "untracked"
    assert runs[0]["command"] == ["python", str(script)]
    assert ["memsleuth", "run", str(script)] in [r["command"] for r in runs]
    for r in runs:
        assert r["exit_code"] == 0, runs
        assert r["seconds"] > 1.5, runs
        assert r["peak_bytes"] > 0, runs
    # what the process' RSS shows: growth
    assert rows["rss"]["seen"]["kind"] == "rss"
    assert rows["rss"]["seen"]["verdict"]["kind"] == "growing", rows["rss"]
    # the censuses: bytearrays pile up
    objects = rows["objects"]["seen"]
    assert objects["kind"] == "objects"
    assert "bytearray" in [t["name"] for t in objects["growing"]], objects
    # pymalloc's snapshots were read (a 20 KB bytearray is not pymalloc's: no claim on growth)
    assert rows["pymalloc"]["seen"]["kind"] == "pymalloc", rows["pymalloc"]
    # the verdict, from every allocation, sampled and with the C allocator: the line
    for name in ("python", "python_sampled", "native"):
        seen = rows[name]["seen"]
        if name == "native" and seen["kind"] == "not_run":
            continue  # no native instrument on this machine
        assert seen["kind"] == "verdict", (name, seen)
        # the verdict as `report verdict --json` gives it
        report = seen["report"]
        assert report["verdict"] == "leaking", (name, report)
        first = report["findings"][0]
        assert first["kind"] == "python", (name, first)
        assert first["location"]["line"] == leak_line(), (name, first)
        assert Path(first["location"]["file"]).name == "leaky.py", (name, first)
    assert "KEPT" in rows["python"]["seen"]["report"]["findings"][0]["holder"]
    assert rows["hunt"]["seen"]["kind"] == "not_run"
    assert "memsleuth attach PID" in rows["attach"]["seen"]["how"]
    # progress, one line per run
    assert result.stderr.count("memsleuth: [") == len(runs), result.stderr


def test_the_text_names_the_line_the_costs_and_the_commands(tmp_path: Path) -> None:
    script = write(tmp_path, "leaky.py", LEAKY)
    result = memsleuth(
        "instruments", "--skip", "native,sampled", "--", script.name, timeout=600, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert f"leaky.py:{leak_line()} handle() keeps" in text, text
    assert "held by" in text, text
    assert "memsleuth watch -- python leaky.py" in text, text
    assert "memsleuth run leaky.py" in text, text
    assert "not run (--skip native): memsleuth run --native leaky.py" in text, text
    assert "bytearray +" in text, text
    # the runs' time as ratios to the untracked run's
    run_line = next(line for line in text.splitlines() if "memsleuth run leaky.py" in line)
    assert "x (" in run_line, run_line


def test_a_bounded_cache_is_no_leak_to_the_allocation_instruments(tmp_path: Path) -> None:
    script = write(tmp_path, "bounded.py", BOUNDED)
    result = memsleuth(
        "instruments", "--json", "--skip", "rss,native", "--", str(script), timeout=600
    )
    rows, _ = seen_of(result)
    for name in ("python", "python_sampled"):
        assert rows[name]["seen"]["report"]["verdict"] != "leaking", rows[name]
    assert "bytearray" not in [t["name"] for t in rows["objects"]["seen"]["growing"]]


def test_duration_stops_a_program_that_does_not_end_and_keep_keeps_the_captures(
    tmp_path: Path,
) -> None:
    script = write(
        tmp_path,
        "server.py",
        "import time\nKEPT = []\nwhile True:\n"
        "    KEPT.append(bytearray(20000))  # LEAK\n    time.sleep(0.002)\n",
    )
    kept = tmp_path / "kept"
    result = memsleuth(
        "instruments",
        "--json",
        "--duration",
        "2s",
        "--skip",
        "rss,sampled,native",
        "--keep",
        str(kept),
        "--",
        str(script),
        timeout=300,
    )
    rows, runs = seen_of(result)
    assert all(r["stopped"] for r in runs), runs
    report = rows["python"]["seen"]["report"]
    assert report["verdict"] == "leaking", report
    assert report["findings"][0]["location"]["line"] == 4
    # the kept capture says what the row says
    verdict = memsleuth("report", "verdict", "--json", str(kept / "run.msl"))
    assert verdict.json() == report
    # nothing of the interrupted programs is left running
    leftover = subprocess.run(["pgrep", "-f", str(script)], capture_output=True, text=True)
    assert leftover.stdout == "", leftover.stdout


def test_bad_program_input_is_one_line(tmp_path: Path) -> None:
    line = memsleuth("instruments", "--", str(tmp_path / "missing.py")).assert_clean_failure()
    assert "no script" in line
    assert "missing.py" in line
    line = memsleuth("instruments", "--", "-m").assert_clean_failure()
    assert "-m needs a module" in line
    line = memsleuth("instruments", "--duration", "2s").assert_clean_failure()
    assert "for a program" in line
    line = memsleuth("instruments", "--skip", "everything", "--", "x.py").assert_clean_failure()
    assert "--skip" in line
