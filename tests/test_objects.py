"""The ``objects`` instrument on a real interpreter: census, growth between censuses, and the
reference chains ``why()`` finds for the classic ways Python programs leak."""

from __future__ import annotations

import ctypes
import functools
import gc
import sys
import types
import weakref
from typing import Any, Callable, ClassVar

import pytest

import memsleuth


class Session:
    def __init__(self, n: int) -> None:
        self.n = n
        self.payload = ["x" * 10]


def _module(name: str, **attrs: Any) -> types.ModuleType:
    """A real module in sys.modules, as `import name` would leave it."""
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


@pytest.fixture
def cleanup_modules() -> Any:
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


def _edges(path: dict[str, Any]) -> list[str]:
    return [s["edge"] for s in path["steps"]]


def _types(path: dict[str, Any]) -> list[str]:
    return [s["type_name"] for s in path["steps"]]


def test_module_cache_leak_shows_growth_and_the_path_from_the_module(
    cleanup_modules: Any,
) -> None:
    app = _module("leakapp.cache", CACHE={})
    before = memsleuth.census(retained=False)
    for i in range(3000):
        app.CACHE[f"user:{i}"] = Session(i)
    after = memsleuth.census()
    grown = {g.name: g for g in after.diff(before)}
    name = f"{__name__}.Session"
    assert grown[name].count_delta == 3000
    assert after[name].count == 3000
    # retained covers each session's own payload list and string
    assert after[name].retained is not None
    assert after[name].retained > after[name].bytes

    r = memsleuth.why(app.CACHE["user:42"])
    first = r.paths[0]
    assert first["root_kind"] == "module"
    assert first["root"] == "module leakapp.cache"
    assert _edges(first)[1:] == [".CACHE", "['user:42']"]
    assert _types(first) == ["module", "dict", name]
    assert "module leakapp.cache" in str(r)
    assert ".CACHE" in str(r)


def test_callbacks_on_a_global_list_hold_through_the_bound_method(
    cleanup_modules: Any,
) -> None:
    class Handler:
        def on_event(self) -> None:
            pass

    bus = _module("leakapp.bus", CALLBACKS=[])
    h = Handler()
    bus.CALLBACKS.append(h.on_event)
    ref = weakref.ref(h)
    del h
    target = ref()
    assert target is not None
    r = memsleuth.why(target)
    path = r.paths[0]
    assert path["root"] == "module leakapp.bus"
    assert _edges(path)[1:] == [".CALLBACKS", "[0]", ".__self__"]
    assert _types(path)[2] == "method"


def test_lru_cache_on_a_method_keeps_instances_alive_through_the_cache(
    cleanup_modules: Any,
) -> None:
    class Repo:
        @functools.cache  # noqa: B019 - the leak under test
        def get(self, key: int) -> int:
            return key * 2

    _module("leakapp.repo", Repo=Repo)
    repo = Repo()
    repo.get(1)
    ref = weakref.ref(repo)
    del repo
    gc.collect()
    target = ref()
    assert target is not None, "lru_cache no longer keeps the instance alive?"
    r = memsleuth.why(target)
    path = r.paths[0]
    assert path["root"] == "module leakapp.repo"
    kinds = _types(path)
    assert "functools._lru_cache_wrapper" in kinds
    assert ".get" in _edges(path)
    assert kinds[-1].endswith("Repo")


def test_a_cycle_with_gc_disabled_is_reported() -> None:
    class Node:
        other: Any = None

    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(2000):
            a, b = Node(), Node()
            a.other, b.other = b, a
        del a, b
        c = memsleuth.census()
        assert not c.gc_enabled
        # each pair: two instances, and on 3.9/3.10 their two dicts
        assert c.unreachable >= 4000
        assert c.unreachable_bytes > 0
        text = str(c)
        assert "DISABLED" in text
        assert "unreachable cycles" in text
        assert not gc.isenabled(), "the census must leave the gc as it found it"
    finally:
        if was:
            gc.enable()
        gc.collect()
    assert memsleuth.census().unreachable < 4000


