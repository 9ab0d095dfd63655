"""``memsleuth.hunt``: does calling this function leak?

The function is called a few times to warm up (caches fill, modules import, first-use tables
grow), then again and again while every signal is read after each run: the reference total
(debug builds), Python's allocated blocks, live objects by type, the C heap in use, RSS, open
files and threads. Between runs the interpreter's own caches are cleared and restored, as
CPython's refleak hunter (``python -m test -R``) does, so a cache is not read as a leak. The
runs stop as soon as the evidence decides. The readings and the verdict are in Rust
(``memsleuth._native.HuntSession``); this module calls the function and cleans up.
"""

from __future__ import annotations

import contextlib
import gc
import json
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any, Callable, Optional

from memsleuth import _native

#: measured runs at most, when ``runs`` is not given: a clear case is decided in 3 to 5
MAX_RUNS = 12
#: the refleak hunter finds fewer than 3 warm-up runs gives false alarms
WARMUP = 3
#: runs with every allocation tracked once a leak is found, to name its lines (a leak whose
#: rise varies needs 5 to be judged)
TRACKED_RUNS = 5
#: seconds of recording before the first mark, and of quiet on each side of every mark
CALIBRATION = 0.02
MARK_GAP = 0.002


class Hunt:
    """The answer of :func:`hunt`: ``leaks`` (a bool), ``kind`` (``"leaks"``, ``"no leak"``,
    ``"inconclusive"``), ``report`` (the JSON document as a dict: every signal's per-run deltas
    and verdict, the types that leak; ``json`` is its text), ``runs`` and ``warmup``. ``str()``
    gives it in words."""

    def __init__(self, text: str, document: str) -> None:
        self.text = text
        self.json = document
        self.report: dict[str, Any] = json.loads(document)
        self.leaks: bool = bool(self.report["leaks"])
        self.kind: str = str(self.report["kind"]).replace("_", " ")
        self.runs: int = int(self.report["runs"])
        self.warmup: int = int(self.report["warmup"])

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"<memsleuth.Hunt {self.report['target']}: {self.kind} after {self.runs} runs>"


def hunt(
    fn: Callable[..., object],
    /,
    *args: Any,
    warmup: int = WARMUP,
    runs: Optional[int] = None,
    max_runs: int = MAX_RUNS,
    name: Optional[str] = None,
    ignore: Sequence[str] = (),
    **kwargs: Any,
) -> Hunt:
    """Calls ``fn(*args, **kwargs)`` ``warmup`` times, then measures run after run until the
    evidence decides (at most ``max_runs``), or exactly ``runs`` times when given; returns a
    :class:`Hunt`. An exception from ``fn`` ends the hunt and propagates. ``name`` names the
    target in the answer; lines in files under ``ignore`` (directories) are never named as
    leaking (a test runner's own)."""
    if warmup < 1:
        raise ValueError("warmup must be at least 1: the first call fills caches a leak is not")
    if runs is not None and runs < 3:
        raise ValueError("runs must be at least 3: fewer decide nothing")
    bound = runs if runs is not None else max_runs
    if bound < 3:
        raise ValueError("max_runs must be at least 3: fewer decide nothing")
    target = name or _name_of(fn)
    session = _native.HuntSession(target, warmup, bound, list(ignore))
    state = _State()
    for _ in range(warmup):
        fn(*args, **kwargs)
        state.clean()
    session.measure()
    while session.runs() < bound:
        fn(*args, **kwargs)
        state.clean()
        session.measure()
        if runs is None and session.settled():
            break
    if session.leaks() and not _native.tracking():
        _tracked_runs(session, lambda: fn(*args, **kwargs), state, max(3, min(TRACKED_RUNS, bound)))
    return Hunt(session.report_text(), session.report_json())


