"""How long `memsleuth run` works after the program's main code has ended.

The program is bench/workloads/exit_heap.py: five seconds that end with about 1.3 million live
objects. It prints the wall-clock time as its main code ends (``MAINEND``); the harness takes
the time the process has exited, and the difference is the exit work: the interpreter's own
shutdown (freeing the heap) for every command, plus for a tracker what it does at exit (for
`memsleuth run` as typed: the last census, the holder searches, the leak report's pass over the
capture, the verdict and the HTML flame graph). Commands run interleaved, N fresh processes
each; medians.

    python bench/bench_exit.py --out bench/RESULTS.md [--reps 3] [--seconds 5]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from results_md import cpu_model, dist_version, tree_revision, write_section

HERE = Path(__file__).resolve().parent
WORKLOAD_DIR = HERE / "workloads"
SCRIPT = WORKLOAD_DIR / "exit_heap.py"
PY = sys.executable
TIMEOUT = 600.0
# the goal of the issue "One verdict from every signal": exit work under a tenth of the run
GOAL_SHARE = 0.10

CONFIGS = {
    "untracked": "python exit_heap.py",
    "ms-run": "memsleuth run -o X.msl exit_heap.py",
    "ms-lean": "memsleuth run --no-report --census 0 -o X.msl exit_heap.py",
    "memray-py": "memray run --trace-python-allocators -o X.bin exit_heap.py",
}


def command(cfg: str, cap: Path) -> list[str]:
    if cfg == "untracked":
        return [PY, str(SCRIPT)]
    if cfg == "ms-run":
        return [PY, "-m", "memsleuth", "run", "-o", str(cap), str(SCRIPT)]
    if cfg == "ms-lean":
        lean = ["--no-report", "--census", "0"]
        return [PY, "-m", "memsleuth", "run", *lean, "-o", str(cap), str(SCRIPT)]
    if cfg == "memray-py":
        memray = ["-m", "memray", "run", "-q", "-f", "--trace-python-allocators"]
        return [PY, *memray, "-o", str(cap), str(SCRIPT)]
    raise ValueError(cfg)


def one(cfg: str, tmp: Path, env: dict[str, str]) -> tuple[Optional[float], float, str]:
    """(exit work in seconds, whole wall time, error) of one fresh process."""
    cap = tmp / f"exit.{cfg}.{'msl' if cfg.startswith('ms-') else 'bin'}"
    cap.unlink(missing_ok=True)
    started = time.time()
    try:
        p = subprocess.run(
            command(cfg, cap),
            env=env,
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return None, TIMEOUT, f"timeout (>{TIMEOUT:.0f} s)"
    ended = time.time()
    main_end = next(
        (float(ln.split()[1]) for ln in p.stdout.splitlines() if ln.startswith("MAINEND ")), None
    )
    if p.returncode != 0 or main_end is None:
        tail = " | ".join(p.stderr.strip().splitlines()[-3:])
        return None, ended - started, f"failed (exit {p.returncode}): {tail}"
    return ended - main_end, ended - started, ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="RESULTS.md to update")
    ap.add_argument("--quick", action="store_true", help="1 repetition, a 2-second run")
    ap.add_argument("--reps", type=int, help="fresh processes per command (default 3)")
    ap.add_argument("--seconds", type=float, help="the program's length (default 5)")
    args = ap.parse_args()
    reps = args.reps or (1 if args.quick else 3)
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    env = dict(os.environ, EXIT_HEAP_SECONDS=repr(seconds), PYTHONHASHSEED="0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(WORKLOAD_DIR), env.get("PYTHONPATH")]))
    stamp = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.perf_counter()
    load_before = os.getloadavg()
    exits: dict[str, list[float]] = {c: [] for c in CONFIGS}
    walls: dict[str, list[float]] = {c: [] for c in CONFIGS}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="memsleuth-bench-exit-") as d:
        tmp = Path(d)
        for rep in range(reps):
            for cfg in CONFIGS:
                work, wall, err = one(cfg, tmp, env)
                print(f"rep {rep + 1}/{reps} {cfg}: {err or f'exit work {work:.2f} s'}")
                if work is None:
                    errors[cfg] = err
                    continue
                exits[cfg].append(work)
                walls[cfg].append(wall)
    took = time.perf_counter() - t0
    load_after = os.getloadavg()

    def med(xs: list[float]) -> Optional[float]:
        return statistics.median(xs) if xs else None

    base = med(exits["untracked"])
    lines = [
        "## Exit work of `memsleuth run`",
        "",
        f"- command: `{os.environ.get('BENCH_COMMAND', 'python bench/bench_exit.py')}`",
        f"- date: {stamp:%Y-%m-%d %H:%M} UTC; load average {load_before[0]:.2f} before,"
        f" {load_after[0]:.2f} after; the whole benchmark took {took / 60:.1f} min",
        f"- machine: {os.cpu_count()} cores ({cpu_model()}), {platform.system()}"
        f" {platform.release()}",
        f"- Python {platform.python_version()}, memray {dist_version('memray')},"
        f" memsleuth {dist_version('memsleuth')} built from `{tree_revision(HERE.parent)}`",
        f"- program: `bench/workloads/exit_heap.py`, {seconds:g} s ending with about 1.3"
        " million live objects (100,000 users of `objects_heap.py` added at a steady pace)",
        f"- each figure: the median of {reps} fresh processes, commands interleaved",
        "",
        "Exit work: from the program's last line (it prints the time as its main code ends) to",
        "the process' exit. Every command pays python's own shutdown (freeing the heap);",
        "`memsleuth run` as typed adds the last census, the holder searches, one pass over the",
        "capture for the verdict and the leak report, and the HTML flame graph.",
        "",
        "| command | exit work | beyond python's own | share of the run | whole run |",
        "|---|---|---|---|---|",
    ]
    for cfg, shown in CONFIGS.items():
        at_exit, whole = med(exits[cfg]), med(walls[cfg])
        if at_exit is None or whole is None:
            lines.append(f"| `{shown}` | {errors.get(cfg, 'no result')} | | | |")
            continue
        beyond = f"{at_exit - base:+.2f} s" if base is not None and cfg != "untracked" else ""
        lines.append(
            f"| `{shown}` | {at_exit:.2f} s | {beyond} | {at_exit / seconds:.0%} | {whole:.2f} s |"
        )
    typed = med(exits["ms-run"])
    met = typed is not None and typed < GOAL_SHARE * seconds
    measured = (
        "no result" if typed is None else f"{typed:.2f} s of {seconds:g} s ({typed / seconds:.0%})"
    )
    lines += [
        "",
        "### Against the project's goals",
        "",
        "| goal | measured | met |",
        "|---|---|---|",
        f"| `memsleuth run`'s exit work under 10% of a 5-second run on a 1M-object heap"
        f" | {measured} | {'yes' if met else '**no**'} |",
    ]
    write_section(Path(args.out), "bench_exit.py", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
