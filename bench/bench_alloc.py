"""Benchmarks of the allocation tracker (the `python` instrument) against its peers, side by side
in one run on the same workloads, written to the "Allocation tracking" part of bench/RESULTS.md.

Configurations, each run in a fresh process (the script prints the seconds of its core work,
measured with time.perf_counter, as a last line ``ELAPSED <seconds>``):

    untracked                         python script.py
    tracemalloc, 1 / 25 frames        python alloc_wrap.py tracemalloc N script.py
    memray                            python -m memray run -q -f -o X.bin script.py
    memray --trace-python-allocators  the same, recording every Python allocation (like-for-like)
    memsleuth full                    python alloc_wrap.py memsleuth X.msl stats.json 0 script.py
    memsleuth --sample 512KiB         python alloc_wrap.py memsleuth X.msl stats.json 512KiB ...

alloc_wrap.py's memsleuth mode does what ``memsleuth run --no-report [--sample S] -o X.msl`` does
(a memsleuth.Tracker around runpy.run_path) and also writes the tracker's event counts, which the
command line does not print.

Metrics: in-script time (best-of-N and median, as ratios to untracked); whole-process wall time;
peak RSS of each child (ru_maxrss from os.wait4); capture size and bytes per recorded event;
the time of each tool's leak report on the leaking server's capture and on a capture of at
least 10 million events.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from results_md import cpu_model, tree_revision, write_section

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKLOAD_DIR = HERE / "workloads"
WRAP = HERE / "alloc_wrap.py"
PY = sys.executable
SCALE_ENV = "MEMSLEUTH_BENCH_SCALE"
TIMEOUT = 1800.0  # seconds, per child
GNU_TIME = next((t for t in ("/usr/bin/time",) if os.access(t, os.X_OK)), None)

WORKLOADS = {
    "small objects": "small_objects.py",
    "large buffers": "large_buffers.py",
    "call-heavy": "call_heavy.py",
    "realistic mixed": "realistic_mixed.py",
    "leaking server loop": "leaky_server.py",
}
LEAKY = "leaking server loop"
# requests of leaky_server.py for the report-speed case: about 2,600 events (allocations +
# frees, as memsleuth counts them) per request, so >= 10 million events at scale 1
EVENTS_REQUESTS = 4000
EVENTS_GOAL = 10_000_000

CONFIGS = {
    "untracked": "untracked",
    "tm1": "tracemalloc, 1 frame",
    "tm25": "tracemalloc, 25 frames",
    "memray": "memray",
    "memray-py": "memray --trace-python-allocators",
    "ms-full": "memsleuth full",
    "ms-sample": "memsleuth --sample 512KiB",
    "ms-lean": "memsleuth run --no-report --census 0",
    "ms-run": "memsleuth run (as typed)",
}
SAMPLE = "512KiB"
CAPTURING = ["memray", "memray-py", "ms-full", "ms-sample"]
LIKE_FOR_LIKE = ["tm1", "tm25", "memray-py"]  # peers that see every Python allocation


# ---------------------------------------------------------------------------------------------
# running children


@dataclass
class Child:
    rc: int
    stdout: str
    stderr: str
    wall: float  # seconds, from spawn to exit
    maxrss: int  # bytes, the child's peak RSS (ru_maxrss)


def run_child(argv: list[str], env: dict[str, str], timeout: float = TIMEOUT) -> Child:
    """Runs argv to completion and returns its output, wall time and peak RSS.

    The peak RSS comes from GNU time (``/usr/bin/time -f %M``), which reads the child's own
    ``ru_maxrss`` with wait4. The harness cannot read it itself: Linux starts a child's
    ``ru_maxrss`` at its parent's high-water mark (the mm it was forked from), so every direct
    child of this Python process would report at least this process' own peak. Without GNU
    time the harness falls back to os.wait4 and the figure has that floor (said in the table)."""
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as rss_file:
        full = [GNU_TIME, "-f", "%M", "-o", rss_file.name, *argv] if GNU_TIME else argv
        t0 = time.perf_counter()
        p = subprocess.Popen(
            full, stdout=subprocess.PIPE, stderr=err, env=env, cwd=WORKLOAD_DIR, text=True
        )
        killer = threading.Timer(timeout, p.kill)
        killer.start()
        try:
            assert p.stdout is not None
            out = p.stdout.read()  # until the child closes it (it exits)
            p.stdout.close()
            _, status, usage = os.wait4(p.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait again
        err.seek(0)
        stderr = err.read().decode(errors="replace")
        maxrss = usage.ru_maxrss * 1024
        if GNU_TIME:
            # "Command exited with non-zero status N" may come first; the figure is last
            last = (rss_file.read().strip().splitlines() or [""])[-1]
            maxrss = int(last) * 1024 if last.isdigit() else 0
    return Child(p.returncode, out, stderr, wall, maxrss)


def elapsed_of(out: str) -> Optional[float]:
    for line in reversed(out.splitlines()):
        if line.startswith("ELAPSED "):
            return float(line.split()[1])
    return None


def command(cfg: str, script: Path, args: list[str], cap: Path, stats: Path) -> list[str]:
    target = [str(script), *args]
    if cfg == "untracked":
        return [PY, *target]
    if cfg in ("tm1", "tm25"):
        return [PY, str(WRAP), "tracemalloc", "1" if cfg == "tm1" else "25", *target]
    if cfg in ("memray", "memray-py"):
        extra = ["--trace-python-allocators"] if cfg == "memray-py" else []
        return [PY, "-m", "memray", "run", "-q", "-f", *extra, "-o", str(cap), *target]
    if cfg in ("ms-full", "ms-sample"):
        sample = "0" if cfg == "ms-full" else SAMPLE
        return [PY, str(WRAP), "memsleuth", str(cap), str(stats), sample, *target]
    if cfg == "ms-lean":
        lean = ["--no-report", "--census", "0"]
        return [PY, "-m", "memsleuth", "run", *lean, "-o", str(cap), *target]
    if cfg == "ms-run":
        # the command as a user types it: censuses every second, the exit verdict, the HTML
        return [PY, "-m", "memsleuth", "run", "-o", str(cap), *target]
    raise ValueError(cfg)


def capture_path(tmp: Path, tag: str, cfg: str) -> Path:
    return tmp / f"{tag}.{cfg}.{'msl' if cfg.startswith('ms-') else 'bin'}"


def memray_events(cap: Path) -> int:
    """Allocation and deallocation records in a memray capture, from its header.

    memray's ``total_allocations`` counts every record it wrote, frees included (it equals the
    number of records FileReader.get_allocation_records() yields); ``memray stats --json``'s
    ``total_num_allocations`` counts allocations only."""
    import memray

    return int(memray.FileReader(str(cap)).metadata.total_allocations)


@dataclass
class Run:
    elapsed: float
    wall: float
    maxrss: int
    size: Optional[int] = None  # capture bytes
    events: Optional[int] = None  # allocations + frees recorded
    dropped: Optional[int] = None


@dataclass
class Cell:
    runs: list[Run] = field(default_factory=list)
    failure: Optional[str] = None

    def best(self) -> float:
        return min(r.elapsed for r in self.runs)

    def median(self, attr: str = "elapsed") -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)


def run_config(
    cfg: str,
    script: Path,
    args: list[str],
    tmp: Path,
    tag: str,
    env: dict[str, str],
    read_events: bool,
) -> tuple[Optional[Run], Optional[str]]:
    """One fresh process of one configuration; ``read_events``: read memray's event count (slow)."""
    cap = capture_path(tmp, tag, cfg)
    stats = tmp / f"{tag}.{cfg}.stats.json"
    for p in (cap, stats):
        p.unlink(missing_ok=True)
    child = run_child(command(cfg, script, args, cap, stats), env)
    elapsed = elapsed_of(child.stdout)
    if child.rc != 0 or elapsed is None:
        tail = "\n".join(child.stderr.strip().splitlines()[-15:])
        return None, f"exit {child.rc}: {tail}"
    run = Run(elapsed, child.wall, child.maxrss)
    if cfg in CAPTURING:
        run.size = cap.stat().st_size if cap.exists() else None
    if cfg.startswith("ms-") and stats.exists():
        st = json.loads(stats.read_text())
        run.events = int(st["allocs"]) + int(st["frees"])
        run.dropped = int(st.get("dropped", 0))
    if cfg.startswith("memray") and read_events and cap.exists():
        run.events = memray_events(cap)
    return run, None