def test_an_object_held_only_by_c_is_held_from_c() -> None:
    class Holder:
        item: Any = None

    def make() -> Callable[[], Any]:
        holder = Holder()
        holder.item = Session(7)
        # a reference from C code that no Python object shows (ctypes is a C extension)
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(holder))
        return weakref.ref(holder.item)

    ref = make()
    try:
        r = memsleuth.why(ref())
        path = r.paths[0]
        assert path["root_kind"] == "held_from_c"
        assert "held from C" in path["root"]
        assert _edges(path)[1:] == [".item"]
        assert _types(path)[0].endswith("Holder")
    finally:
        held = ref()
        assert held is not None
        for o in gc.get_referrers(held):
            if type(o).__name__ == "Holder":
                ctypes.pythonapi.Py_DecRef(ctypes.py_object(o))


def test_a_local_of_a_running_frame_is_named(cleanup_modules: Any) -> None:
    def worker() -> memsleuth.Retention:
        buffers = [Session(1)]
        return memsleuth.why(buffers[0])

    path = worker().paths[0]
    assert path["root_kind"] == "thread_frame"
    assert "frame worker" in path["root"]
    assert _edges(path)[1:] == ["local 'buffers'", "[0]"]


def test_a_module_global_is_the_holder_even_while_a_running_frame_holds_it_too(
    cleanup_modules: Any,
) -> None:
    # a worker thread keeps the module's thread-local in a local variable while it runs: the
    # frame's path is the shorter one, but the module's global is what keeps the object
    import threading

    _module("leakapp.workers", STATE=threading.local())
    state = sys.modules["leakapp.workers"].STATE
    holding = threading.Event()
    done = threading.Event()
    made: list[Any] = []

    def worker() -> None:
        local = state
        local.seen = {"k": Session(1)}
        made.append(local.seen)
        holding.set()
        done.wait(10)

    t = threading.Thread(target=worker, name="shard-worker")
    t.start()
    try:
        assert holding.wait(10)
        path = memsleuth.why(made.pop()).paths[0]
    finally:
        done.set()
        t.join()
    assert path["root"] == "module leakapp.workers", path
    assert _edges(path)[1] == ".STATE", path
    # a thread's attributes are keyed by an object with nothing to show but an address
    assert "0x" not in str(_edges(path)), path


class Evil:
    """Every hook a census might be tempted to call misbehaves."""

    called: ClassVar[list[str]] = []

    def __repr__(self) -> str:
        Evil.called.append("repr")
        raise RuntimeError("repr")

    def __eq__(self, other: object) -> bool:
        Evil.called.append("eq")
        raise RuntimeError("eq")

    def __hash__(self) -> int:
        Evil.called.append("hash")
        raise RuntimeError("hash")

    def __getattr__(self, name: str) -> Any:
        Evil.called.append("getattr")
        raise RuntimeError(name)

    def __sizeof__(self) -> int:
        raise RuntimeError("sizeof")


class Huge:
    def __sizeof__(self) -> int:
        return 10**30


class Liar:
    def __sizeof__(self) -> int:
        return -5


class Slow:
    def __sizeof__(self) -> int:
        import time

        time.sleep(0.01)
        return 64


def test_misbehaving_objects_neither_break_the_census_nor_run_their_hooks(
    cleanup_modules: Any,
) -> None:
    evil = [Evil() for _ in range(100)]
    app = _module("leakapp.evil", EVIL=evil, HUGE=[Huge() for _ in range(10)])
    app.LIAR = [Liar() for _ in range(10)]
    app.SLOW = [Slow() for _ in range(300)]
    app.PROXY = [weakref.proxy(e) for e in evil]
    Evil.called.clear()
    c = memsleuth.census()
    name = f"{__name__}.Evil"
    assert c[name].count == 100
    # a raising __sizeof__ falls back to the basic size, exactly what sys.getsizeof cannot do
    assert c[name].bytes >= 100 * object.__basicsize__
    # an absurd or negative size is not believed
    assert c[f"{__name__}.Huge"].bytes < 10 * 1024
    assert c[f"{__name__}.Liar"].bytes > 0
    # 300 x 10 ms of __sizeof__ exceeds the time budget: most slow sizes are estimated
    assert c.to_dict()["sizes_estimated"] >= 200
    r = memsleuth.why(evil[3])
    assert r.paths[0]["root"] == "module leakapp.evil"
    assert _edges(r.paths[0])[1:] == [".EVIL", "[3]"]
    assert "Evil object at 0x" in str(r)
    assert Evil.called == [], f"the census ran the object's own code: {Evil.called}"
    assert isinstance(app.PROXY[0], weakref.ProxyType)  # the proxies survived untouched


