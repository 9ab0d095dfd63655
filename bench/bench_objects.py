"""Benchmarks of the objects instrument (``memsleuth.census`` and ``memsleuth.why``) against
objgraph, Pympler and guppy3, on one large live heap, written to the "Object census and
retention paths" part of bench/RESULTS.md.

The heap is bench/workloads/objects_heap.py: 100,000 user-like instances in a module-level
cache, about 1.3 million live objects at scale 1 (0.1 with --quick). Every measurement runs in
a fresh interpreter (this script, ``--child TOOL-OPERATION``), which imports the tool, builds
the heap, runs ``gc.collect()``, and then times one call of the operation. Operations:

    census     objgraph.show_growth(limit=20)   (the first call, from a fresh process)
               objgraph.typestats()
               pympler: summary.summarize(muppy.get_objects())
               guppy3: str(hpy().heap())        (the heap, and its first rows as printed)
               memsleuth.census(retained=False), memsleuth.census(retained=True), and str()
    retention  objgraph.find_backref_chain(obj, objgraph.is_proper_module)
               memsleuth.why(obj), and str()
               guppy3: str(hpy().iso(obj).shpaths)
               where obj is CACHE[key].address of one user (module -> CACHE -> User -> dict)

Peak extra memory: the process' RSS high-water mark (VmHWM, reset by writing 5 to
/proc/self/clear_refs just before the call) minus its RSS just before the call; where the
reset does not work (or with MEMSLEUTH_BENCH_PEAK=sampled), another process samples its RSS
every millisecond instead (said in RESULTS.md). Not a thread: every tool here holds the GIL
for its whole walk, so a sampling thread of the measured process would miss the peak.

Each child also checks its tool's answer: the instance count of the workload's main class
(``User``) for a census, and that the path found starts at the workload's module and goes
through ``CACHE`` for a retention path.
"""

from __future__ import annotations

import gc
import io
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOAD_DIR = os.path.join(HERE, "workloads")
SCALE_ENV = "MEMSLEUTH_BENCH_SCALE"
TIMEOUT = 300.0  # seconds, per child
SLOW = 30.0  # seconds: an operation slower than this in its first run gets SLOW_REPS runs
SLOW_REPS = 3
MAIN_CLASS = "User"
MODULE = "objects_heap"
SPEEDUP_GOAL = 10.0

# name -> (operation, tool label, call as written in the table, memsleuth's config it pairs with)
CONFIGS = {
    "objgraph-growth": ("census", "objgraph", "`objgraph.show_growth(limit=20)`", "ms-census"),
    "objgraph-typestats": ("census", "objgraph", "`objgraph.typestats()`", "ms-census"),
    "pympler": (
        "census",
        "Pympler",
        "`summary.summarize(muppy.get_objects())`",
        "ms-census-retained",
    ),
    "guppy-heap": ("census", "guppy3", "`str(hpy().heap())`", "ms-census-retained"),
    "ms-census": ("census", "memsleuth", "`str(memsleuth.census(retained=False))`", ""),
    "ms-census-retained": ("census", "memsleuth", "`str(memsleuth.census(retained=True))`", ""),
    "objgraph-chain": (
        "retention",
        "objgraph",
        "`objgraph.find_backref_chain(obj, objgraph.is_proper_module)`",
        "ms-why",
    ),
    "guppy-shpaths": ("retention", "guppy3", "`str(hpy().iso(obj).shpaths)`", "ms-why"),
    "ms-why": ("retention", "memsleuth", "`str(memsleuth.why(obj))`", ""),
}


# ---------------------------------------------------------------------------------------------
# the child: one fresh process, one call


def _status(field: str) -> int:
    """A ``kB`` field of /proc/self/status, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


# the fallback sampler: a separate process, because a thread of the measured process would need
# the GIL, which every tool measured here holds for the whole of its walk (so a thread sees
# nothing of the peak); it reads VmRSS of PID every millisecond until its stdin closes
SAMPLER = r"""
import select, sys
path = "/proc/%s/status" % sys.argv[1]
def rss():
    with open(path) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0
peak = rss()
print("ready", flush=True)
while not select.select([sys.stdin], [], [], 0.001)[0]:
    peak = max(peak, rss())
