"""Runs a workload script as ``python script.py`` would, under an in-process tracker.

alloc_wrap.py tracemalloc FRAMES script.py [args]
    tracemalloc.start(FRAMES), then the script as __main__
alloc_wrap.py memsleuth OUT.msl STATS.json SAMPLE script.py [args]
    what `memsleuth run [--sample SAMPLE] -o OUT.msl script.py` does (memsleuth._run.run_target:
    a memsleuth.Tracker around runpy.run_path); SAMPLE "0" records every event. Afterwards
    the tracker's stats (allocs, frees, dropped, ...) are written to STATS.json, which the
    command line does not expose.
"""

from __future__ import annotations

import json
import os
import runpy
import sys


def main() -> None:
    mode = sys.argv[1]
    if mode == "tracemalloc":
        frames, rest = int(sys.argv[2]), sys.argv[3:]
    elif mode == "memsleuth":
        out, stats_path, sample, rest = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    script = rest[0]
    sys.argv = rest
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # as `python script.py` sets it

    if mode == "tracemalloc":
        import tracemalloc

        tracemalloc.start(frames)
        runpy.run_path(script, run_name="__main__")
        return

    import memsleuth

    tracker = memsleuth.Tracker(out, sample=None if sample == "0" else sample)
    tracker.start()
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        tracker.stop(exit_code=0)
    with open(stats_path, "w") as f:
        json.dump(tracker.stats, f)


if __name__ == "__main__":
    main()
