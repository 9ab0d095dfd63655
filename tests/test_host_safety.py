"""memsleuth must never harm the program it runs in: programs that swap Python's allocators
under it (tracemalloc, profilers, C extensions calling ``PyMem_SetAllocator``) run to the end,
under ``memsleuth run`` and inside ``Tracker`` sessions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cext
from conftest import memsleuth, program

# the program that died with SIGSEGV in 6 of 9 runs: memsleuth's resolver thread took the GIL
# through PyGILState_Ensure, whose thread state was allocated through tracemalloc's hook while
# tracemalloc.stop() tore it down
TRACEMALLOC_START_STOP = """\
import tracemalloc
tracemalloc.start(5)
K = [bytearray(1000) for _ in range(1000)]
s = tracemalloc.take_snapshot()
tracemalloc.stop()
K2 = [bytes(10) for _ in range(10000)]
"""

RUNS = 50
AT_ONCE = 4
RUN = [sys.executable, "-m", "memsleuth", "run", "--no-report"]


def run_many(commands: list[list[str]], **kw: object) -> None:
    """Runs the commands a few at a time; every one must exit 0."""
    for first in range(0, len(commands), AT_ONCE):
        batch = [
            subprocess.Popen(
                c,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                **kw,  # type: ignore[call-overload]
            )
            for c in commands[first : first + AT_ONCE]
        ]
        for c, p in zip(commands[first : first + AT_ONCE], batch):
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, f"{c} exited with {p.returncode}:\n{out}\n{err}"


def test_tracemalloc_start_snapshot_stop_under_run(tmp_path: Path) -> None:
    script = tmp_path / "tm.py"
    script.write_text(TRACEMALLOC_START_STOP)
    runs = []
    for i in range(RUNS):
        # half with censuses off as the crash was found, half with the default census thread
        census = ["--census", "0"] if i % 2 else []
        out = str(tmp_path / f"tm{i}.msl")
        runs.append([*RUN, *census, "-o", out, str(script)])
    run_many(runs, cwd=tmp_path)
    # the capture names the program's lines: resolution still works without the GIL
    report = memsleuth("report", "leaks", str(tmp_path / "tm0.msl"))
    assert report.returncode == 0, report.stderr
    assert "tm.py:3 <listcomp>" in report.stdout or "tm.py:3 <module>" in report.stdout
    assert "tm.py:6" in report.stdout


def swap_in_tracker_sessions(how: str, captures: Path, env: dict[str, str]) -> None:
    """allocator_swap.py's rounds in RUNS Tracker sessions of one process, which must finish."""
    proc = subprocess.run(
        [sys.executable, program("allocator_swap.py"), how, "tracker", str(RUNS), str(captures)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "rounds done" in proc.stdout


def test_tracemalloc_start_snapshot_stop_in_tracker_sessions(tmp_path: Path) -> None:
    swap_in_tracker_sessions("tracemalloc", tmp_path / "t", dict(os.environ))
    # every session finished its capture, and the last one names a line of each round
    report = memsleuth("report", "table", str(tmp_path / f"t-{RUNS - 1}.msl"), "--top", "200")
    assert report.returncode == 0, report.stderr
    assert f"gen{(RUNS - 1) * 10}.py:2 f{(RUNS - 1) * 10}" in report.stdout


def test_an_extension_swapping_allocators_under_run(tmp_path: Path) -> None:
    ext = cext.build("hookswap", tmp_path)
    runs = [
        [*RUN, "-o", str(tmp_path / f"h{i}.msl"), program("allocator_swap.py"), "hookswap"]
        for i in range(RUNS // 5)
    ]
    run_many(runs, env=cext.env_with(ext))
    report = memsleuth("report", "leaks", str(tmp_path / "h0.msl"))
    assert report.returncode == 0, report.stderr
    assert "allocator_swap.py" in report.stdout


def test_an_extension_swapping_allocators_in_tracker_sessions(tmp_path: Path) -> None:
    ext = cext.build("hookswap", tmp_path)
    swap_in_tracker_sessions("hookswap", tmp_path / "t", cext.env_with(ext))


# A session's census thread frees CPython's start-up record of it, and at its end its thread
# state, through the RAW allocator without the GIL: a program that starts or stops tracemalloc
# while one of those frees runs has tracemalloc's hook called half set up or torn down (a debug
# build aborts). So a session returns from its start only once its thread holds the GIL (counted
# by `_thread._count` from then on), and from its end only once the thread is gone from
# /proc/self/task.
SESSION_THREADS = """\
import _thread, os, sys
import memsleuth

def tasks():
    return len(os.listdir("/proc/self/task"))

count, threads = _thread._count(), tasks()
for i in range(20):
    with memsleuth.Tracker(f"{sys.argv[1]}-{i}.msl", census=0.01):
        during = _thread._count()
    after = _thread._count(), tasks()
    assert during == count + 1, ("started", i, count, during)
    assert after == (count, threads), ("ended", i, (count, threads), after)
print("sessions done")
"""


def test_a_session_starts_and_ends_its_census_thread_before_it_returns(tmp_path: Path) -> None:
    script = tmp_path / "sessions.py"
    script.write_text(SESSION_THREADS)
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "sessions done" in proc.stdout


# Programs that exercise what a host may do; each prints what it computed, and must print the
# same and exit the same under `memsleuth run` as under python, leaving a readable capture.
HOSTS = {
    "threads": """\
import threading
out = []
def work(i):
    out.append(sum(len(bytes(100)) for _ in range(2000)) + i)
ts = [threading.Thread(target=work, args=(i,)) for i in range(16)]
for t in ts: t.start()
for t in ts: t.join()
print(sorted(out)[:3], len(out))
""",
    "multiprocessing": """\
import multiprocessing
def square(x):
    return [x * x for _ in range(1000)][0]
if __name__ == "__main__":
    with multiprocessing.Pool(2) as pool:
        print(sum(pool.map(square, range(50))))
""",
    "asyncio": """\
import asyncio
async def job(i):
    await asyncio.sleep(0.001)
    return len([bytes(10) for _ in range(100)]) + i
async def main():
    return sum(await asyncio.gather(*(job(i) for i in range(200))))
print(asyncio.run(main()))
""",
    "recursion": """\
import sys
sys.setrecursionlimit(20000)
def down(n):
    return [n] if n == 0 else down(n - 1) + [bytes(8)]
print(len(down(5000)))
""",
    "signals": """\
import os, signal
got = []
def handler(signum, frame):
    got.append([bytes(100) for _ in range(10)])
signal.signal(signal.SIGUSR1, handler)
for _ in range(200):
    os.kill(os.getpid(), signal.SIGUSR1)
signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
signal.signal(signal.SIGALRM, handler)
import time
end = time.time() + 0.3
while time.time() < end:
    [str(i) for i in range(100)]
signal.setitimer(signal.ITIMER_REAL, 0)
print(len(got) >= 200)
""",
    "exit-code": """\
import sys
print("bye")
sys.exit(7)
""",
}


@pytest.mark.parametrize(
    ("name", "how"),
    [
        *[(name, "") for name in HOSTS],
        ("threads", "PYTHONMALLOC=malloc"),
        ("asyncio", "-X tracemalloc"),
        ("signals", "-X tracemalloc"),
    ],
)
def test_programs_run_as_under_python(tmp_path: Path, name: str, how: str) -> None:
    # not named after the module it uses, which it would shadow
    script = tmp_path / f"host_{name}.py"
    script.write_text(HOSTS[name])
    env = dict(os.environ)
    flags: list[str] = []
    if how.startswith("PYTHONMALLOC="):
        env["PYTHONMALLOC"] = how.split("=", 1)[1]
    elif how:
        flags = how.split()
    python = [sys.executable, *flags]
    plain = subprocess.run(
        [*python, str(script)], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
    )
    capture = tmp_path / "out.msl"
    tracked = subprocess.run(
        [*python, "-m", "memsleuth", "run", "--no-report", "-o", str(capture), str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert (tracked.returncode, tracked.stdout) == (plain.returncode, plain.stdout), tracked.stderr
    assert "Traceback" not in tracked.stderr, tracked.stderr
    # the capture is finished, and names the program's lines among all it allocated
    report = memsleuth("report", "table", str(capture), "--top", "1000")
    assert report.returncode == 0, report.stderr
    assert script.name in report.stdout


def test_a_program_that_exhausts_its_address_space_ends_as_under_python(tmp_path: Path) -> None:
    # it grows until MemoryError under `ulimit -v`, then ends normally, holding it all: the
    # census and analyses at exit then find no room, and must skip work rather than abort the
    # process (a Rust allocation that fails aborts)
    import resource

    script = tmp_path / "grow.py"
    script.write_text(
        "x = []\n"
        "try:\n"
        "    while True:\n"
        "        x.append(bytearray(1 << 20))\n"
        "except MemoryError:\n"
        "    print('MemoryError')\n"
    )
    limit = 400 << 20

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    # one malloc arena: memsleuth's own threads then allocate where the program ran out
    env = {**os.environ, "MALLOC_ARENA_MAX": "1"}
    proc = subprocess.run(
        [*RUN[:-1], "-o", str(tmp_path / "g.msl"), str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        preexec_fn=limited,
    )
    assert proc.returncode == 0, proc.stderr
    assert "MemoryError" in proc.stdout
    assert "memory allocation" not in proc.stderr
