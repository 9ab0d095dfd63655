"""Benchmarks of native allocation tracking (`memsleuth run --native`) against memray --native,
side by side in one run on the same workloads, written to the "Native allocation tracking" part
of bench/RESULTS.md.

Configurations, each run in a fresh process, interleaved (the workload prints the seconds of its
core work as a last line ``ELAPSED <seconds>``):

    untracked                           python script.py
    memsleuth --native (as typed)       python -m memsleuth run --native -o X.msl script.py
    memsleuth --native lean             the same with --no-report --census 0
    memsleuth Python only (as typed)    python -m memsleuth run -o X.msl script.py
    memray --native                     python -m memray run --native -q -f -o X.bin script.py
    memray --native --trace-python-allocators
                                        the same, every Python allocation too (like for like)
    memray                              python -m memray run -q -f -o X.bin script.py

Workloads: the five of bench_alloc.py and native_heavy.py (numpy arrays and ctypes malloc/free,
most bytes through the C allocator). Metrics: in-script time and whole-process wall time
(medians, as ratios to untracked), peak RSS of each child and its extra over untracked, capture
size and bytes per recorded event.

    python bench/bench_native.py --out bench/RESULTS.md [--reps 5] [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from bench_alloc import (
    SCALE_ENV,
    WORKLOAD_DIR,
    chosen_workloads,
    count,
    elapsed_of,
    memray_events,
    mib,
    ratio,
    run_child,
    secs,
    size,
    table,
    yes,
)
from bench_alloc import WORKLOADS as ALLOC_WORKLOADS
from results_md import cpu_model, dist_version, tree_revision, write_section

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
SECTION = "bench_native.py"

WORKLOADS = {**ALLOC_WORKLOADS, "native heavy": "native_heavy.py"}
CONFIGS = {
    "untracked": "untracked",
    "ms-native": "memsleuth --native (as typed)",
    "ms-native-lean": "memsleuth --native --no-report --census 0",
    "ms-py": "memsleuth Python only (as typed)",
    "memray-native": "memray --native",
    "memray-native-py": "memray --native --trace-python-allocators",
    "memray": "memray",
}
MEMSLEUTH = ["ms-native", "ms-native-lean", "ms-py"]
CAPTURING = [c for c in CONFIGS if c != "untracked"]
# the configuration of bench_alloc.py's tables that `ms-py` repeats
ALLOC_TYPED = "memsleuth run (as typed)"
SAME = 1.10  # two runs of the same command within 10% are the same


def command(cfg: str, script: Path, cap: Path) -> list[str]:
    if cfg == "untracked":
        return [PY, str(script)]
    if cfg in MEMSLEUTH:
        native = ["--native"] if cfg != "ms-py" else []
        lean = ["--no-report", "--census", "0"] if cfg == "ms-native-lean" else []
        return [PY, "-m", "memsleuth", "run", *native, *lean, "-o", str(cap), str(script)]
    if cfg in ("memray-native", "memray-native-py", "memray"):
        native = {
            "memray-native": ["--native"],
            "memray-native-py": ["--native", "--trace-python-allocators"],
        }.get(cfg, [])
        return [PY, "-m", "memray", "run", *native, "-q", "-f", "-o", str(cap), str(script)]
    raise ValueError(cfg)


def capture_path(tmp: Path, tag: str, cfg: str) -> Path:
    return tmp / f"{tag}.{cfg}.{'msl' if cfg in MEMSLEUTH else 'bin'}"


def remove_outputs(tmp: Path, tag: str, cfg: str) -> None:
    """The capture of a configuration and what comes with it (the as-typed run's flame graph,
    X-leaks.html)."""
    for pattern in (f"{tag}.{cfg}.*", f"{tag}.{cfg}-*"):
        for made in tmp.glob(pattern):
            made.unlink()


@dataclass
class Run:
    elapsed: float  # the workload's own seconds (ELAPSED)
    wall: float  # seconds from spawn to exit
    maxrss: int  # bytes
    size: Optional[int] = None  # capture bytes
    events: Optional[int] = None  # allocations + frees recorded
    dropped: Optional[int] = None  # events memsleuth could not record
    instruments: Optional[list[str]] = None  # memsleuth's capture header
    ctypes_calls: Optional[int] = None  # malloc/free calls the workload made through ctypes


@dataclass
class Cell:
    runs: list[Run] = field(default_factory=list)
    failure: Optional[str] = None

    def median(self, attr: str = "elapsed") -> float:
        return float(statistics.median(getattr(r, attr) for r in self.runs))


class BenchFailed(Exception):
    pass


def stderr_excerpt(text: str, head: int = 25, tail: int = 8) -> str:
    """The start of a failed child's stderr (the program's traceback, memsleuth's error come
    before memsleuth's exit report) and its end."""
    lines = text.strip().splitlines()
    if len(lines) <= head + tail:
        return "\n".join(lines)
    return "\n".join([*lines[:head], f"[... {len(lines) - head - tail} lines ...]", *lines[-tail:]])


