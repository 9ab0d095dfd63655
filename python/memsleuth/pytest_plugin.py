"""memsleuth's pytest plugin: "is it fixed?" as a test that fails while it leaks.

Off unless asked. ``pytest --memsleuth`` tracks every test's body and lists the tests that
used the most memory; ``--memsleuth-hunt[=RUNS]`` hunts every test for leaks (its setup, body
and teardown run again and again after a warm-up, as CPython's refleak hunter runs a test);
markers ask per test:

- ``@pytest.mark.limit_memory("24 MiB")``: the peak of tracked memory during the test's body
- ``@pytest.mark.limit_leaks("1 KiB")``: bytes each run of the test leaves alive, after warm-up
- ``@pytest.mark.no_leaks``: every signal of the hunt must say "no leak"

``--memsleuth-limit-memory`` and ``--memsleuth-limit-leaks`` (or ``memsleuth_limit_memory`` and
``memsleuth_limit_leaks`` in the ini file) give every test a default budget; a marker
overrides it for its test, and ``pytest.param(..., marks=...)`` for one parametrization.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Generator
from typing import Any, Optional

import pytest

#: size words the limits take, powers of 1024 (``KB`` is read as ``KiB``)
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
}

_FAILURE = pytest.StashKey[str]()
_HUNTING = pytest.StashKey[bool]()


def parse_size(text: object) -> int:
    """``"24 MiB"``, ``"1.5KB"``, ``1024`` → bytes; a clear error otherwise."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        size = float(text)
    else:
        found = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text))
        unit = found.group(2).lower() if found else None
        if found is None or unit not in _UNITS:
            raise pytest.UsageError(
                f"memsleuth: {text!r} is not a size; give bytes with a unit, e.g. '24 MiB', "
                f"'512 KiB', '1 GiB'"
            )
        size = float(found.group(1)) * _UNITS[unit]
    if size < 0:
        raise pytest.UsageError(f"memsleuth: {text!r} is negative; give a size of 0 or more")
    return int(size)


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("memsleuth", "memory and leaks (memsleuth)")
    group.addoption(
        "--memsleuth",
        action="store_true",
        default=False,
        help="track every test's body and list the tests that used the most memory",
    )
    group.addoption(
        "--memsleuth-hunt",
        nargs="?",
        const="0",
        default=None,
        metavar="RUNS",
        help="hunt every test for leaks: run it again and again after a warm-up until the "
        "evidence decides (or exactly RUNS measured runs); a test that leaks fails",
    )
    group.addoption(
        "--memsleuth-limit-memory",
        default=None,
        metavar="SIZE",
        help="default limit_memory for every test (peak tracked memory of its body, e.g. 64MiB)",
    )
    group.addoption(
        "--memsleuth-limit-leaks",
        default=None,
        metavar="SIZE",
        help="default limit_leaks for every test (bytes each run leaves alive, e.g. 1KiB)",
    )
    group.addoption(
        "--memsleuth-top",
        default=10,
        type=int,
        metavar="N",
        help="tests listed by --memsleuth (default 10)",
    )
    parser.addini("memsleuth_limit_memory", "default limit_memory for every test", default="")
    parser.addini("memsleuth_limit_leaks", "default limit_leaks for every test", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "limit_memory(size): fail when the test's body peaks above SIZE of tracked memory",
    )
    config.addinivalue_line(
        "markers",
        "limit_leaks(size, runs=None): fail when each run of the test leaves more than SIZE "
        "alive, after warm-up",
    )
    config.addinivalue_line(
        "markers",
        "no_leaks(runs=None): fail unless every signal of a leak hunt says 'no leak'",
    )
    # a bad default stops the session before any test runs
    _default(config, "memsleuth_limit_memory")
    _default(config, "memsleuth_limit_leaks")
    _hunt_option(config)