def test_getattribute_and_class_lies_do_not_fool_the_census(cleanup_modules: Any) -> None:
    class Masked:
        def __getattribute__(self, name: str) -> Any:
            raise AttributeError(name)

        @property  # type: ignore[misc]
        def __class__(self) -> type:
            return int

    _module("leakapp.masked", MASKED=[Masked() for _ in range(50)])
    c = memsleuth.census(retained=False)
    rows = [t for t in c.types if t.name.endswith(".Masked")]
    assert [t.count for t in rows] == [50]


def test_the_census_leaves_no_reference_and_restores_the_gc() -> None:
    s = Session(3)
    before = sys.getrefcount(s)
    ref = weakref.ref(s)
    assert gc.isenabled()
    c = memsleuth.census()
    memsleuth.why(s)
    assert gc.isenabled()
    assert sys.getrefcount(s) == before
    del s
    assert ref() is None, "the census kept the object alive"
    assert c.objects > 1000


def test_a_heap_of_a_million_objects(cleanup_modules: Any) -> None:
    # tuples of distinct ints and strs: 1.2M objects, most of them not tracked by the gc
    big = [(i, str(i)) for i in range(400_000)]
    _module("leakapp.big", BIG=big)
    c = memsleuth.census()
    assert c.objects >= 1_200_000
    assert c["tuple"].count >= 400_000
    assert c["str"].count >= 400_000
    assert c["int"].count >= 390_000  # small ints are shared
    r = memsleuth.why(big[123_456][1])
    assert r.paths[0]["root"] == "module leakapp.big"
    assert _edges(r.paths[0])[1:] == [".BIG", "[123456]", "[1]"]


def test_retention_renders_as_dot_and_svg(tmp_path: Any, cleanup_modules: Any) -> None:
    app = _module("leakapp.pic", CACHE={"k": Session(1)})
    r = memsleuth.why(app.CACHE["k"])
    assert r.dot.startswith("digraph")
    assert ".CACHE" in r.dot
    out = tmp_path / "why.svg"
    r.save(out)
    svg = out.read_text()
    assert svg.startswith("<svg") or svg.startswith("<?xml")
    assert "module leakapp.pic" in svg


def test_a_closure_names_its_free_variable(cleanup_modules: Any) -> None:
    def make() -> Callable[[], Any]:
        seen = [Session(1)]

        def handler() -> Any:
            return seen

        return handler

    hooks = _module("leakapp.hooks", HANDLER=make())
    target = hooks.HANDLER.__closure__[0].cell_contents[0]
    path = memsleuth.why(target).paths[0]
    assert path["root"] == "module leakapp.hooks"
    assert _edges(path)[1:] == [".HANDLER", "closure 'seen'", "[0]"]
    assert _types(path) == ["module", "function", "list", f"{__name__}.Session"]


def test_a_binary_payload_is_described_by_its_length_and_whole_escapes(
    cleanup_modules: Any,
) -> None:
    blob = bytes(range(200, 256)) * 2
    holder = _module("leakapp.blobs", BLOBS=[blob])
    described = memsleuth.why(holder.BLOBS[0]).paths[0]["steps"][-1]["repr"]
    # short enough for a report's line, and never an escape cut in two
    assert described == "112 bytes b'\\xc8\\xc9\\xca\\xcb\\xcc\\xcd…'", described


@pytest.mark.parametrize("retained", [False, True])
def test_sizes_are_what_sys_getsizeof_says(retained: bool, cleanup_modules: Any) -> None:
    class Plain:
        def __init__(self, i: int) -> None:
            self.i = i

    class Slotted:
        __slots__ = ("a", "b")

        def __init__(self) -> None:
            self.a, self.b = [1], (2,)

    class Growable(list):  # type: ignore[type-arg]
        pass

    made: dict[type, list[Any]] = {
        Plain: [Plain(i) for i in range(300)],
        Slotted: [Slotted() for _ in range(300)],
        Growable: [Growable(range(i % 50)) for i in range(300)],
    }
    _module("leakapp.sized", MADE=made)
    c = memsleuth.census(retained=retained)
    for cls, objs in made.items():
        row = next(t for t in c.types if t.name.endswith("." + cls.__qualname__))
        assert row.count == len(objs)
        assert row.bytes == sum(map(sys.getsizeof, objs)), cls.__qualname__