def _tracked_runs(
    session: _native.HuntSession, call: Callable[[], object], state: _State, runs: int
) -> None:
    """A leak was found: a few more runs with every allocation tracked (the ``python``
    instrument) name the lines whose memory stays, and what holds it. Apart from the measured
    runs, whose readings the tracker's own work would blur."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory(prefix="memsleuth-hunt-") as where:
        path = os.path.join(where, "hunt.msl")
        _native.track_start(path, rss_interval=0.0)
        try:
            # the event clock (the CPU's counter, converted) and the marks' (the OS's) agree
            # to microseconds once the recorder has calibrated it for some milliseconds; a
            # quiet gap on each side of every mark keeps what is left of the difference from
            # putting a run's allocations on the wrong side of its mark
            time.sleep(CALIBRATION)
            session.mark_run()
            for _ in range(runs):
                time.sleep(MARK_GAP)
                call()
                state.clean()
                time.sleep(MARK_GAP)
                session.mark_run()
        finally:
            _native.track_stop()
        session.explain(path)


def _name_of(fn: Callable[..., object]) -> str:
    module = getattr(fn, "__module__", None) or "?"
    qualname = getattr(fn, "__qualname__", None) or repr(fn)
    return f"{module}.{qualname}"


class _State:
    """What the refleak hunter saves before the runs and puts back after each one (warnings
    filters, copyreg, the import caches, ABC registries), and the caches it clears. Only
    modules already imported are touched: the cleanup must not import anything itself."""

    def __init__(self) -> None:
        import copyreg

        self.filters = warnings.filters[:]
        self.dispatch = copyreg.dispatch_table.copy()
        self.importers = sys.path_importer_cache.copy()
        zipimport = sys.modules.get("zipimport")
        cache = getattr(zipimport, "_zip_directory_cache", None)
        self.zip_cache = cache.copy() if isinstance(cache, dict) else None
        self.abcs = _abc_registries()

    def clean(self) -> None:
        import copyreg

        warnings.filters[:] = self.filters  # type: ignore[index]
        copyreg.dispatch_table.clear()
        copyreg.dispatch_table.update(self.dispatch)
        sys.path_importer_cache.clear()
        sys.path_importer_cache.update(self.importers)
        zipimport = sys.modules.get("zipimport")
        cache = getattr(zipimport, "_zip_directory_cache", None)
        if self.zip_cache is not None and isinstance(cache, dict):
            cache.clear()
            cache.update(self.zip_cache)
        _restore_abcs(self.abcs)
        _clear_caches()
        # the type cache last: clearing the caches above may touch types
        clear = getattr(sys, "_clear_internal_caches", None) or getattr(
            sys, "_clear_type_cache", None
        )
        if clear is not None:
            clear()
        for _ in range(3):
            gc.collect()


def _abc_classes() -> list[type]:
    """Abstract classes of ``collections.abc`` and their direct subclasses, where code
    registers virtual subclasses."""
    import collections.abc
    import inspect

    found: list[type] = []
    for name in collections.abc.__all__:
        cls = getattr(collections.abc, name, None)
        if not isinstance(cls, type) or not inspect.isabstract(cls):
            continue
        for c in [cls, *cls.__subclasses__()]:
            if c not in found:
                found.append(c)
    return found


def _abc_registries() -> dict[type, set[Any]]:
    try:
        from _abc import _get_dump  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - every CPython 3.9+ has _abc
        return {}
    return {cls: set(_get_dump(cls)[0]) for cls in _abc_classes()}


def _restore_abcs(saved: dict[type, set[Any]]) -> None:
    for cls in _abc_classes():
        registry = saved.get(cls)
        if registry is not None:
            cls._abc_registry_clear()  # type: ignore[attr-defined]
            for ref in registry:
                target = ref()
                if target is not None:
                    cls.register(target)  # type: ignore[attr-defined]
        cls._abc_caches_clear()  # type: ignore[attr-defined]


def _call_if(module: str, *path: str) -> None:
    """Calls ``module.path...()`` when the module is imported and the attribute exists."""
    obj: Any = sys.modules.get(module)
    for part in path:
        if obj is None:
            return
        obj = getattr(obj, part, None)
    if callable(obj):
        obj()


def _clear_caches() -> None:
    """The caches CPython's refleak hunter clears between runs (``clear_caches`` in
    ``Lib/test/libregrtest/utils.py``), each only where the running version has it."""
    for module in list(sys.modules.values()):
        registry = getattr(module, "__warningregistry__", None)
        if isinstance(registry, dict):
            registry.clear()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    _call_if("re", "purge")
    strptime_cache = getattr(sys.modules.get("_strptime"), "_regex_cache", None)
    if isinstance(strptime_cache, dict):
        strptime_cache.clear()
    _call_if("urllib.parse", "clear_cache")
    _call_if("linecache", "clearcache")
    _call_if("mimetypes", "_default_mime_types")
    filecmp_cache = getattr(sys.modules.get("filecmp"), "_cache", None)
    if isinstance(filecmp_cache, dict):
        filecmp_cache.clear()
    _call_if("struct", "_clearcache")
    doctest = sys.modules.get("doctest")
    if doctest is not None and hasattr(doctest, "master"):
        doctest.master = None  # type: ignore[attr-defined]
    _call_if("ctypes", "_reset_cache")
    for cleanup in getattr(sys.modules.get("typing"), "_cleanups", ()):
        cleanup()
    _call_if("fractions", "_hash_algorithm", "cache_clear")
    inspect = sys.modules.get("inspect")
    if inspect is not None:
        for helper in ("_shadowed_dict_from_mro_tuple", "_shadowed_dict_from_weakref_mro_tuple"):
            _call_if("inspect", helper, "cache_clear")
        for table in ("_filesbymodname", "modulesbyfile"):
            cache = getattr(inspect, table, None)
            if isinstance(cache, dict):
                cache.clear()


class HuntTargetError(Exception):
    """Why ``memsleuth hunt FILE::FUNCTION`` could not hunt, in one line."""


def hunt_target(
    file: str, function: str, warmup: int, runs: Optional[int], max_runs: int
) -> tuple[str, str, bool]:
    """``memsleuth hunt``'s runner: imports ``file`` as a module (its directory first on
    ``sys.path``, as ``python file.py`` would have it), finds ``function`` there (or
    ``Class.method``) and hunts it; returns the answer as text, as JSON and whether it leaks."""
    import importlib.util
    import os
    import traceback

    path = os.path.abspath(file)
    name = os.path.splitext(os.path.basename(path))[0] or "hunted"
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise HuntTargetError(f"{file} cannot be imported as Python; give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as e:
        traceback.print_exc()
        raise HuntTargetError(
            f"{file} failed to import ({type(e).__name__}: {e}); fix it, then hunt again"
        ) from None
    fn: Any = module
    for part in function.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            found = sorted(
                n
                for n, v in vars(module).items()
                if callable(v) and getattr(v, "__module__", None) == name
            )
            have = f" (it has: {', '.join(found[:12])})" if found else ""
            raise HuntTargetError(f"no {function} in {file}{have}; give FILE.py::FUNCTION")
    if not callable(fn):
        raise HuntTargetError(f"{function} in {file} is not a function; give FILE.py::FUNCTION")
    try:
        result = hunt(fn, warmup=warmup, runs=runs, max_runs=max_runs, name=f"{file}::{function}")
    except BaseException as e:
        traceback.print_exc()
        raise HuntTargetError(
            f"{function}() raised {type(e).__name__}: {e}; a function to hunt must run again "
            f"and again without arguments"
        ) from None
    return result.text, result.json, result.leaks