def _hunt_option(config: pytest.Config) -> None:
    """``--memsleuth-hunt`` takes an optional RUNS, so argparse hands it the next word as well
    (``pytest --memsleuth-hunt tests/``): a word that is no number is a path to test, given
    back to pytest."""
    given = config.getoption("memsleuth_hunt")
    if given is None:
        return
    if str(given).isdigit():
        if 0 < int(given) < 3:
            raise pytest.UsageError(
                f"memsleuth: --memsleuth-hunt={given} is too few runs to decide; give 3 or more"
            )
        return
    config.option.memsleuth_hunt = "0"
    if config.option.file_or_dir:
        config.args.append(str(given))
    else:
        # the only path given was taken: pytest defaulted to the current directory
        config.args[:] = [str(given)]
        config.option.file_or_dir = [str(given)]


def _default(config: pytest.Config, name: str) -> Optional[int]:
    text = config.getoption(name) or config.getini(name)
    return parse_size(text) if text else None


def _limit(item: pytest.Item, marker: str, default: str) -> Optional[int]:
    found = item.get_closest_marker(marker)
    if found is not None:
        if not found.args:
            raise pytest.UsageError(f"memsleuth: @pytest.mark.{marker} needs a size, e.g. '1 MiB'")
        return parse_size(found.args[0])
    return _default(item.config, default)


def _runs(item: pytest.Item) -> Optional[int]:
    """Measured runs asked for: a marker's ``runs=``, then ``--memsleuth-hunt=RUNS``."""
    for marker in ("no_leaks", "limit_leaks"):
        found = item.get_closest_marker(marker)
        if found is not None and found.kwargs.get("runs"):
            runs = int(found.kwargs["runs"])
            if runs < 3:
                raise pytest.UsageError(
                    f"memsleuth: {marker}(runs={runs}) is too few runs to decide; give 3 or more"
                )
            return runs
    given = int(item.config.getoption("memsleuth_hunt") or 0)
    return given or None


def _hunted(item: pytest.Item) -> bool:
    return (
        item.config.getoption("memsleuth_hunt") is not None
        or item.get_closest_marker("no_leaks") is not None
        or _limit(item, "limit_leaks", "memsleuth_limit_leaks") is not None
    )


def _tracked(item: pytest.Item) -> bool:
    return item.config.getoption("memsleuth") or (
        _limit(item, "limit_memory", "memsleuth_limit_memory") is not None
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: Optional[pytest.Item]) -> None:
    """Hunts the test before pytest runs it as usual: its setup, body and teardown again and
    again (function-scoped fixtures with it), then once more to report, as pytest-leaks and
    pytest-rerunfailures do. A test that fails while hunted is reported as it fails."""
    if not _hunted(item):
        return
    import memsleuth

    def run_once() -> None:
        if hasattr(item, "_request") and not item._request:
            item._initrequest()  # type: ignore[attr-defined]
        try:
            item.ihook.pytest_runtest_setup(item=item)
            item.ihook.pytest_runtest_call(item=item)
        finally:
            try:
                item.ihook.pytest_runtest_teardown(item=item, nextitem=nextitem)
            finally:
                if hasattr(item, "_request"):
                    item._request = False
                    item.funcargs = None  # type: ignore[attr-defined]
                # pytest keeps each run's captured output for the report: a list growing
                # run by run, which would read as the test's leak
                item._report_sections = []

    runs = _runs(item)
    item.stash[_HUNTING] = True
    try:
        found = memsleuth.hunt(
            run_once, runs=runs, name=item.nodeid, ignore=_plugin_dirs(item.config)
        )
    except Exception:  # the test itself fails: the run pytest makes next reports it
        return
    finally:
        item.stash[_HUNTING] = False
        # what the runs printed would show once per run in the report
        item._report_sections = []
    failure = _hunt_failure(item, found)
    if failure:
        item.stash[_FAILURE] = failure
    item.user_properties.append(("memsleuth_hunt", found.kind))


