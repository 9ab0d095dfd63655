"""The peers' side of bench_accuracy.py: how a developer finds a leak with tracemalloc or memray.

accuracy_peers.py tracemalloc OUT.json script.py [args]
    Runs the script as ``python script.py`` would (runpy, as __main__) with
    ``tracemalloc.start(25)``; takes a snapshot right after starting and another when the
    script's main code has returned (its module globals still alive), and writes the top
    entries of ``end.compare_to(start, "lineno")`` to OUT.json with the verdict of the rule
    below. The traces of tracemalloc's own module (the snapshots) are filtered out.

accuracy_peers.py memray CAPTURE.bin SCRIPT OUT.json
    Reads a ``memray run --trace-python-allocators`` capture with memray's Python API
    (``FileReader.get_leaked_allocation_records(merge_threads=True)``), sums the leaked bytes
    by the first frame in SCRIPT's own file (else the record's top frame) and writes the
    largest sums to OUT.json with the verdict of the rule below.

The rules, what a developer reading the output would conclude:

    tracemalloc  a leak when the top entry's size_diff is positive and at least
                 max(256 KiB, 1% of the memory traced at the end); its line is that entry's
    memray       a leak when the largest sum is at least 256 KiB; its line is that frame
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from typing import Any

MIN_BYTES = 256 * 1024
TOP = 5


def where(filename: str, lineno: int) -> str:
    return f"{os.path.basename(filename)}:{lineno}"


def tracemalloc_diff(out: str, rest: list[str]) -> int:
    import tracemalloc

    script = rest[0]
    sys.argv = rest
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # as `python script.py` sets it
    tracemalloc.start(25)
    start = tracemalloc.take_snapshot()
    code = 0
    try:
        module_globals = runpy.run_path(script, run_name="__main__")
    except SystemExit as e:  # the script's own exit: its globals are gone with the module
        module_globals = {}
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    end = tracemalloc.take_snapshot()
    own = [tracemalloc.Filter(False, tracemalloc.__file__)]
    start, end = start.filter_traces(own), end.filter_traces(own)
    stats = end.compare_to(start, "lineno")
    total = sum(stat.size for stat in end.statistics("filename"))
    threshold = max(MIN_BYTES, total // 100)
    top = stats[0] if stats else None
    result: dict[str, Any] = {
        "leak": bool(top and top.size_diff > 0 and top.size_diff >= threshold),
        "line": where(top.traceback[0].filename, top.traceback[0].lineno) if top else None,
        "bytes": top.size_diff if top else 0,
        "threshold": threshold,
        "end_total": total,
        "top": [
            {
                "line": where(s.traceback[0].filename, s.traceback[0].lineno),
                "size_diff": s.size_diff,
                "count_diff": s.count_diff,
            }
            for s in stats[:TOP]
        ],
    }
    with open(out, "w") as f:
        json.dump(result, f)
    del module_globals
    return code


def memray_leaks(capture: str, script: str, out: str) -> None:
    import memray

    own_file = os.path.realpath(script)
    sums: dict[str, int] = {}
    reader = memray.FileReader(capture)
    for record in reader.get_leaked_allocation_records(merge_threads=True):
        frames = record.stack_trace()
        frame = next((f for f in frames if os.path.realpath(f[1]) == own_file), None)
        if frame is None and frames:
            frame = frames[0]
        key = where(frame[1], frame[2]) if frame else "?"
        sums[key] = sums.get(key, 0) + record.size
    ranked = sorted(sums.items(), key=lambda kv: -kv[1])
    top = ranked[0] if ranked else None
    result = {
        "leak": bool(top and top[1] >= MIN_BYTES),
        "line": top[0] if top else None,
        "bytes": top[1] if top else 0,
        "threshold": MIN_BYTES,
        "end_total": sum(sums.values()),
        "top": [{"line": k, "size": v} for k, v in ranked[:TOP]],
    }
    with open(out, "w") as f:
        json.dump(result, f)


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "tracemalloc" and len(sys.argv) >= 4:
        sys.exit(tracemalloc_diff(sys.argv[2], sys.argv[3:]))
    if mode == "memray" and len(sys.argv) == 5:
        memray_leaks(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