def time_report(argv: list[str], reps: int, env: dict[str, str]) -> dict[str, Any]:
    """Best wall time of ``reps`` runs of a report command, and its peak RSS."""
    walls, rss = [], []
    for _ in range(reps):
        child = run_child(argv, env)
        if child.rc != 0:
            tail = "\n".join(child.stderr.strip().splitlines()[-15:])
            print(f"  report failed: {' '.join(argv)}\n{tail}", file=sys.stderr)
            return {"ok": False, "note": f"failed (exit {child.rc})"}
        walls.append(child.wall)
        rss.append(child.maxrss)
    return {"ok": True, "best": min(walls), "maxrss": max(rss)}


def report_commands(tmp: Path, tag: str, have_ms_leaks: bool) -> dict[str, tuple[str, list[str]]]:
    """label -> (capture config, argv) of the leak reports compared."""
    out: dict[str, tuple[str, list[str]]] = {}
    html = str(tmp / f"{tag}.report.html")
    for cfg in ("ms-full", "ms-sample"):
        argv = [PY, "-m", "memsleuth", "report", "leaks", str(capture_path(tmp, tag, cfg))]
        out[f"`memsleuth report leaks` ({CONFIGS[cfg]} capture)"] = (
            cfg,
            argv if have_ms_leaks else [],
        )
    # the one verdict on the same capture; and on the default command's capture, which holds
    # a census every second: censuses must not make a report slower
    verdict = [PY, "-m", "memsleuth", "report", "verdict", str(capture_path(tmp, tag, "ms-full"))]
    out["`memsleuth report verdict` (memsleuth full capture)"] = (
        "ms-full",
        verdict if have_ms_leaks else [],
    )
    for report in ("leaks", "verdict"):
        argv = [PY, "-m", "memsleuth", "report", report, str(capture_path(tmp, tag, "ms-run"))]
        out[f"`memsleuth report {report}` ({CONFIGS['ms-run']} capture, with censuses)"] = (
            "ms-run",
            argv if have_ms_leaks else [],
        )
    for cfg in ("memray-py", "memray"):
        cap = str(capture_path(tmp, tag, cfg))
        for reporter in ("flamegraph", "table"):
            if cfg == "memray" and reporter == "table":
                continue
            argv = [PY, "-m", "memray", reporter, "--leaks", "-f", "-o", html, cap]
            out[f"`memray {reporter} --leaks` ({CONFIGS[cfg]} capture)"] = (cfg, argv)
    return out


