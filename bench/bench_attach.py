"""Benchmark of attaching to a running process: `memsleuth attach` against `memray attach` on
the same target, in one run, written to the "Attaching to a running process" part of
bench/RESULTS.md.

The target (workloads/attach_target.py) serves requests in a loop and logs how many it handled
in each 50 ms window. Each repetition starts a fresh target, lets it run 3 s untouched, then:

    memsleuth attach          python -m memsleuth attach PID -o X.msl   (as typed: censuses, the
                              verdict at the end), stopped with Ctrl-C after 3 s
    memsleuth attach --sample python -m memsleuth attach PID --sample 512KiB -o X.msl
    memray attach             python -m memray attach PID -f -o X.bin, stopped after 3 s with
                              `memray detach PID`
    memray attach --trace-python-allocators
                              the same, every Python allocation too (like for like)

Measured: the time to attach (the command's start to "recording" for memsleuth; to the
command's return, when memray says it tracks), the time to detach (the stop request to
memsleuth's "detached" line; `memray detach`'s run time), the target's requests per second
while attached and after detaching, as ratios to its rate before the attach, and whether the
tool wrote into the target's own output.

    python bench/bench_attach.py --out bench/RESULTS.md [--reps 3] [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Optional

from bench_alloc import table
from results_md import cpu_model, dist_version, tree_revision, write_section

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
SECTION = "bench_attach.py"
TARGET = HERE / "workloads" / "attach_target.py"
BEFORE = 3.0  # seconds the target runs untouched before the attach
WARM = 1.0  # of which the first are its warm-up, left out of its rate before
ATTACHED = 3.0  # seconds recorded
AFTER = 2.0  # seconds the target runs after the detach
TIMEOUT = 120.0

CONFIGS = {
    "ms": "memsleuth attach (as typed)",
    "ms-sample": "memsleuth attach --sample 512KiB",
    "memray": "memray attach",
    "memray-py": "memray attach --trace-python-allocators",
}


@dataclass
class Run:
    attach: float  # seconds from the command's start until it records
    detach: float  # seconds from the stop request until the target is left
    during: float  # requests/s while attached, as a ratio of the rate before
    after: float  # requests/s after the detach, as a ratio of the rate before
    wrote_into_target: bool  # the tool printed into the target's stdout or stderr
    # seconds from the stop request until the verdict is printed (memsleuth; memray gives none)
    verdict: Optional[float] = None


@dataclass
class Cell:
    runs: list[Run] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def median(self, attr: str) -> Optional[float]:
        got = [getattr(r, attr) for r in self.runs if getattr(r, attr) is not None]
        return float(statistics.median(got)) if got else None


class Failed(Exception):
    pass


def rate(windows: list[tuple[float, int]], start: float, end: float) -> float:
    """Requests per second in the windows that ended in [start, end]."""
    inside = [(t, n) for t, n in windows if start <= t <= end]
    if len(inside) < 2:
        raise Failed(f"too few windows between {start:.2f} and {end:.2f}")
    span = inside[-1][0] - inside[0][0]
    return sum(n for _, n in inside[1:]) / span


def read_until(stream: IO[str], marker: str, deadline: float) -> str:
    said = ""
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            raise Failed(f"ended before saying {marker!r}: {said.strip()[-400:]}")
        said += line
        if marker in line:
            return said
    raise Failed(f"did not say {marker!r} in time: {said.strip()[-400:]}")


def one_run(cfg: str, tmp: Path, n: int) -> Run:
    log = tmp / f"windows-{cfg}-{n}.txt"
    seconds = BEFORE + ATTACHED + AFTER + 8.0  # room for the attach and detach themselves
    target = subprocess.Popen(
        [PY, str(TARGET), str(seconds), str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert target.stdout is not None
        if target.stdout.readline().strip() != "ready":
            raise Failed("the target did not start")
        started = time.monotonic()
        time.sleep(BEFORE)
        t_cmd = time.monotonic()
        deadline = t_cmd + TIMEOUT
        pid = str(target.pid)
        if cfg.startswith("ms"):
            sample = ["--sample", "512KiB"] if cfg == "ms-sample" else []
            cap = tmp / f"{cfg}-{n}.msl"
            cmd = [PY, "-m", "memsleuth", "attach", pid, *sample, "-o", str(cap)]
            proc = subprocess.Popen(
                cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
            )
            assert proc.stderr is not None
            read_until(proc.stderr, "recording process", deadline)
            t_active = time.monotonic()
            time.sleep(ATTACHED)
            t_stop = time.monotonic()
            proc.send_signal(signal.SIGINT)
            read_until(proc.stderr, "detached from process", deadline)
            t_left = time.monotonic()
            rest = proc.communicate(timeout=TIMEOUT)[1]
            t_verdict: Optional[float] = time.monotonic()
            if proc.returncode != 0:
                raise Failed(f"memsleuth attach exited {proc.returncode}: {rest.strip()[-400:]}")
        else:
            py = ["--trace-python-allocators"] if cfg == "memray-py" else []
            cap = tmp / f"{cfg}-{n}.bin"
            cmd = [PY, "-m", "memray", "attach", pid, *py, "-f", "-o", str(cap)]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
            if done.returncode != 0:
                said = done.stderr.strip()[-400:]
                raise Failed(f"memray attach exited {done.returncode}: {said}")
            t_active = time.monotonic()
            time.sleep(ATTACHED)
            t_stop = time.monotonic()
            left = subprocess.run(
                [PY, "-m", "memray", "detach", pid], capture_output=True, text=True, timeout=TIMEOUT
            )
            if left.returncode != 0:
                said = left.stderr.strip()[-400:]
                raise Failed(f"memray detach exited {left.returncode}: {said}")
            t_left = time.monotonic()
            t_verdict = None
        out, err = target.communicate(timeout=TIMEOUT)
        if target.returncode != 0:
            raise Failed(f"the target exited {target.returncode}: {err.strip()[-400:]}")
        windows = []
        for line in log.read_text().splitlines():
            t, count = line.split()
            windows.append((float(t), int(count)))
        before = rate(windows, started + WARM, t_cmd)
        return Run(
            attach=t_active - t_cmd,
            detach=t_left - t_stop,
            during=rate(windows, t_active, t_stop) / before,
            after=rate(windows, t_left + 0.3, windows[-1][0]) / before,
            wrote_into_target=bool(out.strip() or err.strip()),
            verdict=None if t_verdict is None else t_verdict - t_stop,
        )
    finally:
        if target.poll() is None:
            target.kill()
            target.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="RESULTS.md to update")
    ap.add_argument("--quick", action="store_true", help="1 repetition")
    ap.add_argument("--reps", type=int, help="repetitions per configuration (default 3)")
    args = ap.parse_args()
    reps = args.reps or (1 if args.quick else 3)
    if shutil.which("gdb") is None:
        print("bench_attach.py: FAILED: gdb is not installed; both tools need it", file=sys.stderr)
        sys.exit(1)
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    cells = {c: Cell() for c in CONFIGS}
    configs = list(CONFIGS)
    tmp = Path(tempfile.mkdtemp(prefix="memsleuth-bench-attach-"))
    try:
        for rep in range(reps):
            order = configs[rep % len(configs) :] + configs[: rep % len(configs)]
            for cfg in order:
                cell = cells[cfg]
                try:
                    run = one_run(cfg, tmp, rep)
                except (Failed, subprocess.TimeoutExpired) as e:
                    # a tool that fails once may work on the next target: each failure counts
                    cell.failures.append(str(e))
                    print(f"{CONFIGS[cfg]:42} FAILED {e}", file=sys.stderr)
                    continue
                cell.runs.append(run)
                print(
                    f"{CONFIGS[cfg]:42} attach {run.attach:6.3f} s  detach {run.detach:6.3f} s"
                    f"  rate while attached {run.during:5.2f}  after {run.after:5.2f}",
                    file=sys.stderr,
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = render(reps, cells, started, load_before)
    write_section(args.out, SECTION, text)
    print(text)
    print(f"wrote {args.out}", file=sys.stderr)


def render(
    reps: int, cells: dict[str, Cell], started: datetime.datetime, load_before: tuple[float, ...]
) -> str:
    command = os.environ.get("BENCH_COMMAND", "python bench/bench_attach.py --out bench/RESULTS.md")
    lines = [
        "## Attaching to a running process",
        "",
        f"- command: `{command}`",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; load average {load_before[0]:.2f} before,"
        f" {os.getloadavg()[0]:.2f} after",
        f"- machine: {os.cpu_count()} cores ({cpu_model()}), {platform.system()}"
        f" {platform.release()}",
        f"- Python {platform.python_version()}, memray {dist_version('memray')}, memsleuth"
        f" {dist_version('memsleuth')} built from `{tree_revision(ROOT)}`; gdb for both",
        f"- {reps} fresh target(s) per tool, tools interleaved",
        "",
        "The target (`bench/workloads/attach_target.py`) serves JSON requests in a loop and logs",
        "how many it handled per 50 ms. It runs 3 s untouched (its rate before: the last 2 s",
        "of those); the tool attaches, records 3 s",
        "and is told to stop (memsleuth: Ctrl-C; memray: `memray detach PID`). Attach: the",
        "command's start to memsleuth's \"recording\" line, or to `memray attach`'s return (it",
        'then tracks in the background). Detach: the stop request to memsleuth\'s "detached"',
        "line, or `memray detach`'s run time. Verdict: the stop request to the end of",
        "memsleuth's command, its verdict printed (memray prints none). Rates: the target's",
        "requests per second while attached and from 0.3 s after the detach to its end, as",
        "ratios to its rate before the",
        "attach (1.00x: unharmed; lower: slower). Medians over the targets the tool",
        "attached to and detached from; the targets where it failed are counted apart.",
        "",
    ]
    rows = []
    for cfg, name in CONFIGS.items():
        cell = cells[cfg]
        tried = len(cell.runs) + len(cell.failures)
        failed = (
            f"**{len(cell.failures)} of {tried}**: {cell.failures[-1]}" if cell.failures else "none"
        )
        if not cell.runs:
            rows.append([name, "", "", "", "", "", "", failed])
            continue
        wrote = any(r.wrote_into_target for r in cell.runs)
        verdict = cell.median("verdict")
        rows.append(
            [
                name,
                f"{cell.median('attach'):.2f} s",
                f"{cell.median('detach'):.2f} s",
                "none printed" if verdict is None else f"{verdict:.2f} s",
                f"{cell.median('during'):.2f}x",
                f"{cell.median('after'):.2f}x",
                "**yes**" if wrote else "no",
                failed,
            ]
        )
    lines += table(
        [
            "tool",
            "time to attach",
            "time to detach",
            "stop to verdict printed",
            "target's rate while attached",
            "target's rate after detach",
            "wrote into the target's output",
            "targets where it failed",
        ],
        rows,
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
