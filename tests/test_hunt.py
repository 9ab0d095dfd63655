"""`hunt`: does calling a function leak? Real leaks (into a module's list, open files, threads,
a C extension's missing Py_DECREF and its malloc) are found with the signal that shows them;
functions that only fill caches, warm up or churn are no leak."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import cext
from conftest import memsleuth

LEAKS = {
    "module_list": """
        class Order:
            def __init__(self, n):
                self.n = n
                self.lines = [n] * 10

        SEEN = []

        def target():
            SEEN.append(Order(len(SEEN)))
        """,
    "open_files": """
        import os

        KEPT = []

        def target():
            KEPT.append(os.open(os.devnull, os.O_RDONLY))
        """,
    "threads": """
        import threading

        STOP = threading.Event()

        def target():
            threading.Thread(target=STOP.wait, daemon=True).start()
        """,
    "ctypes_malloc": """
        import ctypes

        libc = ctypes.CDLL(None)
        libc.malloc.restype = ctypes.c_void_p
        libc.malloc.argtypes = [ctypes.c_size_t]

        def target():
            libc.malloc(256 * 1024)
        """,
}

# which signal must say `leaks` for each, and a type that must be named (or None)
EXPECTED = {
    "module_list": ("objects", "Order"),
    "open_files": ("fds", None),
    "threads": ("threads", None),
    "ctypes_malloc": ("native_heap", None),
}

CONTROLS = {
    # an lru_cache that fills on the first call
    "lru_cache_once": """
        import functools

        @functools.lru_cache(maxsize=None)
        def table(n):
            return [i * i for i in range(n)]

        def target():
            return sum(table(1000))
        """,
    # a list that grows and is cleared every call
    "grow_and_clear": """
        BATCH = []

        def target():
            for i in range(5000):
                BATCH.append({"i": i})
            BATCH.clear()
        """,
    # a large buffer made on the first call only
    "first_call_buffer": """
        _BUFFER = None

        def target():
            global _BUFFER
            if _BUFFER is None:
                _BUFFER = bytearray(8 * 1024 * 1024)
            _BUFFER[0] = 1
        """,
    # the standard library's own caches: re, typing, logging, warnings, linecache
    "stdlib_caches": """
        import linecache
        import logging
        import re
        import typing
        import warnings

        log = logging.getLogger("hunted")

        def target():
            for i in range(50):
                re.match(r"(\\d+)-(\\w+)", f"{i}-x")
                typing.Optional[typing.List[int]]
                logging.getLogger("hunted.child").debug("x %d", i)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    warnings.warn("careful", DeprecationWarning)
                linecache.getline(__file__, 1)
            log.info("done")
        """,
    # a module imported on the first call
    "lazy_import": """
        def target():
            import json
            import decimal
            return json.dumps({"d": str(decimal.Decimal("1.5"))})
        """,
}


def hunt_file(tmp_path: Path, name: str, source: str, *flags: str, **kw: Any) -> dict[str, Any]:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    result = memsleuth("hunt", f"{path}::target", "--json", *flags, cwd=tmp_path, **kw)
    assert "panicked" not in result.stderr, result.stderr
    assert result.returncode in (0, 3), result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert (result.returncode == 3) == report["leaks"], report
    return report


def signal(report: dict[str, Any], name: str) -> dict[str, Any]:
    found = [s for s in report["signals"] if s["signal"] == name]
    assert found, report["signals"]
    verdict: dict[str, Any] = found[0]["verdict"]
    return verdict


@pytest.mark.parametrize("name", sorted(LEAKS))
def test_a_leak_is_found_with_the_signal_that_shows_it(tmp_path: Path, name: str) -> None:
    report = hunt_file(tmp_path, name, LEAKS[name])
    assert report["kind"] == "leaks", report
    want, type_name = EXPECTED[name]
    verdict = signal(report, want)
    assert verdict["kind"] == "leaks", verdict
    assert verdict["per_run"] > 0
    # a clear leak is decided in a few runs, not at the bound
    assert report["runs"] <= 5, report
    if type_name:
        names = [t["name"] for t in report["types"]]
        assert any(n.endswith(type_name) for n in names), names


def test_a_leak_names_its_line_and_what_holds_it(tmp_path: Path) -> None:
    report = hunt_file(tmp_path, "orders", LEAKS["module_list"])
    assert report["tracked_runs"] >= 3, report
    lines = {(Path(s["location"]["file"]).name, s["location"]["line"]): s for s in report["sites"]}
    # SEEN.append(Order(len(SEEN))) is line 10 of the dedented source
    site = lines.get(("orders.py", 10))
    assert site is not None, report["sites"]
    assert site["verdict"]["kind"] == "leaks"
    holder = site["holder"]
    assert holder is not None, site
    assert holder["root"] == "module orders", holder
    assert [s["edge"] for s in holder["steps"]][1] == ".SEEN", holder


@pytest.mark.parametrize("name", sorted(CONTROLS))
def test_caches_warm_ups_and_churn_are_no_leak(tmp_path: Path, name: str) -> None:
    # three hunts of each: a false alarm costs as much as a miss
    for _ in range(3):
        report = hunt_file(tmp_path, name, CONTROLS[name])
        assert report["kind"] == "no_leak", json.dumps(report, indent=1)


def test_a_reference_c_never_drops_is_found(tmp_path: Path) -> None:
    env = cext.env_with(cext.build("cstash", tmp_path))
    leaking = """
        import cstash

        def target():
            cstash.make(2000, True, "list")
        """
    report = hunt_file(tmp_path, "make_leak", leaking, env=env)
    assert report["kind"] == "leaks", report
    assert signal(report, "objects")["kind"] == "leaks"
    if hasattr(sys, "gettotalrefcount"):
        assert signal(report, "refs")["kind"] == "leaks"
    fixed = leaking.replace("True", "False")
    assert hunt_file(tmp_path, "make_fixed", fixed, env=env)["kind"] == "no_leak"


def test_memory_c_mallocs_and_never_frees_is_found(tmp_path: Path) -> None:
    env = cext.env_with(cext.build("cstash", tmp_path))
    leaking = """
        import cstash

        def target():
            cstash.scratch(256 * 1024, True)
        """
    report = hunt_file(tmp_path, "scratch_leak", leaking, env=env)
    assert report["kind"] == "leaks", report
    native = signal(report, "native_heap")
    assert native["kind"] == "leaks", native
    assert native["per_run"] >= 256 * 1024
    fixed = leaking.replace("True", "False")
    assert hunt_file(tmp_path, "scratch_fixed", fixed, env=env)["kind"] == "no_leak"


def test_the_reference_total_is_read_on_a_debug_build_only(tmp_path: Path) -> None:
    report = hunt_file(tmp_path, "quiet", "def target():\n    pass\n")
    refs = signal(report, "refs")
    if hasattr(sys, "gettotalrefcount"):
        assert refs["kind"] == "no_leak", refs
        assert report["debug_build"] is True
    else:
        assert refs["reason"]["case"] == "not_read", refs
        assert report["debug_build"] is False


def test_runs_given_are_all_taken(tmp_path: Path) -> None:
    report = hunt_file(tmp_path, "fixed_runs", LEAKS["module_list"], "--runs", "7")
    assert report["runs"] == 7
    assert report["kind"] == "leaks"
    assert len(signal(report, "objects")["deltas"]) == 7


def test_the_text_answer_names_the_leak(tmp_path: Path) -> None:
    path = tmp_path / "orders.py"
    path.write_text(textwrap.dedent(LEAKS["module_list"]))
    result = memsleuth("hunt", f"{path}::target", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"memsleuth hunt: {path}::target — LEAKS"), result.stdout
    assert "types that leak:" in result.stdout
    assert "orders.Order" in result.stdout


def test_the_python_api_takes_arguments(tmp_path: Path) -> None:
    import memsleuth

    kept: list[bytes] = []

    def remember(size: int, *, copies: int) -> None:
        for _ in range(copies):
            kept.append(b"x" * size)

    found = memsleuth.hunt(remember, 3000, copies=2)
    assert found.leaks, found.text
    assert found.kind == "leaks"
    assert any(t["name"] == "bytes" for t in found.report["types"]), found.text
    assert "LEAKS" in str(found)
    # the line that makes the bytes, held through this test's own list
    lines = [s["location"]["function"] for s in found.report["sites"]]
    assert any(f.endswith("remember") for f in lines), found.text
    kept.clear()

    quiet = memsleuth.hunt(remember, 3000, copies=0)
    assert not quiet.leaks, quiet.text


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("nothing_here.py::f", "does not exist"),
        ("{file}", "FILE.py::FUNCTION"),
        ("{file}::missing", "no missing in"),
        ("{file}::VALUE", "is not a function"),
    ],
)
def test_bad_targets_get_one_line(tmp_path: Path, target: str, words: str) -> None:
    file = tmp_path / "mod.py"
    file.write_text("VALUE = 3\n\ndef target():\n    pass\n")
    result = memsleuth("hunt", target.format(file=file), cwd=tmp_path)
    line = result.assert_clean_failure()
    assert words in line, line