print(max(peak, rss()), flush=True)
"""


class PeakMeter:
    """RSS high-water mark of this process above its RSS at ``start()``: VmHWM after a reset
    through /proc/self/clear_refs, else (or with MEMSLEUTH_BENCH_PEAK=sampled) the maximum of
    VmRSS sampled every millisecond by another process."""

    def __init__(self) -> None:
        self.method = "VmHWM"
        self._sampler: Any = None

    def start(self) -> int:
        reset = os.environ.get("MEMSLEUTH_BENCH_PEAK", "VmHWM") != "sampled"
        if reset:
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
                reset = _status("VmHWM") <= _status("VmRSS") + 256 * 1024
            except OSError:
                reset = False
        if not reset:
            import subprocess

            self.method = "sampled"
            self._sampler = subprocess.Popen(
                [sys.executable, "-c", SAMPLER, str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            self._sampler.stdout.readline()  # "ready"
        self.before = _status("VmRSS")
        return self.before

    def stop(self) -> int:
        if self._sampler is None:
            return _status("VmHWM") - self.before
        after = _status("VmRSS")
        out, _ = self._sampler.communicate("")  # closes its stdin: it prints its peak
        return max(int(out.split()[-1]), after) - self.before


def child(config: str) -> None:
    sys.path.insert(0, WORKLOAD_DIR)
    out: dict = {"config": config}
    t = time.perf_counter()
    if config.startswith("objgraph"):
        import objgraph
    elif config.startswith("pympler"):
        from pympler import muppy, summary
    elif config.startswith("guppy"):
        from guppy import hpy
    else:
        import memsleuth
    out["import_s"] = time.perf_counter() - t

    t = time.perf_counter()
    import objects_heap as heap

    key = heap.build()
    out["build_s"] = time.perf_counter() - t
    gc.collect()

    meter = PeakMeter()
    meter.start()
    t0 = time.perf_counter()
    # the target of a retention path is passed straight from the cache, so that no frame of
    # this harness holds it in a local variable (guppy's shortest path would be that local)
    if config == "objgraph-growth":
        buf = io.StringIO()
        objgraph.show_growth(limit=20, file=buf)
        result = buf.getvalue()
    elif config == "objgraph-typestats":
        result = objgraph.typestats()
    elif config == "pympler":
        result = summary.summarize(muppy.get_objects())
    elif config == "guppy-heap":
        h = hpy().heap()
        result = (h, str(h))
    elif config == "ms-census":
        c = memsleuth.census(retained=False)
        result = (c, str(c))
    elif config == "ms-census-retained":
        c = memsleuth.census(retained=True)
        result = (c, str(c))
    elif config == "objgraph-chain":
        result = objgraph.find_backref_chain(heap.CACHE[key].address, objgraph.is_proper_module)
    elif config == "guppy-shpaths":
        sp = hpy().iso(heap.CACHE[key].address).shpaths
        result = (sp, str(sp))
    elif config == "ms-why":
        r = memsleuth.why(heap.CACHE[key].address)
        result = (r, str(r))
    else:
        raise SystemExit(f"unknown configuration {config!r}")
    out["time_s"] = time.perf_counter() - t0
    out["peak_extra"] = meter.stop()
    out["rss_before"] = meter.before
    out["peak_method"] = meter.method

    # the answer's sanity, after the measurement
    target = heap.CACHE[key].address
    module = sys.modules[MODULE]
    if config == "objgraph-growth":
        for line in result.splitlines():
            f = line.split()
            if f and f[0] == MAIN_CLASS:
                out["main_count"] = int(f[1])
        out["objects"] = len(gc.get_objects())  # what it counts: the gc-tracked objects
        out["answer"] = result.splitlines()[:3]
    elif config == "objgraph-typestats":
        out["main_count"] = result.get(MAIN_CLASS)
        out["objects"] = sum(result.values())
    elif config == "pympler":
        out["main_count"] = next(
            (r[1] for r in result if str(r[0]).endswith(f"{MODULE}.{MAIN_CLASS}")), None
        )
        out["objects"] = sum(r[1] for r in result)
    elif config == "guppy-heap":
        h = result[0]
        out["objects"] = h.count
        out["main_count"] = next(
            (r.count for r in h.stat.get_rows() if r.name == f"{MODULE}.{MAIN_CLASS}"), None
        )
        dicts = next(
            (r.count for r in h.stat.get_rows() if r.name == f"dict of {MODULE}.{MAIN_CLASS}"), 0
        )
        out["dicts_of_main"] = dicts
        out["answer"] = result[1].splitlines()[:3]
    elif config.startswith("ms-census"):
        c = result[0]
        out["objects"] = c.objects
        try:
            out["main_count"] = c[f"{MODULE}.{MAIN_CLASS}"].count
        except KeyError:
            out["main_count"] = None
        out["gc_objects"] = len(gc.get_objects())
    elif config == "objgraph-chain":
        chain = result
        out["path_ok"] = bool(
            chain and chain[0] is module and chain[-1] is target and heap.CACHE in chain
        )
        out["path_len"] = len(chain) - 1
        out["answer"] = [type(o).__name__ for o in chain]
    elif config == "guppy-shpaths":
        text = result[1]
        first = text.splitlines()[0] if text else ""
        out["path_ok"] = f"['{MODULE}']" in first and "['CACHE']" in first
        out["answer"] = text.splitlines()[:3]
    elif config == "ms-why":
        r = result[0]
        paths = r.paths
        ok_paths = [
            p
            for p in paths
            if p["root"] == f"module {MODULE}"
            and p["steps"][-1]["addr"] == id(target)
            and any(s["addr"] == id(heap.CACHE) for s in p["steps"])
        ]
        out["path_ok"] = bool(r.found and paths and ok_paths and paths[0] in ok_paths)
        out["path_len"] = len(paths[0]["steps"]) - 1 if paths else None
        out["answer"] = [p["root"] for p in paths]
    print("RESULT " + json.dumps(out))


# ---------------------------------------------------------------------------------------------
# the harness (imports only what a child does not need)


@dataclass
class Cell:
    """The runs of one configuration; ``reps``: how many it gets."""

    reps: int
    runs: list[dict[str, Any]] = field(default_factory=list)
    failure: Optional[str] = None

    def best(self) -> float:
        return min(r["time_s"] for r in self.runs)

    def median(self, key: str = "time_s") -> float:
        return statistics.median(r[key] for r in self.runs)


def main() -> None:
    import argparse
    import datetime
    import platform
    import subprocess
    import textwrap
    from pathlib import Path

    from results_md import cpu_model, dist_version, tree_revision, write_section

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="RESULTS.md to update")
    ap.add_argument("--quick", action="store_true", help="1 repetition, heap scaled by 0.1")
    ap.add_argument("--reps", type=int, help="fresh processes per configuration (default 5)")
    ap.add_argument("--scale", type=float, help=f"heap size factor ({SCALE_ENV})")
    ap.add_argument("--configs", help="comma-separated subset of: " + ", ".join(CONFIGS))
    ap.add_argument("--json", help="also write the raw measurements here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    if not args.out:
        ap.error("--out is required")
    reps = args.reps or (1 if args.quick else 5)
    scale = args.scale if args.scale is not None else (0.1 if args.quick else 1.0)
    configs = list(CONFIGS)
    if args.configs:
        configs = [c.strip() for c in args.configs.split(",")]
        unknown = set(configs) - set(CONFIGS)
        if unknown:
            ap.error(f"unknown configurations {sorted(unknown)}; choose from {list(CONFIGS)}")
    env = dict(os.environ, PYTHONHASHSEED="0")
    env[SCALE_ENV] = repr(scale)
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.perf_counter()
    load_before = os.getloadavg()

    def run(config: str, run_env: dict[str, str]) -> tuple[Optional[dict[str, Any]], str]:
        argv = [sys.executable, os.path.abspath(__file__), "--child", config]
        try:
            p = subprocess.run(
                argv,
                env=run_env,
                cwd=WORKLOAD_DIR,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            return None, f"timeout (>{TIMEOUT:.0f} s)"
        res = next(
            (ln[7:] for ln in reversed(p.stdout.splitlines()) if ln.startswith("RESULT ")), None
        )
        if p.returncode != 0 or res is None:
            tail = " | ".join(p.stderr.strip().splitlines()[-3:])
            return None, f"failed (exit {p.returncode}): {tail}"
        return json.loads(res), ""

    # warm the bytecode caches of every tool, untimed
    tiny = dict(env, **{SCALE_ENV: "0.01"})
    for cfg in configs:
        _, failure = run(cfg, tiny)
        if failure:
            print(f"warm-up {cfg}: {failure}", file=sys.stderr)

    cells = {c: Cell(reps=reps) for c in configs}
    for rep in range(reps):
        order = configs[rep % len(configs) :] + configs[: rep % len(configs)]
        for cfg in order:
            cell = cells[cfg]
            if cell.failure or rep >= cell.reps:
                continue
            r, failure = run(cfg, env)
            if r is None:
                cell.failure = failure
                print(f"{cfg:20} {failure}", file=sys.stderr)
                continue
            cell.runs.append(r)
            if rep == 0 and r["time_s"] > SLOW and reps > SLOW_REPS:
                cell.reps = SLOW_REPS
            print(
                f"{cfg:20} {r['time_s']:8.3f} s  +{r['peak_extra'] / 2**20:7.1f} MiB  "
                f"count={r.get('main_count')} path_ok={r.get('path_ok')} "
                f"answer={r.get('answer')}",
                file=sys.stderr,
            )
    for cell in cells.values():
        if cell.failure is None:
            cell.reps = len(cell.runs)

    bench_s = time.perf_counter() - t_start
    load_after = os.getloadavg()

    # ---- rendering
    def secs(s: float) -> str:
        return f"{s:.2f} s" if s >= 1 else f"{s * 1000:.0f} ms"

    def ratio(x: float, base: float) -> str:
        if base <= 0:
            return "n/a"
        r = x / base
        return f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"

    def mib(n: float) -> str:
        return f"{n / 2**20:.1f} MiB"

    def count(n: Optional[int]) -> str:
        return "?" if n is None else f"{n:,}"

    def table(header: list[str], rows: list[list[str]]) -> list[str]:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return lines + ["| " + " | ".join(r) + " |" for r in rows]

    def para(text: str) -> list[str]:
        return textwrap.wrap(text, 95, break_on_hyphens=False)

    def yes(ok: Optional[bool]) -> str:
        return "n/a" if ok is None else ("met" if ok else "**not met**")

    ok = {c: cells[c] for c in configs if cells[c].runs}

    rev = tree_revision(Path(os.path.dirname(HERE)))
    cpu = cpu_model()
    cmd = os.environ.get("BENCH_COMMAND") or "bench/bench_objects.py " + " ".join(sys.argv[1:])
    ms_any = next((ok[c].runs[-1] for c in ("ms-census", "ms-census-retained") if c in ok), None)
    any_run = next((cell.runs[-1] for cell in ok.values()), None)
    methods = {r["peak_method"] for cell in ok.values() for r in cell.runs}
    lines = [
        "## Object census and retention paths (the `objects` instrument)",
        "",
        f"- command: `{cmd}`",
        f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')}; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after; the whole benchmark took "
        f"{bench_s / 60:.1f} min",
        f"- machine: {os.cpu_count()} cores ({cpu}), Linux {platform.release()}",
        f"- Python {platform.python_version()} for every tool (one virtualenv), objgraph "
        f"{dist_version('objgraph')}, Pympler {dist_version('Pympler')},"
        f" guppy3 {dist_version('guppy3')}, "
        f"memsleuth {dist_version('memsleuth')} built from `{rev}`",
        f"- heap: `bench/workloads/objects_heap.py` at scale {scale:g} (`{SCALE_ENV}`), "
        + (
            f"{ms_any['main_count']:,} `User` instances in a module-level cache; "
            f"{ms_any['gc_objects']:,} objects tracked by the gc (`len(gc.get_objects())`), "
            f"{ms_any['objects']:,} live objects in all (memsleuth's census)"
            if ms_any
            else "sizes unknown (memsleuth's census failed)"
        ),
        f"- each cell: the best of N fresh processes (N = {reps}, or {SLOW_REPS} for a call "
        f"slower than {SLOW:.0f} s), configurations interleaved; {TIMEOUT:.0f} s timeout per "
        "process",
        "",
        *para(
            "Each process imports its tool, builds the heap (about "
            + (secs(any_run["build_s"]) if any_run else "? s")
            + "), runs `gc.collect()`, then times one call with `time.perf_counter` (what the"
            " tool does inside the call, such as its own `gc.collect()`, is timed too). Peak"
            " extra memory: "
            + (
                "the RSS high-water mark during the call (`VmHWM`, reset by writing 5 to"
                " `/proc/self/clear_refs` just before it) minus the RSS just before it"
                if methods == {"VmHWM"}
                else "VmRSS sampled every 1 ms during the call by another process (the `VmHWM`"
                " reset did not work here, or MEMSLEUTH_BENCH_PEAK=sampled), its maximum minus"
                " the RSS just before it"
            )
            + "; median over the runs. Ratios are the peer's figure / that of the memsleuth"
            " call it is paired with (higher is better for memsleuth): objgraph counts the"
            " gc-tracked objects by type, paired with `census(retained=False)`, which counts and"
            " sizes every live object; Pympler and guppy3 count and size objects, paired with"
            " `census(retained=True)`, which also computes retained sizes."
        ),
        "",
    ]

    def op_table(op: str, *extra: str) -> list[str]:
        rows = []
        for c in configs:
            o, tool, call, pair = CONFIGS[c]
            if o != op:
                continue
            cell = cells[c]
            if not cell.runs:
                rows.append([tool, call, cell.failure or "-", "", "", ""] + [""] * len(extra))
                continue
            base = ok.get(pair) if pair else cell
            t = f"{secs(cell.best())} (best of {len(cell.runs)})"
            rt = ratio(cell.best(), base.best()) if base else "n/a"
            peak = cell.median("peak_extra")
            rp = ratio(peak, base.median("peak_extra")) if base else "n/a"
            last = cell.runs[-1]
            if op == "census":
                check = count(last.get("main_count"))
                if last.get("dicts_of_main"):
                    check += f" (+{last['dicts_of_main']:,} `dict of User`)"
                check += f" | {count(last.get('objects'))}"
            else:
                check = ("yes" if last.get("path_ok") else "**no**") + (
                    f", {last['path_len']} references" if last.get("path_len") else ""
                )
            rows.append([tool, call, t, rt, mib(peak), rp, check])
        return table(
            ["tool", "call", "time", "vs memsleuth", "peak extra", "vs memsleuth", *extra],
            rows,
        )

    lines += [
        "### Census of live objects by type",
        "",
        *op_table("census", "`User` instances seen", "objects seen"),
        "",
        *para(
            "Objects seen: what the tool counted; objgraph counts only the objects the gc"
            " tracks (`gc.get_objects()`), Pympler adds the untracked objects those refer to"
            " directly, guppy3 and memsleuth follow every reference."
        ),
        "",
    ]
    guppy = ok["guppy-heap"].runs[-1] if "guppy-heap" in ok else None
    if guppy and guppy.get("dicts_of_main"):
        lines += [
            *para(
                "guppy3 also counts a `dict of User` for every instance: on Python 3.11 an"
                " instance keeps its attributes inline until something asks for its `__dict__`,"
                " and guppy3's walk asks, so the call itself creates these"
                f" {guppy['dicts_of_main']:,} dicts, and the program keeps them afterwards."
            ),
            "",
        ]
    lines += [
        "### Retention path of one object",
        "",
        *para(
            "`obj` is `CACHE[key].address` of the middle user (module `objects_heap` → `CACHE`"
            " → `User` → `.address`), passed straight from the cache so that no frame of the"
            ' harness holds it in a local variable. "reaches the module": the first path'
            " found starts at module `objects_heap` and goes through `CACHE`."
        ),
        "",
        *op_table("retention", "reaches the module"),
        "",
    ]
    notes = []
    for c in configs:
        last = ok[c].runs[-1] if c in ok else None
        if last and last.get("answer"):
            notes.append(f"- {CONFIGS[c][2]}: `{json.dumps(last['answer'])[:160]}`")
    if notes:
        lines += ["What each call answered (last run, first lines):", "", *notes, ""]

    # ---- goals
    def best(c: str) -> Optional[float]:
        return ok[c].best() if c in ok else None

    goal_rows = []
    census_peers = [c for c in configs if CONFIGS[c][0] == "census" and CONFIGS[c][3]]
    fastest = min(((best(c), c) for c in census_peers if best(c)), default=None)
    pairs = []
    for pair in ("ms-census", "ms-census-retained"):
        mine = [c for c in census_peers if CONFIGS[c][3] == pair]
        f_ = min(((best(c), c) for c in mine if best(c)), default=None)
        complete = all(c in ok for c in mine) and pair in ok
        if f_ and best(pair):
            pairs.append((f_[0] / best(pair), f_[1], pair, complete))
    if pairs:
        worst = min(pairs)
        measured = "; ".join(
            f"{CONFIGS[c][2]} / {CONFIGS[p][2]} = {x:.1f}x" for x, c, p, _ in pairs
        )
        met = worst[0] >= SPEEDUP_GOAL and all(p[3] for p in pairs)
        goal_rows.append(
            [
                f"census ≥{SPEEDUP_GOAL:.0f}x faster than the fastest peer, like for like",
                f"fastest peer of each pairing: {measured}",
                f"{yes(met)} ({worst[0]:.1f})",
            ]
        )
    if fastest:
        for pair in ("ms-census", "ms-census-retained"):
            if best(pair):
                x = fastest[0] / best(pair)
                goal_rows.append(
                    [
                        f"census ≥{SPEEDUP_GOAL:.0f}x faster than the fastest peer of all, "
                        f"with {CONFIGS[pair][2]}",
                        f"{CONFIGS[fastest[1]][2]} / {CONFIGS[pair][2]} = {x:.1f}x",
                        f"{yes(x >= SPEEDUP_GOAL)} ({x:.1f})",
                    ]
                )
    ret_peers = [c for c in configs if CONFIGS[c][0] == "retention" and CONFIGS[c][3]]
    f_ret = min(((best(c), c) for c in ret_peers if best(c)), default=None)
    if f_ret and best("ms-why"):
        x = f_ret[0] / best("ms-why")
        goal_rows.append(
            [
                f"retention path ≥{SPEEDUP_GOAL:.0f}x faster than the fastest peer",
                f"{CONFIGS[f_ret[1]][2]} / {CONFIGS['ms-why'][2]} = {x:.2f}x",
                f"{yes(x >= SPEEDUP_GOAL)} ({x:.2f})",
            ]
        )
    for op in ("census", "retention"):
        mem = []
        for c in configs:
            o, _, _, pair = CONFIGS[c]
            if o == op and pair and c in ok and pair in ok:
                mem.append((ok[pair].median("peak_extra"), ok[c].median("peak_extra"), c, pair))
        if mem:
            worst_m = max(mem, key=lambda m: m[0] - m[1])
            goal_rows.append(
                [
                    f"peak extra memory below theirs ({op}: each peer vs its paired memsleuth"
                    " call)",
                    f"worst: {CONFIGS[worst_m[3]][2]} +{mib(worst_m[0])} vs "
                    f"{CONFIGS[worst_m[2]][2]} +{mib(worst_m[1])}",
                    yes(all(a < b for a, b, _, _ in mem)),
                ]
            )
    failed = [c for c in configs if cells[c].failure]
    wrong = [
        c
        for c in ok
        if ok[c].runs[-1].get("path_ok") is False
        or (
            CONFIGS[c][0] == "census"
            and "main_count" in ok[c].runs[-1]
            and ok[c].runs[-1]["main_count"] != (ms_any or {}).get("main_count")
        )
    ]
    lines += [
        "### Against the project's goals",
        "",
        "Time: best-of-N; memory: median.",
        "",
        *table(["goal", "measured", "verdict"], goal_rows),
    ]
    if failed or wrong:
        lines += [""]
    if failed:
        lines += [
            "Failed or timed out: "
            + "; ".join(f"{CONFIGS[c][2]}: {cells[c].failure}" for c in failed)
            + ". A goal that needs them is not met.",
        ]
    if wrong:
        lines += [
            "Answers that fail the sanity check (see the last column): "
            + ", ".join(CONFIGS[c][2] for c in wrong)
            + ".",
        ]
    text = "\n".join(lines)
    write_section(__import__("pathlib").Path(args.out), "bench_objects.py", text)
    print(f"wrote {args.out} ({bench_s / 60:.1f} min)", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {c: {"runs": cell.runs, "failure": cell.failure} for c, cell in cells.items()},
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