def _plugin_dirs(config: pytest.Config) -> list[str]:
    """Where pytest, pluggy and every loaded plugin live: their hooks run with every run of a
    hunted test, and the lines they allocate at are theirs, not the test's."""
    dirs: set[str] = set()
    rootdir = str(config.rootpath)
    for plugin in [pytest, *config.pluginmanager.get_plugins()]:
        name = getattr(plugin, "__name__", None)
        if not isinstance(name, str) or name.split(".")[0] in ("memsleuth", "conftest"):
            continue
        top = sys.modules.get(name.split(".")[0])
        file = getattr(top, "__file__", None)
        if not isinstance(file, str):
            continue
        folder = os.path.dirname(os.path.abspath(file))
        if folder.startswith(rootdir):
            continue  # the project's own conftest files and helpers are the tests'
        dirs.add(folder + os.sep)
    for name in ("_pytest", "pluggy"):
        found = sys.modules.get(name)
        if found is not None and isinstance(getattr(found, "__file__", None), str):
            dirs.add(os.path.dirname(os.path.abspath(str(found.__file__))) + os.sep)
    return sorted(dirs)


def _hunt_failure(item: pytest.Item, found: Any) -> Optional[str]:
    """Why the hunt fails the test, or None: ``no_leaks`` wants every signal to say "no
    leak"; ``limit_leaks`` a leak of no more bytes per run than its limit; a hunt asked for
    on the command line, no leak."""
    if item.get_closest_marker("no_leaks") is not None:
        if found.leaks:
            return f"memsleuth: the test leaks\n\n{found}"
        if found.kind == "no leak":
            return None
        return f"memsleuth: no_leaks asks every signal to say 'no leak'\n\n{found}"
    limit = _limit(item, "limit_leaks", "memsleuth_limit_leaks")
    if limit is not None:
        per_run = float(found.report.get("bytes_per_run", 0.0))
        if not found.leaks or per_run <= limit:
            return None
        return (
            f"memsleuth: each run leaves {_human(per_run)} alive, over the limit of "
            f"{_human(limit)}\n\n{found}"
        )
    return f"memsleuth: the test leaks\n\n{found}" if found.leaks else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, None]:
    """Tracks the test's body (every allocation, the ``python`` instrument) when its peak is
    limited or ``--memsleuth`` lists it; not while it is hunted."""
    if not _tracked(item) or item.stash.get(_HUNTING, False):
        yield
        return
    from memsleuth import _native

    if _native.tracking():  # already tracked (the session runs under `memsleuth run`)
        yield
        return
    with tempfile.TemporaryDirectory(prefix="memsleuth-test-") as where:
        path = os.path.join(where, "test.msl")
        _native.track_start(path, rss_interval=0.0)
        try:
            yield
        finally:
            _native.track_stop()
        peak, alive, text = _native.capture_memory(path)
    item.user_properties.append(("memsleuth_peak", peak))
    item.user_properties.append(("memsleuth_alive", alive))
    limit = _limit(item, "limit_memory", "memsleuth_limit_memory")
    if limit is not None and peak > limit and _FAILURE not in item.stash:
        item.stash[_FAILURE] = (
            f"memsleuth: the test's body peaked at {_human(peak)} of tracked memory, over the "
            f"limit of {_human(limit)}\n\n{text}"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    failure = item.stash.get(_FAILURE, None)
    if call.when == "call" and failure and report.passed:
        report.outcome = "failed"
        report.longrepr = failure


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """``--memsleuth``: the tests whose bodies peaked highest, gathered from every report (so
    from every pytest-xdist worker too)."""
    if not config.getoption("memsleuth"):
        return
    rows: list[tuple[int, int, str]] = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            props = dict(getattr(report, "user_properties", ()))
            if "memsleuth_peak" in props:
                rows.append((props["memsleuth_peak"], props["memsleuth_alive"], report.nodeid))
    rows.sort(reverse=True)
    top = config.getoption("memsleuth_top")
    terminalreporter.write_sep("=", "memsleuth: memory of each test's body")
    if not rows:
        terminalreporter.write_line("no test body was tracked")
        return
    terminalreporter.write_line(f"{'peak':>10}  {'still alive':>11}  test")
    for peak, alive, nodeid in rows[:top]:
        terminalreporter.write_line(f"{_human(peak):>10}  {_human(alive):>11}  {nodeid}")
    if len(rows) > top:
        terminalreporter.write_line(f"... {len(rows) - top} more tests (--memsleuth-top N)")