def memsleuth_has_leaks_report(env: dict[str, str]) -> bool:
    child = run_child([PY, "-m", "memsleuth", "report", "leaks", "--help"], env, timeout=60)
    return child.rc == 0


# ---------------------------------------------------------------------------------------------
# formatting


def ratio(x: float, base: float) -> str:
    r = x / base
    return f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def size(n: int) -> str:
    return f"{n / 1024:.0f} KiB" if n < 2**20 else mib(n)


def count(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    if n >= 1_000:
        return f"{n / 1e3:.1f}k"
    return str(n)


def secs(s: float) -> str:
    return f"{s:.2f} s" if s >= 1 else f"{s * 1000:.0f} ms"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def yes(ok: Optional[bool]) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


# ---------------------------------------------------------------------------------------------


def machine_facts() -> list[str]:
    cpu = cpu_model()
    import memsleuth

    rev = tree_revision(ROOT)
    return [
        f"- machine: {os.cpu_count()} cores ({cpu}), Linux {platform.release()}",
        f"- Python {platform.python_version()} (tracemalloc is its own), "
        f"memray {importlib.metadata.version('memray')}, "
        f"memsleuth {memsleuth.__version__} built from `{rev}`",
    ]


def chosen_workloads(ap: argparse.ArgumentParser, given: Optional[str], known: Any) -> list[str]:
    """The workloads named in ``--workloads`` (comma-separated), or all of ``known``; an
    unknown name is a usage error."""
    if not given:
        return list(known)
    workloads = [w.strip() for w in given.split(",")]
    unknown = set(workloads) - set(known)
    if unknown:
        ap.error(f"unknown workloads {sorted(unknown)}; choose from {list(known)}")
    return workloads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="RESULTS.md to update")
    ap.add_argument("--quick", action="store_true", help="1 repetition, inputs scaled by 0.1")
    ap.add_argument("--reps", type=int, help="repetitions per configuration (default 5)")
    ap.add_argument("--report-reps", type=int, help="repetitions per report (default 3)")
    ap.add_argument("--scale", type=float, help=f"workload size factor ({SCALE_ENV})")
    ap.add_argument("--workloads", help="comma-separated subset, e.g. 'call-heavy,small objects'")
    ap.add_argument("--no-events-case", action="store_true", help="skip the 10M-event case")
    ap.add_argument("--json", type=Path, help="also write the raw measurements here")
    args = ap.parse_args()
    reps = args.reps or (1 if args.quick else 5)
    report_reps = args.report_reps or (1 if args.quick else 3)
    scale = args.scale if args.scale is not None else (0.1 if args.quick else 1.0)
    workloads = chosen_workloads(ap, args.workloads, WORKLOADS)
    env = dict(os.environ, PYTHONHASHSEED="0")
    env[SCALE_ENV] = repr(scale)
    configs = list(CONFIGS)
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()

    have_ms_leaks = memsleuth_has_leaks_report(env)
    if not have_ms_leaks:
        print("memsleuth has no `report leaks` yet: its report cells are n/a", file=sys.stderr)

    cells: dict[str, dict[str, Cell]] = {w: {c: Cell() for c in configs} for w in workloads}
    reports: dict[str, dict[str, Any]] = {}
    events_case: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="memsleuth-bench-alloc-"))
    try:
        # warm the page cache and the bytecode caches of every tool, untimed
        for cfg in configs:
            tiny = dict(env, **{SCALE_ENV: "0.01"})
            run_config(cfg, WORKLOAD_DIR / "call_heavy.py", [], tmp, "warmup", tiny, False)

        for wl in workloads:
            script = WORKLOAD_DIR / WORKLOADS[wl]
            tag = script.stem
            for rep in range(reps):
                order = configs[rep % len(configs) :] + configs[: rep % len(configs)]
                for cfg in order:
                    cell = cells[wl][cfg]
                    if cell.failure:
                        continue
                    last = rep == reps - 1
                    run, failure = run_config(cfg, script, [], tmp, tag, env, read_events=last)
                    if run is None:
                        cell.failure = failure
                        print(f"{wl:20} {CONFIGS[cfg]:34} FAILED {failure}", file=sys.stderr)
                        continue
                    cell.runs.append(run)
                    extra = f" {count(run.events)} events" if run.events else ""
                    print(
                        f"{wl:20} {CONFIGS[cfg]:34} {run.elapsed:8.3f} s"
                        f" {run.maxrss / 2**20:7.1f} MiB{extra}",
                        file=sys.stderr,
                    )
            if wl == LEAKY:
                for label, (cfg, argv) in report_commands(tmp, tag, have_ms_leaks).items():
                    if not argv:
                        reports[label] = {"ok": False, "note": "n/a (no `report leaks`)"}
                    elif cells[wl][cfg].failure or not capture_path(tmp, tag, cfg).exists():
                        reports[label] = {"ok": False, "note": "n/a (no capture)"}
                    else:
                        reports[label] = time_report(argv, report_reps, env)
                    reports[label]["cfg"] = cfg
                    print(f"report {label}: {reports[label]}", file=sys.stderr)
            for cfg in (*CAPTURING, "ms-lean", "ms-run"):  # keep the disk small
                capture_path(tmp, tag, cfg).unlink(missing_ok=True)

        if not args.no_events_case:
            events_case = run_events_case(tmp, env, scale, report_reps, have_ms_leaks)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    text = render(
        args,
        reps,
        report_reps,
        scale,
        workloads,
        cells,
        reports,
        events_case,
        started,
        load_before,
    )
    write_section(args.out, "bench_alloc.py", text)
    print(f"wrote {args.out}", file=sys.stderr)
    if args.json:
        raw = {
            "cells": {
                w: {
                    c: {"runs": [vars(r) for r in cell.runs], "failure": cell.failure}
                    for c, cell in row.items()
                }
                for w, row in cells.items()
            },
            "reports": reports,
            "events_case": events_case,
        }
        args.json.write_text(json.dumps(raw, indent=1, default=str))


