"""Benchmarks of the platform instrument against its peers, written as ratios to bench/RESULTS.md.

1. Cost of one reading of this process' memory: memsleuth.memory() vs psutil.
2. Runtime overhead of a 10 ms in-process sampler on four workloads: memsleuth.watch() (a Rust
   thread, no GIL) vs the usual peer, a Python thread polling psutil.
3. Memory overhead of that sampler.

Each workload runs in a fresh interpreter per measurement, alternating configurations, and the
median of the repetitions is reported.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import timeit
from pathlib import Path

from results_md import write_section

HERE = Path(__file__).resolve().parent

WORKLOADS = {
    # many small objects: dicts, lists, tuples created and dropped
    "small objects": """
        def work():
            for _ in range(90):
                rows = [{"id": i, "name": str(i), "tags": (i, i + 1)} for i in range(20000)]
                del rows
    """,
    # large buffers allocated, touched and freed (page faults, mmap/munmap)
    "large buffers": """
        def work():
            for i in range(6000):
                b = bytearray(4 * 1024 * 1024)
                b[::4096] = b"x" * len(b[::4096])
                del b
    """,
    # function calls, little allocation
    "call-heavy": """
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
        def work():
            fib(30)
            fib(31)
            fib(31)
    """,
    # realistic mix: JSON round trips, string formatting, sorting, a growing cache
    "realistic mixed": """
        import json
        cache = {}
        def work():
            for i in range(30000):
                doc = {"user": f"user{i}", "items": [{"sku": j, "qty": j % 7} for j in range(20)]}
                text = json.dumps(doc)
                back = json.loads(text)
                key = text[:32]
                cache[key] = sorted(back["items"], key=lambda x: -x["qty"])
                if len(cache) > 500:
                    cache.pop(next(iter(cache)))
    """,
}

SAMPLERS = {
    "none": "",
    "memsleuth.watch (full)": """
        import memsleuth
        _w = memsleuth.watch(os.path.join(TMP, "b.msl"), interval=0.01).start()
    """,
    "memsleuth.watch (basic)": """
        import memsleuth
        _w = memsleuth.watch(os.path.join(TMP, "b.msl"), interval=0.01, full=False).start()
    """,
    "psutil thread (memory_info)": """
        import psutil, threading, time
        def _poll():
            p = psutil.Process()
            while True:
                p.memory_info(); time.sleep(0.01)
        threading.Thread(target=_poll, daemon=True).start()
    """,
    "psutil thread (memory_full_info)": """
        import psutil, threading, time
        def _poll():
            p = psutil.Process()
            while True:
                p.memory_full_info(); time.sleep(0.01)
        threading.Thread(target=_poll, daemon=True).start()
    """,
}


def run_once(workload: str, sampler: str, tmp: str) -> dict[str, float]:
    code = "\n".join(
        [
            "import os, time, json, resource",
            f"TMP = {tmp!r}",
            textwrap.dedent(WORKLOADS[workload]),
            "work()  # warm up: imports, caches, allocator pools",
            "import memsleuth as _m0; before = _m0.memory()",
            textwrap.dedent(SAMPLERS[sampler]),
            "time.sleep(0.05)",
            "mid = _m0.memory()",
            "t = time.perf_counter(); work(); dt = time.perf_counter() - t",
            "after = _m0.memory()",
            "print(json.dumps({'seconds': dt, 'uss_before': before.uss, 'uss_mid': mid.uss,",
            "                  'uss_after': after.uss}))",
        ]
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def bench_reading(number: int) -> list[tuple[str, float]]:
    import psutil

    import memsleuth

    p = psutil.Process()
    cases = [
        ("memsleuth.memory(full=False)", lambda: memsleuth.memory(full=False)),
        ("psutil memory_info()", p.memory_info),
        ("memsleuth.memory()", memsleuth.memory),
        ("psutil memory_full_info()", p.memory_full_info),
    ]
    results = []
    for name, fn in cases:
        n = number if "full" not in name or "False" in name else max(number // 20, 200)
        best = min(timeit.repeat(fn, number=n, repeat=7)) / n
        results.append((name, best))
    return results


def fmt_us(s: float) -> str:
    return f"{s * 1e6:.2f} µs"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    reps = 3 if args.quick else 9
    number = 2000 if args.quick else 20000

    import tempfile

    lines: list[str] = []
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
    command = os.environ.get("BENCH_COMMAND") or f"bench/run{' --quick' if args.quick else ''}"
    lines += [
        "**Sections 1-3** (`bench/bench_watch.py`: the platform instrument, `rss`):",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {os.cpu_count()} cores ({cpu}), Linux {platform.release()}",
        f"- Python {platform.python_version()}, psutil " + __import__("psutil").__version__,
        "",
        "## 1. One reading of this process' memory",
        "",
        "Best of 7 repetitions, per call. Ratio = psutil's time / memsleuth's time for the same",
        "fields (higher is better for memsleuth).",
        "",
        "| call | fields | time per call | psutil / memsleuth |",
        "|---|---|---|---|",
    ]
    r = dict(bench_reading(number))
    fields_basic = "rss, vms (+ peak for memsleuth)"
    fields_full = "rss, vms, uss, pss, swap (+ peak for memsleuth)"
    lines.append(
        f"| `memsleuth.memory(full=False)` | {fields_basic} | "
        f"{fmt_us(r['memsleuth.memory(full=False)'])} | "
        f"**{r['psutil memory_info()'] / r['memsleuth.memory(full=False)']:.1f}x** |"
    )
    lines.append(
        f"| `psutil.Process().memory_info()` | rss, vms, shared, text, data | "
        f"{fmt_us(r['psutil memory_info()'])} | 1.0x |"
    )
    lines.append(
        f"| `memsleuth.memory()` | {fields_full} | {fmt_us(r['memsleuth.memory()'])} | "
        f"**{r['psutil memory_full_info()'] / r['memsleuth.memory()']:.1f}x** |"
    )
    lines.append(
        f"| `psutil.Process().memory_full_info()` | rss, vms, uss, pss, swap, ... | "
        f"{fmt_us(r['psutil memory_full_info()'])} | 1.0x |"
    )
    lines += [
        "",
        "USS and PSS need the kernel to walk the process' page tables: memsleuth reads",
        "`/proc/self/smaps_rollup` (one summed record) where psutil reads and parses all of",
        "`/proc/self/smaps`. The kernel's walk dominates both. On this machine, 105 VMAs take",
        "about 170 µs (about 1.6 µs per VMA), measured by `pread` of `smaps_rollup` alone.",
        "",
        "## 2. Runtime overhead of a 10 ms in-process sampler",
        "",
        f"Wall time of each workload in {reps} fresh interpreters per configuration, with the",
        "configurations interleaved. The ratio is to the run with no sampler: first best-of-N",
        "(robust to the noisy neighbours of a shared VM), then the median in parentheses.",
        "",
    ]
    samplers = list(SAMPLERS)
    lines.append("| workload | " + " | ".join(samplers) + " |")
    lines.append("|---|" + "---|" * len(samplers))
    mem_rows: dict[str, list[float]] = {s: [] for s in samplers}
    with tempfile.TemporaryDirectory() as tmp:
        for wl in WORKLOADS:
            times: dict[str, list[float]] = {s: [] for s in samplers}
            for _ in range(reps):
                for s in samplers:
                    res = run_once(wl, s, tmp)
                    times[s].append(res["seconds"])
                    mem_rows[s].append((res["uss_mid"] - res["uss_before"]) / 1024)
                    print(f"{wl:16} {s:34} {res['seconds']:.3f}s", file=sys.stderr)
            best, med = min(times["none"]), statistics.median(times["none"])
            cells = []
            for s in samplers:
                if s == "none":
                    cells.append(f"{best:.3f} s ({med:.3f} s)")
                else:
                    cells.append(
                        f"{min(times[s]) / best:.3f}x ({statistics.median(times[s]) / med:.3f}x)"
                    )
            lines.append(f"| {wl} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Reading the table: run-to-run noise on this shared 2-core VM is about ±2% even for",
        "best-of-N (identical configurations differ that much between runs), so differences",
        "below that are not measurable here. The memsleuth sampler is a Rust thread that never",
        "takes the GIL: its cost to the workload is the other core's time plus, in `full` mode,",
        "the kernel's `mmap_lock` held for read while `smaps_rollup` is produced (an `mmap` or",
        "`munmap` in the workload waits for it). The psutil thread must take the GIL every 10 ms.",
        "",
        "## 3. Memory the sampler adds",
        "",
        "USS of the process 50 ms after the sampler started, minus USS before it started; median",
        "over every run above. This includes the sampler thread's stack pages, its buffers, and",
        "for psutil, the modules it imports.",
        "",
        "| sampler | extra USS |",
        "|---|---|",
    ]
    for s in samplers[1:]:
        lines.append(f"| {s} | {statistics.median(mem_rows[s]):.0f} KiB |")
    write_section(args.out, "bench_watch.py", "\n".join(lines))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