def ctypes_calls_of(out: str) -> Optional[int]:
    """The ``CTYPES_CALLS <n>`` line of native_heavy.py: the malloc and free calls it made
    through ctypes (function pointers from dlsym, not calls through an extension's PLT)."""
    for line in out.splitlines():
        if line.startswith("CTYPES_CALLS "):
            return int(line.split()[1])
    return None


def memsleuth_capture_facts(cap: Path, env: dict[str, str]) -> dict[str, Any]:
    """Events, dropped events and instruments of a memsleuth capture, from the header and
    trailer that `memsleuth report leaks --json` prints (``capture``)."""
    argv = [PY, "-m", "memsleuth", "report", "leaks", str(cap), "--json", "--top", "1"]
    child = run_child([*argv, "--windows", "0"], env)
    if child.rc != 0:
        raise BenchFailed(
            f"`memsleuth report leaks {cap.name}` failed (exit {child.rc}):\n"
            + stderr_excerpt(child.stderr)
        )
    capture = json.loads(child.stdout)["capture"]
    return {
        "events": int(capture["allocs"]) + int(capture["frees"]),
        "dropped": int(capture["end"]["dropped"]),
        "instruments": list(capture["instruments"]),
    }


def run_config(
    cfg: str, script: Path, tmp: Path, tag: str, env: dict[str, str], read_events: bool
) -> tuple[Optional[Run], Optional[str]]:
    """One fresh process of one configuration. A failing memsleuth (or untracked) run raises
    BenchFailed; a failing peer returns its error. ``read_events``: count the capture's events."""
    cap = capture_path(tmp, tag, cfg)
    remove_outputs(tmp, tag, cfg)
    child = run_child(command(cfg, script, cap), env)
    elapsed = elapsed_of(child.stdout)
    if child.rc != 0 or elapsed is None:
        tail = stderr_excerpt(child.stderr)
        failure = f"exit {child.rc}{'' if elapsed is not None else ', no ELAPSED line'}"
        if cfg == "untracked" or cfg in MEMSLEUTH:
            raise BenchFailed(f"{CONFIGS[cfg]} on {script.name}: {failure}\n{tail}")
        return None, f"{failure}: {tail}"
    run = Run(elapsed, child.wall, child.maxrss, ctypes_calls=ctypes_calls_of(child.stdout))
    if cfg in CAPTURING:
        if not cap.exists():
            if cfg in MEMSLEUTH:
                raise BenchFailed(f"{CONFIGS[cfg]} on {script.name}: no capture at {cap}")
            return None, f"no capture at {cap}"
        run.size = cap.stat().st_size
        if read_events and cfg in MEMSLEUTH:
            facts = memsleuth_capture_facts(cap, env)
            run.events, run.dropped = facts["events"], facts["dropped"]
            run.instruments = facts["instruments"]
        elif read_events:
            run.events = memray_events(cap)
    remove_outputs(tmp, tag, cfg)  # keep the disk small
    return run, None


# ---------------------------------------------------------------------------------------------
# the Python-only figures bench_alloc.py recorded, for goal (c)


@dataclass
class AllocReference:
    revision: str
    scale: str
    walls: dict[str, float]  # workload -> whole-process wall ratio of `memsleuth run` as typed