def run_events_case(
    tmp: Path, env: dict[str, str], scale: float, report_reps: int, have_ms_leaks: bool
) -> dict[str, Any]:
    """The leaking server, sized for >= 10M events, tracked by memsleuth full and by memray
    --trace-python-allocators; then each tool's leak report on its capture."""
    requests = max(1, round(EVENTS_REQUESTS * scale))
    script = WORKLOAD_DIR / "leaky_server.py"
    tag = "events"
    case: dict[str, Any] = {"requests": requests, "runs": {}, "reports": {}}
    for cfg in ("untracked", "ms-full", "memray-py"):
        run, failure = run_config(cfg, script, [str(requests)], tmp, tag, env, read_events=True)
        case["runs"][cfg] = run if run else failure
        print(f"events case {CONFIGS[cfg]}: {run or failure}", file=sys.stderr)
    for label, (cfg, argv) in report_commands(tmp, tag, have_ms_leaks).items():
        if cfg not in ("ms-full", "memray-py"):
            continue
        if not argv:
            res = {"ok": False, "note": "n/a (no `report leaks`)"}
        elif not isinstance(case["runs"][cfg], Run):
            res = {"ok": False, "note": "n/a (no capture)"}
        else:
            res = time_report(argv, report_reps, env)
        res["cfg"] = cfg
        case["reports"][label] = res
        print(f"events case report {label}: {res}", file=sys.stderr)
    return case


