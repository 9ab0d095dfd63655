"""Leak hunts: how fast `memsleuth hunt` and the pytest plugin reach a verdict, and whether it is
the right one, side by side with a fixed refleak-hunter schedule and pytest-memray.

Each case is a small test function (bench/workloads/hunt_cases.py): one that leaks a little
on every call, one that does not, one that fills an `lru_cache` on its first call, one that
grows and clears a list. For each, in one run, interleaved, N fresh processes each:

- `memsleuth hunt FILE::CASE` as typed (adaptive: stops once the evidence decides)
- a fixed `-R 3:3` schedule: `memsleuth hunt --warmup 3 --runs 3` judged by the refleak
  hunter's own rule (python -m test -R: a leak when every measured delta of the allocated
  blocks is at least 1)
- `pytest --memsleuth-hunt` on the case as a test
- `pytest --memray` with `@pytest.mark.limit_leaks("1 KB")` on the same test (pytest-memray)

    python bench/bench_hunt.py --out bench/RESULTS.md [--reps 5]
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
import tempfile
import time
from pathlib import Path
from typing import Optional

from results_md import cpu_model, dist_version, tree_revision, write_section

HERE = Path(__file__).resolve().parent
CASES_FILE = HERE / "workloads" / "hunt_cases.py"
PY = sys.executable
TIMEOUT = 300.0
# the right answer for each case
CASES = {
    "case_leaks": True,
    "case_clean": False,
    "case_cache": False,
    "case_batch": False,
}
CONFIGS = {
    "adaptive": "memsleuth hunt hunt_cases.py::CASE",
    "fixed": "memsleuth hunt --warmup 3 --runs 3 (refleak hunter's rule on blocks)",
    "plugin": "pytest --memsleuth-hunt test_CASE.py",
    "memray": 'pytest --memray test_CASE.py, @limit_leaks("1 KB")',
}


def test_file(tmp: Path, case: str, memray: bool) -> Path:
    """A test module that calls the case once per test run."""
    mark = '@pytest.mark.limit_leaks("1 KB")\n' if memray else ""
    path = tmp / f"test_{case}{'_memray' if memray else ''}.py"
    path.write_text(
        "import pytest\nfrom hunt_cases import " + case + "\n\n\n"
        f"{mark}def test_{case}():\n    {case}()\n"
    )
    return path


def one(cfg: str, case: str, tmp: Path, env: dict[str, str]) -> tuple[Optional[bool], float, int]:
    """(leak found?, wall seconds, measured runs or 0) of one fresh process."""
    if cfg in ("adaptive", "fixed"):
        extra = ["--warmup", "3", "--runs", "3"] if cfg == "fixed" else []
        cmd = [PY, "-m", "memsleuth", "hunt", f"{CASES_FILE}::{case}", "--json", *extra]
    elif cfg == "plugin":
        cmd = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--memsleuth-hunt"]
        cmd.append(str(test_file(tmp, case, False)))
    else:
        cmd = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--memray"]
        cmd.append(str(test_file(tmp, case, True)))
    started = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True, timeout=TIMEOUT)
    wall = time.perf_counter() - started
    if cfg in ("adaptive", "fixed"):
        if p.returncode not in (0, 3):
            return None, wall, 0
        report = json.loads(p.stdout)
        if cfg == "fixed":
            blocks = next(s for s in report["signals"] if s["signal"] == "blocks")
            leak = all(d >= 1 for d in blocks["verdict"]["deltas"])
            return leak, wall, report["runs"]
        return bool(report["leaks"]), wall, report["runs"]
    if p.returncode not in (0, 1):
        return None, wall, 0
    return p.returncode == 1, wall, 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="RESULTS.md to update")
    ap.add_argument("--quick", action="store_true", help="1 repetition")
    ap.add_argument("--reps", type=int, help="fresh processes per command and case (default 5)")
    args = ap.parse_args()
    reps = args.reps or (1 if args.quick else 5)
    env = dict(os.environ, PYTHONHASHSEED="0")
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(CASES_FILE.parent), env.get("PYTHONPATH")])
    )
    stamp = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.perf_counter()
    load_before = os.getloadavg()
    results: dict[tuple[str, str], list[tuple[Optional[bool], float, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="memsleuth-bench-hunt-") as d:
        tmp = Path(d)
        for rep in range(reps):
            for case in CASES:
                for cfg in CONFIGS:
                    got = one(cfg, case, tmp, env)
                    results.setdefault((cfg, case), []).append(got)
                    print(f"rep {rep + 1}/{reps} {case} {cfg}: leak={got[0]} {got[1]:.2f} s")
    took = time.perf_counter() - t0
    load_after = os.getloadavg()

    lines = [
        "## Leak hunts (`hunt` and the pytest plugin)",
        "",
        f"- command: `{os.environ.get('BENCH_COMMAND', 'python bench/bench_hunt.py')}`",
        f"- date: {stamp:%Y-%m-%d %H:%M} UTC; load average {load_before[0]:.2f} before,"
        f" {load_after[0]:.2f} after; the whole benchmark took {took / 60:.1f} min",
        f"- machine: {os.cpu_count()} cores ({cpu_model()}), {platform.system()}"
        f" {platform.release()}",
        f"- Python {platform.python_version()}, pytest {dist_version('pytest')}, pytest-memray"
        f" {dist_version('pytest-memray')}, memsleuth {dist_version('memsleuth')} built from"
        f" `{tree_revision(HERE.parent)}`",
        "- cases: `bench/workloads/hunt_cases.py`; each figure: the median of"
        f" {reps} fresh processes, commands and cases interleaved; right = the verdicts that"
        " match the case (a leak for `case_leaks`, none for the others)",
        "",
        "| case | command | right | measured runs | wall time | vs adaptive |",
        "|---|---|---|---|---|---|",
    ]
    for case, leaks in CASES.items():
        base = statistics.median(w for _, w, _ in results[("adaptive", case)])
        for cfg, shown in CONFIGS.items():
            got = results[(cfg, case)]
            right = sum(1 for leak, _, _ in got if leak is leaks)
            wall = statistics.median(w for _, w, _ in got)
            runs = [r for _, _, r in got if r]
            runs_shown = f"{statistics.median(runs):g}" if runs else ""
            lines.append(
                f"| `{case}` | `{shown.replace('CASE', case)}` | {right}/{len(got)} |"
                f" {runs_shown} | {wall:.2f} s | {wall / base:.2f}x |"
            )
    adaptive_runs = [r for case in CASES for _, _, r in results[("adaptive", case)] if r]
    clear = [r for case in ("case_leaks", "case_clean") for _, _, r in results[("adaptive", case)]]
    controls_right = all(
        leak is False
        for case in ("case_clean", "case_cache", "case_batch")
        for leak, _, _ in results[("adaptive", case)]
    )
    lines += [
        "",
        "### Against the project's goals",
        "",
        "| goal | measured | met |",
        "|---|---|---|",
        f"| fewer measured runs than the fixed 3:3 schedule's 3 + 3 on clear cases |"
        f" {max(clear) if clear else '?'} measured + 3 warm-up at most |"
        f" {'yes' if clear and max(clear) + 3 < 6 else '**no**'} |",
        f"| the same verdict on the controls every time | "
        f"{'all no leak' if controls_right else 'not all'} |"
        f" {'yes' if controls_right else '**no**'} |",
        "",
        f"Measured runs of the adaptive hunt across all cases: {min(adaptive_runs, default=0)}"
        f" to {max(adaptive_runs, default=0)}.",
    ]
    write_section(Path(args.out), "bench_hunt.py", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
