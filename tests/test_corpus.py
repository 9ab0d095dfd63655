"""tests/corpus/truth.json agrees with the programs of tests/corpus (bench/bench_accuracy.py
scores the leak verdicts against it), and the programs give nothing away in their text."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

CORPUS = Path(__file__).resolve().parent / "corpus"
KINDS = {"python", "types", "gc-cycles", "held-from-c", "native", "fds", "threads"}
FIELDS = {"program", "leaks", "kind", "line", "holder", "note"}
# words that would tell a reader (or a heuristic) the answer
TELLING = re.compile(r"leak|bug|grow|control|bounded", re.IGNORECASE)


def truth() -> list[dict[str, Any]]:
    return json.loads((CORPUS / "truth.json").read_text())


def programs() -> list[Path]:
    return sorted(CORPUS.glob("*.py"))


def test_every_program_has_exactly_one_entry() -> None:
    names = [t["program"] for t in truth()]
    assert len(names) == len(set(names))
    assert sorted(names) == [p.name for p in programs()]


def test_enough_leaks_and_look_alikes() -> None:
    leaks = [t for t in truth() if t["leaks"]]
    assert len(leaks) >= 16
    assert len(truth()) - len(leaks) >= 10
    assert {t["kind"] for t in leaks} >= KINDS - {"types"}


@pytest.mark.parametrize("entry", truth(), ids=lambda t: t["program"])
def test_entry(entry: dict[str, Any]) -> None:
    assert set(entry) == FIELDS
    assert isinstance(entry["note"], str)
    assert entry["note"]
    if not entry["leaks"]:
        assert entry["kind"] is None
        assert entry["line"] is None
        assert entry["holder"] is None
        return
    assert entry["kind"] in KINDS
    if entry["kind"] == "python":
        assert entry["line"] is not None
    if entry["line"] is not None:
        name, _, number = entry["line"].rpartition(":")
        assert name == entry["program"]
        lines = (CORPUS / name).read_text().splitlines()
        assert 1 <= int(number) <= len(lines)
        text = lines[int(number) - 1].strip()
        assert text
        assert not text.startswith("#")
    if entry["holder"] is not None:
        assert isinstance(entry["holder"], str)
        assert entry["holder"]


@pytest.mark.parametrize("path", programs(), ids=lambda p: p.name)
def test_program_gives_nothing_away(path: Path) -> None:
    source = path.read_text()
    ast.parse(source)  # and it is Python
    assert not TELLING.search(path.name)
    assert not TELLING.search(source), TELLING.search(source)


@pytest.mark.parametrize("path", sorted((CORPUS / "native").glob("*.c")), ids=lambda p: p.name)
def test_native_source_gives_nothing_away(path: Path) -> None:
    assert not TELLING.search(path.read_text())