def render(
    args: argparse.Namespace,
    reps: int,
    report_reps: int,
    scale: float,
    workloads: list[str],
    cells: dict[str, dict[str, Cell]],
    reports: dict[str, dict[str, Any]],
    events_case: dict[str, Any],
    started: datetime.datetime,
    load_before: tuple[float, float, float],
) -> str:
    cmd = os.environ.get("BENCH_COMMAND") or "bench/bench_alloc.py " + " ".join(sys.argv[1:])
    load_after = os.getloadavg()
    configs = list(CONFIGS)
    ok = {w: {c: cells[w][c] for c in configs if cells[w][c].runs} for w in workloads}

    def base(w: str) -> Optional[Cell]:
        return ok[w].get("untracked")

    lines = [
        "## Allocation tracking (the `python` instrument)",
        "",
        f"- command: `{cmd}`",
        f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')}; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after",
        *machine_facts(),
        f"- {reps} fresh process(es) per workload and configuration, configurations",
        f"  interleaved; workload scale {scale:g} (`{SCALE_ENV}`); {report_reps} run(s) per report",
        "",
        "Workloads: `bench/workloads/*.py`, each a fixed amount of work (about 1-2 s untracked at",
        "scale 1): small objects (lists, dicts, tuples, str churn), large buffers (64 KiB-4 MiB",
        "bytearrays touched and freed), call-heavy (recursion and small calls, few allocations),",
        "realistic mixed (an HTTP/JSON request handler with classes and regexes) and a leaking",
        "server loop (keeps about 1% of what each request allocates in a module-level list).",
        "",
        "Configurations: `python script.py`; tracemalloc via `bench/alloc_wrap.py`",
        "(`tracemalloc.start(N)`, then `runpy.run_path`); `python -m memray run -q -f -o X.bin`,",
        "with and without `--trace-python-allocators` (memray without it sees only the allocator's",
        "arenas and large blocks, not each Python object; with it, every Python allocation, as",
        "tracemalloc and memsleuth full do); memsleuth via `bench/alloc_wrap.py`, which does what",
        f"`memsleuth run --no-report [--sample {SAMPLE}] -o X.msl` does and also saves the",
        "tracker's event counts. Then `memsleuth run` itself: lean (`--no-report --census 0`)",
        "and as typed (`memsleuth run -o X.msl script.py`: a census every second, the exit",
        "verdict with holders, the flame graph).",
        "",
        "### Run time",
        "",
        "The workload's own time (`ELAPSED`, from `time.perf_counter` around its core work, so",
        "interpreter start-up and the tracker's final write are excluded), as a ratio to",
        "untracked: best-of-N, then the median in parentheses. Lower is better.",
        "",
    ]
    rows = []
    for w in workloads:
        b = base(w)
        row = [w]
        for c in configs:
            cell = cells[w][c]
            if not cell.runs:
                row.append("failed" if cell.failure else "-")
            elif c == "untracked" or b is None:
                row.append(f"{secs(cell.best())} ({secs(cell.median())})")
            else:
                row.append(f"{ratio(cell.best(), b.best())} ({ratio(cell.median(), b.median())})")
        rows.append(row)
    lines += table(["workload", *(CONFIGS[c] for c in configs)], rows)

    lines += [
        "",
        "### Whole-process wall time",
        "",
        "From spawn to exit, including start-up, imports of the tracker and writing (memray:",
        "compressing) the capture at exit; median, as a ratio to untracked.",
        "",
    ]
    rows = []
    for w in workloads:
        b = base(w)
        row = [w]
        for c in configs:
            cell = cells[w][c]
            if not cell.runs:
                row.append("failed" if cell.failure else "-")
            elif c == "untracked" or b is None:
                row.append(secs(cell.median("wall")))
            else:
                row.append(ratio(cell.median("wall"), b.median("wall")))
        rows.append(row)
    lines += table(["workload", *(CONFIGS[c] for c in configs)], rows)

    lines += [
        "",
        "### Memory",
        "",
        "Peak RSS of the process, median; for the trackers, the extra over untracked. Lower is",
        *(
            [
                "better. It is the child's own `ru_maxrss`, read by `/usr/bin/time -f %M` (the",
                "harness cannot read it with `os.wait4`: Linux starts a child's `ru_maxrss` at",
                "its parent's peak).",
            ]
            if GNU_TIME
            else [
                "better. It is `ru_maxrss` from `os.wait4`: without GNU time every figure is at",
                "least the harness' own peak RSS, which hides part of the differences.",
            ]
        ),
        "",
    ]
    rows = []
    for w in workloads:
        b = base(w)
        row = [w]
        for c in configs:
            cell = cells[w][c]
            if not cell.runs:
                row.append("failed" if cell.failure else "-")
            elif c == "untracked" or b is None:
                row.append(mib(cell.median("maxrss")))
            else:
                row.append("+" + mib(cell.median("maxrss") - b.median("maxrss")))
        rows.append(row)
    lines += table(["workload", *(CONFIGS[c] for c in configs)], rows)

    lines += [
        "",
        "### Capture size and bytes per event",
        "",
        "Size of the capture on disk / events recorded = bytes per event (last repetition). An",
        "event is one allocation or one free. memsleuth: `allocs + frees` from the tracker's",
        "stats; memray: `total_allocations` from the capture header",
        "(`memray.FileReader(X.bin).metadata`), which counts every allocation and deallocation",
        "record (`memray stats --json` counts allocations only). The two do not count the same",
        "work: memray's profile hook makes CPython 3.11 create a frame object for every Python",
        "call, and with `--trace-python-allocators` memray records those allocations too (on",
        "call-heavy they are nearly all its events), so compare capture sizes as well.",
        "tracemalloc keeps its traces in memory and writes no capture.",
        "",
    ]
    rows = []
    dropped_notes = []
    for w in workloads:
        row = [w]
        for c in CAPTURING:
            cell = cells[w][c]
            r = cell.runs[-1] if cell.runs else None
            if r is None:
                row.append("failed" if cell.failure else "-")
            elif r.size is None or r.events is None:
                row.append(f"{size(r.size) if r.size is not None else '?'}, events ?")
            elif r.events == 0:
                row.append(f"- ({size(r.size)} / 0)")
            else:
                row.append(f"{r.size / r.events:.2f} B ({size(r.size)} / {count(r.events)})")
            if r is not None and r.dropped:
                dropped_notes.append(f"{w}, {CONFIGS[c]}: {r.dropped} dropped")
        rows.append(row)
    lines += table(["workload", *(CONFIGS[c] for c in CAPTURING)], rows)
    if dropped_notes:
        lines += [
            "",
            "Events memsleuth counted as dropped (its buffers were full): "
            + "; ".join(dropped_notes)
            + ".",
        ]

    ms_full_report = next(
        (r for lbl, r in reports.items() if r.get("cfg") == "ms-full" and r.get("ok")), None
    )
    if reports:
        lines += [
            "",
            "### Leak report on the leaking server loop's capture",
            "",
            f"Wall time of the report command (best of {report_reps}), including interpreter",
            "start-up; memray's HTML is written to a file, memsleuth's report to the terminal",
            "(discarded). Ratio: the report's time / memsleuth's report on its full capture.",
            "",
        ]
        rows = []
        for label, r in reports.items():
            cell = cells[LEAKY][r["cfg"]]
            ev = cell.runs[-1].events if cell.runs else None
            evs = count(ev) if ev else "?"
            if not r.get("ok"):
                rows.append([label, evs, r.get("note", "n/a"), "", ""])
                continue
            rel = ratio(r["best"], ms_full_report["best"]) if ms_full_report else "n/a"
            rows.append([label, evs, secs(r["best"]), mib(r["maxrss"]), rel])
        lines += table(["report (capture)", "events", "time", "peak RSS", "ratio"], rows)

    if events_case:
        lines += render_events_case(events_case, report_reps)

    lines += render_goals(workloads, ok, reports, events_case)
    lines += [
        "",
        "Reading the tables: on a busy or shared machine, compare best-of-N; a few percent is",
        "noise. Ratios below 1.00x for a tracker are noise too.",
    ]
    return "\n".join(lines)


