"""The ``objects`` instrument from Python: a census of live objects, and why an object is alive.

Both walk the heap once in Rust (through each object's ``tp_traverse``), never calling the
program's own ``__repr__``, ``__eq__``, ``__hash__`` or ``__getattr__``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Union

from memsleuth import _native


@dataclass(frozen=True)
class TypeStat:
    """One type in a census: instances, their shallow bytes (as ``sys.getsizeof`` counts), and
    the bytes they keep alive on their own (``None`` when not computed)."""

    name: str
    count: int
    bytes: int
    retained: Union[int, None]


@dataclass(frozen=True)
class TypeGrowth:
    """How one type changed between two censuses."""

    name: str
    count: int
    count_delta: int
    bytes: int
    bytes_delta: int


class Census:
    """Live objects by type at one moment. ``str(census)`` is a table; ``census["dict"]`` a row;
    ``later.diff(earlier)`` what grew."""

    def __init__(self, data: dict[str, Any], text: str) -> None:
        self._data = data
        self._text = text
        self.objects: int = data["objects"]
        self.bytes: int = data["bytes"]
        self.duration: float = data["duration_s"]
        self.gc_enabled: bool = data["gc_enabled"]
        self.unreachable: int = data["unreachable"]
        self.unreachable_bytes: int = data["unreachable_bytes"]
        self.garbage: int = data["garbage"]
        self.types: list[TypeStat] = [
            TypeStat(t["name"], t["count"], t["bytes"], t["retained"]) for t in data["types"]
        ]

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"<Census {self.objects} objects, {self.bytes} bytes, {len(self.types)} types>"

    def __getitem__(self, name: str) -> TypeStat:
        for t in self.types:
            if t.name == name:
                return t
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def diff(self, earlier: Census) -> list[TypeGrowth]:
        """Types whose instance count or bytes changed since ``earlier``, most grown first (as
        objgraph's ``show_growth``; ``memsleuth report growth`` judges a whole series)."""
        before = {t.name: t for t in earlier.types}
        out = []
        for t in self.types:
            b = before.pop(t.name, None)
            dc = t.count - (b.count if b else 0)
            db = t.bytes - (b.bytes if b else 0)
            if dc or db:
                out.append(TypeGrowth(t.name, t.count, dc, t.bytes, db))
        for b in before.values():
            out.append(TypeGrowth(b.name, 0, -b.count, 0, -b.bytes))
        out.sort(key=lambda g: (g.count_delta, g.bytes_delta), reverse=True)
        return out


def census(retained: bool = True, top: int = 25) -> Census:
    """Takes a census of every live object: the ones the gc tracks and every object they
    reach (str, int, bytes, untracked containers). ``retained`` also computes, for the largest
    types, the bytes reachable only through their instances (a dominator tree). ``top`` is the
    number of rows ``str()`` shows."""
    data, text = _native.census(retained, top)
    return Census(json.loads(data), text)


class Retention:
    """The reference chains that keep an object alive, from a root (a module, a running
    frame, ``gc.garbage``, or "held from C") to the object. ``str()`` is text; ``.dot`` is
    Graphviz; ``.svg`` a picture; ``.paths`` the data."""

    def __init__(self, result: dict[str, Any]) -> None:
        self.found: bool = result["found"]
        self.text: str = result["text"]
        self.dot: str = result["dot"]
        self.svg: str = result["svg"]
        self.paths: list[dict[str, Any]] = json.loads(result["json"])

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        roots = ", ".join(p["root"] for p in self.paths) or "nothing"
        return f"<Retention: held by {roots}>"

    def save(self, path: Union[str, os.PathLike[str]]) -> None:
        """Writes the picture: ``.svg``, or Graphviz ``.dot``; ``.json`` and text otherwise."""
        p = os.fspath(path)
        ext = os.path.splitext(p)[1].lower()
        body = {".svg": self.svg, ".dot": self.dot, ".gv": self.dot}.get(ext)
        if body is None:
            body = json.dumps(self.paths, indent=2) if ext == ".json" else self.text
        with open(p, "w", encoding="utf-8") as f:
            f.write(body)


def why(obj: object, max_paths: int = 3) -> Retention:
    """Why is ``obj`` still alive? The shortest reference chains from a root to it, one per
    object that refers to it directly (up to ``max_paths``), with readable edges: ``.attr``,
    ``['key']``, ``[3]``, ``local 'x'``. The caller's own local variables are used as a root
    only when nothing else holds the object."""
    return Retention(_native.why(obj, max_paths))


def pymalloc() -> dict[str, Any]:
    """The state of pymalloc, CPython's allocator for objects up to 512 bytes: arenas, pools
    and bytes per size class (in use, free, lost to headers and quantization), from the
    interpreter's own statistics, plus ``allocated_blocks`` (``sys.getallocatedblocks()``) and
    ``total_refcount`` on debug builds. ``active`` is False when pymalloc is not in use
    (``PYTHONMALLOC=malloc``). Memory that pymalloc holds in partly used arenas cannot go back
    to the OS; ``memsleuth report pymalloc`` says when that, not a leak, is what grows."""
    return _native.pymalloc_stats()