def alloc_reference(out: Path) -> Optional[AllocReference]:
    """bench_alloc.py's whole-process wall ratios of `memsleuth run (as typed)` from its part of
    ``out`` (the same command as `ms-py` here, measured by that script's run), or None."""
    try:
        text = out.read_text()
    except OSError:
        return None
    part = re.search(r"<!-- begin bench_alloc\.py -->(.*?)<!-- end bench_alloc\.py -->", text, re.S)
    if not part:
        return None
    body = part.group(1)
    rev = re.search(r"built from `([^`]+)`", body)
    scale = re.search(r"workload scale (\S+)", body)
    wall = re.search(r"### Whole-process wall time\n(.*?)(?:\n###|\Z)", body, re.S)
    if not (rev and scale and wall):
        return None
    rows = [ln for ln in wall.group(1).splitlines() if ln.startswith("|")]
    if len(rows) < 3:
        return None
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    if ALLOC_TYPED not in header:
        return None
    at = header.index(ALLOC_TYPED)
    walls = {}
    for row in rows[2:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        figure = re.fullmatch(r"([0-9.]+)x", cells[at]) if len(cells) > at else None
        if figure:
            walls[cells[0]] = float(figure.group(1))
    return AllocReference(rev.group(1), scale.group(1), walls) if walls else None


# ---------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="RESULTS.md to update")
    ap.add_argument("--quick", action="store_true", help="1 repetition, inputs scaled by 0.1")
    ap.add_argument("--reps", type=int, help="repetitions per configuration (default 5)")
    ap.add_argument("--scale", type=float, help=f"workload size factor ({SCALE_ENV})")
    ap.add_argument("--workloads", help="comma-separated subset, e.g. 'native heavy,call-heavy'")
    ap.add_argument("--json", type=Path, help="also write the raw measurements here")
    args = ap.parse_args()
    reps = args.reps or (1 if args.quick else 5)
    scale = args.scale if args.scale is not None else (0.1 if args.quick else 1.0)
    workloads = chosen_workloads(ap, args.workloads, WORKLOADS)
    env = dict(os.environ, PYTHONHASHSEED="0")
    env[SCALE_ENV] = repr(scale)
    configs = list(CONFIGS)
    reference = alloc_reference(args.out)  # read before this run rewrites the file
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.perf_counter()
    load_before = os.getloadavg()

    cells: dict[str, dict[str, Cell]] = {w: {c: Cell() for c in configs} for w in workloads}
    tmp = Path(tempfile.mkdtemp(prefix="memsleuth-bench-native-"))
    try:
        # warm the page cache, the bytecode caches and memsleuth's cached preload, untimed
        tiny = dict(env, **{SCALE_ENV: "0.01"})
        for cfg in configs:
            for name in ("call_heavy.py", "native_heavy.py"):
                run_config(cfg, WORKLOAD_DIR / name, tmp, "warmup", tiny, False)

        for wl in workloads:
            script = WORKLOAD_DIR / WORKLOADS[wl]
            for rep in range(reps):
                order = configs[rep % len(configs) :] + configs[: rep % len(configs)]
                for cfg in order:
                    cell = cells[wl][cfg]
                    if cell.failure:
                        continue
                    last = rep == reps - 1
                    run, failure = run_config(cfg, script, tmp, script.stem, env, last)
                    if run is None:
                        cell.failure = failure
                        print(f"{wl:20} {CONFIGS[cfg]:42} FAILED {failure}", file=sys.stderr)
                        continue
                    cell.runs.append(run)
                    extra = f" {count(run.events)} events" if run.events else ""
                    print(
                        f"{wl:20} {CONFIGS[cfg]:42} {run.elapsed:8.3f} s {run.wall:8.3f} s"
                        f" {run.maxrss / 2**20:7.1f} MiB{extra}",
                        file=sys.stderr,
                    )
    except BenchFailed as e:
        print(f"bench_native.py: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    took = time.perf_counter() - t0

    text = render(reps, scale, workloads, cells, started, load_before, took, reference)
    write_section(args.out, SECTION, text)
    print(text)
    print(f"wrote {args.out}", file=sys.stderr)
    if args.json:
        raw = {
            w: {
                c: {"runs": [vars(r) for r in cell.runs], "failure": cell.failure}
                for c, cell in row.items()
            }
            for w, row in cells.items()
        }
        args.json.write_text(json.dumps(raw, indent=1))


# ---------------------------------------------------------------------------------------------
# formatting


def render(
    reps: int,
    scale: float,
    workloads: list[str],
    cells: dict[str, dict[str, Cell]],
    started: datetime.datetime,
    load_before: tuple[float, float, float],
    took: float,
    reference: Optional[AllocReference],
) -> str:
    cmd = os.environ.get("BENCH_COMMAND") or "python bench/bench_native.py " + " ".join(
        sys.argv[1:]
    )
    load_after = os.getloadavg()
    configs = list(CONFIGS)
    import memsleuth

    lines = [
        "## Native allocation tracking (`run --native`)",
        "",
        f"- command: `{cmd}`",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; load average {load_before[0]:.2f} before,"
        f" {load_after[0]:.2f} after; the whole benchmark took {took / 60:.1f} min",
        f"- machine: {os.cpu_count()} cores ({cpu_model()}), {platform.system()}"
        f" {platform.release()}",
        f"- Python {platform.python_version()}, memray {dist_version('memray')}, numpy"
        f" {dist_version('numpy')}, memsleuth {memsleuth.__version__} built from"
        f" `{tree_revision(ROOT)}`",
        f"- {reps} fresh process(es) per workload and configuration, configurations interleaved;",
        f"  workload scale {scale:g} (`{SCALE_ENV}`); each figure the median of the processes",
        "",
        "Workloads: the five of the allocation-tracking section (`bench/workloads/*.py`) and",
        "native heavy (`native_heavy.py`: numpy arrays of 1 KiB-4 MiB allocated, filled and",
        "mostly dropped at once, a few kept in a bounded deque, and 8 `malloc`/`free` pairs of",
        "16 B-8 KiB per round through `ctypes.CDLL(None)`: most bytes go through the C allocator).",
        "",
        "Configurations: `python script.py`; `python -m memsleuth run --native -o X.msl",
        "script.py` as users type it (a census every second, the exit verdict and flame graph),",
        "and lean (`--native --no-report --census 0`); `python -m memsleuth run -o X.msl",
        "script.py` (Python's allocators only, as typed); `python -m memray run --native -q -f",
        "-o X.bin script.py`, the same with `--trace-python-allocators` (every Python",
        "allocation too, the work memsleuth does: like for like) and the same without",
        "`--native`. memsleuth's exit report (stderr) is discarded; any failing memsleuth run",
        "stops the benchmark.",
        "",
        "### Run time",
        "",
        "The workload's own time (`ELAPSED`, `time.perf_counter` around its core work: start-up",
        "and the tracker's final write are excluded), median, as a ratio to untracked.",
        "",
    ]

    def row_of(w: str, attr: str) -> list[str]:
        base = cells[w]["untracked"]
        row = [w]
        for c in configs:
            cell = cells[w][c]
            if not cell.runs:
                row.append("failed" if cell.failure else "-")
            elif c == "untracked" or not base.runs:
                row.append(secs(cell.median(attr)))
            else:
                row.append(ratio(cell.median(attr), base.median(attr)))
        return row

    header = ["workload", *(CONFIGS[c] for c in configs)]
    lines += table(header, [row_of(w, "elapsed") for w in workloads])
    lines += [
        "",
        "### Whole-process wall time",
        "",
        "From spawn to exit: start-up (for `--native`, memsleuth starting the interpreter again",
        "with its preload library), imports, the run, the capture's final write (memray:",
        "compressing it) and, as typed, memsleuth's exit report; median, as a ratio to untracked.",
        "",
    ]
    lines += table(header, [row_of(w, "wall") for w in workloads])

    lines += [
        "",
        "### Memory",
        "",
        "Peak RSS of the process, median; for the trackers, the extra over untracked (tracker",
        "memory) in parentheses. Lower is better. It is the child's own `ru_maxrss` (as `os.wait4`",
        "returns it), read by `/usr/bin/time -f %M`: a direct child of the harness would start",
        "at the harness' own peak. memsleuth's restart with the preload keeps the process (exec).",
        "",
    ]
    rows = []
    for w in workloads:
        base = cells[w]["untracked"]
        row = [w]
        for c in configs:
            cell = cells[w][c]
            if not cell.runs:
                row.append("failed" if cell.failure else "-")
                continue
            rss = cell.median("maxrss")
            if c == "untracked" or not base.runs:
                row.append(mib(rss))
            else:
                extra = rss - base.median("maxrss")
                row.append(f"{mib(rss)} ({'+' if extra >= 0 else '-'}{mib(abs(extra))})")
        rows.append(row)
    lines += table(header, rows)

    lines += [
        "",
        "### Capture size and bytes per event",
        "",
        "Capture on disk / events recorded = bytes per event (last repetition). An event is one",
        "allocation or one free. memsleuth: `allocs + frees` of the capture (`memsleuth report",
        "leaks --json`, `capture`), Python's allocators and, with `--native`, the C allocator",
        "and mmap; memray: `total_allocations` of the capture header (allocation and",
        "deallocation records). The tools do not count the same work: memray without",
        "`--trace-python-allocators` records the C allocator only (Python's small objects as",
        "pymalloc's arenas), memsleuth records every Python allocation too.",
        "",
    ]
    rows = []
    notes = []
    for w in workloads:
        row = [w]
        for c in CAPTURING:
            cell = cells[w][c]
            r = cell.runs[-1] if cell.runs else None
            if r is None:
                row.append("failed" if cell.failure else "-")
            elif r.size is None or not r.events:
                row.append(f"{size(r.size) if r.size is not None else '?'}, events ?")
            else:
                row.append(f"{r.size / r.events:.2f} B ({size(r.size)} / {count(r.events)})")
            if r is not None and r.dropped:
                notes.append(f"{w}, {CONFIGS[c]}: {r.dropped} dropped")
        rows.append(row)
    lines += table(["workload", *(CONFIGS[c] for c in CAPTURING)], rows)
    if notes:
        lines += ["", "Events memsleuth counted as dropped: " + "; ".join(notes) + "."]
    added = []
    for w in workloads:
        a, b = cells[w]["ms-native-lean"], cells[w]["ms-py"]
        if a.runs and b.runs and a.runs[-1].events and b.runs[-1].events:
            added.append(f"{w} {count(a.runs[-1].events)} vs {count(b.runs[-1].events)}")
    if added:
        lines += [
            "",
            "Events with `--native` (lean) vs Python only (as typed): " + "; ".join(added) + ".",
        ]
    for w in workloads:
        calls = next((r.ctypes_calls for r in cells[w]["untracked"].runs if r.ctypes_calls), None)
        if not calls:
            continue
        seen = []
        for c in ("ms-native", "ms-native-lean", "memray-native", "memray-native-py", "memray"):
            runs = cells[w][c].runs
            if runs and runs[-1].events:
                seen.append(f"{CONFIGS[c]} {count(runs[-1].events)}")
        lines += [
            "",
            f"{w} called `malloc` and `free` {count(calls)} times through ctypes",
            "(`CTYPES_CALLS`, besides numpy's own allocations): a tracker of the C allocator",
            "records at least that many events. Recorded in all: " + "; ".join(seen) + ".",
        ]

    failed = [
        f"{w}, {CONFIGS[c]}: {(cells[w][c].failure or '').splitlines()[0]}"
        for w in workloads
        for c in configs
        if cells[w][c].failure
    ]
    if failed:
        lines += ["", "Failed runs (first line of the error): " + "; ".join(failed) + "."]

    lines += render_goals(workloads, cells, reference, scale)
    lines += [
        "",
        "Reading the tables: a few percent is noise; ratios below 1.00x for a tracker are noise",
        "too.",
    ]
    return "\n".join(lines)


def render_goals(
    workloads: list[str],
    cells: dict[str, dict[str, Cell]],
    reference: Optional[AllocReference],
    scale: float,
) -> list[str]:
    ok = {w: {c: cells[w][c] for c in CONFIGS if cells[w][c].runs} for w in workloads}
    rows: list[list[str]] = []

    def wall(w: str, c: str) -> float:
        return ok[w][c].median("wall")

    def extra_rss(w: str, c: str) -> float:
        return ok[w][c].median("maxrss") - ok[w]["untracked"].median("maxrss")

    # (a) faster than memray --native, every workload; then like for like, against memray
    # recording every Python allocation too, as memsleuth does
    for peer, label in (
        ("memray-native", "(a)"),
        ("memray-native-py", "(a, like for like)"),
    ):
        for mine in ("ms-native", "ms-native-lean"):
            have = [w for w in workloads if mine in ok[w] and peer in ok[w]]
            if not have:
                continue
            worst = max(have, key=lambda w: wall(w, mine) / wall(w, peer))
            r = wall(worst, mine) / wall(worst, peer)
            rows.append(
                [
                    f"{label} {CONFIGS[mine]} faster than {CONFIGS[peer]} on every workload"
                    " (whole-process wall, median)",
                    f"worst: {worst}, {secs(wall(worst, mine))} vs"
                    f" {secs(wall(worst, peer))} ({r:.2f}x)",
                    yes(
                        all(wall(w, mine) < wall(w, peer) for w in have)
                        and len(have) == len(workloads)
                    ),
                ]
            )
    # (b) tracker memory below memray --native's, every workload
    for mine in ("ms-native", "ms-native-lean"):
        have = [w for w in workloads if all(c in ok[w] for c in (mine, "memray-native"))]
        have = [w for w in have if "untracked" in ok[w]]
        if not have:
            continue
        worst = max(have, key=lambda w: extra_rss(w, mine) - extra_rss(w, "memray-native"))
        a, b = extra_rss(worst, mine), extra_rss(worst, "memray-native")
        rows.append(
            [
                f"(b) tracker memory (extra peak RSS) of {CONFIGS[mine]} below memray"
                " --native's on every workload",
                f"worst: {worst}, {signed_mib(a)} vs {signed_mib(b)}",
                yes(
                    all(extra_rss(w, mine) < extra_rss(w, "memray-native") for w in have)
                    and len(have) == len(workloads)
                ),
            ]
        )
    # (c) Python-only mode unchanged when --native is off
    have = [w for w in workloads if all(c in ok[w] for c in ("ms-py", "untracked"))]
    if have:
        figures = []
        for w in have:
            py = wall(w, "ms-py") / wall(w, "untracked")
            lean = (
                f"{wall(w, 'ms-native-lean') / wall(w, 'untracked'):.2f}x"
                if "ms-native-lean" in ok[w]
                else "-"
            )
            before = reference.walls.get(w) if reference else None
            shown = f"{w}: {py:.2f}x (native lean {lean}"
            shown += f", bench_alloc {before:.2f}x)" if before else ")"
            figures.append(shown)
        met: Optional[bool] = None
        basis = "no bench_alloc.py figures in the output file to compare with"
        if reference:
            if reference.revision == tree_revision(ROOT):
                basis = (
                    f"bench_alloc.py's figures come from this same build (`{reference.revision}`)"
                )
            elif reference.scale != f"{scale:g}":
                basis = f"bench_alloc.py's figures are at scale {reference.scale}, not this one"
            else:
                pairs = [
                    (wall(w, "ms-py") / wall(w, "untracked"), reference.walls[w])
                    for w in have
                    if w in reference.walls
                ]
                if pairs:
                    met = all(now <= before * SAME for now, before in pairs)
                    basis = (
                        f"at most {SAME - 1:.0%} above bench_alloc.py's `{ALLOC_TYPED}` built from"
                        f" `{reference.revision}`"
                    )
        no_native = [
            w
            for w in have
            if ok[w]["ms-py"].runs[-1].instruments is not None
            and "native" not in (ok[w]["ms-py"].runs[-1].instruments or [])
        ]
        rows.append(
            [
                "(c) Python-only mode unchanged when --native is off: `memsleuth run` as typed,"
                " whole-process wall vs untracked",
                "; ".join(figures) + f". {basis}. Captures without the native instrument:"
                f" {len(no_native)}/{len(have)}",
                yes(met),
            ]
        )
    lines = [
        "",
        "### Against the project's goals",
        "",
        "From the tables above (whole-process wall time and peak RSS, medians). (c) compares",
        "`memsleuth run` without `--native` with the same command's ratio in the allocation-",
        "tracking section above, which may come from another build and run (named in the row).",
        "",
    ]
    return lines + table(["goal", "measured", "met"], rows)


def signed_mib(n: float) -> str:
    return f"{'+' if n >= 0 else '-'}{mib(abs(n))}"


if __name__ == "__main__":
    main()