def render_events_case(case: dict[str, Any], report_reps: int) -> list[str]:
    runs = case["runs"]
    lines = [
        "",
        "### Leak report on 10 million events",
        "",
        f"`leaky_server.py {case['requests']}`: the leaking server loop sized for at least",
        f"{EVENTS_GOAL / 1e6:.0f} million events at scale 1, tracked once by each tool; then each",
        f"tool's leak report on its capture (best of {report_reps}).",
        "",
    ]
    base = runs.get("untracked")
    rows = []
    ms = next((r for r in case["reports"].values() if r["cfg"] == "ms-full" and r.get("ok")), None)
    for label, r in case["reports"].items():
        run = runs.get(r["cfg"])
        if not isinstance(run, Run):
            rows.append([label, "failed", "", "", "", "", ""])
            continue
        tracked = ratio(run.elapsed, base.elapsed) if isinstance(base, Run) else "?"
        cap = size(run.size) if run.size is not None else "?"
        evs = count(run.events) if run.events else "?"
        if r.get("ok"):
            rel = ratio(r["best"], ms["best"]) if ms else "n/a"
            rows.append([label, tracked, evs, cap, secs(r["best"]), mib(r["maxrss"]), rel])
        else:
            rows.append([label, tracked, evs, cap, r.get("note", "n/a"), "", ""])
    lines += table(
        [
            "report (capture)",
            "tracked run",
            "events",
            "capture",
            "report time",
            "peak RSS",
            "ratio",
        ],
        rows,
    )
    short = [
        CONFIGS[c]
        for c in ("ms-full", "memray-py")
        if isinstance(runs.get(c), Run) and (runs[c].events or 0) < EVENTS_GOAL
    ]
    if short:
        lines += [
            "",
            f"Fewer than {EVENTS_GOAL:,} events in: {', '.join(short)} (a smaller scale).",
        ]
    return lines


