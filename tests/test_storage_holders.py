"""Leaking lines that allocate no object, only the storage of one that grows (a list's item
array, a dict's keys table, a bytearray's buffer...): `memsleuth run` names the object that
owns the block, and the chain that keeps it, in `report leaks`."""

from __future__ import annotations

import inspect
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from conftest import PROGRAMS, memsleuth, program

APP = PROGRAMS / "storage_app.py"


def line_of(marker: str) -> int:
    for number, text in enumerate(APP.read_text().splitlines(), start=1):
        if text.rstrip().endswith(f"# {marker}"):
            return number
    raise AssertionError(f"no line marked {marker}")


def leaks_of(tmp_path: Path, mode: str, seconds: str = "1.5") -> tuple[dict[str, Any], str]:
    """Runs storage_app.py in `mode`; its leak report as JSON, and as text."""
    capture = tmp_path / f"{mode}.msl"
    result = memsleuth(
        "run", "--census", "0.25", "-o", str(capture), program("storage_app.py"), mode, seconds
    )
    assert result.returncode == 0, result.stderr
    assert "panicked" not in result.stderr, result.stderr
    as_json = memsleuth("report", "leaks", str(capture), "--json", "--top", "0")
    assert as_json.returncode == 0, as_json.stderr
    as_text = memsleuth("report", "leaks", str(capture), "--top", "0")
    assert as_text.returncode == 0, as_text.stderr
    data: dict[str, Any] = json.loads(as_json.stdout)
    return data, as_text.stdout


def site_index(leaks: dict[str, Any], file: Path, lines: set[int]) -> int:
    found = [
        i
        for i, s in enumerate(leaks["sites"])
        if Path(s["file"]).resolve() == file.resolve() and s["line"] in lines
    ]
    assert found, [(s["file"], s["line"]) for s in leaks["sites"][:12]]
    return found[0]


def paths_of(leaks: dict[str, Any], site: int) -> list[dict[str, Any]]:
    paths = [h["path"] for h in leaks["holders"] if h["site"] == site]
    assert paths, f"site {leaks['sites'][site]} has no holder; holders: {leaks['holders']}"
    return paths


def edges(path: dict[str, Any]) -> list[str]:
    return [s["edge"] for s in path["steps"]]


# mode: (the global that owns the storage, the owner's type)
GLOBALS = {
    "list": (".ITEMS", "list"),
    "dict": (".TABLE", "dict"),
    "set": (".SEEN", "set"),
    "bytearray": (".BUFFER", "bytearray"),
    "array": (".SAMPLES", "array.array"),
    "deque": (".QUEUE", "collections.deque"),
}


@pytest.mark.parametrize("mode", sorted(GLOBALS))
def test_a_growing_module_global_holds_its_storage(tmp_path: Path, mode: str) -> None:
    leaks, text = leaks_of(tmp_path, mode)
    name, owner = GLOBALS[mode]
    site = site_index(leaks, APP, {line_of(f"LEAK-{mode.upper()}")})
    # the line's blocks are the storage itself, and it is a large site
    assert leaks["sites"][site]["bytes"] >= 512 << 10, leaks["sites"][site]
    if mode in ("list", "bytearray", "array", "deque"):
        # nothing else of the program's survives: its storage is the leak
        assert site == 0, [(s["file"], s["line"], s["bytes"]) for s in leaks["sites"][:3]]
    for path in paths_of(leaks, site):
        assert path["root_kind"] == "module", path
        assert path["root"].startswith("module __main__"), path
        # the chain ends at the owning object itself, reached through the global's name
        last = path["steps"][-1]
        assert last["type_name"] == owner, path
        assert last["edge"] == name, path
    # the text report says it too, the owner last on its line
    assert f"{name} → {owner}\n" in text, text


def test_an_unbounded_lru_cache_holds_its_dict_table(tmp_path: Path) -> None:
    leaks, text = leaks_of(tmp_path, "lru")
    site = site_index(leaks, APP, {line_of("LEAK-LRU")})
    for path in paths_of(leaks, site):
        assert path["root"].startswith("module __main__"), path
        # module global `lookup` (the lru wrapper) → its cache dict
        assert ".lookup" in edges(path), path
        wrapper = next(s for s in path["steps"] if s["edge"] == ".lookup")
        assert wrapper["type_name"] == "functools._lru_cache_wrapper", path
        assert path["steps"][-1]["type_name"] == "dict", path
    assert "held by module __main__" in text
    assert ".lookup → functools._lru_cache_wrapper" in text, text


def logging_lines(method: Any, statement: str) -> set[int]:
    source, first = inspect.getsourcelines(method)
    lines = {first + i for i, text in enumerate(source) if text.strip() == statement}
    assert lines, f"{statement!r} not in {method}"
    return lines


def test_loggers_made_in_a_loop_hold_the_managers_logger_dict(tmp_path: Path) -> None:
    # logging's own line grows Manager.loggerDict's table; this interpreter's logging is the
    # one the program ran
    leaks, text = leaks_of(tmp_path, "logging")
    logging_file = Path(inspect.getfile(logging))
    table = logging_lines(logging.Manager.getLogger, "self.loggerDict[name] = rv")
    site = site_index(leaks, logging_file, table)
    for path in paths_of(leaks, site):
        # from `logging.Logger.manager`, `logging.root.manager` or any module's logger
        assert ".loggerDict" in edges(path), path
        # the owner is the dict itself, not one of the loggers in it
        last = path["steps"][-1]
        assert last["type_name"] == "dict", path
        assert last["edge"] == ".loggerDict", path
    # the placeholder of the loggers' parent ("app") grows a dict of its children
    children = logging_lines(logging.PlaceHolder.append, "self.loggerMap[alogger] = None")
    site = site_index(leaks, logging_file, children)
    for path in paths_of(leaks, site):
        assert ".loggerMap" in edges(path), path
        assert path["steps"][-1]["type_name"] == "dict", path
    assert ".loggerDict → dict\n" in text, text


def test_storage_of_subclasses_is_found_among_objects_of_odd_layouts(tmp_path: Path) -> None:
    # list/dict/deque/array subclasses, Python classes named like the C types whose structs
    # are read, empty containers, split tables: the walk reads them all without harm
    leaks, _ = leaks_of(tmp_path, "odd", "1")
    site = site_index(leaks, APP, {line_of("LEAK-ODD")})
    for path in paths_of(leaks, site):
        assert path["root"].startswith("module __main__"), path
        assert edges(path)[-2:] == [".OWNER", ".items"], path
        assert path["steps"][-1]["type_name"] == "__main__.Items", path
