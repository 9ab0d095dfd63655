"""The one verdict (`run --check`, `report verdict`) on real programs: each class of leak is found
with its kind and line, and look-alike programs that do not leak stay quiet."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import memsleuth


def write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def line_of(path: Path, marker: str) -> int:
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if text.rstrip().endswith(f"# {marker}"):
            return number
    raise AssertionError(f"no line marked {marker} in {path}")


def checked_run(tmp_path: Path, script: Path, *flags: str) -> tuple[int, dict[str, Any], str]:
    """`run --check` then `report verdict --json`: the exit status, the verdict, run's stderr."""
    capture = tmp_path / "out.msl"
    result = memsleuth("run", "--check", *flags, "-o", str(capture), str(script), cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr
    verdict = memsleuth("report", "verdict", "--json", str(capture))
    assert verdict.returncode == 0, verdict.stderr
    model: dict[str, Any] = json.loads(verdict.stdout)
    assert model["schema"] == 1
    return result.returncode, model, result.stderr


def first_line(model: dict[str, Any]) -> tuple[str, int]:
    loc = model["findings"][0]["location"]
    return Path(loc["file"]).name, loc["line"]


def test_a_two_second_leak_is_leaking_with_its_line_first(tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "orders.py",
        """
        import time

        SEEN = {}

        def handle(i):
            SEEN[i] = bytearray(20_000)  # KEPT

        start = time.monotonic()
        i = 0
        while time.monotonic() - start < 2.0:
            handle(i)
            i += 1
            time.sleep(0.002)
        """,
    )
    code, model, stderr = checked_run(tmp_path, script)
    assert code == 3, stderr
    assert model["verdict"] == "leaking"
    finding = model["findings"][0]
    assert finding["kind"] == "python"
    assert first_line(model) == ("orders.py", line_of(script, "KEPT"))
    assert finding["rate"] > 1_000_000
    assert "SEEN" in (finding["holder"] or ""), finding
    # the exit summary says the same, in words
    assert "Verdict: leaking" in stderr
    assert f"orders.py:{line_of(script, 'KEPT')}" in stderr


def test_the_exit_verdict_is_the_one_report_verdict_reads(tmp_path: Path) -> None:
    # `run` makes its verdict inside the program's process at exit (one read of the capture);
    # `report verdict` makes it from the file later: the two must be the same verdict
    script = write(
        tmp_path,
        "cache.py",
        """
        import time

        class Registry:
            def __init__(self):
                self.items = []

        REGISTRY = Registry()
        start = time.monotonic()
        while time.monotonic() - start < 2.0:
            REGISTRY.items.append({"payload": "x" * 10_000})  # KEPT
            time.sleep(0.001)
        """,
    )
    capture = tmp_path / "out.msl"
    run = memsleuth("run", "-o", str(capture), str(script), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    later = memsleuth("report", "verdict", str(capture), cwd=tmp_path)
    assert later.returncode == 0, later.stderr

    def findings(text: str) -> list[str]:
        # the numbered findings and the lines under them, up to the leak table
        block = text.split("Verdict:", 1)[1].split("\n\n", 1)[0]
        lines = [line.strip() for line in block.splitlines()[1:]]
        return [line for line in lines if line and not line.startswith("Leaks:")]

    at_exit, from_file = findings(run.stderr), findings(later.stdout)
    assert at_exit, run.stderr
    assert at_exit[0].startswith("1. cache.py:"), run.stderr
    assert "REGISTRY" in "\n".join(at_exit), run.stderr
    # `report verdict` adds what it weighed; everything else is the same
    assert at_exit == [line for line in from_file if not line.startswith("weighed:")], (
        run.stderr,
        later.stdout,
    )


def test_memory_freed_only_at_shutdown_is_still_a_leak(tmp_path: Path) -> None:
    # per-worker state of a thread pool, and a registry cleared by an atexit handler: both
    # grow for the whole run and are gone by the time python would exit
    script = write(
        tmp_path,
        "workers.py",
        """
        import atexit
        import threading
        import time
        from concurrent.futures import ThreadPoolExecutor

        local = threading.local()
        REGISTRY = []
        atexit.register(REGISTRY.clear)

        def work(i):
            if not hasattr(local, "seen"):
                local.seen = []
            local.seen.append(bytes(10_000) + str(i).encode())  # PER_WORKER
            REGISTRY.append(bytearray(10_000))  # REGISTERED

        pool = ThreadPoolExecutor(max_workers=4)
        start = time.monotonic()
        i = 0
        while time.monotonic() - start < 2.0:
            pool.submit(work, i).result()
            i += 1
            time.sleep(0.001)
        """,
    )
    code, model, stderr = checked_run(tmp_path, script)
    assert code == 3, stderr
    lines = {
        (Path(f["location"]["file"]).name, f["location"]["line"]): f
        for f in model["findings"]
        if f["kind"] == "python"
    }
    for marker in ("PER_WORKER", "REGISTERED"):
        finding = lines.get(("workers.py", line_of(script, marker)))
        assert finding is not None, (marker, model["findings"])
        assert finding["freed_at_shutdown"], finding
    assert "freed only at shutdown" in stderr
    # the holders are searched when the main code ends, before the shutdown frees what they
    # hold: the atexit handler has not yet emptied the registry
    # and the pool's workers still run, so their thread-locals are reached through the local
    registered = lines[("workers.py", line_of(script, "REGISTERED"))]
    assert ".REGISTRY" in (registered["holder"] or ""), registered
    per_worker = lines[("workers.py", line_of(script, "PER_WORKER"))]
    assert ".local" in (per_worker["holder"] or ""), per_worker


def test_memory_the_main_code_releases_as_it_ends_is_still_a_leak(tmp_path: Path) -> None:
    # a `with ThreadPoolExecutor()` block that closes at the end of main(): the workers are
    # joined and their thread-local state freed before the main code ends, so nothing of it is
    # alive then; it grew for the whole run all the same
    script = write(
        tmp_path,
        "shards.py",
        """
        import threading
        import time
        from concurrent.futures import ThreadPoolExecutor

        local = threading.local()

        def parse(i):
            if not hasattr(local, "seen"):
                local.seen = {}
            local.seen[i] = f"{i:>12}|" + "x" * 4_000  # REMEMBERED

        def main():
            with ThreadPoolExecutor(max_workers=4) as pool:
                start = time.monotonic()
                i = 0
                while time.monotonic() - start < 2.5:
                    pool.submit(parse, i).result()
                    i += 1
                    time.sleep(0.0005)

        main()
        """,
    )
    code, model, stderr = checked_run(tmp_path, script)
    assert code == 3, stderr
    finding = model["findings"][0]
    assert finding["kind"] == "python", model["findings"]
    assert first_line(model) == ("shards.py", line_of(script, "REMEMBERED"))
    assert finding["released_at_end_bytes"] > 1_000_000, finding
    assert "released only as the program's main code ended" in stderr
    # the heap it left behind in RSS is not a second, native leak
    assert all(f["kind"] != "native" for f in model["findings"]), model["findings"]


def test_a_c_malloc_leak_is_growth_outside_pythons_allocator(tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "codec.py",
        """
        import ctypes
        import time

        libc = ctypes.CDLL(None)
        libc.malloc.restype = ctypes.c_void_p
        libc.malloc.argtypes = [ctypes.c_size_t]
        start = time.monotonic()
        while time.monotonic() - start < 2.0:
            block = libc.malloc(256 * 1024)
            ctypes.memset(block, 1, 256 * 1024)
            time.sleep(0.01)
        """,
    )
    code, model, stderr = checked_run(tmp_path, script)
    assert code == 3, stderr
    kinds = [f["kind"] for f in model["findings"]]
    assert "native" in kinds, model
    native = model["findings"][kinds.index("native")]
    assert native["rate"] > 5 * 1024 * 1024
    assert "beyond the tracked heap" in stderr


def test_gc_disabled_cycles_lead_the_verdict(tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "graph.py",
        """
        import gc
        import time

        class Node:
            def __init__(self):
                self.peer = self
                self.payload = [0] * 50

        gc.disable()
        start = time.monotonic()
        while time.monotonic() - start < 3.0:
            for _ in range(200):
                Node()
            time.sleep(0.005)
        """,
    )
    code, model, stderr = checked_run(tmp_path, script, "--census", "0.3")
    assert code == 3, stderr
    assert model["findings"][0]["kind"] == "gc-cycles", model["findings"]


@pytest.mark.parametrize(
    ("name", "source"),
    [
        (
            "lookup.py",
            """
            import functools
            import time

            @functools.lru_cache(maxsize=1024)
            def price(n):
                return [n] * 200

            start = time.monotonic()
            i = 0
            while time.monotonic() - start < 2.0:
                price(i % 5000)
                i += 1
            """,
        ),
        (
            "batches.py",
            """
            import time

            start = time.monotonic()
            batch = []
            cleared = 0
            # a sawtooth by its shape, not the clock: on a loaded machine two seconds may not
            # fill one batch, and a batch never cleared is a leak to anyone
            while time.monotonic() - start < 2.0 or cleared < 4:
                batch.append(bytes(2_000))
                if len(batch) == 2_000:
                    batch.clear()
                    cleared += 1
            """,
        ),
        (
            "tables.py",
            """
            import time

            TABLE = {i: str(i) * 20 for i in range(100_000)}
            start = time.monotonic()
            total = 0
            while time.monotonic() - start < 2.0:
                total += len(TABLE[total % 100_000])
            """,
        ),
    ],
)
def test_look_alike_programs_are_quiet(tmp_path: Path, name: str, source: str) -> None:
    script = write(tmp_path, name, source)
    code, model, stderr = checked_run(tmp_path, script)
    assert code == 0, (model["findings"], stderr)
    assert model["verdict"] == "no leak", model
    assert "Verdict: no leak" in stderr


def test_a_run_too_short_to_tell_is_inconclusive(tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "brief.py",
        """
        KEEP = [bytearray(50_000) for _ in range(100)]
        """,
    )
    code, model, stderr = checked_run(tmp_path, script)
    assert code == 0, stderr
    assert model["verdict"] == "inconclusive", model
    assert model["needs_seconds"] >= 2.0
    assert "would decide" in stderr


def test_report_verdict_text_and_check(tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "orders.py",
        """
        import time

        SEEN = []
        start = time.monotonic()
        while time.monotonic() - start < 1.5:
            SEEN.append(bytearray(20_000))  # KEPT
            time.sleep(0.002)
        """,
    )
    capture = tmp_path / "out.msl"
    ran = memsleuth("run", "--no-report", "-o", str(capture), str(script), cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr == ""
    text = memsleuth("report", "verdict", str(capture), cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("Verdict: leaking — 1 finding"), text.stdout
    assert f"orders.py:{line_of(script, 'KEPT')}" in text.stdout
    check = memsleuth("report", "verdict", "--check", str(capture))
    assert check.returncode == 3, check.stderr
    # the summary's JSON carries the same verdict, beside the memory trend's
    verdict = json.loads(memsleuth("report", "verdict", "--json", str(capture)).stdout)
    summary = memsleuth("report", "summary", "--json", str(capture))
    assert summary.returncode == 0, summary.stderr
    assert json.loads(summary.stdout)["program_verdict"] == verdict


@pytest.mark.parametrize(
    ("kind", "source"),
    [
        (
            "fds",
            """
            import os
            import time

            OPEN = []
            start = time.monotonic()
            while time.monotonic() - start < 2.0:
                OPEN.append(os.open(os.devnull, os.O_RDONLY))
                time.sleep(0.01)
            """,
        ),
        (
            "threads",
            """
            import threading
            import time

            gate = threading.Event()
            start = time.monotonic()
            while time.monotonic() - start < 2.0:
                threading.Thread(target=gate.wait, daemon=True).start()
                time.sleep(0.02)
            """,
        ),
    ],
)
def test_descriptor_and_thread_leaks_are_found(tmp_path: Path, kind: str, source: str) -> None:
    script = write(tmp_path, "service.py", source)
    code, model, stderr = checked_run(tmp_path, script)
    assert code == 3, stderr
    assert model["signals"][kind], model["signals"]
    assert kind in [f["kind"] for f in model["findings"]], model["findings"]


FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.mark.parametrize(
    ("capture", "has"),
    [
        # 1.1: allocation events, no censuses, no phase marks
        ("v1.1/leak-run.msl", {"sites", "rss"}),
        # 1.2: censuses and holders
        ("v1.2/objects-run.msl", {"sites", "rss", "censuses"}),
    ],
)
def test_a_capture_from_an_older_memsleuth_gets_the_verdict_its_signals_allow(
    capture: str, has: set[str]
) -> None:
    result = memsleuth("report", "verdict", "--json", str(FIXTURES / capture))
    assert result.returncode in (0, 3), result.stderr
    model = json.loads(result.stdout)
    assert model["schema"] == 1
    assert model["verdict"] in ("leaking", "no leak", "inconclusive")
    weighed = {name for name, present in model["signals"].items() if present}
    assert has <= weighed, model["signals"]
    # what a capture of that version cannot hold is not claimed
    assert not ({"sites", "censuses", "fds", "threads", "phases"} - has) & weighed, model


@pytest.mark.parametrize("capture", ["v1.0/leak.msl", "v1.3/fds-threads.msl"])
def test_a_watch_capture_is_sent_to_the_report_that_judges_it(capture: str) -> None:
    # memory samples only: one line that says where its verdict is, and nothing half-made
    result = memsleuth("report", "verdict", str(FIXTURES / capture))
    result.assert_clean_failure()
    assert result.stdout == ""
    assert "report summary" in result.stderr


def test_the_pass_read_during_the_run_ends_with_the_main_code(tmp_path: Path) -> None:
    # `run` reads its capture on a thread of its own while the program runs, so its exit has
    # little left to read; that thread is gone before the program's shutdown runs, and what
    # it held is memsleuth's own memory in the capture, not a C leak
    script = write(
        tmp_path,
        "store.py",
        """
        import atexit
        import os
        import time

        STORE = []

        def threads(when):
            names = []
            for task in os.listdir("/proc/self/task"):
                with open(f"/proc/self/task/{task}/comm") as f:
                    names.append(f.read().strip())
            print(when, sorted(names))

        atexit.register(threads, "AT_EXIT")
        start = time.monotonic()
        shown = False
        while time.monotonic() - start < 2.0:
            STORE.extend(object() for _ in range(2000))  # KEPT
            time.sleep(0.002)
            if not shown and time.monotonic() - start > 1.0:
                threads("RUNNING")
                shown = True
        """,
    )
    capture = tmp_path / "out.msl"
    run = memsleuth("run", "-o", str(capture), str(script), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    # a thread's name is cut to 15 characters in /proc
    running = [line for line in run.stdout.splitlines() if line.startswith("RUNNING")]
    at_exit = [line for line in run.stdout.splitlines() if line.startswith("AT_EXIT")]
    assert running, run.stdout
    assert "memsleuth-reade" in running[0], run.stdout
    assert at_exit, run.stdout
    assert "memsleuth-reade" not in at_exit[0], run.stdout
    timeline = memsleuth("report", "timeline", "--json", str(capture)).json()
    own = [p["own"] for p in timeline["timeline"]["processes"][0]["points"] if p.get("own")]
    # the pass's tables of the live objects grew while the program ran
    assert len(own) > 10, own
    assert max(own) > own[0] + 1_000_000, own[:3]
    verdict = memsleuth("report", "verdict", "--json", str(capture)).json()
    kinds = [f["kind"] for f in verdict["findings"]]
    assert kinds, verdict
    assert kinds[0] == "python", verdict
    # (a debug build's allocator adds its own bytes to every object, outside the tracked heap:
    # for objects this small that is C growth as large as the heap's, and the judge says so)
    if not hasattr(sys, "gettotalrefcount"):
        assert "native" not in kinds, verdict


def test_a_leak_a_pool_releases_as_main_returns_keeps_the_holder_found_while_it_ran(
    tmp_path: Path,
) -> None:
    # the workers' thread-locals grow for the whole run and go when `main()`'s own pool shuts
    # down, before the main code's end: the holder is found while the program runs. It runs
    # 6 s: the search needs an offer from the reader, which reads at the lowest priority, and
    # a census after it (once a second). Run for 3 s, CI once found no holder under `-n 2`
    # (not reproduced here, idle or beside CPU hogs): more rounds give the search more chances
    script = write(
        tmp_path,
        "shards.py",
        """
        import threading
        import time
        from concurrent.futures import ThreadPoolExecutor

        _state = threading.local()

        def work(n):
            if not hasattr(_state, "seen"):
                _state.seen = {}
            for i in range(20):
                _state.seen[(n, i)] = "x" * 2000 + str(n * 100 + i)  # KEPT
            time.sleep(0.008)
            return n

        def main():
            with ThreadPoolExecutor(max_workers=2) as pool:
                print(sum(pool.map(work, range(1500))))

        main()
        """,
    )
    code, model, stderr = checked_run(tmp_path, script)
    assert code == 3, stderr
    finding = model["findings"][0]
    assert finding["kind"] == "python", finding
    assert first_line(model) == ("shards.py", line_of(script, "KEPT"))
    assert finding["released_at_end_bytes"] > 10_000_000, finding
    assert "_state" in (finding["holder"] or ""), finding
    # the thread's attributes are keyed by a weakref: named by what it points at, no address
    assert "0x" not in finding["holder"], finding
    # one finding for the line, although a remainder of it survives
    lines = [first_line({"findings": [f]}) for f in model["findings"]]
    assert lines.count(("shards.py", line_of(script, "KEPT"))) == 1, model["findings"]