def render_goals(
    workloads: list[str],
    ok: dict[str, dict[str, Cell]],
    reports: dict[str, dict[str, Any]],
    events_case: dict[str, Any],
) -> list[str]:
    rows: list[list[str]] = []

    def r_best(w: str, c: str) -> Optional[float]:
        if c in ok[w] and "untracked" in ok[w]:
            return ok[w][c].best() / ok[w]["untracked"].best()
        return None

    # 1. full mode faster than every like-for-like peer on every workload
    worst: Optional[tuple[float, str, str]] = None  # (ms / fastest peer, workload, peer)
    complete = True
    for w in workloads:
        ms = r_best(w, "ms-full")
        peers = [(r_best(w, p), p) for p in LIKE_FOR_LIKE]
        peers = [(v, p) for v, p in peers if v is not None]
        if ms is None or len(peers) < len(LIKE_FOR_LIKE):
            complete = False
            continue
        v, p = min(peers)
        if worst is None or ms / v > worst[0]:
            worst = (ms / v, w, p)
    if worst:
        rows.append(
            [
                "full mode faster than tracemalloc (1 and 25 frames) and memray "
                "--trace-python-allocators on every workload",
                f"worst: {worst[1]}, memsleuth full / {CONFIGS[worst[2]]} = {worst[0]:.3f}",
                yes(worst[0] < 1 and complete),
            ]
        )
    # 2. full <= 1.5x on realistic mixed
    v = r_best("realistic mixed", "ms-full") if "realistic mixed" in ok else None
    rows.append(
        [
            "full mode <= 1.5x untracked on realistic mixed",
            f"{v:.3f}x" if v else "n/a",
            yes(None if v is None else v <= 1.5),
        ]
    )
    # 3. sampled <= 1.05x (every workload)
    vals = [(r_best(w, "ms-sample"), w) for w in workloads]
    vals = [(x, w) for x, w in vals if x is not None]
    if vals:
        x, w = max(vals)
        rows.append(["sampled mode <= 1.05x untracked", f"worst: {w}, {x:.3f}x", yes(x <= 1.05)])
    # 4. tracker memory below memray's
    for mine, theirs in (("ms-full", "memray-py"), ("ms-sample", "memray")):
        diffs = []
        for w in workloads:
            if all(c in ok[w] for c in (mine, theirs, "untracked")):
                u = ok[w]["untracked"].median("maxrss")
                diffs.append(
                    (ok[w][mine].median("maxrss") - u, ok[w][theirs].median("maxrss") - u, w)
                )
        if diffs:
            worst_d = max(diffs, key=lambda d: d[0] - d[1])
            rows.append(
                [
                    f"extra RSS of {CONFIGS[mine]} below that of {CONFIGS[theirs]}, every workload",
                    f"worst: {worst_d[2]}, +{mib(worst_d[0])} vs +{mib(worst_d[1])}",
                    yes(all(a < b for a, b, _ in diffs)),
                ]
            )
    # 5. the command as typed within 1.5x of the lean one, and at most +64 MiB over it
    typed = [
        (
            ok[w]["ms-run"].median("wall") / ok[w]["ms-lean"].median("wall"),
            ok[w]["ms-run"].median("maxrss") - ok[w]["ms-lean"].median("maxrss"),
            w,
        )
        for w in workloads
        if "ms-run" in ok[w] and "ms-lean" in ok[w]
    ]
    if typed:
        worst_t = max(typed)
        rows.append(
            [
                "`memsleuth run` as typed within 1.5x of `--no-report --census 0` "
                "(whole-process wall, median), every workload",
                f"worst: {worst_t[2]}, {worst_t[0]:.2f}x",
                yes(worst_t[0] <= 1.5 and len(typed) == len(workloads)),
            ]
        )
        worst_m = max(typed, key=lambda t: t[1])
        rows.append(
            [
                "`memsleuth run` as typed at most +64 MiB of RSS over `--no-report --census 0`",
                f"worst: {worst_m[2]}, +{mib(worst_m[1])}",
                yes(worst_m[1] <= 64 * 2**20 and len(typed) == len(workloads)),
            ]
        )
    # 6. bytes per event <= memray's
    bpe = []
    for w in workloads:
        a = ok[w].get("ms-full")
        b = ok[w].get("memray-py")
        if a and b and a.runs[-1].events and b.runs[-1].events and a.runs[-1].size is not None:
            ra, rb = a.runs[-1], b.runs[-1]
            bpe.append((ra.size / ra.events, rb.size / rb.events, w))
    if bpe:
        worst_b = max(bpe, key=lambda t: t[0] / t[1])
        rows.append(
            [
                "bytes per event of memsleuth full <= that of memray --trace-python-allocators",
                f"worst: {worst_b[2]}, {worst_b[0]:.2f} B vs {worst_b[1]:.2f} B",
                yes(all(a <= b for a, b, _ in bpe)),
            ]
        )
    # 7. leak report on 10M events < 10 s and faster than memray's
    if events_case:
        reps_ = events_case["reports"]
        ms = next((r for r in reps_.values() if r["cfg"] == "ms-full"), None)
        peers = [r for r in reps_.values() if r["cfg"] == "memray-py" and r.get("ok")]
        run = events_case["runs"].get("ms-full")
        enough = isinstance(run, Run) and (run.events or 0) >= EVENTS_GOAL
        if ms and ms.get("ok"):
            fastest = min((r["best"] for r in peers), default=None)
            met = ms["best"] < 10 and (fastest is None or ms["best"] < fastest)
            rows.append(
                [
                    "leak report on 10M events < 10 s and faster than memray's",
                    f"{secs(ms['best'])} vs memray's fastest {secs(fastest) if fastest else 'n/a'}"
                    + ("" if enough else " (fewer than 10M events: smaller scale)"),
                    yes(met if enough else None),
                ]
            )
        else:
            rows.append(
                [
                    "leak report on 10M events < 10 s and faster than memray's",
                    ms.get("note", "n/a") if ms else "n/a",
                    "n/a",
                ]
            )
    # 8. the one verdict on 10M events under 2 s
    if events_case:
        v = events_case["reports"].get("`memsleuth report verdict` (memsleuth full capture)")
        run = events_case["runs"].get("ms-full")
        enough = isinstance(run, Run) and (run.events or 0) >= EVENTS_GOAL
        if v and v.get("ok"):
            rows.append(
                [
                    "`report verdict` on 10M events < 2 s",
                    secs(v["best"]) + ("" if enough else " (fewer than 10M events)"),
                    yes(v["best"] < 2 if enough else None),
                ]
            )
    # 9. censuses never make a report slower (the leaking loop's captures)
    pairs = [
        (
            reports.get(f"`memsleuth report {r}` ({CONFIGS['ms-run']} capture, with censuses)"),
            reports.get(
                "`memsleuth report leaks` (memsleuth full capture)"
                if r == "leaks"
                else "`memsleuth report verdict` (memsleuth full capture)"
            ),
            r,
        )
        for r in ("leaks", "verdict")
    ]
    for with_c, without, r in pairs:
        if with_c and without and with_c.get("ok") and without.get("ok"):
            ratio_ = with_c["best"] / without["best"]
            rows.append(
                [
                    f"`report {r}` on a capture with censuses no slower than without "
                    "(leaking server loop)",
                    f"{secs(with_c['best'])} vs {secs(without['best'])} ({ratio_:.2f}x)",
                    # a different run of the same workload: within 10% is the same
                    yes(ratio_ <= 1.1),
                ]
            )
    lines = [
        "",
        "### Against the project's goals",
        "",
        "From the tables above (run time: best-of-N ratios; memory: median peak RSS).",
        "",
    ]
    return lines + table(["goal", "measured", "met"], rows)


if __name__ == "__main__":
    main()
